/**
 * `--since 60d` on a Loki with the shipped max_query_length (721h; the stock
 * config and the stack's alike): every command that asks about one range as
 * a whole reads the tenant's limit and asks for the most recent 721h, with a
 * note on stderr (in the check's detail for smoke and doctor), where each
 * ended on Loki's 400 while query-range read on.
 * (test/integration/metric-limits.test.ts has the limit learned from a refusal.)
 */
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'

const { addr } = testLoki()
const APP = '{app="cogni-template"}'
const NOTE = /^the range \(1440h00m\) is longer than Loki's max_query_length \(721h00m\): using its most recent 721h00m, from \S+Z$/m
let limit: string | undefined

before(async () => {
  const response = await fetch(`${addr}/config/tenant/v1/limits`, { headers: { 'x-scope-orgid': 'fake' } })
  limit = /^max_query_length: (\S+)$/m.exec(await response.text())?.[1]
})

describe('--since 60d, beyond the shipped max_query_length', { concurrency: true }, () => {
  const skip = () => (limit === '30d1h' ? false : `this Loki's max_query_length is ${limit}, not the shipped 30d1h`)
  for (const [name, args, shows] of [
    ['labels', ['labels'], /^app$/m],
    ['label values', ['labels', 'service'], /^app$/m],
    ['series', ['series', APP], /app="cogni-template"/],
    ['series --analyze-labels', ['series', APP, '--analyze-labels'], /Total streams: [1-9]/],
    ['stats', ['stats', APP, '--json'], /"streams": /],
    ['fields', ['fields', APP], /^│ reqId /m],
    ['volume', ['volume', '--by', 'service'], /cogni-template/],
    ['volume --compare', ['volume', '--by', 'service', '--compare', '1h'], /before/],
  ] as const) {
    test(`${name}: the most recent 721h, one note on stderr, exit 0`, async (t) => {
      if (skip()) return t.skip(skip() as string)
      const result = await runObs([...args, '--since', '60d', '--addr', addr])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, NOTE)
      assert.equal(
        result.stderr
          .trim()
          .split('\n')
          .filter((line) => !/^Loki returned its top/.test(line)).length,
        1,
        result.stderr,
      )
      assert.match(result.stdout, shows)
    })
  }

  test('stats --json: from and to are the range asked, 721h apart', async (t) => {
    if (skip()) return t.skip(skip() as string)
    const result = await runObs(['stats', APP, '--since', '60d', '--json', '--addr', addr])
    const { from, to } = JSON.parse(result.stdout) as { from: string; to: string }
    assert.equal(Date.parse(to) - Date.parse(from), 721 * 3_600_000)
  })

  test("doctor's loki-labels and loki-env-label: the most recent 721h, said in their details", async (t) => {
    if (skip()) return t.skip(skip() as string)
    const result = await runObs(['doctor', '--no-alloy', '--since', '60d', '--json', '--addr', addr])
    const checks = (JSON.parse(result.stdout) as { checks: { id: string; status: string; detail: string }[] }).checks
    for (const id of ['loki-labels', 'loki-env-label']) {
      const check = checks.find((c) => c.id === id)
      assert.notEqual(check?.status, 'fail', JSON.stringify(check))
      assert.match(check?.detail ?? '', /\(the range \(1440h00m\) is longer than Loki's max_query_length \(721h00m\): using its most recent 721h00m, from \S+Z\)/, id)
    }
  })

  test('smoke --deployed-at 40 days ago: volume-shift compares the 721h on each side of the deploy, said in its detail', async (t) => {
    if (skip()) return t.skip(skip() as string)
    const result = await runObs(['smoke', '--no-alloy', '--deployed-at', 'now-40d', '--json', '--addr', addr])
    const check = (JSON.parse(result.stdout) as { checks: { id: string; status: string; detail: string }[] }).checks.find((c) => c.id === 'volume-shift')
    assert.doesNotMatch(check?.detail ?? '', /rejected|exceeds the limit/, JSON.stringify(check))
    assert.match(check?.detail ?? '', /before: the range \(960h00m\) is longer than Loki's max_query_length \(721h00m\): using its most recent 721h00m, from \S+Z/)
    assert.match(check?.detail ?? '', /after: the range \(960h00m\) is longer than Loki's max_query_length \(721h00m\): using its first 721h00m, to \S+Z/)
  })

  test("smoke's label-policy: passes on the most recent 721h and says so in its detail", async (t) => {
    if (skip()) return t.skip(skip() as string)
    const result = await runObs(['smoke', '--no-alloy', '--since', '60d', '--json', '--addr', addr])
    const check = (JSON.parse(result.stdout) as { checks: { id: string; status: string; detail: string }[] }).checks.find((c) => c.id === 'label-policy')
    assert.notEqual(check?.status, 'fail', JSON.stringify(check))
    assert.match(check?.detail ?? '', /the range \(1440h00m\) is longer than Loki's max_query_length \(721h00m\): using its most recent 721h00m/)
  })
})
