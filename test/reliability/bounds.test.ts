/**
 * Self-inflicted load: every duration obs turns into a timer is bounded, so
 * that no flag value makes obs poll in a loop. Node's timers overflow past
 * 2^31-1 ms and fire at once: `ready --wait 30d --interval 30d` wrote 4,054
 * lines in 3 s against a closed port. The figures here are requests and
 * lines per second against a Loki that is never ready.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { TIMER_BOUNDS } from '../../src/lib/time.ts'
import { type ObsOutput, obs, stderrLines } from '../support/fault-cli.ts'

const Q = '{app="cogni-template"}'
/** How long a run that should not end by itself is watched. */
const WATCH_MS = 3000

let server: Server
let addr: string
let requests = 0

before(async () => {
  // A Loki that is never ready and has no logs: every request answered at once.
  server = createServer((request, response) => {
    requests++
    if (request.url?.startsWith('/ready')) response.writeHead(503).end('Ingester not ready: waiting for 15s after being ready\n')
    else response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success","data":{"resultType":"streams","result":[]}}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => new Promise<void>((resolve) => server.close(() => resolve())))

/**
 * Runs obs for at most WATCH_MS (or `timeoutMs`, for a run that ends by itself
 * and must not be cut short by a loaded machine's slow start) and counts what
 * it did meanwhile.
 */
async function watch(args: string[], timeoutMs = WATCH_MS): Promise<{ result: ObsOutput; requests: number; lines: number }> {
  const before = requests
  const result = await obs([...args, '--addr', addr], { timeoutMs, env: { OBS_RETRIES: '0' } })
  return { result, requests: requests - before, lines: stderrLines(result).length }
}

function refusedAtOnce(run: Awaited<ReturnType<typeof watch>>, says: RegExp): void {
  assert.equal(run.result.code, 2, `exit ${run.result.code} (${run.requests} requests, ${run.lines} lines in ${Math.round(run.result.ms)}ms)`)
  assert.equal(run.requests, 0, 'nothing sent')
  assert.equal(run.lines, 1, run.result.err)
  assert.match(run.result.err, says)
}

// The same watched runs go one at a time: their figures are rates.
describe('bounds on timers', { concurrency: 1 }, () => {
  test('ready --wait 30d --interval 30d is refused at once, not a poll every millisecond', async () => {
    refusedAtOnce(await watch(['ready', '--wait', '30d', '--interval', '30d']), /^error: invalid --wait "30d": it must be between 100ms and 24h/)
  })

  test('ready --wait 10s --interval 1ns is refused at once', async () => {
    refusedAtOnce(await watch(['ready', '--wait', '10s', '--interval', '1ns']), /^error: invalid --interval "1ns": it must be between 100ms and 1h/)
  })

  test(`at the shortest interval (${TIMER_BOUNDS.interval.min}) ready polls at most 10 times a second`, async (t) => {
    const run = await watch(['ready', '--wait', '2s', '--interval', TIMER_BOUNDS.interval.min], 20_000)
    const seconds = run.result.ms / 1000
    t.diagnostic(`${run.requests} requests, ${run.lines} lines in ${seconds.toFixed(1)}s`)
    assert.equal(run.result.code, 1, run.result.err)
    // One poll per interval, plus the first; a loaded machine only makes fewer.
    assert.ok(run.requests <= 2 * 10 + 2, `${run.requests} requests in 2s of waiting`)
    assert.ok(run.lines <= run.requests + 1, `${run.lines} lines for ${run.requests} requests`)
  })

  test('at the longest interval ready waits the whole --wait, sending one request', async () => {
    const run = await watch(['ready', '--wait', '1s', '--interval', TIMER_BOUNDS.interval.max], 20_000)
    assert.equal(run.result.code, 1, run.result.err)
    assert.ok(run.requests <= 2, `${run.requests} requests`)
  })

  test('tail --poll --interval 30d is refused at once, not a poll every millisecond', async () => {
    refusedAtOnce(await watch(['tail', Q, '--poll', '--interval', '30d']), /^error: invalid --interval "30d": it must be between 100ms and 1h/)
  })

  test('tail --poll --interval 1ns is refused at once', async () => {
    refusedAtOnce(await watch(['tail', Q, '--poll', '--interval', '1ns']), /^error: invalid --interval "1ns": it must be between 100ms and 1h/)
  })

  for (const args of [
    ['tail', Q],
    ['tail', Q, '--poll'],
    ['trace', 'req-1'],
  ]) {
    test(`${args.join(' ')} --since 1000000d is refused, not sent as a start before 1970`, async () => {
      refusedAtOnce(await watch([...args, '--since', '1000000d']), /^error: --since 1000000d reaches back before 1970-01-01T00:00:10Z/)
    })
  }
})
