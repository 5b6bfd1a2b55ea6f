/**
 * The deploy verdict (`obs smoke --deployed-at`) on the live pipeline of the
 * global setup: the app's containers rolled to a new release as compose does
 * (deployService: the old container stopped and replaced by a new one), their
 * pino lines through Docker and Alloy into Loki. One timeline, since the
 * verdict compares windows of the same pipeline's past:
 *
 *   start ─70s─ T0 ─80s─ quiet deploy ─60s+─ bad deploy ─60s─ verdict
 *
 * - T0, 70 s after the containers started, with 80 s windows: the window
 *   before reaches back 10 s before the start (the issue's false alarm);
 * - the quiet release 1.0.1 of both services, with a minute of 1.0.0 before
 *   it: every check passes;
 * - the bad release 1.0.2 of both (the app's requests fail a quarter of the
 *   time with "db connection refused on pool N"), with a minute of 1.0.1
 *   before it: error-rate and new-patterns fail, naming the message.
 *
 * About 4.5 minutes from the containers' start, most of it waiting for the
 * windows to pass. At the end the app is rolled to a quiet 1.0.3, so the
 * files after this one find the pipeline logging as the setup left it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { docker } from '../support/docker-engine.ts'
import { livePipeline } from '../support/env.ts'
import { COMPOSE_PROJECT, deployService } from '../support/pipeline.ts'

const pipeline = livePipeline()
const skip = pipeline ? false : "no live pipeline here (see the global setup's message)"
const host = pipeline ? `unix://${pipeline.dockerSocket}` : ''
const SERVICES = ['app', 'worker'] as const

interface CheckJson {
  id: string
  status: string
  detail: string
  hint?: string
}

/** Alloy pushes within a second or two of a line; this covers a busy machine. */
const SETTLE_MS = 4000
const DEPLOY_CHECKS = ['error-rate', 'new-patterns', 'volume-shift']

/** When the later of the two containers started (epoch ms). */
let started = 0
/** The time T0 (70 s after the start) and when its windows end. */
let startDeploy = 0
const START_WINDOW_S = 80

const sleepUntil = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())))

async function verdict(deployedAt: number, windowSeconds: number) {
  await sleepUntil(deployedAt + windowSeconds * 1000 + SETTLE_MS)
  const args = ['smoke', '--env', pipeline!.appEnv, '--since', '5m', '--deployed-at', new Date(deployedAt).toISOString(), '--window', `${windowSeconds}s`, '--json']
  const result = await runObs(args, { env: { ...pipeline!.env } })
  assert.ok(result.stdout.startsWith('{'), `obs smoke printed no report (exit ${result.code}): ${result.stderr}`)
  const checks = new Map((JSON.parse(result.stdout) as { checks: CheckJson[] }).checks.map((check) => [check.id, check]))
  return { code: result.code, checks, shown: [...checks.values()].map((c) => `${c.id} ${c.status}: ${c.detail}`).join('\n') }
}

describe('the deploy verdict on the live pipeline', { skip }, () => {
  before(async () => {
    const times = await Promise.all(SERVICES.map((s) => docker(host, ['inspect', '--format', '{{.State.StartedAt}}', `${COMPOSE_PROJECT}-${s}-1`])))
    started = Math.max(...times.map((t) => Date.parse(t)))
    startDeploy = started + 70_000
  })
  after(async () => {
    if (!pipeline) return
    await deployService(host, SERVICES, { version: '1.0.3' })
    // Until Alloy reads the new containers (its discovery runs every 10 s): the next file's checks expect both targets read.
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 1000))) {
      const found = await Promise.all(
        SERVICES.map(async (service) => {
          const params = new URLSearchParams({
            query: `{app="cogni-template", service="${service}"} |= \`"version":"1.0.3"\``,
            start: `${(Date.now() - 60_000) * 1e6}`,
            limit: '1',
          })
          const answer = (await (await fetch(`${pipeline.env.LOKI_ADDR}/loki/api/v1/query_range?${params}`)).json()) as { data?: { result?: unknown[] } }
          return (answer.data?.result?.length ?? 0) > 0
        }),
      )
      if (found.every(Boolean)) return
    }
  })

  test('right after the containers start: a deploy time 70 s after, its window reaching back before the start, fails nothing', async (t) => {
    const { code, checks, shown } = await verdict(startDeploy, START_WINDOW_S)
    t.diagnostic(shown)
    for (const id of DEPLOY_CHECKS) {
      const check = checks.get(id)!
      assert.notEqual(check.status, 'fail', shown)
      // A warning only with its reason; a pass measured over the 70 s the services existed before T0.
      if (check.status === 'warn') assert.match(check.detail, /not enough history|could not compare/, shown)
    }
    assert.match(checks.get('error-rate')!.detail, /app: [\d.]+ → [\d.]+ a minute/, shown)
    assert.equal(code, 0, shown)
  })

  test('a quiet release (1.0.0 → 1.0.1, both services replaced): every check passes, the deploy checks included', async (t) => {
    // The start's windows end here: this deploy's window before is a minute of 1.0.0 alone.
    await sleepUntil(startDeploy + START_WINDOW_S * 1000)
    const deployed = await deployService(host, SERVICES, { version: '1.0.1' })
    assert.equal(deployed.from, '1.0.0')
    assert.equal((await docker(host, ['ps', '-aq', '--filter', `label=com.docker.compose.project=${COMPOSE_PROJECT}`])).split('\n').length, 2, 'the old containers are gone')
    const { code, checks, shown } = await verdict(deployed.deployedAt, 60)
    t.diagnostic(shown)
    for (const [id, check] of checks) assert.equal(check.status, 'pass', `${id}: ${check.detail}\n${shown}`)
    assert.deepEqual(
      DEPLOY_CHECKS.filter((id) => checks.has(id)),
      DEPLOY_CHECKS,
    )
    assert.match(checks.get('new-patterns')!.detail, /^no new error messages: \d+ error messages after the deploy, each seen before it/, shown)
    assert.equal(code, 0, shown)
  })

  test('a bad release (1.0.1 → 1.0.2: errors up, "db connection refused on pool N" new): error-rate and new-patterns fail, naming it', async (t) => {
    const deployed = await deployService(host, SERVICES, { version: '1.0.2', bad: true })
    assert.equal(deployed.from, '1.0.1')
    const { code, checks, shown } = await verdict(deployed.deployedAt, 60)
    t.diagnostic(shown)
    assert.equal(checks.get('error-rate')!.status, 'fail', shown)
    assert.match(checks.get('error-rate')!.detail, /^error lines up: app: [\d.]+ → [\d.]+ a minute \(×[\d.]+\)/, shown)
    assert.equal(checks.get('new-patterns')!.status, 'fail', shown)
    assert.match(checks.get('new-patterns')!.detail, /^new error messages: app: db connection refused on pool <_> \(\d+ lines\)$/, shown)
    assert.match(checks.get('new-patterns')!.hint ?? '', /obs query-range '.*service="app".*' --from /, shown)
    assert.equal(code, 1, shown)
  })
})
