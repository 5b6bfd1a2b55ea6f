/**
 * obs's reading of Alloy's API against answers recorded from a real Alloy
 * v1.1.1 on the live pipeline (test/fixtures/alloy-v1.1.1, `npm run
 * record:alloy`). The pipeline suite (test/pipeline) stages these states live;
 * here they run in milliseconds, including the one that takes six minutes to
 * reach (Alloy dropping a batch after its retries), so nock serves them.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, test } from 'node:test'
import nock from 'nock'
import { AlloyClient, componentBlocks, dockerTargets } from '../../../src/lib/alloy/client.ts'
import { alloyChecks } from '../../../src/lib/checks/doctor.ts'
import type { CheckOutcome } from '../../../src/lib/checks/runner.ts'
import { checkAlloyTargets } from '../../../src/lib/checks/smoke.ts'
import { ExitCode, UnreachableError } from '../../../src/lib/errors.ts'

const FIXTURES = join(import.meta.dirname, '../../fixtures/alloy-v1.1.1')
const ADDR = 'http://alloy.test:12345'
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8')
/** The components whose detail was recorded. */
const FIXTURED = ['discovery.docker.containers', 'loki.source.docker.default', 'loki.write.loki_endpoint']

/** Serves one recorded state; `laterMetrics` is the state of the second /metrics reading. */
function serve(state: string, laterMetrics = state): void {
  const scope = nock(ADDR).persist()
  scope.get('/-/ready').reply(200, 'Alloy is ready.')
  scope.get('/api/v0/web/components').reply(200, fixture(`${state}.components.json`), { 'content-type': 'application/json' })
  for (const id of FIXTURED) {
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
    assert.deepEqual(
      targets.map((t) => [t.running, t.lastError]),
      [
        [true, ''],
        [true, ''],
      ],
    )
    // Name and compose's one-off mark come from the target's label set, which Alloy prints as one string.
    assert.deepEqual(targets.map((t) => [t.name, t.oneOff]).sort(), [
      ['cogni-app-1', false],
      ['cogni-worker-1', false],
    ])
    await alloy.close()
  })

  test('healthy: every Alloy check passes, except the version against the v1.9.2 pin', async () => {
    const results = await doctor('healthy')
    assert.equal(results.get('alloy-ready')?.status, 'warn')
    assert.match(results.get('alloy-ready')?.detail ?? '', /^Alloy v1\.1\.1 runs, the stack pins v1\.9\.2$/)
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

describe("answers that are not Alloy's", () => {
  test('every answer the real Alloy gave has the shape obs checks', async () => {
    for (const state of ['healthy', 'docker-gone', 'loki-down', 'loki-back', 'no-containers']) {
      serve(state)
      const alloy = client()
      const components = await alloy.components()
      for (const component of components.filter((c) => FIXTURED.includes(c.localID))) await alloy.component(component.localID)
      await alloy.close()
      nock.cleanAll()
    }
  })

  const foreign: [string, string, RegExp][] = [
    ['an object (Loki, Prometheus)', '{"status":"success","data":[]}', /the answer is an object, not a list/],
    ['a list of something else', '[1, 2]', /the answer\[0\] is a number, not an object/],
    ['a component without a localID', '[{"name":"loki.write"}]', /the answer\[0\]\.localID is missing, not a string/],
    ['a health of the wrong type', '[{"name":"a","localID":"a","health":"ok"}]', /the answer\[0\]\.health is a string, not an object/],
    [
      'an exported value that is not a list',
      '[{"name":"a","localID":"a","exports":[{"name":"targets","value":{"type":"array","value":7}}]}]',
      /exports\[0\]\.value\.value is a number, not a list/,
    ],
  ]
  for (const [name, body, says] of foreign) {
    test(`${name}: one line naming the field, exit 3`, async () => {
      nock(ADDR).get('/api/v0/web/components').reply(200, body, { 'content-type': 'application/json' })
      const alloy = client()
      await assert.rejects(alloy.components(), (error: unknown) => {
        assert.ok(error instanceof UnreachableError, String(error))
        assert.equal(error.exitCode, ExitCode.unreachable)
        assert.match(error.message, /^Alloy's answer to \/api\/v0\/web\/components has the wrong shape: /)
        assert.match(error.message, says)
        assert.doesNotMatch(error.render(), /\n/)
        return true
      })
      await alloy.close()
    })
  }

  test('blocks nested deeper than any config are refused, not recursed into', async () => {
    // Written as text: JSON.stringify itself cannot go this deep.
    const depth = 10_000
    const block = `${'{"name":"b","type":"block","body":['.repeat(depth)}{"name":"leaf","type":"attr","value":{"type":"string","value":"x"}}${']}'.repeat(depth)}`
    nock(ADDR).get('/api/v0/web/components/a').reply(200, `{"name":"a","localID":"a","debugInfo":[${block}]}`)
    const alloy = client()
    await assert.rejects(alloy.component('a'), /nested more than 64 levels deep/)
    await alloy.close()
  })
})
