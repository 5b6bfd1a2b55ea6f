/**
 * The deploy verdict, obs volume and obs patterns on the real Loki, against
 * deploys pushed here with a before and an after (test/support/deploy-dataset.ts):
 * one that doubles a service's errors, one that brings a new error message,
 * one that silences a service, and one that changes nothing. Each has an app
 * label of its own; the windows are given (--deployed-at T --window 10m), so
 * the verdict does not depend on when the test runs.
 *
 * Precision checked here, as measured on Loki 3.6.2:
 * - volume: Loki's bytes are the lines' bytes of the chunks in the range,
 *   unflushed ones included, prorated by chunk time span; a window that
 *   holds whole chunks equals the ground truth (plus structured metadata on a
 *   Loki that adds it), one that cuts a chunk is within its proration.
 * - patterns: the pattern ingester's counts, which saw every pushed line.
 * Lokis of their own check the notes where patterns and volumes are off.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { XMLParser } from 'fast-xml-parser'
import { formatNanos } from '../../src/lib/time.ts'
import { runObs } from '../support/cli.ts'
import { type DeployChange, type DeployScenario, deployScenario, NEW_ERROR_MESSAGE, scenarioStreams } from '../support/deploy-dataset.ts'
import { testLoki } from '../support/env.ts'
import { type LokiProcess, pushAll, startLoki, stopAndRemove } from '../support/loki.ts'
import { runInTerminal } from '../support/pty.ts'

const { addr, dataset } = testLoki()
const env = { LOKI_ADDR: addr }
// The deploys end a minute before the shared dataset starts: their lines are never the newest of {service="app"},
// which the runbook's Query 4 takes a reqId from.
const end = dataset.entries.reduce((min, e) => (BigInt(e.ts) < min ? BigInt(e.ts) : min), BigInt(Date.now()) * 1_000_000n) - 60_000_000_000n
const SCENARIOS: Record<string, DeployChange> = {
  'deploy-doubled': 'double-gateway-errors',
  'deploy-new-error': 'new-app-error',
  'deploy-silenced': 'silence-gateway',
  'deploy-quiet': 'none',
}
const scenarios = Object.fromEntries(Object.entries(SCENARIOS).map(([app, change]) => [app, deployScenario(app, change, end)])) as Record<string, DeployScenario>

interface Check {
  id: string
  status: string
  detail: string
  hint?: string
  thresholds?: Record<string, number>
}

function windowFlags(scenario: DeployScenario): string[] {
  return ['--deployed-at', formatNanos(scenario.deployedAt), '--window', `${scenario.windowNs / 1_000_000_000n}s`]
}

async function verdict(scenario: DeployScenario, extra: string[] = [], lokiEnv = env) {
  const result = await runObs(['smoke', '--no-alloy', '--app', scenario.app, '--env', 'test', '--since', '3h', ...windowFlags(scenario), '--json', ...extra], { env: lokiEnv })
  const checks = (JSON.parse(result.stdout) as { checks: Check[] }).checks
  const check = (id: string) => checks.find((c) => c.id === id)!
  return { result, checks, check }
}

/** Ground truth: per service, error lines (pino's error and fatal, names or numbers) and bytes in [start, end). */
function truth(scenario: DeployScenario, start: bigint, stop: bigint) {
  const errors = new Map<string, number>()
  const bytes = new Map<string, number>()
  for (const entry of scenario.entries) {
    const ts = BigInt(entry.ts)
    if (ts < start || ts >= stop) continue
    const service = entry.labels.service
    const level = (JSON.parse(entry.line) as { level: string | number }).level
    if (['error', 'fatal', 50, 60].includes(level)) errors.set(service, (errors.get(service) ?? 0) + 1)
    bytes.set(service, (bytes.get(service) ?? 0) + Buffer.byteLength(entry.line))
  }
  return { errors, bytes }
}

const patternsOn = async (lokiAddr: string) => (await fetch(`${lokiAddr}/loki/api/v1/patterns?query=%7Bapp%3D%22none%22%7D`)).status !== 404

before(async () => {
  await pushAll(addr, [Object.values(scenarios).flatMap(scenarioStreams)])
})

describe('obs smoke --deployed-at on the shared Loki', () => {
  test('doubled errors in one service: error-rate fails naming it, with the rates, thresholds and a query; exit 1', async () => {
    const scenario = scenarios['deploy-doubled']
    const { result, check } = await verdict(scenario)
    assert.equal(result.code, 1, result.stderr)
    const before = truth(scenario, scenario.deployedAt - scenario.windowNs, scenario.deployedAt).errors.get('gateway')!
    const afterwards = truth(scenario, scenario.deployedAt, scenario.deployedAt + scenario.windowNs).errors.get('gateway')!
    assert.equal(afterwards, 2 * before)
    const rate = (n: number) => (n / 10).toFixed(2)
    assert.equal(check('error-rate').status, 'fail')
    assert.match(
      check('error-rate').detail,
      new RegExp(`^error lines up: gateway: ${rate(before)} → ${rate(afterwards)} a minute \\(×2\\.00\\) \\(fails above ×1\\.5 and 1 a minute\\)$`),
    )
    assert.match(check('error-rate').hint ?? '', /^look at them: obs query-range '\{app="deploy-doubled", env="test", service="gateway"\} \| json level/)
    assert.deepEqual(check('error-rate').thresholds, { errorRateRatio: 1.5, errorRateFloor: 1, windowSeconds: 600 })
    assert.equal(check('volume-shift').status, 'pass', check('volume-shift').detail)
    assert.notEqual(check('new-patterns').status, 'fail', check('new-patterns').detail)
    for (const id of ['loki-ready', 'logs-ingested', 'service-logs-json', 'error-filter', 'reqid-trace', 'label-policy'])
      assert.equal(check(id).status, 'pass', `${id}: ${check(id).detail}`)

    // The query in the hint is one Loki runs, and finds the errors after the deploy (pino's 50).
    const query = /obs query-range '([^']+)' --from (\S+) --to (\S+)/.exec(check('error-rate').hint ?? '')!
    const found = await runObs(['query-range', query[1], '--from', query[2], '--to', query[3], '--limit', '0', '-o', 'raw'], { env })
    assert.equal(found.code, 0, found.stderr)
    assert.equal(found.stdout.trim().split('\n').length, afterwards)
  })

  test('a new error message: new-patterns fails naming the service and the message template, with or without the pattern ingester; exit 1', async () => {
    const scenario = scenarios['deploy-new-error']
    const { result, check } = await verdict(scenario)
    assert.equal(result.code, 1, result.stdout)
    const fresh = scenario.entries.filter((e) => e.line.includes(NEW_ERROR_MESSAGE)).length
    assert.equal(check('new-patterns').status, 'fail')
    assert.equal(check('new-patterns').detail, `new error messages: app: database connection refused by db<_> after <_> retries (${fresh} lines)`)
    assert.match(
      check('new-patterns').hint ?? '',
      /^look at them: obs query-range '\{app="deploy-new-error", env="test", service="app"\} \|= "database connection refused by db" \| json obs_msg="msg" \| obs_msg=~".*"' --from/,
    )
    assert.equal(check('error-rate').status, 'pass', check('error-rate').detail)
    assert.equal(check('volume-shift').status, 'pass', check('volume-shift').detail)
  })

  test('a silenced service: volume-shift fails naming it; exit 1', async () => {
    const scenario = scenarios['deploy-silenced']
    const { result, check } = await verdict(scenario)
    assert.equal(result.code, 1, result.stdout)
    assert.equal(check('volume-shift').status, 'fail')
    // Loki's volume works in whole seconds and prorates chunks: the window after may keep a few bytes of the last line before.
    assert.match(check('volume-shift').detail, /^volume outside ×0\.25–×4: gateway: [\d.]+ kB → \d{1,3} bytes \(×0\.00\)$/)
    assert.match(check('volume-shift').hint ?? '', /^look at it: obs volume '\{app="deploy-silenced", env="test"\}' --by service --from \S+ --to \S+ --compare 600s$/)
    assert.equal(check('error-rate').status, 'pass', check('error-rate').detail)
    assert.notEqual(check('new-patterns').status, 'fail', check('new-patterns').detail)
  })

  test('a deploy that changes nothing passes every check, exit 0; JUnit carries the thresholds', async () => {
    const scenario = scenarios['deploy-quiet']
    const junit = join(mkdtempSync(join(tmpdir(), 'obs-deploy-')), 'smoke.xml')
    const { result, checks } = await verdict(scenario, ['--junit', junit])
    assert.equal(result.code, 0, result.stdout)
    assert.deepEqual(
      checks.map((c) => c.id),
      ['loki-ready', 'logs-ingested', 'service-logs-json', 'error-filter', 'reqid-trace', 'label-policy', 'alloy-targets', 'error-rate', 'new-patterns', 'volume-shift'],
    )
    const byId = Object.fromEntries(checks.map((c) => [c.id, c]))
    assert.equal(byId['error-rate'].detail, 'error lines app: 6.00 → 6.00 a minute (×1.00); gateway: 3.00 → 3.00 a minute (×1.00)')
    assert.equal(byId['volume-shift'].status, 'pass')
    assert.equal(byId['new-patterns'].detail, 'no new error messages: 2 error messages after the deploy, each seen before it')
    const cases = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'testcase' || name === 'property' }).parse(readFileSync(junit, 'utf8')).testsuites.testsuite
      .testcase as { '@_name': string; properties?: { property: { '@_name': string; '@_value': string }[] } }[]
    const volume = cases.find((c) => c['@_name'].startsWith('volume-shift'))!
    assert.deepEqual(
      volume.properties?.property.map((p) => [p['@_name'], p['@_value']]),
      [
        ['volumeMinRatio', '0.25'],
        ['volumeMaxRatio', '4'],
        ['volumeFloorBytes', '10000'],
      ],
    )
  })

  test("the profile's thresholds decide: a ratio of 2.5 lets doubled errors pass", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'obs-deploy-profile-'))
    writeFileSync(join(dir, 'obs.config.yaml'), `defaultProfile: ci\nprofiles:\n  ci:\n    addr: ${addr}\n    deploy:\n      errorRateRatio: 2.5\n`)
    const scenario = scenarios['deploy-doubled']
    const result = await runObs(['smoke', '--no-alloy', '--app', scenario.app, '--since', '3h', ...windowFlags(scenario), '--json'], { cwd: dir })
    const errors = (JSON.parse(result.stdout) as { checks: Check[] }).checks.find((c) => c.id === 'error-rate')!
    assert.equal(errors.status, 'pass', errors.detail)
    assert.equal(errors.thresholds?.errorRateRatio, 2.5)
  })
})

describe('obs volume against the ground truth', () => {
  test('bytes per service over both windows: the lines pushed, shares adding up', async () => {
    const scenario = scenarios['deploy-quiet']
    const from = scenario.deployedAt - scenario.windowNs
    const to = scenario.deployedAt + scenario.windowNs
    const result = await runObs(['volume', `{app="${scenario.app}"}`, '--by', 'service', '--from', formatNanos(from), '--to', formatNanos(to), '--json'], { env })
    assert.equal(result.code, 0, result.stderr)
    const document = JSON.parse(result.stdout) as { by: string; totalBytes: number; rows: { value: string; bytes: number; share: number; trend: number[] }[]; note: string }
    const expected = truth(scenario, from, to).bytes
    assert.deepEqual(document.rows.map((r) => r.value).sort(), ['app', 'gateway'])
    for (const row of document.rows) {
      // Measured: the lines' bytes to within the second Loki truncates the range to (stack: 167,475 of 167,490 for app);
      // the stock Loki adds detected_level metadata to each line (+8 bytes a line).
      const want = expected.get(row.value)!
      assert.ok(row.bytes >= want * 0.99 && row.bytes <= want * 1.1, `${row.value}: Loki says ${row.bytes}, the lines hold ${want}`)
      assert.ok(row.trend.length > 0 && row.trend.every((v) => v >= 0))
    }
    assert.equal(Math.round(document.rows.reduce((n, r) => n + r.share, 0) * 1000), 1000)
    assert.match(document.note, /prorated/)
  })

  test('--compare: who got noisy, against the same range earlier; the silenced service at -100%', async () => {
    const scenario = scenarios['deploy-silenced']
    const args = ['volume', `{app="${scenario.app}"}`, '--from', formatNanos(scenario.deployedAt), '--to', formatNanos(scenario.deployedAt + scenario.windowNs), '--compare', '10m']
    const result = await runObs([...args, '--json'], { env })
    assert.equal(result.code, 0, result.stderr)
    const rows = (JSON.parse(result.stdout) as { rows: { value: string; bytes: number; previousBytes: number; change: number }[] }).rows
    const gateway = rows.find((r) => r.value === 'gateway')!
    const app = rows.find((r) => r.value === 'app')!
    assert.ok(gateway.bytes < 200, `gateway after: ${gateway.bytes} bytes (a part of its last line before, prorated)`)
    assert.ok(gateway.change < -0.99, `gateway change ${gateway.change}`)
    const beforeBytes = truth(scenario, scenario.deployedAt - scenario.windowNs, scenario.deployedAt).bytes
    // A chunk that spans the deploy is split by time, so app's windows are within a few percent of the truth.
    assert.ok(Math.abs(app.previousBytes - beforeBytes.get('app')!) / beforeBytes.get('app')! < 0.1, `app before: ${app.previousBytes} vs ${beforeBytes.get('app')}`)
    assert.ok(Math.abs(app.change) < 0.1, `app change ${app.change}`)
    assert.deepEqual(
      rows.map((r) => r.value),
      ['app', 'gateway'],
      'the row that grew most first',
    )
    const table = await runObs(args, { env })
    assert.match(table.stdout, /service\W+bytes\W+share\W+before\W+change/)
    assert.match(table.stdout, /gateway\W+\d+ bytes\W+0\.\d%\W+[\d.]+ kB\W+-100%/)
  })

  test('bad input is one line and exit 2, nothing sent', async () => {
    const bad = await runObs(['volume', '--by', 'not-a-label', '--addr', 'http://127.0.0.1:1'], { env: {} })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /invalid label name "not-a-label"/)
    const compare = await runObs(['volume', '--compare', 'soon', '--addr', 'http://127.0.0.1:1'], { env: {} })
    assert.equal(compare.code, 2)
  })
})

describe('obs patterns against the ground truth', () => {
  test('counts, level and the new pattern marked; or, without the pattern ingester, the note and exit 1', async () => {
    const scenario = scenarios['deploy-new-error']
    const from = scenario.deployedAt - scenario.windowNs
    const to = scenario.deployedAt + scenario.windowNs
    const args = ['patterns', `{app="${scenario.app}", service="app"}`, '--from', formatNanos(from), '--to', formatNanos(to), '--new-since', formatNanos(scenario.deployedAt)]
    const result = await runObs([...args, '--json'], { env })
    if (!(await patternsOn(addr))) {
      assert.equal(result.code, 1)
      assert.equal(result.stdout, '')
      assert.match(result.stderr, /^error: Loki's pattern ingester is off .*; add "pattern_ingester: \{enabled: true\}" to Loki's config and restart Loki/)
      return
    }
    assert.equal(result.code, 0, result.stderr)
    const document = JSON.parse(result.stdout) as { totalCount: number; patterns: { pattern: string; level?: string; count: number; isNew: boolean; after: number }[] }
    const lines = scenario.entries.filter((e) => e.labels.service === 'app')
    // Measured: every line counted but those of the 10-second bucket the range starts in (an app line a second).
    const listed = JSON.stringify(document.patterns.map((p) => [p.pattern, p.count, p.isNew]))
    assert.ok(document.totalCount <= lines.length && document.totalCount >= lines.length - 10, `${document.totalCount} of ${lines.length} lines: ${listed}`)
    assert.equal(document.patterns.length, 4, listed)
    const fresh = document.patterns.filter((p) => p.isNew)
    assert.equal(fresh.length, 1, listed)
    assert.equal(fresh[0].pattern, `<_>${NEW_ERROR_MESSAGE}<_>`, 'the msg field, as Loki tokenizes JSON lines')
    assert.equal(fresh[0].level, 'error')
    assert.equal(fresh[0].count, lines.filter((e) => e.line.includes(NEW_ERROR_MESSAGE)).length)
    for (const [text, level] of [
      ['payment attempt failed', 'error'],
      ['handling the request', 'info'],
      ['session loaded', 'info'],
    ]) {
      const row = document.patterns.find((p) => p.pattern.includes(text))!
      const truthCount = lines.filter((e) => e.line.includes(text)).length
      assert.equal(row.isNew, false, text)
      assert.equal(row.level, level, text)
      assert.ok(row.count <= truthCount && row.count >= truthCount - 5, `${text}: ${row.count} of ${truthCount}`)
    }
    const table = await runObs(args, { env })
    assert.match(table.stdout, /count\W+share\W+level\W+new\W+pattern/)
    assert.match(table.stdout, /\b60\W+[\d.]+%\W+ERROR\W+new\W+<_>database connection refused/)
  })

  test('--new-since outside the range is refused, exit 2', async () => {
    const result = await runObs(['patterns', '{app="x"}', '--since', '10m', '--new-since', 'now-1h'], { env })
    assert.equal(result.code, 2)
    assert.match(result.stderr, /--new-since .* is not inside the range/)
  })
})

describe('a Loki with the pattern ingester and volumes off', () => {
  let loki: LokiProcess
  const scenario = deployScenario('deploy-features-off', 'new-app-error', end)
  before(async () => {
    loki = await startLoki({ args: ['-pattern-ingester.enabled=false', '-limits.volume-enabled=false'] })
    await pushAll(loki.addr, [scenarioStreams(scenario)])
  })
  after(async () => {
    await stopAndRemove(loki)
  })

  test('the verdict still runs: new errors found without the pattern ingester, volume-shift skipped with the setting that turns it on', async () => {
    const { result, check } = await verdict(scenario, [], { LOKI_ADDR: loki.addr })
    assert.equal(result.code, 1, result.stdout)
    assert.equal(check('error-rate').status, 'pass')
    assert.equal(check('new-patterns').status, 'fail', check('new-patterns').detail)
    assert.match(check('new-patterns').detail, /^new error messages: app: database connection refused/)
    assert.equal(check('volume-shift').status, 'skip')
    assert.equal(check('volume-shift').detail, "skipped: Loki's volume API is disabled (limits_config.volume_enabled: false)")
    assert.match(check('volume-shift').hint ?? '', /volume_enabled: true under limits_config/)
  })

  test('obs volume and obs patterns say what is off and how to turn it on, exit 1', async () => {
    const volume = await runObs(['volume', '--app', scenario.app], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(volume.code, 1)
    assert.equal(volume.stdout, '')
    assert.match(volume.stderr, /^error: Loki's volume API is disabled \(limits_config\.volume_enabled: false\); set volume_enabled: true under limits_config/)
    const patterns = await runObs(['patterns', `{app="${scenario.app}"}`], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(patterns.code, 1)
    assert.match(patterns.stderr, /^error: Loki's pattern ingester is off \(pattern_ingester\.enabled: false, the default\); add "pattern_ingester: \{enabled: true\}"/)
  })
})

test('on a terminal, volume and patterns draw a sparkline per row', async () => {
  const scenario = scenarios['deploy-silenced']
  const range = ['--from', formatNanos(scenario.deployedAt - scenario.windowNs), '--to', formatNanos(scenario.deployedAt + scenario.windowNs)]
  const volume = await runInTerminal(['volume', `{app="${scenario.app}"}`, ...range], { LOKI_ADDR: addr })
  assert.equal(volume.code, 0, volume.output)
  assert.match(volume.output, /service\W+bytes\W+share\W+trend/)
  // gateway logs in the first half only: full bars, then the floor.
  assert.match(volume.output, /gateway\W+[\d.]+ kB\W+[\d.]+%\W+[▁-█]*█{10,}[▁-█]*▁{10,}/)
  if (!(await patternsOn(addr))) return
  const patterns = await runInTerminal(['patterns', `{app="${scenario.app}", service="gateway"}`, ...range], { LOKI_ADDR: addr })
  assert.equal(patterns.code, 0, patterns.output)
  assert.match(patterns.output, /count\W+share\W+level\W+trend\W+pattern/)
  assert.match(patterns.output, /[▁-█]{20,}\W+<_>request completed with status 200<_>/)
})
