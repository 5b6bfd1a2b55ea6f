import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findTrace } from '../../../src/lib/incident/trace.ts'
import type { LokiClient, QueryData, RangeParams } from '../../../src/lib/loki/client.ts'
import { parseDuration } from '../../../src/lib/time.ts'

const HOUR = parseDuration('1h')

/** A Loki that has the request's one line at `lineAt` and records the windows asked. */
function fakeLoki(lineAt: bigint): { client: LokiClient; asked: [bigint, bigint][] } {
  const asked: [bigint, bigint][] = []
  const client = {
    async queryRange(params: RangeParams): Promise<QueryData> {
      asked.push([params.start, params.end])
      const found = params.start <= lineAt && lineAt < params.end
      const values: [string, string][] = found ? [[lineAt.toString(), '{"reqId":"req-1","msg":"done"}']] : []
      return { resultType: 'streams', result: found ? [{ stream: { service: 'app' }, values }] : [] }
    },
  }
  return { client: client as unknown as LokiClient, asked }
}

test('widening searches only what the narrower windows did not cover, once each', async () => {
  const end = 1_000_000n * HOUR
  const lineAt = end - 20n * HOUR
  const { client, asked } = fakeLoki(lineAt)
  const widened: string[] = []
  const trace = await findTrace(client, { reqId: 'req-1', app: 'a', since: '30m', end, onWiden: (wider) => widened.push(wider) })

  assert.deepEqual(widened, ['1h', '6h', '24h'])
  assert.deepEqual(
    trace.entries.map(({ entry }) => entry.ts),
    [lineAt.toString()],
  )
  assert.equal(trace.start, end - 24n * HOUR)
  assert.equal(trace.widenedTo, '24h')
  // Contiguous, newest first, no nanosecond asked twice.
  const windows = [...asked].sort((a, b) => (a[0] < b[0] ? 1 : -1))
  assert.equal(windows[0][1], end)
  for (let i = 1; i < windows.length; i++) assert.equal(windows[i][1], windows[i - 1][0])
  assert.equal(windows.at(-1)![0], end - 24n * HOUR)
})
