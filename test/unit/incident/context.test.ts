import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { contextSelector, mergeGroups, withContext } from '../../../src/lib/incident/context.ts'
import type { Labels, LokiClient, QueryData, RangeParams } from '../../../src/lib/loki/client.ts'
import type { LogEntry } from '../../../src/lib/loki/paging.ts'

interface Row {
  ts: bigint
  labels: Labels
  line: string
}

const json = (labels: Labels) =>
  JSON.stringify(
    Object.fromEntries(
      Object.entries(labels)
        .filter(([name]) => !name.startsWith('__'))
        .sort(),
    ),
  )

/**
 * A Loki that, like a sharded query frontend, returns any `limit` of the lines
 * that share the cut's nanosecond: here the ones obs's order puts last, the
 * wrong ones for a context that wants the nearest.
 */
function fakeLoki(rows: Row[]): LokiClient {
  return {
    async queryRange(params: RangeParams): Promise<QueryData> {
      const wanted = Object.fromEntries([...params.query.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
      const forward = params.direction === 'forward'
      const hits = rows
        .filter((r) => r.ts >= params.start && r.ts < params.end && Object.entries(wanted).every(([k, v]) => r.labels[k] === v))
        .sort((a, b) => (a.ts === b.ts ? (a.line < b.line ? 1 : -1) : a.ts < b.ts === forward ? -1 : 1))
        .slice(0, params.limit)
      const byStream = new Map<string, { stream: Labels; values: [string, string][] }>()
      for (const r of hits) {
        const key = JSON.stringify(r.labels)
        if (!byStream.has(key)) byStream.set(key, { stream: r.labels, values: [] })
        byStream.get(key)!.values.push([r.ts.toString(), r.line])
      }
      return { resultType: 'streams', result: [...byStream.values()] }
    },
  } as unknown as LokiClient
}

const app: Labels = { app: 'a', service: 'app' }
const worker: Labels = { app: 'a', service: 'worker' }
const T = 1_800_000_000_000_000_000n

function entryOf(row: Row): LogEntry {
  return { ts: row.ts.toString(), line: row.line, stream: { labels: row.labels, json: json(row.labels) } }
}

describe('withContext', () => {
  // 1..5 one per nanosecond, then a nanosecond holding a, b, MATCH, c, d (obs's order), then 6..9.
  const rows: Row[] = [
    ...[1, 2, 3, 4, 5].map((i) => ({ ts: T + BigInt(i), labels: app, line: `l${i}` })),
    ...['a', 'b', 'm-match', 'x', 'y'].map((line) => ({ ts: T + 10n, labels: app, line })),
    ...[6, 7, 8, 9].map((i) => ({ ts: T + 10n + BigInt(i), labels: app, line: `l${i}` })),
    { ts: T + 10n, labels: worker, line: 'w-same' },
    { ts: T + 12n, labels: worker, line: 'w-after' },
  ]
  const match = entryOf(rows.find((r) => r.line === 'm-match')!)

  test('the lines sharing the match nanosecond split by obs order: none lost, none twice', async () => {
    const [group] = await withContext(fakeLoki(rows), [match], { before: 4, after: 4, allStreams: false })
    assert.deepEqual(
      group.map(({ entry, role }) => `${entry.line}:${role}`),
      ['l4:before', 'l5:before', 'a:before', 'b:before', 'm-match:match', 'x:after', 'y:after', 'l6:after', 'l7:after'],
    )
  })

  test("a side whose farthest nanosecond holds more lines than it needs takes that nanosecond's nearest ones", async () => {
    const later = entryOf(rows.find((r) => r.line === 'l6')!)
    const [group] = await withContext(fakeLoki(rows), [later], { before: 3, after: 0, allStreams: false })
    // A limit of 3 backwards hands back any three of the five: the nearest are m-match, x, y.
    assert.deepEqual(
      group.map(({ entry }) => entry.line),
      ['m-match', 'x', 'y', 'l6'],
    )
  })

  test('allStreams interleaves the app; overlapping contexts merge into one group', async () => {
    const groups = await withContext(fakeLoki(rows), [match, entryOf(rows.find((r) => r.line === 'l6')!)], { before: 3, after: 3, allStreams: true })
    // In obs's order the worker's line on the match nanosecond follows the app's (its stream sorts after).
    assert.equal(groups.length, 1)
    assert.deepEqual(
      groups[0].map(({ entry, role }) => `${entry.line}:${role}`),
      ['l5:before', 'a:before', 'b:before', 'm-match:match', 'x:after', 'y:after', 'w-same:after', 'w-after:after', 'l6:match', 'l7:after', 'l8:after', 'l9:after'],
    )
  })

  test('matches farther apart than their contexts stay in groups of their own', async () => {
    const groups = await withContext(fakeLoki(rows), [match, entryOf(rows.find((r) => r.line === 'l6')!)], { before: 1, after: 1, allStreams: true })
    assert.deepEqual(
      groups.map((g) => g.map(({ entry }) => entry.line)),
      [
        ['b', 'm-match', 'x'],
        ['w-after', 'l6', 'l7'],
      ],
    )
  })

  test('no neighbours: only the match', async () => {
    const lonely: Row = { ts: T, labels: { app: 'b' }, line: 'alone' }
    const groups = await withContext(fakeLoki([lonely]), [entryOf(lonely)], { before: 2, after: 2, allStreams: false })
    assert.deepEqual(
      groups.map((g) => g.map(({ role }) => role)),
      [['match']],
    )
  })
})

describe('contextSelector and mergeGroups', () => {
  test("the match's stream without Loki's own labels, or its whole app", () => {
    const entry = entryOf({ ts: T, labels: { app: 'a', service: 'app', __stream_shard__: '3' }, line: 'x' })
    assert.equal(contextSelector(entry, false), '{app="a", service="app"}')
    assert.equal(contextSelector(entry, true), '{app="a"}')
  })

  test('windows that share no line stay apart, in the order given', () => {
    const e = (i: number) => entryOf({ ts: T + BigInt(i), labels: app, line: `l${i}` })
    const groups = mergeGroups(
      [
        [
          { entry: e(9), role: 'match' },
          { entry: e(10), role: 'after' },
        ],
        [
          { entry: e(1), role: 'before' },
          { entry: e(2), role: 'match' },
        ],
      ],
      new Map([e(9), e(2)].map((entry) => [`${entry.ts}\u0000${entry.stream.json}\u0000${entry.line}`, entry])),
    )
    assert.deepEqual(
      groups.map((g) => g.map(({ entry }) => entry.line)),
      [
        ['l9', 'l10'],
        ['l1', 'l2'],
      ],
    )
  })
})

describe('the context plan by cost', () => {
  /** A Loki that counts its requests. */
  function counted(rows: Row[]): { client: LokiClient; requests: () => number } {
    const inner = fakeLoki(rows)
    let n = 0
    return {
      client: {
        queryRange: (params: RangeParams) => {
          n++
          return inner.queryRange(params)
        },
      } as unknown as LokiClient,
      requests: () => n,
    }
  }
  const MSN = 1_000_000n
  // Two streams of one app: app with 2,000 lines 1 ms apart, every third a match, some sharing a nanosecond;
  // worker with 2,000 lines 1 s apart, five of them matches, one alone at the far end.
  const rows: Row[] = []
  for (let i = 0; i < 2000; i++) rows.push({ ts: T + BigInt(i - (i % 7 === 0 ? 1 : 0)) * MSN, labels: app, line: i % 3 === 0 ? `match ${i}` : `line ${i}` })
  for (let i = 0; i < 2000; i++) rows.push({ ts: T + BigInt(i) * 1000n * MSN, labels: worker, line: [100, 700, 701, 1500, 1999].includes(i) ? `match w${i}` : `w${i}` })
  const matchesOf = (labels: Labels) =>
    rows
      .filter((r) => r.labels === labels && r.line.startsWith('match'))
      .map(entryOf)
      .reverse()
  const print = (groups: Awaited<ReturnType<typeof withContext>>) => groups.map((g) => g.map(({ entry, role }) => `${role} ${entry.ts} ${entry.line}`))

  for (const [name, labels, context] of [
    ['dense', app, 3],
    ['sparse', worker, 3],
    ['both streams, -B 5 -A 1', undefined, 0],
  ] as const) {
    test(`${name}: every plan prints the same; auto costs no more than the export's pages + the windows of edge matches`, async () => {
      const matches = labels === undefined ? [...matchesOf(app), ...matchesOf(worker)] : matchesOf(labels)
      const options = context === 0 ? { before: 5, after: 1, allStreams: false } : { before: context, after: context, allStreams: false }
      const outputs: string[][][] = []
      const costs: Record<string, number> = {}
      for (const plan of ['windows', 'export', 'auto'] as const) {
        const { client, requests } = counted(rows)
        outputs.push(print(await withContext(client, matches, { ...options, plan })))
        costs[plan] = requests()
      }
      assert.deepEqual(outputs[1], outputs[0])
      assert.deepEqual(outputs[2], outputs[0])
      assert.ok(costs.auto <= costs.windows, JSON.stringify(costs))
      assert.ok(costs.auto <= costs.export, JSON.stringify(costs))
      // One page of export; the first match has no line before it and the last one line after it: their windows widen to 24 h.
      if (name === 'dense') assert.ok(costs.auto <= 1 + 2 * 15 && costs.windows > 1000, JSON.stringify(costs))
    })
  }

  test('an export over its budget stops: the matches its pages hold are served, the others get windows; the same output', async () => {
    // 160,000 lines 0.25 ms apart (43 pages); two matches 20 s apart make one group whose windows cost 10 requests.
    const busy: Row[] = Array.from({ length: 160_000 }, (_, i) => ({ ts: T + BigInt(i) * 250_000n, labels: app, line: i === 20_000 || i === 100_000 ? `match ${i}` : `l${i}` }))
    const matches = busy.filter((r) => r.line.startsWith('match')).map(entryOf)
    const outputs: string[][][] = []
    const costs: Record<string, number> = {}
    for (const plan of ['windows', 'auto'] as const) {
      const { client, requests } = counted(busy)
      outputs.push(print(await withContext(client, matches, { before: 1, after: 1, allStreams: false, plan })))
      costs[plan] = requests()
    }
    assert.deepEqual(outputs[1], outputs[0])
    assert.deepEqual(outputs[0][0], [`before ${busy[19_999].ts} l19999`, `match ${busy[20_000].ts} match 20000`, `after ${busy[20_001].ts} l20001`])
    // At most the whole stretch's first budget (5, it served nothing), the group's budget (10) and the windows
    // of the second match (half the windows plan here).
    assert.ok(costs.auto <= 5 + 10 + costs.windows / 2, JSON.stringify(costs))
  })
})
