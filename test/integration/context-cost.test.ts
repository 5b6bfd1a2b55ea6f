/**
 * query-range -C costs by what it reads, not per match (issue 25): on the
 * real Loki behind a counting proxy, a stream where every third line matches
 * is read by one covering export, and five lone matches in a long stream by
 * about one request each; every plan prints the same.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts'
import { pushAll } from '../support/loki.ts'

const { addr } = testLoki()
const APP = 'context-cost'
const MS = 1_000_000n
const now = BigInt(Date.now()) * MS
let proxy: FaultProxy

before(async () => {
  // dense: 2,000 lines 1 ms apart, every third a match ("hit"), the first and last lines not: every match has two lines each side.
  const dense = Array.from({ length: 2000 }, (_, i) => [(now - 10n * 60_000n * MS + BigInt(i) * MS).toString(), JSON.stringify({ msg: i % 3 === 2 ? `hit ${i}` : `line ${i}` })])
  // sparse: 2,000 lines 500 ms apart, five matches minutes from each other.
  const sparse = Array.from({ length: 2000 }, (_, i) => [
    (now - 30n * 60_000n * MS + BigInt(i) * 500n * MS).toString(),
    JSON.stringify({ msg: [100, 500, 900, 1300, 1700].includes(i) ? `hit ${i}` : `line ${i}` }),
  ])
  await pushAll(addr, [
    [
      { stream: { app: APP, env: 'test', service: 'app', stream: 'stdout' }, values: dense },
      { stream: { app: APP, env: 'test', service: 'worker', stream: 'stdout' }, values: sparse },
    ],
  ])
  proxy = await startFaultProxy(addr)
})
after(() => proxy.close())

/** stdout of the query, and the query_range requests it made beyond those of the same query without context. */
async function run(query: string, args: string[], plan?: string, limit = '0'): Promise<{ stdout: string; contextRequests: number }> {
  const base = ['query-range', query, '--since', '1h', '--limit', limit]
  const env = { LOKI_ADDR: proxy.addr, OBS_CONTEXT_PLAN: plan }
  let from = proxy.count('query_range')
  const plain = await runObs(base, { env })
  assert.equal(plain.code, 0, plain.stderr)
  const matchRequests = proxy.count('query_range') - from
  from = proxy.count('query_range')
  const result = await runObs([...base, ...(args.includes('-o') ? [] : ['-o', 'jsonl']), ...args], { env })
  assert.equal(result.code, 0, result.stderr)
  return { stdout: result.stdout, contextRequests: proxy.count('query_range') - from - matchRequests }
}

test('666 matches with -C 2 in a stream of 2,000 lines: one covering export, not windows per match', async (t) => {
  const { stdout, contextRequests } = await run(`{app="${APP}", service="app"} |= "hit"`, ['-C', '2'])
  const lines = stdout.trim().split('\n')
  assert.equal(lines.length, 2000)
  assert.equal(lines.filter((l) => l.includes('"context":"match"')).length, 666)
  // The bound: the covering export's pages (2,000 lines + pads: one page of 5,000) + a small constant.
  t.diagnostic(`${contextRequests} requests for the context`)
  assert.ok(contextRequests <= 1 + 2, `${contextRequests} requests for the context`)
})

test('5 lone matches with -C 2 in a stream of 2,000 lines: about one request each', async (t) => {
  const { stdout, contextRequests } = await run(`{app="${APP}", service="worker"} |= "hit"`, ['-C', '2'])
  assert.equal(stdout.trim().split('\n').length, 5 * 5)
  // The stream's 2,000 lines are one page: one export of the matches' stretch reads them all; the windows plan costs 5 each.
  t.diagnostic(`${contextRequests} requests for the context`)
  assert.ok(contextRequests <= 5 * 2, `${contextRequests} requests for the context`)
})

test('the export plan, the windows plan and the plan by cost print the same, dense and sparse together, jsonl and raw', async () => {
  // The 200 oldest matches: the five sparse ones and 195 dense ones (the windows plan costs about 7 requests each).
  for (const args of [
    ['-C', '2', '--forward'],
    ['-B', '4', '-A', '1', '--all-streams', '-o', 'raw', '--forward'],
  ]) {
    const outputs = new Map<string, string>()
    for (const plan of ['windows', 'export', 'auto']) outputs.set(plan, (await run(`{app="${APP}"} |= "hit"`, args, plan, '200')).stdout)
    assert.ok(outputs.get('windows')!.split('\n').length > 200 * 2)
    if (args.includes('raw'))
      assert.equal(
        outputs
          .get('windows')!
          .split('\n')
          .filter((line) => line === '--').length,
        5,
      )
    assert.equal(outputs.get('export'), outputs.get('windows'), args.join(' '))
    assert.equal(outputs.get('auto'), outputs.get('windows'), args.join(' '))
  }
  const bad = await runObs(['query-range', `{app="${APP}"}`, '-C', '1'], { env: { LOKI_ADDR: 'http://127.0.0.1:9', OBS_CONTEXT_PLAN: 'fast' } })
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /OBS_CONTEXT_PLAN=fast is not a context plan/)
})
