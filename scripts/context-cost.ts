/**
 * What query-range -C costs, in requests and wall time, on a Loki of its own
 * behind a counting proxy (issue 25, "context planned by cost"): a dense
 * stream (2,000 lines 1 ms apart, every third a match) and a sparse one
 * (2,000 lines 500 ms apart, five matches), each with -C 2 --limit 0, against
 * a full export of the same stream; with no added latency and with 50 ms per
 * request; and the issue's own shape (9,049 lines 330 ms apart, 1,602 of them
 * matches, -C 1), without latency. OBS_OLD=<checkout>/bin/run.js adds the
 * same rows for another build.
 *
 *   node --disable-warning=ExperimentalWarning scripts/context-cost.ts
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startFaultProxy } from '../test/support/fault-proxy.ts'
import { pushAll, REPO, startLoki, stopAndRemove } from '../test/support/loki.ts'

const run = promisify(execFile)
const MS = 1_000_000n
const APP = 'context-cost'
const now = BigInt(Date.now()) * MS
const loki = await startLoki({ config: 'stack' })
try {
  const dense = Array.from({ length: 2000 }, (_, i) => [(now - 10n * 60_000n * MS + BigInt(i) * MS).toString(), JSON.stringify({ msg: i % 3 === 2 ? `hit ${i}` : `line ${i}` })])
  const sparse = Array.from({ length: 2000 }, (_, i) => [
    (now - 30n * 60_000n * MS + BigInt(i) * 500n * MS).toString(),
    JSON.stringify({ msg: [100, 500, 900, 1300, 1700].includes(i) ? `hit ${i}` : `line ${i}` }),
  ])
  const llm = Array.from({ length: 9049 }, (_, i) => [
    (now - 55n * 60_000n * MS + BigInt(i) * 330n * MS).toString(),
    JSON.stringify({ msg: Math.floor((i * 1602) / 9049) !== Math.floor(((i + 1) * 1602) / 9049) ? `llm call ${i}` : `line ${i}` }),
  ])
  await pushAll(loki.addr, [
    [
      { stream: { app: APP, env: 'test', service: 'llm', stream: 'stdout' }, values: llm },
      { stream: { app: APP, env: 'test', service: 'dense', stream: 'stdout' }, values: dense },
      { stream: { app: APP, env: 'test', service: 'sparse', stream: 'stdout' }, values: sparse },
    ],
  ])
  const proxy = await startFaultProxy(loki.addr)
  const builds: [string, string][] = [['new', join(REPO, 'bin/run.js')]]
  if (process.env.OBS_OLD) builds.push(['old', process.env.OBS_OLD])
  console.log('build | stream | latency | what | query_range requests | wall s | stdout lines')
  for (const latency of [0, 50]) {
    proxy.setRule((request) => (latency > 0 && request.path.includes('query_range') ? { type: 'delay', ms: latency } : undefined))
    for (const service of latency === 0 ? ['dense', 'sparse', 'llm'] : ['dense', 'sparse']) {
      for (const [build, bin] of builds) {
        const selector = `{app="${APP}", service="${service}"}`
        const [filter, n] = service === 'llm' ? ['llm call', '1'] : ['hit', '2']
        for (const [what, args] of [
          ['full export', ['query-range', selector, '--since', '1h', '--limit', '0', '--forward', '-o', 'raw']],
          ['matches only', ['query-range', `${selector} |= "${filter}"`, '--since', '1h', '--limit', '0', '-o', 'raw']],
          [`-C ${n}`, ['query-range', `${selector} |= "${filter}"`, '--since', '1h', '--limit', '0', '-C', n, '-o', 'raw']],
        ] as const) {
          if (what === 'full export' && build !== 'new') continue
          const from = proxy.count('query_range')
          const started = performance.now()
          const { stdout } = await run(process.execPath, [bin, ...args], { env: { ...process.env, LOKI_ADDR: proxy.addr }, maxBuffer: 1 << 28 })
          const wall = (performance.now() - started) / 1000
          console.log(`${build} | ${service} | ${latency} ms | ${what} | ${proxy.count('query_range') - from} | ${wall.toFixed(2)} | ${stdout.split('\n').length - 1}`)
        }
      }
    }
  }
  await proxy.close()
} finally {
  await stopAndRemove(loki)
}
