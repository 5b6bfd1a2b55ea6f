import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ExitCode, UsageError } from '../../src/lib/errors.ts'
import {
  compareNanos,
  durationToMs,
  formatNanos,
  humanDuration,
  parseDuration,
  parseDurationMs,
  parseTime,
  resolveTimeRange,
  startBefore,
  TIMER_BOUNDS,
} from '../../src/lib/time.ts'

const S = 1_000_000_000n
const MIN = 60n * S
const H = 60n * MIN
const D = 24n * H

/** 2026-01-01T00:00:00Z */
const NOW = 1_767_225_600n * S

function usageError(text: RegExp | string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`)
    assert.equal(error.exitCode, ExitCode.usage)
    if (typeof text === 'string') assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`)
    else assert.match(error.message, text)
    return true
  }
}

describe('parseDuration', () => {
  const valid: [string, bigint][] = [
    ['30s', 30n * S],
    ['5m', 5n * MIN],
    ['1h', H],
    ['1h30m', H + 30n * MIN],
    ['2d', 2n * D],
    ['1.5h', H + 30n * MIN],
    ['250ms', 250_000_000n],
    ['1w', 7n * D],
    ['100ns', 100n],
    ['20us', 20_000n],
    ['20µs', 20_000n],
    ['1m30s', 90n * S],
    ['1h1m1s1ms', H + MIN + S + 1_000_000n],
    ['0.5s', 500_000_000n],
    [' 5m ', 5n * MIN],
  ]
  for (const [text, expected] of valid) {
    test(`"${text}" is ${expected}ns`, () => {
      assert.equal(parseDuration(text), expected)
    })
  }

  const invalid = ['', ' ', '5', '5x', '-1h', '0s', '0h0m', '1h 30m', '1H', '.5h', '1.h', 'h', 'm5', '5m-', '1e3s', 'ten seconds']
  for (const text of invalid) {
    test(`rejects ${JSON.stringify(text)} with a usage error`, () => {
      assert.throws(() => parseDuration(text, '--since'), usageError(`invalid --since "${text}"`))
    })
  }

  test('the error carries a hint with examples', () => {
    try {
      parseDuration('5x')
      assert.fail('no error')
    } catch (error) {
      assert.ok(error instanceof UsageError)
      assert.match(error.hint ?? '', /30s/)
      assert.match(error.render(), /invalid duration "5x"; use a number/)
    }
  })

  test('durationToMs truncates to whole milliseconds', () => {
    assert.equal(durationToMs(parseDuration('1.5s')), 1500)
    assert.equal(durationToMs(parseDuration('30s')), 30_000)
    assert.equal(durationToMs(parseDuration('999us')), 0)
  })
})

describe('parseTime', () => {
  const valid: [string, bigint][] = [
    ['2026-01-02T15:04:05Z', 1_767_366_245n * S],
    ['2026-01-02T15:04:05.123456789Z', 1_767_366_245n * S + 123_456_789n],
    ['2026-01-02T15:04:05.1Z', 1_767_366_245n * S + 100_000_000n],
    ['2026-01-02T15:04:05.000000001Z', 1_767_366_245n * S + 1n],
    ['2026-01-02T15:04:05+02:00', 1_767_359_045n * S],
    ['2026-01-02T15:04:05.5-05:30', 1_767_386_045n * S + 500_000_000n],
    ['2026-01-02t15:04:05z', 1_767_366_245n * S],
    ['2024-02-29T00:00:00Z', 1_709_164_800n * S],
    // Unix seconds, milliseconds, microseconds, nanoseconds
    ['1767225600', NOW],
    ['1767225600000', NOW],
    ['1767225600000000', NOW],
    ['1767225600000000000', NOW],
    ['1767225600123', NOW + 123_000_000n],
    ['1767225600123456', NOW + 123_456_000n],
    ['1767225600123456789', NOW + 123_456_789n],
    ['1767225600.5', NOW + 500_000_000n],
    ['1767225600.123456789', NOW + 123_456_789n],
    ['10', 10n * S],
    ['now', NOW],
    ['now-1h', NOW - H],
    ['now-1h30m', NOW - H - 30n * MIN],
    ['now+5m', NOW + 5n * MIN],
  ]
  for (const [text, expected] of valid) {
    test(`"${text}" is ${expected}`, () => {
      assert.equal(parseTime(text, NOW), expected)
    })
  }

  const invalid = [
    '',
    'yesterday',
    'now-',
    'nowx',
    'now-5x',
    '2026-01-01',
    '2026-01-01T00:00:00', // no zone
    '2026-01-01T00:00Z',
    '2026-01-02T15:04:05.1234567890Z', // 10 fraction digits
    '2026-13-01T00:00:00Z', // month 13
    '2026-00-10T00:00:00Z',
    '2026-01-32T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T00:60:00Z',
    '2026-01-01T00:00:00+25:00',
    '17672256000', // 11 digits: neither s nor ms
    '176722560000000', // 15 digits
    '17672256000.5', // fraction on a non-seconds value
    '-1767225600',
    '1,5',
  ]
  for (const text of invalid) {
    test(`rejects ${JSON.stringify(text)} with a usage error naming the flag`, () => {
      assert.throws(() => parseTime(text, NOW, '--from'), usageError('invalid --from'))
    })
  }

  // Loki's query frontend hands times on as bare nanoseconds, which the querier reads as seconds up to 10 digits.
  for (const text of ['0', '1', '9.999999999', '1970-01-01T00:00:09Z']) {
    test(`rejects ${JSON.stringify(text)}: before 1970-01-01T00:00:10Z, where Loki misreads times`, () => {
      assert.throws(() => parseTime(text, NOW, '--to'), usageError(`invalid --to "${text}": before 1970-01-01T00:00:10Z, the earliest time Loki reads correctly`))
    })
  }

  // Date.parse rolls 2026-02-30 over to March 2; a time flag must not.
  for (const text of ['2026-02-30T00:00:00Z', '2026-04-31T00:00:00Z', '2023-02-29T00:00:00Z']) {
    test(`rejects the non-existent date ${text}`, () => {
      assert.throws(() => parseTime(text, NOW, '--from'), usageError('invalid --from'))
    })
  }
})

describe('resolveTimeRange', () => {
  test('defaults to the default --since back from now', () => {
    assert.deepEqual(resolveTimeRange({}, '1h', NOW), { start: NOW - H, end: NOW })
  })

  test('--since counts back from now', () => {
    assert.deepEqual(resolveTimeRange({ since: '5m' }, '1h', NOW), { start: NOW - 5n * MIN, end: NOW })
  })

  test('--since counts back from --to', () => {
    const range = resolveTimeRange({ since: '30m', to: '2026-01-02T00:00:00Z' }, '1h', NOW)
    assert.deepEqual(range, { start: NOW + D - 30n * MIN, end: NOW + D })
  })

  test('--from alone runs to now', () => {
    assert.deepEqual(resolveTimeRange({ from: 'now-2h' }, '1h', NOW), { start: NOW - 2n * H, end: NOW })
  })

  test('--from and --to are taken as given (from inclusive, to exclusive)', () => {
    const range = resolveTimeRange({ from: '2025-12-31T23:00:00Z', to: '1767225600000' }, '1h', NOW)
    assert.deepEqual(range, { start: NOW - H, end: NOW })
  })

  test('--to alone uses the default --since before it', () => {
    assert.deepEqual(resolveTimeRange({ to: 'now-1d' }, '15m', NOW), { start: NOW - D - 15n * MIN, end: NOW - D })
  })

  test('--since with --from is a usage error', () => {
    assert.throws(() => resolveTimeRange({ since: '1h', from: 'now-2h' }, '1h', NOW), usageError('--since and --from cannot be used together'))
  })

  test('--from equal to --to is an error', () => {
    assert.throws(() => resolveTimeRange({ from: '1767225600', to: '1767225600' }, '1h', NOW), usageError(/must be before --to/))
  })

  test('--from after --to is an error naming both times', () => {
    assert.throws(
      () => resolveTimeRange({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, '1h', NOW),
      usageError('--from (2026-01-02T00:00:00.000000000Z) must be before --to (2026-01-01T00:00:00.000000000Z)'),
    )
  })

  test('a bad --to, --from or --since names its flag', () => {
    assert.throws(() => resolveTimeRange({ to: 'soon' }, '1h', NOW), usageError('invalid --to "soon"'))
    assert.throws(() => resolveTimeRange({ from: 'then' }, '1h', NOW), usageError('invalid --from "then"'))
    assert.throws(() => resolveTimeRange({ since: '5' }, '1h', NOW), usageError('invalid --since "5"'))
  })
})

describe('parseDurationMs: durations obs waits on', () => {
  const bounds = { min: '100ms', max: '1h' }

  test('a duration within the bounds, bounds included, in milliseconds', () => {
    assert.equal(parseDurationMs('100ms', '--interval', bounds), 100)
    assert.equal(parseDurationMs('1.5s', '--interval', bounds), 1500)
    assert.equal(parseDurationMs('1h', '--interval', bounds), 3_600_000)
  })

  for (const text of ['1ns', '99ms', '1h1ns', '30d', '300000w']) {
    test(`"${text}" is refused, naming the flag and the bounds`, () => {
      assert.throws(() => parseDurationMs(text, '--interval', bounds), usageError(`invalid --interval "${text}": it must be between 100ms and 1h`))
    })
  }

  test('what is not a duration is refused as before', () => {
    assert.throws(() => parseDurationMs('soon', '--wait', bounds), usageError('invalid --wait "soon"'))
  })

  test("every bound is one Node's timers can hold: past 2^31-1 ms they fire at once", () => {
    for (const [name, { min, max }] of Object.entries(TIMER_BOUNDS)) {
      const [low, high] = [durationToMs(parseDuration(min)), durationToMs(parseDuration(max))]
      assert.ok(low >= 1 && low <= high && high <= 2 ** 31 - 1, `${name}: ${min} to ${max}`)
    }
  })
})

describe('startBefore: now minus --since', () => {
  test('counts back from the end', () => {
    assert.equal(startBefore(NOW, '90m'), NOW - 90n * MIN)
  })

  test('reaching back to 1970-01-01T00:00:10Z is fine, before it is refused', () => {
    assert.equal(startBefore(NOW, `${NOW - 10n * S}ns`), 10n * S)
    assert.throws(() => startBefore(NOW, `${NOW - 10n * S + 1n}ns`), usageError(/^--since \d+ns reaches back before 1970-01-01T00:00:10Z$/))
    assert.throws(() => startBefore(NOW, '1000000d', '--since'), usageError('--since 1000000d reaches back before 1970-01-01T00:00:10Z'))
  })
})

describe('formatNanos', () => {
  const cases: [string | bigint, string][] = [
    ['0', '1970-01-01T00:00:00.000000000Z'],
    [1n, '1970-01-01T00:00:00.000000001Z'],
    ['999999999', '1970-01-01T00:00:00.999999999Z'],
    ['1767225600000000000', '2026-01-01T00:00:00.000000000Z'],
    ['1767225600123000000', '2026-01-01T00:00:00.123000000Z'],
    [1_767_366_245_123_456_789n, '2026-01-02T15:04:05.123456789Z'],
    ['1709164799999999999', '2024-02-28T23:59:59.999999999Z'],
  ]
  for (const [input, expected] of cases) {
    test(`${typeof input} ${input} is ${expected}`, () => {
      assert.equal(formatNanos(input), expected)
    })
  }

  test('always UTC with nine fraction digits, and round-trips through parseTime', () => {
    let x = 12345n
    for (let i = 0; i < 200; i++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n
      const ns = x % (4_102_444_800n * S) // before 2100
      const text = formatNanos(ns)
      assert.match(text, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/)
      assert.equal(parseTime(text, NOW), ns)
      assert.equal(formatNanos(ns.toString()), text)
    }
  })
})

describe('compareNanos', () => {
  test('orders by numeric value, not by string', () => {
    assert.ok(compareNanos('9', '10') < 0)
    assert.ok(compareNanos('10', '9') > 0)
    assert.ok(compareNanos('1767225600000000000', '1767225600000000001') < 0)
    assert.ok(compareNanos('1767225600000000001', '1767225600000000000') > 0)
    assert.equal(compareNanos('1767225600000000000', '1767225600000000000'), 0)
    assert.ok(compareNanos('999999999999999999', '1000000000000000000') < 0)
  })

  test('agrees with BigInt comparison on random values', () => {
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed
    }
    for (let i = 0; i < 500; i++) {
      const a = BigInt(next()) * BigInt(next()) * BigInt(next() % 1000)
      const b = i % 3 === 0 ? a : BigInt(next()) * BigInt(next()) * BigInt(next() % 1000)
      const expected = a < b ? -1 : a > b ? 1 : 0
      assert.equal(Math.sign(compareNanos(a.toString(), b.toString())), expected, `${a} vs ${b}`)
    }
  })
})

describe('humanDuration', () => {
  test('formats the documented examples', () => {
    assert.equal(humanDuration(850_000_000n), '850ms')
    assert.equal(humanDuration(12_400_000_000n), '12.4s')
    assert.equal(humanDuration(185n * S), '3m05s')
    assert.equal(humanDuration(2n * H + 10n * MIN), '2h10m')
    assert.equal(humanDuration(1_500_000_000n), '1.50s')
  })

  test('just under a minute does not print as "60.0s"', () => {
    assert.notEqual(humanDuration(59_960_000_000n), '60.0s')
  })
})
