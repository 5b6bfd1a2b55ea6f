/**
 * The pipeline probe's verdicts for states the live pipeline suite
 * (test/pipeline) cannot stage on demand, or only slowly: Docker refusing the
 * image, the container dying at once, Alloy listing the container but not
 * reading it. nock plays Docker's API (over tcp://, as DOCKER_HOST allows),
 * Loki (the marker never comes) and Alloy (answers recorded from a real
 * Alloy, test/fixtures/alloy-v1.1.1).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, test } from 'node:test'
import nock from 'nock'
import { AlloyClient } from '../../../src/lib/alloy/client.ts'
import { pipelineProbeCheck } from '../../../src/lib/checks/probe.ts'
import { DockerClient } from '../../../src/lib/docker/client.ts'
import { LokiClient } from '../../../src/lib/loki/client.ts'

const DOCKER = 'http://docker.test:2375'
const LOKI = 'http://loki.test:3100'
const ALLOY = 'http://alloy.test:12345'
const FIXTURES = join(import.meta.dirname, '../../fixtures/alloy-v1.1.1')
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8')
const PROBE_ID = 'feedc0de'.repeat(8)
const SIBLING = {
  Id: 'ab'.repeat(32),
  State: 'running',
  Status: 'Up',
  Labels: { 'com.docker.compose.project': 'cogni', 'com.docker.compose.service': 'app', 'com.docker.compose.project.working_dir': '/srv/cogni' },
}

const clients: { close(): Promise<void> }[] = []
afterEach(async () => {
  nock.cleanAll()
  for (const client of clients.splice(0)) await client.close()
})

function track<T extends { close(): Promise<void> }>(client: T): T {
  clients.push(client)
  return client
}

/** Loki that never has the marker. */
function emptyLoki(): void {
  nock(LOKI)
    .persist()
    .get(/\/loki\/api\/v1\/query_range/)
    .reply(200, { status: 'success', data: { resultType: 'streams', result: [] } })
}

/** Alloy in a recorded state; its Docker target ids are the recording's, not the probe's. */
function alloy(state: string): void {
  const scope = nock(ALLOY).persist()
  scope.get('/api/v0/web/components').reply(200, fixture(`${state}.components.json`), { 'content-type': 'application/json' })
  for (const id of ['discovery.docker.containers', 'loki.source.docker.default', 'loki.write.loki_endpoint']) {
    scope.get(`/api/v0/web/components/${id}`).reply(200, fixture(`${state}.component.${id}.json`), { 'content-type': 'application/json' })
  }
  scope.get('/metrics').reply(200, fixture(`${state}.metrics.txt`))
}

/** Docker creating, starting, showing in this state and removing the probe's container. */
function dockerProbe(state: { Running: boolean; Status: string; ExitCode: number }): void {
  nock(DOCKER)
    .get(/\/containers\/json/)
    .reply(200, [SIBLING])
    .post(/\/containers\/create/)
    .reply(201, { Id: PROBE_ID })
    .post(`/containers/${PROBE_ID}/start`)
    .reply(204)
    .get(`/containers/${PROBE_ID}/json`)
    .reply(200, { Id: PROBE_ID, State: state, Config: { Labels: {} } })
    .delete(`/containers/${PROBE_ID}?force=true`)
    .reply(204)
}

function probe(timeoutMs = 600) {
  return pipelineProbeCheck({
    loki: track(new LokiClient({ baseUrl: LOKI, headers: {}, timeoutMs: 2000, retries: 0, peer: 'Loki' })),
    alloy: track(new AlloyClient({ baseUrl: ALLOY, headers: {}, timeoutMs: 2000, retries: 0, peer: 'Alloy' })),
    docker: track(new DockerClient('tcp://docker.test:2375')),
    image: 'busybox',
    identity: { app: 'cogni-template', env: 'test', service: 'app' },
    timeoutMs,
    pollMs: 50,
  })
}

describe('the pipeline probe, hop by hop', () => {
  test("the container gets the running service's compose labels, marked one-off, and no network", async () => {
    let created: { Labels: Record<string, string>; HostConfig: { NetworkMode: string }; Cmd: string[] } | undefined
    nock(DOCKER)
      .get(/\/containers\/json/)
      .reply(200, [SIBLING])
      .post(/\/containers\/create\?name=obs-probe-[0-9a-f]{12}$/, (body: NonNullable<typeof created>) => {
        created = body
        return true
      })
      .reply(201, { Id: PROBE_ID })
      .post(`/containers/${PROBE_ID}/start`)
      .reply(204)
      .get(`/containers/${PROBE_ID}/json`)
      .reply(200, { Id: PROBE_ID, State: { Running: true, Status: 'running', ExitCode: 0 }, Config: { Labels: {} } })
      .delete(`/containers/${PROBE_ID}?force=true`)
      .reply(204)
    emptyLoki()
    alloy('healthy')
    const outcome = await probe().run({})
    assert.equal(outcome.status, 'fail')
    assert.deepEqual(created?.Labels, {
      'com.docker.compose.service': 'app',
      'com.docker.compose.oneoff': 'True',
      'com.docker.compose.project': 'cogni',
      'com.docker.compose.project.working_dir': '/srv/cogni',
    })
    assert.equal(created?.HostConfig.NetworkMode, 'none')
    assert.match(created?.Cmd.join(' ') ?? '', /"reqId\\":\\"obs-probe-[0-9a-f]{12}\\"/)
  })

  test('an image the host does not have: hop App → Docker, with the flag that fixes it', async () => {
    nock(DOCKER)
      .get(/\/containers\/json/)
      .reply(200, [SIBLING])
      .post(/\/containers\/create/)
      .reply(404, { message: 'No such image: busybox:latest' })
    alloy('healthy')
    const outcome = await probe().run({})
    assert.equal(outcome.status, 'fail')
    assert.equal(outcome.detail, 'hop App → Docker: the probe image busybox is not on this Docker host (No such image: busybox:latest)')
    assert.match(outcome.hint ?? '', /--probe-image/)
  })

  test('a container that exits at once: hop App → Docker, with its exit code', async () => {
    dockerProbe({ Running: false, Status: 'exited', ExitCode: 127 })
    emptyLoki()
    alloy('healthy')
    const outcome = await probe().run({})
    assert.match(outcome.detail, /^hop App → Docker: the probe container feedc0defeed is exited \(exit code 127\)/)
  })

  test('Alloy lists targets, none of them the probe: hop Docker → Alloy', async () => {
    dockerProbe({ Running: true, Status: 'running', ExitCode: 0 })
    emptyLoki()
    alloy('healthy')
    const outcome = await probe().run({})
    assert.match(outcome.detail, /^hop Docker → Alloy: Alloy has no target for the probe container feedc0defeed after 1s/)
    assert.match(outcome.hint ?? '', /refresh_interval/)
  })

  test('Docker not listening: hop App → Docker, said in one line', async () => {
    const outcome = await pipelineProbeCheck({
      loki: track(new LokiClient({ baseUrl: LOKI, headers: {}, timeoutMs: 2000, retries: 0, peer: 'Loki' })),
      docker: track(new DockerClient('unix:///nonexistent/docker.sock')),
      image: 'busybox',
      identity: { app: 'cogni-template', env: 'test', service: 'app' },
      timeoutMs: 500,
    }).run({})
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.detail, /^hop App → Docker: cannot reach Docker at unix:\/\/\/nonexistent\/docker\.sock \(ENOENT\), so no probe container can start$/)
    assert.match(outcome.hint ?? '', /DOCKER_HOST/)
  })

  test('DOCKER_HOST of a scheme Docker does not speak is refused in one line', () => {
    assert.throws(() => new DockerClient('ssh://me@host'), /DOCKER_HOST "ssh:\/\/me@host" is neither unix:\/\/ nor tcp:\/\//)
  })
})
