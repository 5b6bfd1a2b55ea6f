/**
 * obs's reading of Alloy's API against answers recorded from a real Alloy
 * (test/fixtures/alloy-v1.1.1, see its README): the pinned v1.9.2 cannot be
 * built here, and Docker going away or Loki refusing pushes cannot be staged
 * in CI, so nock serves the recorded answers.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, test } from 'node:test'
import nock from 'nock'
import { AlloyClient, componentBlocks, dockerTargets } from '../../src/lib/alloy-client.ts'
import type { CheckOutcome } from '../../src/lib/checks.ts'
import { alloyChecks } from '../../src/lib/doctor.ts'
import { checkAlloyTargets } from '../../src/lib/smoke.ts'

const FIXTURES = join(import.meta.dirname, '../fixtures/alloy-v1.1.1')
const ADDR = 'http://alloy.test:12345'
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8')

/** Serves one recorded state; `laterMetrics` is the state of the second /metrics reading. */
function serve(state: string, laterMetrics = state): void {
  const scope = nock(ADDR).persist()
  scope.get('/-/ready').reply(200, 'Alloy is ready.')
  scope.get('/api/v0/web/components').reply(200, fixture(`${state}.components.json`), { 'content-type': 'application/json' })
  for (const id of ['discovery.docker.containers', 'loki.source.docker.default', 'loki.write.loki_endpoint']) {
    scope.get(`/api/v0/web/components/${id}`).reply(200, fixture(`${state}.component.${id}.json`), { 'content-type': 'application/json' })
  }
  let readings = 0
  scope.get('/metrics').reply(200, () => fixture(`${readings++ === 0 ? state : laterMetrics}.metrics.txt`))
}

function client(): AlloyClient {
  return new AlloyClient({ baseUrl: ADDR, headers: {}, timeoutMs: 2000, retries: 0, peer: 'Alloy' })
}

async function doctor(state: string, laterMetrics?: string): Promise<Map<string, CheckOutcome>> {
  serve(state, laterMetrics)
  const alloy = client()
  const results = new Map<string, CheckOutcome>()
  for (const check of alloyChecks(alloy, 10)) results.set(check.id, await check.run({}))
  await alloy.close()
  return results
}

afterEach(() => nock.cleanAll())

describe("Alloy's API as a real Alloy answers it", () => {
  test('debug-info blocks decode into targets; is_running is the string "true"', async () => {
    serve('healthy')
    const alloy = client()
    const detail = await alloy.component('loki.source.docker.default')
    const blocks = componentBlocks(detail.debugInfo, 'targets_info')
    assert.equal(blocks.length, 2)
    assert.equal(blocks[0].is_running, 'true')
    const targets = await dockerTargets(alloy, await alloy.components())
    assert.deepEqual(targets.map((t) => [t.running, t.lastError]), [[true, ''], [true, '']])
    await alloy.close()
  })

  test('healthy: every Alloy check passes, except the version against the v1.9.2 pin', async () => {
    const results = await doctor('healthy')
    assert.equal(results.get('alloy-ready')?.status, 'warn')
    assert.match(results.get('alloy-ready')?.detail ?? '', /v1\.1\.1-devel runs, the stack pins v1\.9\.2/)
    for (const id of ['alloy-components', 'alloy-docker-discovery', 'alloy-docker-targets', 'alloy-loki-write']) {
      assert.equal(results.get(id)?.status, 'pass', `${id}: ${results.get(id)?.detail}`)
    }
    assert.match(results.get('alloy-docker-discovery')?.detail ?? '', /^2 Docker targets discovered$/)
  })

  test('the Docker socket went away: targets not read, though Alloy still lists them and calls itself healthy', async () => {
    const results = await doctor('docker-gone')
    assert.equal(results.get('alloy-components')?.status, 'pass')
    assert.equal(results.get('alloy-docker-targets')?.status, 'fail')
    assert.match(results.get('alloy-docker-targets')?.detail ?? '', /not running/)
    assert.match(results.get('alloy-docker-targets')?.hint ?? '', /#docker-socket/)
    serve('docker-gone')
    const smoke = await checkAlloyTargets(client())
    assert.equal(smoke.status, 'fail')
    assert.match(smoke.detail, /none is being read/)
  })

  test('Loki stopped: pushes failing now is a failure, named with its cause', async () => {
    const results = await doctor('loki-down', 'loki-down-dropped')
    assert.equal(results.get('alloy-loki-write')?.status, 'fail')
    assert.match(results.get('alloy-loki-write')?.detail ?? '', /pushes are failing now .*connection failed/)
    assert.match(results.get('alloy-loki-write')?.hint ?? '', /#pushes-failing/)
  })

  test('Loki back: old failures are history, a warning, not a failure', async () => {
    const results = await doctor('loki-back')
    assert.equal(results.get('alloy-loki-write')?.status, 'warn')
    assert.match(results.get('alloy-loki-write')?.detail ?? '', /pushes work now; .*dropped.*since Alloy started/)
  })

  test('no containers: discovery finds none', async () => {
    const results = await doctor('no-containers')
    assert.equal(results.get('alloy-docker-discovery')?.status, 'fail')
    assert.match(results.get('alloy-docker-discovery')?.detail ?? '', /lists no containers/)
  })
})
