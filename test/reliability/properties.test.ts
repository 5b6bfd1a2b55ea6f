/**
 * Property tests, thousands of generated cases each: no crash and no wrong
 * answer from duration parsing, time parsing, the settings built from them,
 * error-body summaries, and exact paging against a fake Loki serving random
 * and bursty datasets (also one that answers a full page with a random
 * subset, as a sharded query frontend does), within its request bounds.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import { resolveSettings } from '../../src/lib/config/settings.ts'
import { UsageError } from '../../src/lib/errors.ts'
import { summarizeBody } from '../../src/lib/http.ts'
import type { Direction, Labels, LokiClient, QueryData, RangeParams, StreamValue } from '../../src/lib/loki/client.ts'
import { fetchLogPages, type LogQueryParams, MAX_PAGE } from '../../src/lib/loki/paging.ts'
import { oneLine } from '../../src/lib/text.ts'
import { EARLIEST_NANOS, parseDuration, parseDurationMs, parseTime, resolveTimeRange, TIMER_BOUNDS } from '../../src/lib/time.ts'
import { counters } from '../support/fault-truth.ts'
import { PROPERTY_SEED } from '../support/property-seed.ts'

const RUNS = Number(process.env.OBS_PROPERTY_RUNS ?? 3000)
let cases = 0
const count =
  <T extends unknown[]>(check: (...args: T) => void) =>
  (...args: T) => {
    cases++
    check(...args)
  }
const countAsync =
  <T extends unknown[]>(check: (...args: T) => Promise<void>) =>
  async (...args: T) => {
    cases++
    await check(...args)
  }

const NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
  w: 604_800_000_000_000n,
}
const INT64_MAX = 2n ** 63n - 1n

/** A seeded linear congruential generator: the datasets a seed makes are the same on every run. */
function lcg(seed: number): () => number {
  let state = seed
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

/** Strings near the duration and time syntax, and arbitrary ones. */
const nearSyntax = fc.string({
  unit: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        '0',
        '1',
        '5',
        '9',
        '.',
        'h',
        'm',
        's',
        'ms',
        'us',
        'µs',
        'ns',
        'd',
        'w',
        'y',
        ' ',
        '-',
        '+',
        'e',
        'now',
        'T',
        'Z',
        ':',
        '2026-01-01',
        '1700000000',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  ),
  maxLength: 12,
})

/** Throws only UsageError; anything else is a crash. */
function usageOnly<T>(run: () => T): T | UsageError {
  try {
    return run()
  } catch (error) {
    assert.ok(error instanceof UsageError, `only a UsageError, got ${(error as Error)?.constructor?.name}: ${String(error)}`)
    return error
  }
}

/** A message printed as one line on stderr: no line break, no raw terminal control, whatever the input echoed in it. */
function assertCleanMessage(error: UsageError, input: string): void {
  const text = error.render()
  const bad = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.exec(text)
  assert.equal(bad, null, `input ${JSON.stringify(input)} gives a message with U+${bad?.[0].charCodeAt(0).toString(16).padStart(4, '0')}: ${JSON.stringify(text)}`)
}

describe('durations', () => {
  const part = fc.record({
    whole: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 10_000_000 })),
    fraction: fc.option(fc.stringMatching(/^\d{1,9}$/), { nil: undefined }),
    unit: fc.constantFrom(...Object.keys(NS)),
  })

  test(`generated durations parse to the right nanoseconds (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('', ' ', '\t'),
        count((parts, pad) => {
          const text = parts.map((p) => `${p.whole}${p.fraction === undefined ? '' : `.${p.fraction}`}${p.unit}`).join('')
          // Each part to the nanosecond, a fraction below one nanosecond dropped.
          const expected = parts.reduce((sum, p) => {
            const fraction = p.fraction === undefined ? 0n : (BigInt(p.fraction) * NS[p.unit]) / 10n ** BigInt(p.fraction.length)
            return sum + BigInt(p.whole) * NS[p.unit] + fraction
          }, 0n)
          const result = usageOnly(() => parseDuration(`${pad}${text}${pad}`, '--since'))
          if (expected === 0n) assert.ok(result instanceof UsageError, `${text} is zero: refused`)
          else assert.equal(result, expected, text)
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`arbitrary strings either parse to a positive duration or throw a UsageError (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        fc.oneof(nearSyntax, fc.string({ unit: 'binary' })),
        count((text) => {
          const result = usageOnly(() => parseDuration(text, '--since'))
          if (!(result instanceof UsageError)) {
            assert.ok(result > 0n)
            assert.match(text.trim(), /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$/, 'accepted only in the duration syntax')
          }
        }),
      ),
      { numRuns: RUNS },
    )
  })

  const dir = mkdtempSync(join(tmpdir(), 'obs-props-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  test(`messages about bad durations are one clean line, whatever the input (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        fc.oneof(nearSyntax, fc.string({ unit: 'binary' })),
        count((text) => {
          const result = usageOnly(() => parseDuration(text, '--since'))
          if (result instanceof UsageError) assertCleanMessage(result, text)
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`any interval or wait obs accepts is one Node's timers can hold, within its stated bounds (${RUNS} cases)`, () => {
    const duration = fc.oneof(
      fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom(...Object.keys(NS))).map(([n, unit]) => `${n}${unit}`),
      nearSyntax,
    )
    fc.assert(
      fc.property(
        duration,
        fc.constantFrom(...Object.values(TIMER_BOUNDS)),
        count((text, bounds) => {
          const result = usageOnly(() => parseDurationMs(text, '--interval', bounds))
          if (result instanceof UsageError) return assertCleanMessage(result, text)
          assert.ok(Number.isInteger(result) && result >= 1 && result <= 2 ** 31 - 1, `${text} gives ${result}ms`)
          assert.ok(parseDuration(text) >= parseDuration(bounds.min) && parseDuration(text) <= parseDuration(bounds.max), `${text} is outside ${bounds.min}–${bounds.max}`)
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`any --timeout obs accepts is one Node's timers can hold (1 ms to 2^31-1 ms) (${RUNS} cases)`, async () => {
    const timeout = fc.oneof(
      fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom('ms', 's', 'm', 'h', 'd', 'w')).map(([n, unit]) => `${n}${unit}`),
      nearSyntax,
    )
    await fc.assert(
      fc.asyncProperty(
        timeout,
        countAsync(async (text) => {
          let timeoutMs: number
          try {
            timeoutMs = (await resolveSettings({ flags: { timeout: text }, env: { XDG_CONFIG_HOME: join(dir, 'none') }, cwd: dir, version: '0' })).loki.timeoutMs
          } catch (error) {
            assert.ok(error instanceof UsageError, String(error))
            return
          }
          assert.ok(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= 2 ** 31 - 1, `--timeout ${text} gives ${timeoutMs}ms`)
        }),
      ),
      { numRuns: RUNS },
    )
  })
})

describe('times', () => {
  const NOW = 1_795_000_000_123_456_789n
  const date = fc
    .record({
      // obs refuses times Loki cannot store (before 1970, after 2262): a separate property covers that.
      year: fc.integer({ min: 1971, max: 2200 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 31 }),
      hour: fc.integer({ min: 0, max: 23 }),
      minute: fc.integer({ min: 0, max: 59 }),
      second: fc.integer({ min: 0, max: 59 }),
      fraction: fc.option(fc.stringMatching(/^\d{1,9}$/), { nil: undefined }),
      zone: fc.oneof(fc.constantFrom('Z', 'z'), fc.record({ sign: fc.constantFrom('+', '-'), hours: fc.integer({ min: 0, max: 23 }), minutes: fc.integer({ min: 0, max: 59 }) })),
      separator: fc.constantFrom('T', 't', ' '),
    })
    .filter((d) => d.day <= new Date(Date.UTC(d.year, d.month, 0)).getUTCDate())
  const two = (n: number) => String(n).padStart(2, '0')

  test(`generated RFC 3339 times parse to the right nanoseconds (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        date,
        count((d) => {
          const zone = typeof d.zone === 'string' ? d.zone : `${d.zone.sign}${two(d.zone.hours)}:${two(d.zone.minutes)}`
          const text = `${d.year}-${two(d.month)}-${two(d.day)}${d.separator}${two(d.hour)}:${two(d.minute)}:${two(d.second)}${d.fraction === undefined ? '' : `.${d.fraction}`}${zone}`
          const offsetMinutes = typeof d.zone === 'string' ? 0 : (d.zone.sign === '+' ? 1 : -1) * (d.zone.hours * 60 + d.zone.minutes)
          const ms = Date.UTC(d.year, d.month - 1, d.day, d.hour, d.minute, d.second) - offsetMinutes * 60_000
          const expected = BigInt(ms) * 1_000_000n + BigInt((d.fraction ?? '').padEnd(9, '0'))
          assert.equal(parseTime(text, NOW, '--from'), expected, text)
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`generated Unix seconds (with fractions), milliseconds, microseconds and nanoseconds (${RUNS} cases)`, () => {
    const unix = fc.oneof(
      // Bounded by what Loki reads correctly (from 10 s after the epoch) and its int64 nanoseconds; beyond them obs refuses the time (another property).
      fc.bigInt({ min: 10n, max: INT64_MAX / 1_000_000_000n - 1n }).map((s) => [s.toString(), s * 1_000_000_000n] as const),
      fc
        .tuple(fc.bigInt({ min: 10n, max: INT64_MAX / 1_000_000_000n - 1n }), fc.stringMatching(/^\d{1,12}$/))
        .map(([s, f]) => [`${s}.${f}`, s * 1_000_000_000n + BigInt(f.slice(0, 9).padEnd(9, '0'))] as const),
      fc.bigInt({ min: 10n ** 12n, max: INT64_MAX / 1_000_000n }).map((ms) => [ms.toString(), ms * 1_000_000n] as const),
      fc.bigInt({ min: 10n ** 15n, max: INT64_MAX / 1_000n }).map((us) => [us.toString(), us * 1_000n] as const),
      fc.bigInt({ min: 10n ** 18n, max: INT64_MAX }).map((ns) => [ns.toString(), ns] as const),
    )
    fc.assert(
      fc.property(
        unix,
        count(([text, expected]) => assert.equal(parseTime(text, NOW, '--from'), expected, text)),
      ),
      { numRuns: RUNS },
    )
  })

  test(`now, now-DURATION and now+DURATION (${RUNS} cases)`, () => {
    const duration = fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom(...Object.keys(NS))).map(([n, unit]) => `${n}${unit}`)
    fc.assert(
      fc.property(
        fc.constantFrom('-', '+'),
        duration,
        count((sign, text) => {
          const offset = parseDuration(text)
          const expected = sign === '-' ? NOW - offset : NOW + offset
          if (expected < EARLIEST_NANOS || expected > INT64_MAX) assert.throws(() => parseTime(`now${sign}${text}`, NOW, '--from'), UsageError)
          else assert.equal(parseTime(`now${sign}${text}`, NOW, '--from'), expected)
          assert.equal(parseTime('now', NOW, '--from'), NOW)
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`arbitrary strings never crash the time parser (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        fc.oneof(nearSyntax, fc.string({ unit: 'binary' })),
        count((text) => {
          usageOnly(() => parseTime(text, NOW, '--from'))
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`messages about bad times are one clean line, whatever the input (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        fc.oneof(nearSyntax, fc.string({ unit: 'binary' })),
        count((text) => {
          const result = usageOnly(() => parseTime(text, NOW, '--from'))
          if (result instanceof UsageError) assertCleanMessage(result, text)
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`every time and range obs accepts is one Loki reads correctly: 10 s after the epoch to int64 nanoseconds (${RUNS} cases)`, () => {
    const input = fc.oneof(
      fc.record({ since: fc.tuple(fc.integer({ min: 1, max: 10_000_000 }), fc.constantFrom('h', 'd', 'w')).map(([n, u]) => `${n}${u}`) }),
      fc.record({
        from: fc.constant('now-1h'),
        to: fc.oneof(
          fc.bigInt({ min: 0n, max: 10n ** 19n - 1n }).map(String),
          date.map((d) => `${d.year + 7000}-01-01T00:00:00Z`),
        ),
      }),
    )
    fc.assert(
      fc.property(
        input,
        count((flags) => {
          const range = usageOnly(() => resolveTimeRange(flags, '1h', NOW))
          if (range instanceof UsageError) return
          for (const value of [range.start, range.end]) assert.ok(value >= EARLIEST_NANOS && value <= INT64_MAX, `${JSON.stringify(flags)} gives ${value}`)
        }),
      ),
      { numRuns: RUNS },
    )
  })
})

describe('error bodies', () => {
  /** Line breaks, C0 and C1 controls, DEL, bidi overrides and isolates. */
  const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
  /** What obs's own terminal guard (neutralize) also treats as unsafe: the bidi marks. */
  const GUARDED = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
  const TAG = /<\/?[a-z][^<>]*>|<!(doctype|--)/i
  const text = fc.string({
    unit: fc.oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: fc.constantFrom('\n', '\r', '\t', '\u001b[31m', '\u0007', '\u009b', '\u202e', '\u200f', '\u2028', '<', '>', '&lt;', '<b>', '</title>', '{', '"') },
    ),
    maxLength: 600,
  })
  const status = fc.oneof(fc.constantFrom(400, 401, 403, 404, 413, 429, 500, 502, 503, 504), fc.integer({ min: 100, max: 599 }))
  const contentType = fc.option(
    fc.oneof(fc.constantFrom('text/plain', 'text/plain; charset=utf-8', 'application/json', 'text/html', 'text/html; charset=UTF-8', 'TEXT/HTML'), fc.string()),
    { nil: undefined },
  )

  function assertSummary(summary: string, code: number): void {
    assert.equal(typeof summary, 'string')
    assert.ok(summary.startsWith(`${code} `), summary)
    const bad = CONTROL.exec(summary)
    assert.equal(bad, null, `U+${bad?.[0].charCodeAt(0).toString(16).padStart(4, '0')} in ${JSON.stringify(summary)}`)
    assert.ok(summary.length <= 500, `${summary.length} characters`)
  }

  test(`any status, content type and body gives one clean, bounded line (${RUNS} cases)`, () => {
    const body = fc.oneof(
      text,
      text.map((message) => JSON.stringify({ error: message })),
      text.map((message) => JSON.stringify({ status: 'error', message })),
    )
    fc.assert(
      fc.property(
        status,
        contentType,
        body,
        count((code, type, payload) => assertSummary(summarizeBody(code, type, payload), code)),
      ),
      { numRuns: RUNS },
    )
  })

  test(`HTML pages never leak tags, whatever their title and body (${RUNS} cases)`, () => {
    const page = fc.record({
      prefix: fc.constantFrom('', '<!DOCTYPE html>\n', '<!doctype HTML>', '  \n<html>', '<html lang="en">', '\ufeff<!DOCTYPE html>'),
      title: text,
      body: text,
      type: fc.constantFrom('text/html', 'text/html; charset=utf-8', undefined, 'text/plain', 'application/octet-stream'),
    })
    fc.assert(
      fc.property(
        status,
        page,
        count((code, p) => {
          const html = `${p.prefix}<html><head><title>${p.title}</title></head><body><h1>${p.title}</h1>${p.body}<script>alert(1)</script></body></html>`
          // An HTML page: it says so in its content type or starts like one.
          fc.pre(/html/i.test(p.type ?? '') || p.prefix !== '')
          const summary = summarizeBody(code, p.type, html)
          assertSummary(summary, code)
          assert.doesNotMatch(summary, TAG, summary)
          assert.doesNotMatch(summary, /alert\(1\)/, 'no script text')
        }),
      ),
      { numRuns: RUNS },
    )
  })

  test(`oneLine strips what the terminal guard strips (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(
        text,
        count((input) => {
          const line = oneLine(input)
          assert.equal(GUARDED.exec(line), null, JSON.stringify(line))
          assert.ok(line.length <= 401)
        }),
      ),
      { numRuns: RUNS },
    )
  })
})

describe('exact paging against a fake Loki with random datasets', () => {
  interface Row {
    ts: bigint
    line: string
    labels: Labels
  }
  const key = (labels: Labels) => JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))))
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
  const order = (direction: Direction) => (a: Row, b: Row) =>
    (a.ts === b.ts ? 0 : a.ts < b.ts === (direction === 'forward') ? -1 : 1) || cmp(key(a.labels), key(b.labels)) || cmp(a.line, b.line)

  /** query_range from memory: start inclusive, end exclusive, limit; sloppy: a full page is a random subset, as a sharded frontend answers. */
  function fakeLoki(rows: Row[], sloppy: (() => number) | undefined, calls: RangeParams[]): LokiClient {
    return {
      async queryRange(params: RangeParams): Promise<QueryData> {
        calls.push(params)
        if (calls.length > 20_000) throw new Error('more than 20000 requests: looping?')
        const { start, end, limit, direction } = params
        assert.ok(start < end && limit !== undefined && limit > 0 && limit <= MAX_PAGE, `request ${start}..${end} limit ${limit}`)
        let selected = rows.filter((r) => r.ts >= start && r.ts < end).sort(order(direction ?? 'backward'))
        if (selected.length > limit && sloppy) {
          const keep = new Set<number>()
          while (keep.size < limit) keep.add(Math.floor(sloppy() * selected.length))
          selected = selected.filter((_, i) => keep.has(i))
        } else selected = selected.slice(0, limit)
        const streams = new Map<string, { stream: Labels; values: StreamValue[] }>()
        for (const r of selected) {
          const k = key(r.labels)
          if (!streams.has(k)) streams.set(k, { stream: { ...r.labels }, values: [] })
          streams.get(k)!.values.push([r.ts.toString(), r.line])
        }
        return { resultType: 'streams', result: [...streams.values()].reverse() }
      },
    } as unknown as LokiClient
  }

  const STREAMS: Labels[] = [{ app: 'x' }, { app: 'x', stream: 'stderr' }, { app: 'y', service: 'w' }, { app: 'x', z: '"' }]
  const dataset = fc
    .record({
      spread: fc.constantFrom(5n, 50n, 10_000n, 10n ** 12n),
      rows: fc.array(
        fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), stream: fc.integer({ min: 0, max: 3 }), line: fc.constantFrom('a', 'b', 'same', 'x\ny', '"q"', '') }),
        { maxLength: 150 },
      ),
    })
    .map(({ spread, rows }) => {
      const seen = new Set<string>()
      const out: Row[] = []
      for (const r of rows) {
        const ts = 1000n + BigInt(Math.floor(r.at * Number(spread)))
        const labels = STREAMS[r.stream]
        const id = `${ts}|${key(labels)}|${r.line}`
        // Loki keeps one copy of an identical entry.
        if (!seen.has(id)) {
          seen.add(id)
          out.push({ ts, labels, line: r.line })
        }
      }
      return out
    })

  test(`every entry once, in order, the first --limit of them, 1 to 6 windows in flight, also against a sloppy frontend (${Math.round(RUNS / 4)} datasets)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        dataset,
        fc.constantFrom<Direction>('forward', 'backward'),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 })),
        fc.integer({ min: 2, max: 60 }),
        fc.boolean(),
        fc.integer(),
        fc.integer({ min: 1, max: 6 }),
        countAsync(async (rows, direction, limit, batch, sloppy, seed, parallel) => {
          const random = lcg(seed >>> 0)
          const calls: RangeParams[] = []
          const params: LogQueryParams = { query: '{app="x"}', start: 1000n, end: 1000n + 10n ** 12n + 1n, direction, limit, batch, parallel }
          const got: string[] = []
          for await (const page of fetchLogPages(fakeLoki(rows, sloppy ? random : undefined, calls), params)) {
            for (const entry of page) got.push(`${entry.ts}|${entry.stream.json}|${entry.line}`)
          }
          const all = [...rows].sort(order(direction)).map((r) => `${r.ts}|${key(r.labels)}|${r.line}`)
          assert.deepEqual(got, limit === 0 ? all : all.slice(0, limit))
          for (const call of calls) assert.ok(call.start >= params.start && call.end <= params.end)
        }),
      ),
      { numRuns: Math.round(RUNS / 4) },
    )
  })

  /**
   * Uneven density, relative to the batch: a base rate of about one batch per
   * tenth of the span, spikes at 100× that rate, quiet gaps, and groups of up
   * to three batches on one nanosecond, some at the range's first and last
   * nanosecond and where `parallel` windows first cut the range.
   */
  const RANGE_START = 1000n
  const RANGE_END = RANGE_START + 10n ** 9n
  const bursty = fc
    .record({
      batch: fc.integer({ min: 3, max: 40 }),
      parallel: fc.integer({ min: 1, max: 6 }),
      seed: fc.integer(),
      spikes: fc.array(fc.record({ at: fc.double({ min: 0, max: 0.98, noNaN: true }), length: fc.double({ min: 0.001, max: 0.02, noNaN: true }) }), { maxLength: 3 }),
      gaps: fc.array(fc.record({ at: fc.double({ min: 0, max: 0.9, noNaN: true }), length: fc.double({ min: 0.01, max: 0.3, noNaN: true }) }), { maxLength: 3 }),
      groups: fc.array(
        fc.record({ at: fc.oneof(fc.constantFrom('start', 'end', 'split'), fc.double({ min: 0, max: 1, noNaN: true })), size: fc.double({ min: 0.5, max: 3, noNaN: true }) }),
        { maxLength: 4 },
      ),
    })
    .map((shape) => {
      const random = lcg(shape.seed >>> 0)
      const span = Number(RANGE_END - RANGE_START)
      const at = (fraction: number) => RANGE_START + BigInt(Math.min(span - 1, Math.floor(fraction * span)))
      const rows: Row[] = []
      const add = (ts: bigint, n: number) => rows.push({ ts, labels: STREAMS[n % STREAMS.length], line: `l${rows.length}` })
      const quiet = (ts: bigint) => shape.gaps.some((gap) => ts >= at(gap.at) && ts < at(gap.at + gap.length))
      for (let i = 0; i < shape.batch * 10; i++) {
        const ts = at(random())
        if (!quiet(ts)) add(ts, i)
      }
      for (const spike of shape.spikes) {
        for (let i = 0; i < Math.round(shape.batch * 10 * 100 * spike.length); i++) add(at(spike.at + random() * spike.length), i)
      }
      for (const group of shape.groups) {
        const ts =
          group.at === 'start'
            ? RANGE_START
            : group.at === 'end'
              ? RANGE_END - 1n
              : group.at === 'split'
                ? RANGE_START + (RANGE_END - RANGE_START) / BigInt(Math.max(2, shape.parallel))
                : at(group.at)
        for (let i = 0; i < Math.ceil(group.size * shape.batch); i++) add(ts, i)
      }
      return { ...shape, rows, changes: 2 * shape.spikes.length + 2 * shape.gaps.length + shape.groups.length }
    })

  test(`bursty datasets: every entry once, in order, the first --limit, within the stated request bounds, 1 to 6 windows in flight, also against a sloppy frontend (${Math.round(RUNS / 6)} datasets)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        bursty,
        fc.constantFrom<Direction>('forward', 'backward'),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 400 })),
        fc.boolean(),
        countAsync(async (data, direction, limit, sloppy) => {
          const random = lcg(data.seed >>> 1)
          const calls: RangeParams[] = []
          const params: LogQueryParams = { query: '{app="x"}', start: RANGE_START, end: RANGE_END, direction, limit, batch: data.batch, parallel: data.parallel }
          const got: string[] = []
          for await (const page of fetchLogPages(fakeLoki(data.rows, sloppy ? random : undefined, calls), params)) {
            for (const entry of page) got.push(`${entry.ts}|${entry.stream.json}|${entry.line}`)
          }
          const all = [...data.rows].sort(order(direction)).map((r) => `${r.ts}|${key(r.labels)}|${r.line}`)
          const wanted = limit === 0 ? all : all.slice(0, limit)
          assert.deepEqual(got, wanted)

          const held = (call: RangeParams) => data.rows.filter((r) => r.ts >= call.start && r.ts < call.end).length
          const full = calls.filter((call) => held(call) >= call.limit!)
          // Requests per exported line: about one per TARGET_FILL (0.75) of a
          // batch, twice that for the noise in windows' counts, plus a few per
          // change of density (full page, cut, group alone, the width's return)
          // per window in flight, plus the growth across empty stretches: 4×
          // per empty window, at most log4 of the range (15 here).
          const bound = Math.ceil((2 * wanted.length) / (0.75 * data.batch)) + 4 * (data.changes + 1) * data.parallel + 15 * data.parallel
          if (!sloppy) {
            assert.ok(calls.length <= bound, `${calls.length} requests for ${wanted.length} lines, bound ${bound}`)
            // A window cut from a full page (it starts where the full one did
            // forward, ends where it did backward) never comes back full.
            for (const fullCall of full) {
              if (fullCall.end - fullCall.start === 1n) continue
              const cut = calls.find(
                (call, i) =>
                  i > calls.indexOf(fullCall) &&
                  (direction === 'forward' ? call.start === fullCall.start : call.end === fullCall.end) &&
                  call.end - call.start < fullCall.end - fullCall.start,
              )
              if (cut) assert.ok(held(cut) < cut.limit!, `the window [${cut.start}, ${cut.end}) cut from the full [${fullCall.start}, ${fullCall.end}) is full`)
            }
          } else {
            // An inexact frontend can make each cut come back full again, four
            // times fewer entries kept each time: a few times the exact bound.
            assert.ok(calls.length <= 4 * bound, `${calls.length} requests for ${wanted.length} lines against a sloppy frontend, bound ${4 * bound}`)
          }
        }),
      ),
      { numRuns: Math.round(RUNS / 6) },
    )
  })
})

test('counts', (t) => {
  t.diagnostic(counters('properties', { seed: PROPERTY_SEED, propertyCases: cases }))
})
