import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findTrace } from '../../../src/lib/incident/trace.ts'
import { DEFAULT_QUERY_LIMITS, type LokiClient, type QueryData, type RangeParams } from '../../../src/lib/loki/client.ts'
import { parseDuration } from '../../../src/lib/time.ts'

const HOUR = parseDuration('1h')
const SECOND = parseDuration('1s')

/**
 * A Loki that holds the request's lines at `lines` (any order) and records
 * what was asked: the search (limit 1, newest first) and the fetches.
 */
function fakeLoki(lines: bigint[]): { client: LokiClient; probes: [bigint, bigint][]; fetches: [bigint, bigint][] } {
  const probes: [bigint, bigint][] = []
  const fetches: [bigint, bigint][] = []
  const client = {
    async queryLimits() {
      return DEFAULT_QUERY_LIMITS
    },
    async queryRange(params: RangeParams): Promise<QueryData> {
      const inside = lines.filter((at) => params.start <= at && at < params.end).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      // The search asks plain; the fetches page (fetchLogPages).
      if (params.plain) probes.push([params.start, params.end])
      else fetches.push([params.start, params.end])
      if (params.direction === 'backward') inside.reverse()
      const values: [string, string][] = inside.slice(0, params.limit).map((at) => [at.toString(), `{"reqId":"req-1","msg":"at ${at}"}`])
      return { resultType: 'streams', result: values.length > 0 ? [{ stream: { service: 'app' }, values }] : [] }
    },
  }
  return { client: client as unknown as LokiClient, probes, fetches }
}

const newestFirst = (windows: [bigint, bigint][]) => [...windows].sort((a, b) => (a[0] < b[0] ? 1 : -1))

test('the search goes newest first, each stretch once and contiguous, widening only where nothing was searched', async () => {
  const end = 1_000_000n * HOUR
  const lineAt = end - 20n * HOUR
  const { client, probes } = fakeLoki([lineAt])
  const widened: string[] = []
  const trace = await findTrace(client, { reqId: 'req-1', app: 'a', since: '30m', end, onWiden: (wider) => widened.push(wider) })

  assert.deepEqual(widened, ['1h', '6h', '24h'])
  assert.deepEqual(
    trace.entries.map(({ entry }) => entry.ts),
    [lineAt.toString()],
  )
  assert.equal(trace.widenedTo, '24h')
  // Asked newest first, contiguous, no nanosecond twice, stopping at the stretch that holds the line.
  assert.deepEqual(probes, newestFirst(probes))
  assert.equal(probes[0][1], end)
  for (let i = 1; i < probes.length; i++) assert.equal(probes[i][1], probes[i - 1][0])
  const last = probes.at(-1)!
  assert.ok(last[0] <= lineAt && lineAt < last[1])
  // The window the lines were fetched from: at least a gap (30s) before the line, and the stretch it was found in.
  assert.ok(trace.start <= lineAt - 30n * SECOND && trace.end === last[1])
})

test('a request longer than the first window is fetched whole: the window widens while its lines reach the edge', async () => {
  const end = 1_000_000n * HOUR
  // 30 lines 25 s apart (12.5 minutes), ending 10 minutes ago; and a line of
  // the same id an hour before the first, after a pause far longer than --gap.
  const first = end - 35n * 60n * SECOND
  const request = Array.from({ length: 30 }, (_, i) => first + BigInt(i) * 25n * SECOND)
  const straggler = first - 60n * 60n * SECOND
  const { client, probes, fetches } = fakeLoki([...request, straggler])
  const trace = await findTrace(client, { reqId: 'req-1', app: 'a', since: '1h', end })

  assert.deepEqual(
    trace.entries.map(({ entry }) => entry.ts),
    request.map(String),
  )
  assert.ok(probes.length <= 5, `${probes.length} probes`)
  // The fetches tile one window, without overlap, up to the last line; nothing is after it in the stretch searched.
  const tiles = [...fetches].sort((a, b) => (a[0] < b[0] ? -1 : 1))
  for (let i = 1; i < tiles.length; i++) assert.equal(tiles[i][0], tiles[i - 1][1])
  assert.equal(trace.start, tiles[0][0])
  assert.equal(tiles.at(-1)![1], request.at(-1)! + 1n)
  assert.equal(trace.end, probes.at(-1)![1])

  // With a gap longer than the pause, the straggler belongs to the request.
  const wide = await findTrace(fakeLoki([...request, straggler]).client, { reqId: 'req-1', app: 'a', since: '1h', end, gap: '61m' })
  assert.equal(wide.entries.length, 31)
})

test('the window never reaches past the end of the search, and nothing found means every stretch was searched', async () => {
  const end = 1_000_000n * HOUR
  const { client, fetches } = fakeLoki([end - SECOND])
  const trace = await findTrace(client, { reqId: 'req-1', app: 'a', since: '1h', end })
  assert.equal(trace.entries.length, 1)
  assert.ok(fetches.every(([, to]) => to <= end))

  const none = fakeLoki([])
  const missing = await findTrace(none.client, { reqId: 'req-1', app: 'a', since: '1h', end })
  assert.equal(missing.entries.length, 0)
  assert.equal(missing.widenedTo, '7d')
  assert.equal(none.probes.at(-1)![0], end - 7n * 24n * HOUR)
  assert.equal(none.fetches.length, 0)
})

test('later lines of the request, minutes past --gap, are found by the search and fetched, in one fetch', async () => {
  const end = 1_000_000n * HOUR
  // The request: 390 s and 388 s ago, its error 240 s ago.
  const request = [end - 390n * SECOND, end - 388n * SECOND, end - 240n * SECOND]
  const { client, probes, fetches } = fakeLoki(request)
  const trace = await findTrace(client, { reqId: 'req-1', app: 'a', since: '1h', end })
  assert.deepEqual(
    trace.entries.map(({ entry }) => entry.ts),
    request.map(String),
  )
  // The stretch searched last told where they end (no newer stretch held a line): one fetch, up to the last line.
  assert.equal(probes.length, 3)
  assert.deepEqual(fetches, [[request[0] - 45n * SECOND, request[2] + 1n]])
  assert.equal(trace.end, probes.at(-1)![1])

  // A stretch holding more lines than the search asks of it is fetched to its end.
  const many = Array.from({ length: 250 }, (_, i) => end - 400n * SECOND + BigInt(i) * SECOND)
  const busy = fakeLoki(many)
  const long = await findTrace(busy.client, { reqId: 'req-1', app: 'a', since: '1h', end })
  assert.equal(long.entries.length, 250)
})
