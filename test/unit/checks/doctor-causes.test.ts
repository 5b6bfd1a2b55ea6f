/**
 * doctor's hints follow the cause. The live pipeline suite
 * (test/pipeline/faults.test.ts) stages both faults on a real Docker, Alloy
 * and Loki; these tests hold the same verdicts on answers shaped as those
 * servers gave there: Alloy's answers recorded from a real Alloy v1.1.1
 * (test/fixtures/alloy-v1.1.1) with the target's last error and the push
 * counters the faults produced, Loki 3.6.2's discard counter, and Docker's
 * Engine API (nock, over tcp:// as DOCKER_HOST allows) answering a
 * container's newest log line in its multiplexed frames.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, test } from 'node:test'
import nock from 'nock'
import { AlloyClient } from '../../../src/lib/alloy/client.ts'
import { type DoctorContext, doctorChecks } from '../../../src/lib/checks/doctor.ts'
import { clockSkews, offsetText, pinoTimeMs } from '../../../src/lib/checks/doctor-causes.ts'
import type { CheckOutcome } from '../../../src/lib/checks/runner.ts'
import { DEFAULT_POLICY } from '../../../src/lib/config/settings.ts'
import { DockerClient, demultiplex } from '../../../src/lib/docker/client.ts'
import type { LokiClient } from '../../../src/lib/loki/client.ts'

const DOCKER = 'http://docker.test:2375'
const ALLOY = 'http://alloy.test:12345'
const FIXTURES = join(import.meta.dirname, '../../fixtures/alloy-v1.1.1')
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8')
const DAY = 24 * 3600_000
/** The worker's target in the recording (Alloy shows the first 12 characters of the id). */
const WORKER = '2023fdcdd6b6'
/** What loki.source.docker v1.1.1 keeps as the last error of a container started with --log-driver none (the pipeline suite's run). */
const DRIVER_ERROR = 'Error response from daemon: configured logging driver does not support reading'

const clients: { close(): Promise<void> }[] = []
afterEach(async () => {
  nock.cleanAll()
  for (const client of clients.splice(0)) await client.close()
})

function track<T extends { close(): Promise<void> }>(client: T): T {
  clients.push(client)
  return client
}

/** Docker's answer to /containers/{id}/logs for a container without a TTY: a frame per line. */
function frames(...lines: [stream: 1 | 2, text: string][]): Buffer {
  return Buffer.concat(
    lines.flatMap(([stream, text]) => {
      const payload = Buffer.from(text)
      const head = Buffer.alloc(8)
      head[0] = stream
      head.writeUInt32BE(payload.length, 4)
      return [head, payload]
    }),
  )
}

/** Alloy in the recorded healthy state; the worker's target has this last error, and /metrics answers each text in turn. */
function alloy(lastError = '', ...metrics: string[]): void {
  const source = JSON.parse(fixture('healthy.component.loki.source.docker.default.json')) as { debugInfo: { body: { name: string; value: { value: string } }[] }[] }
  const worker = source.debugInfo[0]!.body
  worker.find((field) => field.name === 'last_error')!.value.value = lastError
  // As Alloy v1.1.1 showed it on the live pipeline: the reader stops at the error and tries again at its next tick.
  if (lastError) worker.find((field) => field.name === 'is_running')!.value.value = 'false'
  const scope = nock(ALLOY).persist()
  scope.get('/api/v0/web/components').reply(200, fixture('healthy.components.json'), { 'content-type': 'application/json' })
  scope.get('/api/v0/web/components/loki.source.docker.default').reply(200, source, { 'content-type': 'application/json' })
  for (const id of ['discovery.docker.containers', 'loki.write.loki_endpoint']) {
    scope.get(`/api/v0/web/components/${id}`).reply(200, fixture(`healthy.component.${id}.json`), { 'content-type': 'application/json' })
  }
  const texts = metrics.length > 0 ? metrics : [fixture('healthy.metrics.txt')]
  let read = 0
  scope.get('/metrics').reply(() => [200, texts[Math.min(read++, texts.length - 1)]])
}

/** Alloy's /metrics after pushes were refused: `refused` more 400s and `dropped` more entries dropped than the healthy recording. */
function refusedMetrics(refused: number, dropped: number): string {
  return fixture('healthy.metrics.txt').replace(
    /(loki_write_dropped_entries_total\{[^}]*reason="ingester_error"[^}]*\}) 0/,
    (_, series: string) =>
      `${series} ${dropped}\nloki_write_request_duration_seconds_count{component_id="loki.write.loki_endpoint",component_path="/",host="127.0.0.1:33689",status_code="400"} ${refused}`,
  )
}

/** Loki 3.6.2's /metrics with these discard counts, each text in turn. */
function loki(...counts: Record<string, number>[]): LokiClient {
  let read = 0
  const text = (byReason: Record<string, number>) =>
    [
      '# TYPE loki_discarded_samples_total counter',
      ...Object.entries(byReason).map(([reason, n]) => `loki_discarded_samples_total{format="loki",policy="",reason="${reason}",retention_hours="0",tenant="fake"} ${n}`),
      `process_start_time_seconds ${Date.now() / 1000 - 60}`,
      '',
    ].join('\n')
  return { metrics: async () => text(counts[Math.min(read++, counts.length - 1)]!) } as unknown as LokiClient
}

/** A Docker Engine with these running containers, each answering its newest log line (or refusing, as for --log-driver none). */
function dockerWith(containers: { id: string; name: string; service?: string; newest?: string; at?: string; logDriver?: string }[]): void {
  const scope = nock(DOCKER).persist()
  scope.get('/containers/json').reply(
    200,
    containers.map((c) => ({ Id: c.id, Names: [`/${c.name}`], State: 'running', Status: 'Up', Labels: c.service ? { 'com.docker.compose.service': c.service } : {} })),
  )
  for (const c of containers) {
    scope.get(`/containers/${c.id.slice(0, 12)}/json`).reply(200, {
      Id: c.id,
      State: { Running: true, Status: 'running', ExitCode: 0 },
      Config: { Labels: {} },
      HostConfig: { LogConfig: { Type: c.logDriver ?? 'json-file', Config: {} } },
    })
    const logs = scope.get(`/containers/${c.id}/logs`).query({ stdout: '1', stderr: '1', tail: '1', timestamps: '1' })
    if (c.logDriver === 'none') logs.reply(501, { message: 'configured logging driver does not support reading' })
    else logs.reply(200, c.newest === undefined ? Buffer.alloc(0) : frames([1, `${c.at} ${c.newest}\n`]))
  }
}

function context(overrides: Partial<DoctorContext>): DoctorContext {
  return {
    loki: loki({}),
    alloy: track(new AlloyClient({ baseUrl: ALLOY, headers: {}, timeoutMs: 2000, retries: 0, peer: 'Alloy' })),
    policy: DEFAULT_POLICY,
    range: () => ({ start: BigInt(Date.now() - 3600_000) * 1_000_000n, end: BigInt(Date.now()) * 1_000_000n }),
    window: '1h',
    liveWindowMs: 10,
    docker: { client: track(new DockerClient('tcp://docker.test:2375')) },
    ...overrides,
  }
}

async function run(ctx: DoctorContext, id: string): Promise<CheckOutcome> {
  const check = doctorChecks(ctx).find((c) => c.id === id)
  assert.ok(check, id)
  return check.run({})
}

const AT = '2026-12-07T16:40:00.123456789Z'
const AT_MS = Date.parse('2026-12-07T16:40:00.123Z')
const pinoLine = (timeMs: number) => JSON.stringify({ level: 'info', time: timeMs, pid: 1, hostname: 'h', name: 'worker', msg: 'job done' })
const SKEWED = { id: 'cd'.repeat(32), name: 'cogni-worker-8', service: 'worker', newest: pinoLine(AT_MS - 10 * DAY), at: AT }
const HEALTHY = { id: 'ef'.repeat(32), name: 'cogni-app-1', service: 'app', newest: pinoLine(AT_MS - 2), at: AT }

describe('doctor names a log driver Docker cannot read back, with the compose fix', () => {
  test("a running container whose last error is the driver's: the driver, the container, its service and the compose setting; no socket", async () => {
    alloy(DRIVER_ERROR)
    dockerWith([{ id: `${WORKER}${'0'.repeat(52)}`, name: 'cogni-worker-1', service: 'worker', logDriver: 'none' }])
    const outcome = await run(context({}), 'alloy-docker-targets')
    assert.equal(outcome.status, 'fail')
    assert.match(
      outcome.detail,
      /^2023fdcdd6b6 \(cogni-worker-1\): not running, last error: Error response from daemon: configured logging driver does not support reading — their logs are not read$/,
    )
    assert.equal(
      outcome.hint,
      'cogni-worker-1 (compose service worker) logs with the log driver "none", which Docker cannot read back, so Alloy reads none of its lines: set services.worker.logging.driver to json-file or local in the compose file (or remove its logging override), then docker compose up -d worker (runbooks/TROUBLESHOOTING.md#no-logs-ingested)',
    )
  })

  test('without Docker to ask, the hint still names the container, its service and the fix', async () => {
    alloy(DRIVER_ERROR)
    const outcome = await run(context({ docker: { unavailable: 'cannot reach Docker at unix:///var/run/docker.sock (ENOENT)' } }), 'alloy-docker-targets')
    assert.match(
      outcome.hint ?? '',
      /^cogni-worker-1 \(compose service worker\) logs with a log driver Docker cannot read back .*set services\.worker\.logging\.driver to json-file or local/,
    )
    assert.doesNotMatch(outcome.hint ?? '', /socket/)
  })

  test('a target Alloy cannot reach keeps the socket hint', async () => {
    alloy('Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?')
    const outcome = await run(context({}), 'alloy-docker-targets')
    assert.match(outcome.hint ?? '', /^check that Docker runs and its socket is mounted into alloy/)
  })
})

describe("doctor ties pushes Loki refuses to Loki's discard reason", () => {
  test('HTTP 400 with greater_than_max_sample_age: the reason, its limit setting, and the container whose pino time is 10 days behind', async () => {
    alloy('', fixture('healthy.metrics.txt'), refusedMetrics(3, 44))
    dockerWith([HEALTHY, SKEWED, { id: 'ab'.repeat(32), name: 'cogni-quiet-1', logDriver: 'none' }])
    const outcome = await run(context({ loki: loki({ greater_than_max_sample_age: 0 }, { greater_than_max_sample_age: 44 }) }), 'alloy-loki-write')
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.detail, /^pushes are failing now \(3 failed, 44 entries dropped/)
    assert.equal(
      outcome.hint,
      "Loki answered (3× HTTP 400), so it is reachable: it refuses the lines themselves — loki_discarded_samples_total in the 0.01 s watched: 44 for greater_than_max_sample_age; greater_than_max_sample_age: lines older than limits_config.reject_old_samples_max_age (7d): fix the clock or the timestamp stage; the clock is wrong in cogni-worker-8 (service worker): its newest line's pino time is 10d 0h behind Docker's timestamp (time 2026-11-27T16:40:00Z, Docker 2026-12-07T16:40:00Z) — fix that container's clock or how its app sets time (runbooks/TROUBLESHOOTING.md#pushes-failing)",
    )
  })

  test('each reason brings its own fix naming the limit; a connection refused still says to check reachability', async () => {
    alloy('', fixture('healthy.metrics.txt'), refusedMetrics(2, 10))
    const outcome = await run(context({ loki: loki({ line_too_long: 1, rate_limited: 0 }, { line_too_long: 4, rate_limited: 6, per_stream_rate_limit: 2 }) }), 'alloy-loki-write')
    assert.match(outcome.hint ?? '', /3 for line_too_long, 6 for rate_limited, 2 for per_stream_rate_limit/)
    assert.match(outcome.hint ?? '', /line_too_long: lines above limits_config\.max_line_size/)
    assert.match(outcome.hint ?? '', /rate_limited: raise limits_config\.ingestion_rate_mb/)
    assert.match(outcome.hint ?? '', /per_stream_rate_limit: raise limits_config\.per_stream_rate_limit/)
    assert.doesNotMatch(outcome.hint ?? '', /clock|reachable from Alloy/)
    nock.cleanAll()
    alloy('', fixture('loki-down.metrics.txt'), fixture('loki-down-dropped.metrics.txt'))
    const down = await run(context({}), 'alloy-loki-write')
    assert.match(down.hint ?? '', /^check that Loki is up and reachable from Alloy/)
  })

  test('loki-ingestion names the container for lines too old, and too new', async () => {
    dockerWith([HEALTHY, SKEWED])
    const old = await run(context({ loki: loki({ greater_than_max_sample_age: 44 }) }), 'loki-ingestion')
    assert.equal(old.status, 'fail')
    assert.match(old.hint ?? '', /cogni-worker-8 \(service worker\): its newest line's pino time is 10d 0h behind Docker's timestamp/)
    nock.cleanAll()
    dockerWith([{ ...SKEWED, newest: pinoLine(AT_MS + 3 * 3600_000 + 12 * 60_000) }])
    const ahead = await run(context({ loki: loki({ too_far_in_future: 7 }) }), 'loki-ingestion')
    assert.match(ahead.hint ?? '', /too_far_in_future: timestamps more than limits_config\.creation_grace_period \(10m\) ahead/)
    assert.match(ahead.hint ?? '', /cogni-worker-8 \(service worker\): its newest line's pino time is 3h 12m ahead of Docker's timestamp/)
  })
})

describe("reading a container's clock", () => {
  test("Docker's frames, pino's time in ms or ISO, offsets in days, hours, minutes", () => {
    assert.equal(demultiplex(frames([1, 'a\n'], [2, 'b\n'])), 'a\nb\n')
    assert.equal(demultiplex(Buffer.from('2026-12-07T16:40:00Z tty text\n')), '2026-12-07T16:40:00Z tty text\n')
    assert.equal(pinoTimeMs('{"time":1796225085123}'), 1796225085123)
    assert.equal(pinoTimeMs('{"time":"2026-12-07T16:40:00.000Z"}'), Date.parse('2026-12-07T16:40:00.000Z'))
    assert.equal(pinoTimeMs('plain text'), undefined)
    assert.equal(pinoTimeMs('{"time":"soon"}'), undefined)
    assert.equal(offsetText(-10 * DAY - 5), '10d 0h')
    assert.equal(offsetText(4 * 60_000 + 30_000), '4m 30s')
  })

  test('only containers off by more than a minute are named, most off first; no line, plain text or an unreadable driver is skipped', async () => {
    dockerWith([
      HEALTHY,
      { ...SKEWED, id: '78'.repeat(32), name: 'cogni-worker-2', newest: pinoLine(AT_MS - 90_000) },
      SKEWED,
      { id: '12'.repeat(32), name: 'plain', newest: 'not json', at: AT },
      { id: '34'.repeat(32), name: 'silent' },
      { id: '56'.repeat(32), name: 'cogni-none-1', logDriver: 'none' },
    ])
    const client = track(new DockerClient('tcp://docker.test:2375'))
    const found = await clockSkews(client)
    assert.deepEqual(
      found.skews.map((skew) => [skew.container, skew.service, Math.round(skew.offsetMs / 1000)]),
      [
        ['cogni-worker-8', 'worker', -864000],
        ['cogni-worker-2', 'worker', -90],
      ],
    )
    assert.equal(found.compared, 3)
    assert.equal(found.containers, 6)
  })
})
