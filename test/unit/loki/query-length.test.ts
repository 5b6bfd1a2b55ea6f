import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { UsageError } from '../../../src/lib/errors.ts'
import { DEFAULT_QUERY_LIMITS, type QueryLimits } from '../../../src/lib/loki/client.ts'
import { type LengthClient, withinQueryLength } from '../../../src/lib/loki/query-length.ts'
import type { TimeRange } from '../../../src/lib/time.ts'

const HOUR = 3_600_000_000_000n
const END = 1_800_000_000n * 1_000_000_000n
const range = (hours: bigint): TimeRange => ({ start: END - hours * HOUR, end: END })

/** A client whose tenant has `maxHours` as max_query_length, counting how often its limits were read. */
function tenant(maxHours: bigint): LengthClient & { reads: number } {
  const client = {
    reads: 0,
    queryLimits: async (): Promise<QueryLimits> => {
      client.reads++
      return { ...DEFAULT_QUERY_LIMITS, maxQueryLengthNs: maxHours * HOUR, source: 'tenant-limits' }
    },
    limitsKnown: () => undefined,
  }
  return client
}

/** Loki's refusal of a range longer than its limit, as the HTTP client reports it. */
const refusal = (asked: string, limit: string) =>
  new UsageError(`Loki rejected the request: 400 Bad Request: the query time range exceeds the limit (query length: ${asked}, limit: ${limit})`, 'correct what it names')

describe('withinQueryLength', () => {
  test('a range within the shipped limit is asked as it is, without reading the tenant limits or a note', async () => {
    const client = tenant(721n)
    const notes: string[] = []
    const asked: TimeRange[] = []
    const fitted = await withinQueryLength(
      client,
      range(24n),
      async (r) => asked.push(r),
      (line) => notes.push(line),
    )
    assert.deepEqual(asked, [range(24n)])
    assert.deepEqual(fitted.range, range(24n))
    assert.equal(fitted.cut, undefined)
    assert.equal(client.reads, 0)
    assert.deepEqual(notes, [])
  })

  test('a longer range is cut to its most recent max_query_length first, with one note naming both', async () => {
    const client = tenant(721n)
    const notes: string[] = []
    const asked: TimeRange[] = []
    const fitted = await withinQueryLength(
      client,
      range(1440n),
      async (r) => asked.push(r),
      (line) => notes.push(line),
    )
    assert.deepEqual(asked, [range(721n)])
    assert.deepEqual(fitted.range, range(721n))
    assert.equal(client.reads, 1)
    assert.equal(notes.length, 1)
    assert.match(notes[0], /^the range \(1440h00m\) is longer than Loki's max_query_length \(721h00m\): using its most recent 721h00m, from 2026-12-16T/)
    assert.equal(fitted.cut, notes[0])
  })

  test("keep: 'earliest' asks the range's first max_query_length (the window just after a deploy)", async () => {
    const notes: string[] = []
    const asked: TimeRange[] = []
    await withinQueryLength(
      tenant(721n),
      range(1440n),
      async (r) => asked.push(r),
      (line) => notes.push(line),
      'earliest',
    )
    assert.deepEqual(asked, [{ start: END - 1440n * HOUR, end: END - 719n * HOUR }])
    assert.match(notes[0], /using its first 721h00m, to /)
  })

  test('a tenant without a limit (0) gets the whole range', async () => {
    const asked: TimeRange[] = []
    await withinQueryLength(
      tenant(0n),
      range(1440n),
      async (r) => asked.push(r),
      () => assert.fail('no note'),
    )
    assert.deepEqual(asked, [range(1440n)])
  })

  test("a lower limit is learned from Loki's refusal: the range is asked again once, cut, with the note", async () => {
    const notes: string[] = []
    const asked: TimeRange[] = []
    const fitted = await withinQueryLength(
      tenant(721n),
      range(48n),
      async (r) => {
        asked.push(r)
        if (r.end - r.start > 24n * HOUR) throw refusal('48h0m0s', '1d')
        return 'answer'
      },
      (line) => notes.push(line),
    )
    assert.deepEqual(asked, [range(48n), range(24n)])
    assert.equal(fitted.value, 'answer')
    assert.match(notes.join('\n'), /max_query_length \(24h00m\): using its most recent 24h00m/)
  })

  test('Loki measuring a little more than the range asked: the cut keeps what it counted beyond below the limit', async () => {
    const asked: TimeRange[] = []
    await withinQueryLength(
      tenant(721n),
      range(48n),
      async (r) => {
        asked.push(r)
        if (r.end - r.start + 5n * 60_000_000_000n > 24n * HOUR) throw refusal(asked.length === 1 ? '48h5m0s' : '24h5m0s', '1d')
      },
      () => {},
    )
    assert.deepEqual(asked.at(-1), { start: END - 24n * HOUR + 5n * 60_000_000_000n, end: END })
  })

  test("any other error, or a refusal the range already kept to, is the caller's to see", async () => {
    const other = new UsageError('Loki rejected the request: 400 Bad Request: parse error', 'fix it')
    await assert.rejects(
      withinQueryLength(
        tenant(721n),
        range(48n),
        async () => Promise.reject(other),
        () => {},
      ),
      other,
    )
    const kept = refusal('24h0m0s', '1d')
    await assert.rejects(
      withinQueryLength(
        tenant(721n),
        range(24n),
        async () => Promise.reject(kept),
        () => {},
      ),
      kept,
    )
  })
})
