/**
 * The live pipeline broken the ways it breaks in production, one fault at a
 * time, each asserted by the doctor finding (its id and its fix) and, where
 * the fault sits on the marker's path, by the hop `obs smoke --probe` names.
 * A pipeline of this file's own (pipeline.ts): the faults would disturb the
 * shared one. After each fault the pipeline is repaired and must deliver
 * again; the delivery tests at the end hold Loki against the containers'
 * records across the whole file, outages included.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { STACK_ALLOY_CONFIG } from '../support/alloy.ts'
import { runObs } from '../support/cli.ts'
import { BUSYBOX_IMAGE, dockerUnavailable } from '../support/docker-engine.ts'
import { COMPOSE_PROJECT, compareDelivery, startPipeline, storedLines, withoutProbes, writtenLines, type Pipeline } from '../support/pipeline.ts'
import { waitForServices } from '../support/pipeline-setup.ts'

const missing = dockerUnavailable()
const skip = missing && process.env.CI !== 'true' ? `no live pipeline here: ${missing}` : false

interface CheckJson {
  id: string
  status: string
  detail: string
  hint?: string
}

let pipeline: Pipeline
const started = Date.now()

async function checks(command: 'doctor' | 'smoke', args: string[] = []): Promise<{ code: number | null; checks: Map<string, CheckJson> }> {
  const result = await runObs([command, '--since', '5m', '--json', ...args], { env: { ...pipeline.env } })
  assert.ok(result.stdout.startsWith('{'), `obs ${command} printed no report (exit ${result.code}): ${result.stderr}`)
  const report = JSON.parse(result.stdout) as { checks: CheckJson[] }
  return { code: result.code, checks: new Map(report.checks.map((check) => [check.id, check])) }
}

/** Polls until the doctor's check `id` has the status; returns it. Faults take a discovery refresh or a push retry to show. */
async function doctorUntil(id: string, status: string, args: string[] = [], timeoutMs = 45_000): Promise<CheckJson> {
  const deadline = Date.now() + timeoutMs
  let check: CheckJson | undefined
  while (Date.now() < deadline) {
    check = (await checks('doctor', args)).checks.get(id)
    if (check?.status === status) return check
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  assert.fail(`doctor's ${id} did not become ${status} in ${timeoutMs / 1000}s; last: ${JSON.stringify(check)}`)
}

async function probe(timeout: string): Promise<CheckJson> {
  const report = await checks('smoke', ['--env', 'test', '--probe', '--probe-image', BUSYBOX_IMAGE, '--probe-timeout', timeout])
  return report.checks.get('pipeline-probe')!
}

const composeIds = () => pipeline.docker.docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${COMPOSE_PROJECT}`]).then((out) => out.split('\n').filter(Boolean))

describe('faults on the live pipeline, each found by doctor with its fix', { skip }, () => {
  before(async () => {
    pipeline = await startPipeline()
    await pipeline.startContainer('app')
    await pipeline.startContainer('worker')
    await waitForServices(pipeline, ['app', 'worker'])
  })
  after(async () => {
    await pipeline?.stop()
  })

  test('the healthy pipeline first: doctor passes and the probe arrives', async () => {
    await doctorUntil('alloy-docker-targets', 'pass')
    assert.equal((await probe('60s')).status, 'pass')
  })

  test('dockerd stopped (its socket gone), then started again', async (t) => {
    await pipeline.docker.stopDaemon()
    try {
      const targets = await doctorUntil('alloy-docker-targets', 'fail')
      assert.match(targets.detail, /not running/)
      assert.match(targets.hint ?? '', /Docker runs and its socket is mounted into alloy/)
      const hop = await probe('5s')
      assert.equal(hop.status, 'fail')
      assert.match(hop.detail, /^hop App → Docker: .*so no probe container can start$/)
      t.diagnostic(`probe: ${hop.detail}`)
    } finally {
      await pipeline.docker.startDaemon()
    }
    // The containers come back (--restart unless-stopped), Alloy finds them at its next refresh.
    const back = await doctorUntil('alloy-docker-targets', 'pass')
    assert.match(back.detail, /^2 targets read/)
  })

  test('Loki stopped: Alloy\'s pushes fail; started again, the lines of the outage arrive', async (t) => {
    await pipeline.loki.stop()
    const downAt = Date.now()
    let failing: CheckJson
    try {
      failing = await doctorUntil('alloy-loki-write', 'fail')
    } finally {
      // Up for at least 20 s, so the outage spans several of Alloy's batches.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 20_000 - (Date.now() - downAt))))
      await pipeline.loki.restart()
    }
    assert.match(failing.detail, /^pushes are failing now/)
    assert.match(failing.hint ?? '', /Loki is up and reachable from Alloy/)
    const recovered = await doctorUntil('alloy-loki-write', 'warn')
    assert.match(recovered.detail, /^pushes work now; /)
    const dropped = Number(/(\d+) dropped/.exec(recovered.detail)?.[1])
    t.diagnostic(`outage ${Math.round((Date.now() - downAt) / 1000)}s; Alloy: ${recovered.detail}`)
    assert.equal(dropped, 0, 'Alloy retries a short outage; nothing dropped')
  })

  test('Alloy pushes to the wrong address: the probe names the hop Alloy → Loki', async () => {
    await pipeline.alloy.restart({ LOKI_PUSH_URL: 'http://127.0.0.1:9/loki/api/v1/push' })
    try {
      const hop = await probe('8s')
      assert.equal(hop.status, 'fail')
      assert.match(hop.detail, /^hop Alloy → Loki: Alloy read the probe container, but \d+ pushes to Loki failed/)
      assert.match(hop.hint ?? '', /loki\.write's url/)
    } finally {
      await pipeline.alloy.restart({ LOKI_PUSH_URL: `${pipeline.loki.addr}/loki/api/v1/push` })
    }
  })

  test('Alloy cannot reach Docker: the probe names the hop Docker → Alloy', async () => {
    await pipeline.alloy.restart({ DOCKER_HOST: `unix://${join(pipeline.dir, 'no-such.sock')}` })
    try {
      const hop = await probe('5s')
      assert.equal(hop.status, 'fail')
      assert.match(hop.detail, /^hop Docker → Alloy: Alloy has no target for the probe container/)
      const discovery = await doctorUntil('alloy-docker-discovery', 'fail')
      assert.match(discovery.hint ?? '', /docker\.sock/)
    } finally {
      await pipeline.alloy.restart({ DOCKER_HOST: pipeline.docker.host })
    }
    await doctorUntil('alloy-docker-targets', 'pass')
  })

  test('a relabel rule that turns reqId into a label: loki-labels and alloy-config-labels name it', async () => {
    const stack = readFileSync(STACK_ALLOY_CONFIG, 'utf8')
    const faulty = stack.replace(
      'stage.json {\n    expressions = { time = "time" }\n  }',
      'stage.json {\n    expressions = { time = "time", reqId = "reqId" }\n  }\n\n  stage.labels {\n    values = { reqId = "" }\n  }',
    )
    assert.notEqual(faulty, stack, 'the stack config still has the stage the fault rewrites')
    const file = join(pipeline.dir, 'alloy-reqid-label.alloy')
    writeFileSync(file, faulty)
    await pipeline.alloy.restart(undefined, faulty)
    try {
      const labels = await doctorUntil('loki-labels', 'fail', ['--since', '1m'])
      assert.match(labels.detail, /reqId/)
      assert.match(labels.hint ?? '', /\| json/)
      const config = (await checks('doctor', ['--alloy-config', file])).checks.get('alloy-config-labels')!
      assert.equal(config.status, 'fail')
      assert.match(config.detail, /reqId/)
    } finally {
      await pipeline.alloy.restart(undefined, stack)
    }
  })

  test('APP_ENV unset: the env label is missing, loki-env-label says to set it', async () => {
    await pipeline.alloy.restart({ APP_ENV: undefined })
    try {
      const env = await doctorUntil('loki-env-label', 'fail', ['--since', '20s'])
      assert.match(env.detail, /env/)
      assert.match(env.hint ?? '', /APP_ENV/)
    } finally {
      await pipeline.alloy.restart({ APP_ENV: pipeline.appEnv })
    }
  })

  test('a container started mid-run is discovered within the refresh interval and its lines arrive', async () => {
    const at = Date.now()
    const id = await pipeline.startContainer('worker', { number: 2 })
    const hostname = id.slice(0, 12)
    let arrivedMs: number | undefined
    while (Date.now() - at < 30_000 && arrivedMs === undefined) {
      const lines = await storedLines(pipeline.env.LOKI_ADDR, at - 5000, Date.now() + 1000)
      if (lines.some((entry) => entry.line.includes(`"hostname":"${hostname}"`))) arrivedMs = Date.now() - at
      else await new Promise((resolve) => setTimeout(resolve, 500))
    }
    assert.ok(arrivedMs !== undefined, 'the new container\'s lines did not arrive in 30 s')
    // discovery.docker refreshes every 10 s; Alloy batches for 1 s; a second of slack for the polling.
    assert.ok(arrivedMs < 13_000, `first line after ${arrivedMs} ms`)
  })

  test('a container restarted: its lines before and after arrive, none twice', async () => {
    const before = writtenLines(pipeline).filter((line) => line.service === 'app').length
    const at = Date.now()
    await pipeline.docker.docker(['restart', '--time', '1', `${COMPOSE_PROJECT}-app-1`])
    // The restarted container writes on; wait for a few seconds of its new lines.
    await new Promise((resolve) => setTimeout(resolve, 5000))
    const written = writtenLines(pipeline).filter((line) => line.service === 'app')
    assert.ok(written.length > before + 10, 'the container writes again after its restart')
    let delivery = compareDelivery(written, [])
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const stored = withoutProbes(await storedLines(pipeline.env.LOKI_ADDR, started - 60_000, Date.now() + 1000)).filter((entry) => entry.labels.service === 'app')
      delivery = compareDelivery(written, stored)
      if (delivery.lost.length === 0) break
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    assert.deepEqual(delivery.duplicated.slice(0, 3), [], `${delivery.duplicated.length} lines of app stored twice after the restart at ${new Date(at).toISOString()}`)
    assert.deepEqual(delivery.lost.slice(0, 3), [], `${delivery.lost.length} lines of app lost`)
  })

  test('across every fault above: every line written reached Loki once, or Alloy says it dropped it', async (t: TestContext) => {
    const ids = await composeIds()
    await pipeline.docker.docker(['pause', ...ids])
    const written = writtenLines(pipeline)
    let delivery = compareDelivery(written, [])
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      delivery = compareDelivery(written, withoutProbes(await storedLines(pipeline.env.LOKI_ADDR, started - 60_000, Date.now() + 1000)))
      if (delivery.lost.length === 0) break
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    t.diagnostic(`written ${delivery.written}, stored ${delivery.stored}, lost ${delivery.lost.length}, duplicated ${delivery.duplicated.length}, containers ${delivery.perContainer.size}`)
    assert.deepEqual(delivery.duplicated.slice(0, 3), [], `${delivery.duplicated.length} lines stored twice`)
    assert.deepEqual(delivery.lost.slice(0, 3), [], `${delivery.lost.length} lines lost`)
  })
})
