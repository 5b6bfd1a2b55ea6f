/**
 * Metric range queries on a Loki with a tight max_query_length (1h): a
 * 150-minute query is cut into pieces Loki accepts and the points add up to exactly the
 * lines pushed, whether obs read the limit from /config/tenant/v1/limits or
 * had to learn it from Loki's refusal (a proxy that hides that page).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts'
import { type LokiProcess, pushAll, startLoki, stopAndRemove } from '../support/loki.ts'

const APP = 'metric-limits'
const MINUTE = 60_000_000_000n
const SPAN_MINUTES = 150n
/**
 * Minute-aligned, so points on the one-minute grid count whole minutes; within
 * Loki's query_ingesters_within (3h), since nothing is flushed to the store yet.
 */
const T0 = ((BigInt(Date.now()) * 1_000_000n - (SPAN_MINUTES + 10n) * MINUTE) / MINUTE) * MINUTE
const LINES = Number(SPAN_MINUTES) * 2

let loki: LokiProcess
let proxy: FaultProxy

before(async () => {
  loki = await startLoki({ args: ['-store.max-query-length=1h'] })
  // One line every 30 s, 15 s off the minute so no line sits on a point's edge.
  const values = Array.from({ length: LINES }, (_, i) => [(T0 + BigInt(i) * 30_000_000_000n + 15_000_000_000n).toString(), JSON.stringify({ level: 'info', msg: 'tick', i })])
  await pushAll(loki.addr, [[{ stream: { app: APP, env: 'test', service: 'app', stream: 'stdout' }, values }]])
  proxy = await startFaultProxy(loki.addr)
  proxy.setRule((request) => (request.path.endsWith('/config/tenant/v1/limits') ? { type: 'respond', status: 404, body: 'not found' } : undefined))
})
after(async () => {
  await proxy.close()
  await stopAndRemove(loki)
})

interface Matrix {
  resultType: string
  result: { metric: Record<string, string>; values: [number, string][] }[]
}

describe('metric range queries longer than max_query_length', () => {
  const query = `sum(count_over_time({app="${APP}"}[1m]))`
  const args = ['query-range', query, '--from', T0.toString(), '--to', (T0 + SPAN_MINUTES * MINUTE).toString(), '--step', '1m', '-o', 'json']

  test('Loki refuses the range in one piece', async () => {
    const response = await fetch(
      `${loki.addr}/loki/api/v1/query_range?${new URLSearchParams({ query, start: T0.toString(), end: (T0 + SPAN_MINUTES * MINUTE).toString(), step: '60' })}`,
    )
    assert.equal(response.status, 400)
    assert.match(await response.text(), /the query time range exceeds the limit/)
  })

  for (const [name, addr] of [
    ['limit read from /config/tenant/v1/limits', () => loki.addr],
    ['limit learned from the refusal', () => proxy.addr],
  ] as const) {
    test(`${name}: one point a minute, every line counted once`, async () => {
      const result = await runObs(args, { env: { LOKI_ADDR: addr() } })
      assert.equal(result.code, 0, result.stderr)
      const data = JSON.parse(result.stdout) as Matrix
      assert.equal(data.resultType, 'matrix')
      assert.equal(data.result.length, 1)
      const times = data.result[0].values.map(([t]) => t)
      assert.equal(new Set(times).size, times.length, 'no point twice')
      assert.deepEqual(
        times,
        [...times].sort((a, b) => a - b),
        'points in order',
      )
      for (let i = 1; i < times.length; i++) assert.equal(times[i] - times[i - 1], 60, `the one-minute grid at point ${i}`)
      assert.equal(
        data.result[0].values.reduce((sum, [, v]) => sum + Number(v), 0),
        LINES,
      )
    })
  }
})

/**
 * The commands that ask about one range as a whole (labels, series, the
 * index's stats and volume, detected fields, smoke's label policy) on the
 * same 1h limit, with the tenant limits page hidden: Loki's refusal teaches
 * the limit, and the range is asked again cut to its most recent hour, with
 * a note, as query-range reads a long range without ending on the refusal.
 */
describe('commands over one range longer than max_query_length, the limit learned from the refusal', { concurrency: true }, () => {
  const selector = `{app="${APP}"}`
  const NOTE = /^the range \(3h00m\) is longer than Loki's max_query_length \(1h00m\): using its most recent 1h00m, from \S+Z$/m
  for (const [name, args, shows] of [
    ['labels', ['labels'], /^app$/m],
    ['label values', ['labels', 'app'], new RegExp(`^${APP}$`, 'm')],
    ['series', ['series', selector], new RegExp(`app="${APP}"`)],
    ['stats', ['stats', selector], /^about /],
    ['fields', ['fields', selector], /^│ i /m],
    ['volume', ['volume', selector, '--by', 'app'], new RegExp(APP)],
  ] as const) {
    test(`${name} --since 3h: the most recent hour, a note on stderr, exit 0`, async () => {
      const result = await runObs([...args, '--since', '3h'], { env: { LOKI_ADDR: proxy.addr } })
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, NOTE)
      assert.match(result.stdout, shows)
    })
  }

  test("smoke's label-policy --since 3h: passes on the most recent hour and says so in its detail", async () => {
    const result = await runObs(['smoke', '--no-alloy', '--app', APP, '--since', '3h', '--json'], { env: { LOKI_ADDR: proxy.addr } })
    const check = (JSON.parse(result.stdout) as { checks: { id: string; status: string; detail: string }[] }).checks.find((c) => c.id === 'label-policy')
    assert.equal(check?.status, 'pass', JSON.stringify(check))
    assert.match(check.detail, /\(the range \(3h00m\) is longer than Loki's max_query_length \(1h00m\): using its most recent 1h00m, from \S+Z\)/)
  })
})
