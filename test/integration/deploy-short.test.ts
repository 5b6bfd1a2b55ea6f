/**
 * The deploy verdict and obs patterns on the stack's own kind of app: pino
 * messages of two or three words ("request received", "job done"), which
 * Loki's pattern ingester drops, pushed as a shipper sends them with
 * timestamps spread over the last minutes (test/support/deploy-dataset.ts).
 * Also services that started inside the window before the deploy: measured
 * over the time they existed, never failed for having started.
 */
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { formatNanos } from '../../src/lib/time.ts'
import { runObs } from '../support/cli.ts'
import { type DeployScenario, SHORT_NEW_ERROR, type ShortScenarioOptions, scenarioStreams, shortMessageScenario } from '../support/deploy-dataset.ts'
import { testLoki } from '../support/env.ts'
import { pushAll } from '../support/loki.ts'

const { addr, dataset } = testLoki()
const env = { LOKI_ADDR: addr }
// As in deploy.test.ts: a minute before the shared dataset starts, so that these lines are never its newest.
const end = dataset.entries.reduce((min, e) => (BigInt(e.ts) < min ? BigInt(e.ts) : min), BigInt(Date.now()) * 1_000_000n) - 60_000_000_000n
const SCENARIOS: Record<string, ShortScenarioOptions> = {
  'short-bad': { newError: true },
  'short-quiet': {},
  'short-new-service': { startsBeforeDeploySeconds: 0, newError: true },
  'short-started-1m': { startsBeforeDeploySeconds: 70 },
  'short-started-40s-in': { startsBeforeDeploySeconds: 260 },
  'short-started-30s': { startsBeforeDeploySeconds: 30 },
}
const scenarios = Object.fromEntries(Object.entries(SCENARIOS).map(([app, options]) => [app, shortMessageScenario(app, end, options)])) as Record<string, DeployScenario>

interface Check {
  id: string
  status: string
  detail: string
  hint?: string
}

async function verdict(scenario: DeployScenario) {
  const window = ['--deployed-at', formatNanos(scenario.deployedAt), '--window', `${scenario.windowNs / 1_000_000_000n}s`]
  const result = await runObs(['smoke', '--no-alloy', '--app', scenario.app, '--service', 'app', '--env', 'test', '--since', '3h', ...window, '--json'], { env })
  const checks = (JSON.parse(result.stdout) as { checks: Check[] }).checks
  return { result, check: (id: string) => checks.find((c) => c.id === id)! }
}

before(async () => {
  await pushAll(addr, [Object.values(scenarios).flatMap(scenarioStreams)])
})

describe('new error messages, on short pino messages', () => {
  test('a bad deploy adding "db connection refused on pool N": new-patterns fails naming the template, with a query that finds its lines', async () => {
    const scenario = scenarios['short-bad']
    const { result, check } = await verdict(scenario)
    assert.equal(result.code, 1, result.stdout)
    const fresh = scenario.entries.filter((e) => e.line.includes(SHORT_NEW_ERROR)).length
    assert.equal(fresh, 40)
    assert.equal(check('new-patterns').status, 'fail', check('new-patterns').detail)
    assert.equal(check('new-patterns').detail, `new error messages: app: ${SHORT_NEW_ERROR} <_> (40 lines)`)
    const query = /obs query-range '([^']+)' --from (\S+) --to (\S+)/.exec(check('new-patterns').hint ?? '')!
    assert.ok(query, check('new-patterns').hint)
    const found = await runObs(['query-range', query[1], '--from', query[2], '--to', query[3], '--limit', '0', '-o', 'raw'], { env })
    assert.equal(found.code, 0, found.stderr)
    assert.equal(found.stdout.trim().split('\n').length, 40)
  })

  test('a quiet deploy with only known short messages passes, having compared each', async () => {
    const { result, check } = await verdict(scenarios['short-quiet'])
    assert.equal(check('new-patterns').status, 'pass', check('new-patterns').detail)
    assert.equal(check('new-patterns').detail, 'no new error messages: 2 error messages after the deploy, each seen before it')
    assert.equal(check('error-rate').status, 'pass', check('error-rate').detail)
    assert.equal(check('volume-shift').status, 'pass', check('volume-shift').detail)
    assert.equal(result.code, 0, result.stdout)
  })

  test('no lines at all before the deploy: could not compare, warn (not pass, not fail), in every deploy check', async () => {
    const { result, check } = await verdict(scenarios['short-new-service'])
    assert.equal(check('new-patterns').status, 'warn', check('new-patterns').detail)
    assert.match(check('new-patterns').detail, /^could not compare: no lines before the deploy to compare with for app, worker/)
    for (const id of ['error-rate', 'volume-shift']) {
      assert.equal(check(id).status, 'warn', `${id}: ${check(id).detail}`)
      assert.match(check(id).detail, /^not enough history for app, worker: less than a minute of lines before the deploy/)
    }
    assert.equal(result.code, 0, result.stdout)
  })
})

describe('windows normalised by the time a service existed', () => {
  test('services started 70 s before the deploy (×4.3 over the whole window), steady: error-rate and volume-shift compare rates over that minute and pass', async () => {
    const { check } = await verdict(scenarios['short-started-1m'])
    assert.equal(check('error-rate').status, 'pass', check('error-rate').detail)
    assert.match(check('error-rate').detail, /app: 1[\d.]+ → 1[\d.]+ a minute \(×[01]\.\d\d\) \(over the 1m1\ds before it existed\)/)
    assert.equal(check('volume-shift').status, 'pass', check('volume-shift').detail)
    assert.match(check('volume-shift').detail, /over the 1m1\ds before it existed, scaled to the window/)
  })

  test('services started 40 s into a 5-minute window before: no failure', async () => {
    const { check } = await verdict(scenarios['short-started-40s-in'])
    assert.equal(check('error-rate').status, 'pass', check('error-rate').detail)
    assert.match(check('error-rate').detail, /over the 4m20s before it existed/)
    assert.equal(check('volume-shift').status, 'pass', check('volume-shift').detail)
  })

  test('services started 30 s before the deploy: not enough history, warn', async () => {
    const { check } = await verdict(scenarios['short-started-30s'])
    for (const id of ['error-rate', 'volume-shift', 'new-patterns']) assert.equal(check(id).status, 'warn', `${id}: ${check(id).detail}`)
    assert.match(check('error-rate').detail, /^not enough history for app, worker/)
  })
})

describe('obs patterns on short pino messages', () => {
  test("the ingester's empty answer explained by its own counters, and templates of a stated sample", async () => {
    const scenario = scenarios['short-quiet']
    const range = ['--from', formatNanos(scenario.deployedAt - scenario.windowNs), '--to', formatNanos(scenario.deployedAt + scenario.windowNs)]
    const result = await runObs(['patterns', `{app="${scenario.app}", service="app"}`, ...range], { env })
    if ((await fetch(`${addr}/loki/api/v1/patterns?query=%7Bapp%3D%22none%22%7D`)).status === 404) {
      // A Loki without the pattern ingester: the setting that turns it on, as before (deploy.test.ts).
      assert.equal(result.code, 1)
      assert.match(result.stderr, /pattern ingester is off/)
      return
    }
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /no patterns from Loki's pattern ingester .*: since Loki started, its pattern ingester dropped \d+ lines as too short \(fewer than 4 tokens/)
    assert.match(result.stderr, /instead: message templates of the newest 600 lines \(every line of the range\)/)
    assert.match(result.stdout, /count\W+share\W+level\W+template/)
    assert.match(result.stdout, /\b480\W+80\.0%\W+INFO\W+request received/)
    assert.match(result.stdout, /\b120\W+20\.0%\W+ERROR\W+upstream call failed \[Error: socket hang up after <_> ms\]/)
    const json = await runObs(['patterns', `{app="${scenario.app}"}`, ...range, '--json'], { env })
    assert.equal(json.code, 0, json.stderr)
    const document = JSON.parse(json.stdout) as {
      ingester: { tooFewTokens: number }
      templates: { sampleLines: number; sampleLimit: number; rows: { pattern: string; count: number }[] }
    }
    assert.ok(document.ingester.tooFewTokens > 0)
    assert.equal(document.templates.sampleLimit, 1000)
    assert.equal(document.templates.sampleLines, 900)
    assert.deepEqual(
      document.templates.rows.map((r) => [r.pattern, r.count]),
      [
        ['request received', 480],
        ['job done', 240],
        ['upstream call failed [Error: socket hang up after <_> ms]', 120],
        ['job failed', 60],
      ],
    )
  })
})
