import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ObsError, UnreachableError } from '../../../src/lib/errors.ts'
import {
  DEFAULT_QUERY_LIMITS,
  type Direction,
  type EntryMetadata,
  type Labels,
  LimitRefusal,
  type LokiClient,
  type QueryData,
  type QueryLimits,
  type RangeParams,
  type StreamValue,
} from '../../../src/lib/loki/client.ts'
import { cutAtPage, fetchLogPages, type LogEntry, type LogQueryParams, MAX_PAGE, StreamCache } from '../../../src/lib/loki/paging.ts'
import { mulberry32 } from '../../support/dataset.ts'

interface Row {
  ts: bigint
  line: string
  labels: Labels
  meta?: EntryMetadata
}

const keys = new WeakMap<Labels, string>()

/** Canonical label text, as obs orders streams: JSON of the labels sorted by name. */
function streamKey(labels: Labels): string {
  let key = keys.get(labels)
  if (key === undefined) {
    const sorted: Labels = {}
    for (const name of Object.keys(labels).sort()) sorted[name] = labels[name]
    key = JSON.stringify(sorted)
    keys.set(labels, key)
  }
  return key
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The order obs promises: by time in the direction, ties by stream, then line. */
function obsOrder(direction: Direction) {
  return (a: Row, b: Row): number => {
    const byTime = a.ts === b.ts ? 0 : a.ts < b.ts === (direction === 'forward') ? -1 : 1
    return byTime || cmp(streamKey(a.labels), streamKey(b.labels)) || cmp(a.line, b.line)
  }
}

type TieOrder = (a: Row, b: Row) => number

interface FakeOptions {
  /** How Loki orders entries that share a timestamp; obs's order by default. */
  tieOrder?: TieOrder
  /**
   * Behave like a sharded query frontend: when more entries match than the
   * limit, answer `limit` entries picked at random rather than the first ones.
   */
  sloppy?: () => number
  /** Fail the test instead of looping forever. */
  maxCalls?: number
  /** Loki's max_entries_limit_per_query, no request may ask more; 0 for none. MAX_PAGE by default. */
  maxEntries?: number
}

/**
 * A LokiClient stand-in serving query_range from memory the way Loki does:
 * `start` inclusive, `end` exclusive, entries in direction order, the first
 * `limit` taken, then grouped by stream (values in direction order, streams in
 * no particular order).
 */
class FakeLoki {
  readonly rows: Row[]
  readonly calls: { params: RangeParams; returned: number }[] = []
  private readonly options: FakeOptions

  constructor(rows: Row[], options: FakeOptions = {}) {
    this.rows = rows
    this.options = options
  }

  async queryRange(params: RangeParams): Promise<QueryData> {
    const maxCalls = this.options.maxCalls ?? 200_000
    if (this.calls.length >= maxCalls) throw new Error(`fetchLogPages made more than ${maxCalls} requests: looping?`)
    const { start, end, limit, direction } = params
    assert.ok(limit !== undefined && Number.isInteger(limit) && limit > 0, `limit must be a positive integer, got ${limit}`)
    const maxEntries = this.options.maxEntries ?? MAX_PAGE
    assert.ok(maxEntries === 0 || limit <= maxEntries, `limit ${limit} is above Loki's max_entries_limit_per_query`)
    assert.ok(direction === 'forward' || direction === 'backward', `direction ${direction}`)
    assert.ok(start < end, `start ${start} must be before end ${end}`)
    const forward = direction === 'forward'
    const tieOrder = this.options.tieOrder ?? ((a: Row, b: Row) => cmp(streamKey(a.labels), streamKey(b.labels)) || cmp(a.line, b.line))
    let selected = this.rows.filter((row) => row.ts >= start && row.ts < end).sort((a, b) => (a.ts === b.ts ? tieOrder(a, b) : a.ts < b.ts === forward ? -1 : 1))
    if (selected.length > limit && this.options.sloppy) {
      const random = this.options.sloppy
      const picked = new Set<number>()
      while (picked.size < limit) picked.add(Math.floor(random() * selected.length))
      selected = selected.filter((_, i) => picked.has(i))
    } else {
      selected = selected.slice(0, limit)
    }
    this.calls.push({ params, returned: selected.length })
    const streams = new Map<string, { stream: Labels; values: StreamValue[] }>()
    for (const row of selected) {
      const key = streamKey(row.labels)
      const stream = streams.get(key) ?? { stream: { ...row.labels }, values: [] }
      streams.set(key, stream)
      stream.values.push(row.meta ? [row.ts.toString(), row.line, row.meta] : [row.ts.toString(), row.line])
    }
    // Loki's stream order is not the output order: hand them back reversed.
    return { resultType: 'streams', result: [...streams.values()].reverse() }
  }
}

function asClient(fake: FakeLoki): LokiClient {
  return fake as unknown as LokiClient
}

const RANGE = { start: 0n, end: 1_000_000n }

async function collect(fake: FakeLoki, params: Partial<LogQueryParams>): Promise<{ entries: LogEntry[]; pages: LogEntry[][] }> {
  const full: LogQueryParams = { query: '{app="x"}', ...RANGE, direction: 'forward', limit: 0, batch: 5000, ...params }
  const pages: LogEntry[][] = []
  for await (const page of fetchLogPages(asClient(fake), full)) pages.push(page)
  // Whatever the strategy, every request stays inside the asked range and
  // asks for at most a batch, or at most a full Loki page for a 1 ns window.
  for (const { params: call } of fake.calls) {
    assert.equal(call.query, full.query)
    assert.equal(call.direction, full.direction)
    assert.ok(call.start >= full.start && call.end <= full.end, `request [${call.start}, ${call.end}) outside [${full.start}, ${full.end})`)
    const cap = call.end - call.start === 1n ? Math.max(full.batch, MAX_PAGE) : full.batch
    assert.ok(call.limit! <= cap, `request limit ${call.limit} above ${cap} for a ${call.end - call.start}ns window`)
  }
  return { entries: pages.flat(), pages }
}

function entryKey(entry: LogEntry): string {
  return `${entry.ts}|${entry.stream.json}|${entry.line}`
}

function rowKey(row: Row): string {
  return `${row.ts}|${streamKey(row.labels)}|${row.line}`
}

function truth(rows: Row[], params: { start?: bigint; end?: bigint; direction: Direction; limit: number }): string[] {
  const start = params.start ?? RANGE.start
  const end = params.end ?? RANGE.end
  const all = rows.filter((row) => row.ts >= start && row.ts < end).sort(obsOrder(params.direction))
  return (params.limit === 0 ? all : all.slice(0, params.limit)).map(rowKey)
}

const A = { app: 'x', stream: 'stdout' }
const B = { app: 'x', stream: 'stderr' }
const C = { app: 'x', service: 'worker', stream: 'stdout' }

function row(ts: number | bigint, labels: Labels, line: string, meta?: EntryMetadata): Row {
  return { ts: BigInt(ts), labels, line, meta }
}

/** `count` entries over three streams with distinct, increasing timestamps. */
function sequence(count: number): Row[] {
  const streams = [A, B, C]
  return Array.from({ length: count }, (_, i) => row(1000 + i * 7, streams[i % 3], `line ${i}`))
}

/**
 * Timestamps shared by several streams, identical lines in different streams
 * at the same nanosecond, and several lines of one stream at one nanosecond.
 */
function tiedRows(): Row[] {
  return [
    row(100, A, 'a1'),
    row(101, A, 'a2'),
    row(102, B, 'b1'),
    // a group of 6 at one nanosecond across three streams
    row(200, A, 'same'),
    row(200, B, 'same'),
    row(200, C, 'same'),
    row(200, A, 'other'),
    row(200, B, 'b-other'),
    row(200, C, 'c-other'),
    row(201, C, 'c1'),
    row(300, A, 'dup'),
    row(300, B, 'dup'),
    row(301, A, 'a3'),
    row(301, B, 'b3'),
    row(302, C, 'c2'),
    row(400, A, 'x'),
    row(400, A, 'y'),
    row(400, A, 'z'),
    row(400, B, 'x'),
    row(500, C, 'last'),
  ]
}

/** `size` entries at one nanosecond, spread over three streams. */
function group(ts: number, size: number): Row[] {
  return Array.from({ length: size }, (_, i) => row(ts, [A, B, C][i % 3], `g${i}`))
}

describe('fetchLogPages: simple paging', () => {
  test('everything in one page when it fits', async () => {
    const rows = sequence(10)
    const fake = new FakeLoki(rows)
    const { entries, pages } = await collect(fake, { batch: 100, limit: 0 })
    assert.deepEqual(entries.map(entryKey), truth(rows, { direction: 'forward', limit: 0 }))
    assert.equal(pages.length, 1)
  })

  test('no entries: no page, and it ends', async () => {
    const fake = new FakeLoki([], { maxCalls: 100 })
    const { pages } = await collect(fake, { batch: 10, limit: 0 })
    assert.equal(pages.length, 0)
  })

  for (const direction of ['forward', 'backward'] as const) {
    test(`${direction}: many pages, every entry once and in order`, async () => {
      const rows = sequence(1000)
      const fake = new FakeLoki(rows)
      const { entries, pages } = await collect(fake, { batch: 37, limit: 0, direction })
      assert.deepEqual(entries.map(entryKey), truth(rows, { direction, limit: 0 }))
      assert.ok(pages.length >= 1000 / 37, `${pages.length} pages`)
      for (const page of pages) assert.ok(page.length > 0, 'no empty pages are yielded')
    })

    test(`${direction}: start is inclusive and end exclusive`, async () => {
      const rows = sequence(30)
      const start = rows[5].ts
      const end = rows[20].ts
      const fake = new FakeLoki(rows)
      const { entries } = await collect(fake, { start, end, batch: 4, limit: 0, direction })
      assert.deepEqual(entries.map(entryKey), truth(rows, { start, end, direction, limit: 0 }))
      assert.equal(entries.length, 15)
    })

    test(`${direction}: entries at the very first and last nanosecond of the range`, async () => {
      const rows = [row(0, A, 'first'), row(1, B, 'second'), row(999_998, A, 'before-last'), row(999_999, C, 'last'), row(1_000_000, A, 'outside')]
      const fake = new FakeLoki(rows)
      const { entries } = await collect(fake, { batch: 2, limit: 0, direction })
      assert.deepEqual(entries.map(entryKey), truth(rows, { direction, limit: 0 }))
      assert.equal(entries.length, 4)
    })

    test(`${direction}: a huge sparse range with entries at both ends ends in reasonable time`, async () => {
      const rows = [...sequence(20), ...sequence(20).map((r) => ({ ...r, ts: r.ts + 3_600_000_000_000n }))]
      const fake = new FakeLoki(rows, { maxCalls: 5000 })
      const { entries } = await collect(fake, { start: 0n, end: 4_000_000_000_000n, batch: 8, limit: 0, direction })
      assert.deepEqual(entries.map(entryKey), truth(rows, { start: 0n, end: 4_000_000_000_000n, direction, limit: 0 }))
    })
  }

  test('the query and direction reach Loki unchanged', async () => {
    const fake = new FakeLoki(sequence(5))
    await collect(fake, { query: '{app="y"} |= "z"', start: 10n, end: 20_000n, direction: 'backward', batch: 50, limit: 3 })
    assert.ok(fake.calls.length >= 1)
    assert.equal(fake.calls[0].params.query, '{app="y"} |= "z"')
    assert.equal(fake.calls[0].params.direction, 'backward')
  })
})

describe('fetchLogPages: limits', () => {
  const rows = sequence(100)
  for (const direction of ['forward', 'backward'] as const) {
    for (const [batch, limit] of [
      [50, 7], // limit smaller than the batch
      [10, 10], // equal
      [9, 50], // larger
      [30, 1000], // more than there are
      [30, 0], // everything
      [10, 1],
      [5000, 100],
    ] as const) {
      test(`${direction}: batch ${batch}, limit ${limit}: exactly the first ${limit || 'all'}`, async () => {
        const fake = new FakeLoki(rows)
        const { entries } = await collect(fake, { batch, limit, direction })
        assert.deepEqual(entries.map(entryKey), truth(rows, { direction, limit }))
      })
    }

    test(`${direction}: an exact multiple of the batch ends cleanly`, async () => {
      const fake = new FakeLoki(sequence(40))
      const { entries } = await collect(fake, { batch: 10, limit: 0, direction })
      assert.deepEqual(entries.map(entryKey), truth(sequence(40), { direction, limit: 0 }))
    })
  }
})

describe('fetchLogPages: page boundaries inside a group of one timestamp', () => {
  const rows = tiedRows()
  for (const direction of ['forward', 'backward'] as const) {
    for (const batch of [2, 3, 5, 7, 8, 9, 10, 11, 12, 13, 19, 20, 21]) {
      test(`${direction}, batch ${batch}: nothing lost or repeated, identical lines in two streams both kept`, async () => {
        const fake = new FakeLoki(rows)
        const { entries } = await collect(fake, { batch, limit: 0, direction })
        const keys = entries.map(entryKey)
        assert.deepEqual(keys, truth(rows, { direction, limit: 0 }))
        assert.equal(new Set(keys).size, rows.length)
        assert.equal(entries.filter((e) => e.line === 'same' && e.ts === '200').length, 3)
        assert.equal(entries.filter((e) => e.line === 'dup' && e.ts === '300').length, 2)
        assert.equal(entries.filter((e) => e.line === 'x' && e.ts === '400').length, 2)
      })
    }

    for (const limit of [1, 3, 4, 5, 6, 8, 9, 10, 12, 13, 15, 17, 19, 20, 25]) {
      test(`${direction}, batch 7, limit ${limit}: exactly the first ${limit}`, async () => {
        const fake = new FakeLoki(rows)
        const { entries } = await collect(fake, { batch: 7, limit, direction })
        assert.deepEqual(entries.map(entryKey), truth(rows, { direction, limit }))
      })
    }

    test(`${direction}: a group larger than the batch but within a Loki page is served whole`, async () => {
      const data = [row(600, A, 'before'), ...group(700, 12), row(800, A, 'after')]
      const fake = new FakeLoki(data, { maxCalls: 1000 })
      const { entries } = await collect(fake, { batch: 5, limit: 0, direction })
      assert.deepEqual(entries.map(entryKey), truth(data, { direction, limit: 0 }))
    })

    test(`${direction}: a group larger than the batch with a limit ending inside it`, async () => {
      const data = [row(600, A, 'before'), ...group(700, 12), row(800, A, 'after')]
      const fake = new FakeLoki(data, { maxCalls: 1000 })
      const { entries } = await collect(fake, { batch: 5, limit: 6, direction })
      assert.deepEqual(entries.map(entryKey), truth(data, { direction, limit: 6 }))
    })

    test(`${direction}: a group that no Loki page can hold is an ObsError, not an endless loop`, async () => {
      const data = [row(600, A, 'before'), ...group(700, MAX_PAGE + 10), row(800, A, 'after')]
      const fake = new FakeLoki(data, { maxCalls: 200 })
      await assert.rejects(collect(fake, { batch: 100, limit: 0, direction }), (error: unknown) => {
        assert.ok(error instanceof ObsError, String(error))
        assert.match(error.message, /1970-01-01T00:00:00\.000000700Z/)
        assert.equal(error.message.includes('\n'), false)
        return true
      })
    })
  }
})

describe('fetchLogPages: a query frontend that answers full pages inexactly', () => {
  // Loki's frontend may split and shard a query: a page that hits the limit is
  // then any `limit` matching entries, not the first ones. Only complete
  // (short) answers can be trusted.
  for (const direction of ['forward', 'backward'] as const) {
    test(`${direction}: output still equals the ground truth`, async () => {
      const rows = [...tiedRows(), ...sequence(200)]
      for (const [batch, limit] of [
        [7, 0],
        [7, 30],
        [50, 0],
        [13, 100],
        [3, 0],
      ] as const) {
        const fake = new FakeLoki(rows, { sloppy: mulberry32(batch * 1000 + limit) })
        const { entries } = await collect(fake, { batch, limit, direction })
        assert.deepEqual(entries.map(entryKey), truth(rows, { direction, limit }), `batch ${batch}, limit ${limit}`)
      }
    })
  }
})

describe('fetchLogPages: entries', () => {
  test('stream labels are sorted, shared per stream, and metadata is kept', async () => {
    const meta = { structuredMetadata: { trace_id: 't1' }, parsed: { level: 'info' } }
    const rows = [row(1, { stream: 'stdout', app: 'x' }, 'one', meta), row(2, { app: 'x', stream: 'stdout' }, 'two'), row(3, B, 'three')]
    const fake = new FakeLoki(rows)
    const { entries } = await collect(fake, { batch: 10, limit: 0 })
    assert.equal(entries[0].stream, entries[1].stream)
    assert.deepEqual(Object.keys(entries[0].stream.labels), ['app', 'stream'])
    assert.equal(entries[0].stream.json, '{"app":"x","stream":"stdout"}')
    assert.deepEqual(entries[0].meta, meta)
    assert.equal(entries[1].meta, undefined)
    assert.deepEqual(entries[2].stream.labels, { app: 'x', stream: 'stderr' })
  })

  test('a non-streams answer is an UnreachableError', async () => {
    const client = {
      async queryRange(): Promise<QueryData> {
        return { resultType: 'matrix', result: [] }
      },
    } as unknown as LokiClient
    const pages = fetchLogPages(client, { query: '{a="b"}', start: 0n, end: 10n, direction: 'forward', limit: 0, batch: 10 })
    await assert.rejects(pages.next(), (error: unknown) => error instanceof UnreachableError && /matrix/.test(error.message))
  })
})

/** A random dataset with many shared timestamps and repeated lines across streams. */
function randomRows(random: () => number): Row[] {
  const all: Labels[] = [
    { app: 'x', stream: 'stdout' },
    { app: 'x', stream: 'stderr' },
    { app: 'x', service: 'w', stream: 'stdout' },
    { app: 'y', stream: 'stdout' },
  ]
  const streams = all.slice(0, 1 + Math.floor(random() * 4))
  const count = Math.floor(random() * 80)
  const spread = 1 + Math.floor(random() * count * 1.2)
  const lines = ['same', 'other', 'x', 'y', 'z', '{"level":"info"}']
  const seen = new Set<string>()
  const rows: Row[] = []
  for (let i = 0; i < count; i++) {
    const candidate = row(1_000_000_000n + BigInt(Math.floor(random() * spread)), streams[Math.floor(random() * streams.length)], lines[Math.floor(random() * lines.length)])
    // Loki keeps one copy of an entry with the same stream, timestamp and line.
    const key = rowKey(candidate)
    if (seen.has(key)) continue
    seen.add(key)
    rows.push(candidate)
  }
  return rows
}

describe('fetchLogPages: randomized against ground truth', () => {
  const range = { start: 999_999_990n, end: 1_000_000_200n }

  async function randomized(seed: number, count: number, options: (random: () => number) => FakeOptions, parallel = 1): Promise<void> {
    const random = mulberry32(seed)
    for (let i = 0; i < count; i++) {
      const rows = randomRows(random)
      const batch = 1 + Math.floor(random() * 20)
      const limit = random() < 0.4 ? 0 : 1 + Math.floor(random() * 90)
      const direction: Direction = random() < 0.5 ? 'forward' : 'backward'
      const wide = random() < 0.3
      const start = wide ? 0n : range.start
      const end = wide ? 3_600_000_000_000n : range.end
      const fake = new FakeLoki(rows, { maxCalls: 50_000, ...options(random) })
      const context = `seed ${seed}, dataset ${i}: ${rows.length} rows, batch ${batch}, limit ${limit}, ${direction}, [${start}, ${end}), parallel ${parallel}`
      const { entries } = await collect(fake, { start, end, batch, limit, direction, parallel })
      assert.deepEqual(entries.map(entryKey), truth(rows, { start, end, direction, limit }), context)
    }
  }

  test('400 seeded datasets, batch 1..20, random limits, both directions', async () => {
    await randomized(20260101, 400, () => ({}))
  })

  test('300 datasets where Loki breaks ties in the opposite order', async () => {
    const tieOrder: TieOrder = (a, b) => cmp(streamKey(b.labels), streamKey(a.labels)) || cmp(b.line, a.line)
    await randomized(42, 300, () => ({ tieOrder }))
  })

  test('300 datasets where full pages are arbitrary subsets (sharded frontend)', async () => {
    await randomized(4242, 300, (random) => ({ sloppy: random }))
  })

  test('--parallel 2..8: the same entries in the same order as sequential, on 300 datasets', async () => {
    for (const parallel of [2, 3, 8]) await randomized(777, 100, (random) => ({ sloppy: random }), parallel)
  })
})

describe('cutAtPage: a full page says where to cut', () => {
  const stream = new StreamCache().get(A)
  const page = (...stamps: number[]) => stamps.map((ts, i) => ({ ts: String(ts), line: `l${i}`, stream }))
  const window = { start: 100n, end: 200n }

  test('forward: up to and including the keep-th timestamp, when that holds less than a page', () => {
    assert.deepEqual(cutAtPage(window, page(101, 105, 110, 150), 2, 4, true), { windows: [{ start: 100n, end: 106n }], boundary: 106n, sample: { span: 6n, entries: 2 } })
  })

  test('backward: from the keep-th timestamp to the end', () => {
    assert.deepEqual(cutAtPage(window, page(190, 180, 170, 120), 2, 4, false), { windows: [{ start: 180n, end: 200n }], boundary: 180n, sample: { span: 20n, entries: 2 } })
  })

  test('entries piling on the timestamp: the window before it, then the timestamp alone', () => {
    assert.deepEqual(cutAtPage(window, page(101, 150, 150, 150), 2, 4, true), {
      windows: [
        { start: 100n, end: 150n },
        { start: 150n, end: 151n, alone: true },
      ],
      boundary: 151n,
      sample: { span: 50n, entries: 1 },
    })
    assert.deepEqual(cutAtPage(window, page(150, 150, 150, 120), 2, 3, false), {
      windows: [
        { start: 151n, end: 200n },
        { start: 150n, end: 151n, alone: true },
      ],
      boundary: 150n,
      sample: undefined,
    })
  })

  test('a page that is one timestamp at the window edge: that nanosecond alone', () => {
    assert.deepEqual(cutAtPage(window, page(100, 100, 100), 2, 3, true), { windows: [{ start: 100n, end: 101n, alone: true }], boundary: 101n })
  })

  test('an entry outside the window: the page is worthless, the window is halved', () => {
    assert.deepEqual(cutAtPage(window, page(50, 60), 1, 2, true), { windows: [{ start: 100n, end: 150n }], boundary: 150n })
  })
})

describe('fetchLogPages: cost', () => {
  for (const direction of ['forward', 'backward'] as const) {
    test(`${direction}: --limit 100 over 20,000 dense entries costs two requests`, async () => {
      const rows = sequence(20_000)
      const fake = new FakeLoki(rows)
      const { entries } = await collect(fake, { start: 0n, end: 1_000_000n, batch: 5000, limit: 100, direction })
      assert.deepEqual(entries.map(entryKey), truth(rows, { direction, limit: 100 }))
      assert.equal(fake.calls.length, 2)
    })

    test(`${direction}: a group of 40 on one nanosecond with batch 25 costs the full page and two windows, not a descent to 1 ns`, async () => {
      const rows = [...sequence(20), ...group(1100, 40), ...sequence(20).map((r) => ({ ...r, ts: r.ts + 500n }))]
      const fake = new FakeLoki(rows)
      const { entries } = await collect(fake, { start: 1000n, end: 1200n, batch: 25, limit: 0, direction })
      assert.deepEqual(entries.map(entryKey), truth(rows, { start: 1000n, end: 1200n, direction, limit: 0 }))
      assert.ok(fake.calls.length <= 5, `${fake.calls.length} requests`)
    })
  }
})

/** A FakeLoki with tenant limits, refusing as Loki does what exceeds them. */
class LimitedLoki extends FakeLoki {
  readonly refusals: RangeParams[] = []
  private readonly limits: QueryLimits
  /** Whether the tenant limits page answers. */
  private readonly says: boolean

  constructor(rows: Row[], limits: QueryLimits, says: boolean) {
    super(rows, { maxEntries: limits.maxEntriesPerQuery })
    this.limits = limits
    this.says = says
  }

  async queryLimits(): Promise<QueryLimits> {
    return this.says ? this.limits : DEFAULT_QUERY_LIMITS
  }

  override async queryRange(params: RangeParams): Promise<QueryData> {
    const { maxQueryLengthNs, maxEntriesPerQuery } = this.limits
    if (maxQueryLengthNs > 0n && params.end - params.start > maxQueryLengthNs) {
      this.refusals.push(params)
      throw new LimitRefusal('the query time range exceeds the limit', { maxQueryLengthNs })
    }
    if (maxEntriesPerQuery > 0 && params.limit! > maxEntriesPerQuery) {
      this.refusals.push(params)
      throw new LimitRefusal('max entries limit per query exceeded', { maxEntriesPerQuery })
    }
    return super.queryRange(params)
  }
}

describe("fetchLogPages: Loki's limits", () => {
  const limits: QueryLimits = { ...DEFAULT_QUERY_LIMITS, maxQueryLengthNs: 300n, maxEntriesPerQuery: 40, source: 'tenant-limits' }
  const rows = [...sequence(500), ...group(2000, 35)]

  for (const direction of ['forward', 'backward'] as const) {
    for (const parallel of [1, 3]) {
      test(`${direction}, parallel ${parallel}: limits Loki says are kept, nothing refused`, async () => {
        const fake = new LimitedLoki(rows, limits, true)
        const { entries } = await collect(fake, { start: 0n, end: 5000n, batch: 5000, limit: 0, direction, parallel })
        assert.deepEqual(entries.map(entryKey), truth(rows, { start: 0n, end: 5000n, direction, limit: 0 }))
        assert.equal(fake.refusals.length, 0)
      })

      test(`${direction}, parallel ${parallel}: limits learned from refusals, each window refused at most once per limit`, async () => {
        const fake = new LimitedLoki(rows, limits, false)
        const { entries } = await collect(fake, { start: 0n, end: 5000n, batch: 5000, limit: 0, direction, parallel })
        assert.deepEqual(entries.map(entryKey), truth(rows, { start: 0n, end: 5000n, direction, limit: 0 }))
        assert.ok(fake.refusals.length >= 1 && fake.refusals.length <= 2 * parallel, `${fake.refusals.length} refusals`)
      })
    }
  }

  test('a refusal that teaches nothing the window did not keep to is thrown', async () => {
    const client = {
      async queryLimits() {
        return DEFAULT_QUERY_LIMITS
      },
      async queryRange(): Promise<QueryData> {
        throw new LimitRefusal('the query time range exceeds the limit', { maxQueryLengthNs: 10n ** 15n })
      },
    } as unknown as LokiClient
    const pages = fetchLogPages(client, { query: '{a="b"}', start: 0n, end: 1000n, direction: 'forward', limit: 0, batch: 10 })
    await assert.rejects(pages.next(), LimitRefusal)
  })

  test('a Loki without a page limit serves a group larger than 5000 on one nanosecond', async () => {
    const data = [row(10, A, 'before'), ...group(700, 12_000), row(900, A, 'after')]
    const fake = new LimitedLoki(data, { ...limits, maxQueryLengthNs: 0n, maxEntriesPerQuery: 0 }, true)
    const pages: LogEntry[][] = []
    for await (const page of fetchLogPages(asClient(fake), { query: '{app="x"}', start: 0n, end: 1000n, direction: 'forward', limit: 0, batch: 100 })) pages.push(page)
    assert.equal(pages.flat().length, data.length)
  })
})

describe('fetchLogPages: windows in flight around a spike', () => {
  /** A FakeLoki that answers after a few milliseconds and records how many requests were out when each was sent. */
  class SlowLoki extends FakeLoki {
    inFlight = 0
    readonly outAtSend: number[] = []
    override async queryRange(params: RangeParams): Promise<QueryData> {
      this.outAtSend.push(this.inFlight)
      this.inFlight++
      try {
        await new Promise((done) => setTimeout(done, 2))
        return await super.queryRange(params)
      } finally {
        this.inFlight--
      }
    }
  }
  // 20,000 entries at a steady rate over [0, 1e6), and a spike of 40,000 more in [400,000, 420,000).
  const rows: Row[] = []
  for (let i = 0; i < 20_000; i++) rows.push({ ts: BigInt(i * 50), labels: { app: 'x', s: String(i % 3) }, line: `base ${i}` })
  for (let i = 0; i < 40_000; i++) rows.push({ ts: 400_000n + BigInt(Math.floor(i / 2)), labels: { app: 'x', s: String(i % 3) }, line: `spike ${i}` })

  for (const direction of ['forward', 'backward'] as const) {
    test(`${direction}, parallel 2: a full page at the head does not leave one request in flight for the rest of the spike`, async () => {
      const fake = new SlowLoki(rows)
      const { entries } = await collect(fake, { direction, batch: 1000, parallel: 2 })
      assert.equal(entries.length, rows.length)
      // Sent while another was out: nearly all of them once the pipeline runs.
      const overlapped = fake.outAtSend.filter((out) => out >= 1).length
      assert.ok(overlapped >= fake.outAtSend.length * 0.6, `${overlapped} of ${fake.outAtSend.length} requests sent while another was in flight`)
      assert.ok(Math.max(...fake.outAtSend) <= 2, `at most parallel + 1 requests out, saw ${Math.max(...fake.outAtSend) + 1}`)
    })
  }

  test('where the density is steady, windows aim at STEADY_FILL of a batch: fewer requests than TARGET_FILL would need', async () => {
    const steady: Row[] = []
    for (let i = 0; i < 50_000; i++) steady.push({ ts: BigInt(i * 20), labels: { app: 'x', s: String(i % 3) }, line: `l${i}` })
    const fake = new FakeLoki(steady)
    const { entries } = await collect(fake, { batch: 1000 })
    assert.equal(entries.length, steady.length)
    // 50 requests at a full batch, 67 at 0.75; 0.9 is 56.
    assert.ok(fake.calls.length <= 62, `${fake.calls.length} requests for 50,000 entries in batches of 1,000`)
    assert.ok(fake.calls.filter((call) => call.returned >= call.params.limit!).length <= 2, 'almost no full pages')
  })
})
