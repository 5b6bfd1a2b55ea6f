import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { type LokiProcess, pushAll, REPO, startLoki, stopAndRemove } from '../support/loki.ts'

const shared = testLoki()
/** doctor keeps readings of Loki's counters in obs's cache directory: these tests keep theirs apart from the user's. */
const freshCache = () => mkdtempSync(join(tmpdir(), 'obs-cache-'))
const CACHE = freshCache()
const COMPOSE = join(REPO, 'stack/docker-compose.yml')
const ALLOY_CONFIG = join(REPO, 'stack/alloy-config.alloy')

interface Document {
  ok: boolean
  checks: { id: string; status: string; detail: string; hint?: string }[]
}

function byId(stdout: string): Map<string, Document['checks'][number]> {
  const document = JSON.parse(stdout) as Document
  return new Map(document.checks.map((c) => [c.id, c]))
}

describe('obs doctor', () => {
  test("the stack's own files and the loaded test Loki are healthy: exit 0", async () => {
    const result = await runObs(['doctor', '--no-alloy', '--compose', COMPOSE, '--alloy-config', ALLOY_CONFIG, '--json'], { env: { LOKI_ADDR: shared.addr, OBS_CACHE_DIR: CACHE } })
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const checks = byId(result.stdout)
    for (const id of [
      'loki-ready',
      'loki-version',
      'loki-labels',
      'loki-env-label',
      'loki-ingestion',
      'compose-docker-socket',
      'compose-ports',
      'compose-images',
      'compose-app-env',
      'alloy-config-labels',
    ]) {
      assert.equal(checks.get(id)?.status, 'pass', `${id}: ${checks.get(id)?.detail}`)
    }
    const labels = checks.get('loki-labels')?.detail ?? ''
    assert.match(labels, /service \(3 values in \d+ streams\)/)
    assert.match(checks.get('loki-ingestion')?.detail ?? '', /^no lines discarded in the last 1h \(exact: Loki started inside it/)
    if (shared.config === 'stock') {
      // The global setup's load made the stock Loki shard streams; before, doctor failed on them.
      const series = await fetch(`${shared.addr}/loki/api/v1/series?${new URLSearchParams({ 'match[]': '{app=~".+"}', since: '2h' })}`)
      assert.ok(((await series.json()) as { data: Record<string, string>[] }).data.some((labels) => '__stream_shard__' in labels))
      assert.match(labels, /^\d+ streams of \{app=~"\.\+"\}, \d+ before Loki split them: /)
      assert.match(
        labels,
        /__stream_shard__ \(\d+ values in \d+ streams\) is Loki's own, added by stream sharding \(limits_config\.shard_streams\).*harmless, nothing to change in Alloy/,
      )
      assert.doesNotMatch(labels, /remove/)
    }
  })

  test('a compose file with :latest, a writable socket and 0.0.0.0:12345 names all three', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'obs-compose-'))
    const broken = readFileSync(COMPOSE, 'utf8')
      .replace('grafana/alloy:v1.9.2', 'grafana/alloy:latest')
      .replace('/var/run/docker.sock:/var/run/docker.sock:ro', '/var/run/docker.sock:/var/run/docker.sock')
      .replace('"127.0.0.1:12345:12345"', '"0.0.0.0:12345:12345"')
      .replace(/\n\s+- APP_ENV=.*\n/, '\n')
    const file = join(dir, 'docker-compose.yml')
    writeFileSync(file, broken)
    const result = await runObs(['doctor', '--no-alloy', '--compose', file, '--json'], { env: { LOKI_ADDR: shared.addr, OBS_CACHE_DIR: CACHE } })
    assert.equal(result.code, 1)
    const checks = byId(result.stdout)
    assert.equal(checks.get('compose-images')?.status, 'fail')
    assert.match(checks.get('compose-images')?.detail ?? '', /alloy: grafana\/alloy:latest/)
    assert.equal(checks.get('compose-docker-socket')?.status, 'fail')
    assert.match(checks.get('compose-docker-socket')?.hint ?? '', /:ro .*TROUBLESHOOTING\.md#docker-socket/)
    assert.equal(checks.get('compose-ports')?.status, 'fail')
    assert.match(checks.get('compose-ports')?.detail ?? '', /alloy: 0\.0\.0\.0:12345:12345/)
    assert.equal(checks.get('compose-app-env')?.status, 'fail')
    const text = await runObs(['doctor', '--no-alloy', '--compose', file], { env: { LOKI_ADDR: shared.addr, OBS_CACHE_DIR: CACHE } })
    assert.match(text.stdout, /✖ compose-images/)
  })

  test('an Alloy config whose relabel rule turns reqId into a label is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'obs-alloy-'))
    const file = join(dir, 'config.alloy')
    copyFileSync(ALLOY_CONFIG, file)
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        '  rule {\n    target_label = "app"',
        '  rule {\n    source_labels = ["__meta_docker_container_label_req"]\n    target_label  = "reqId"\n  }\n\n  rule {\n    target_label = "app"',
      ),
    )
    const result = await runObs(['doctor', '--no-alloy', '--alloy-config', file, '--json'], { env: { LOKI_ADDR: shared.addr, OBS_CACHE_DIR: CACHE } })
    assert.equal(result.code, 1)
    assert.match(byId(result.stdout).get('alloy-config-labels')?.detail ?? '', /sets the label reqId/)
  })

  test('an unreachable Alloy: exit 3, naming the address', async () => {
    const result = await runObs(['doctor', '--alloy-addr', 'http://127.0.0.1:1', '--retries', '0', '--json'], { env: { LOKI_ADDR: shared.addr, OBS_CACHE_DIR: CACHE } })
    assert.equal(result.code, 3)
    const checks = byId(result.stdout)
    assert.match(checks.get('alloy-ready')?.detail ?? '', /cannot reach Alloy at http:\/\/127\.0\.0\.1:1/)
    // One failure for one cause: the other Alloy checks are skipped, not failed four more times.
    const alloy = [...checks.entries()].filter(([id]) => id.startsWith('alloy-') && id !== 'alloy-config-labels')
    assert.deepEqual(
      alloy.map(([id, c]) => `${id}:${c.status}`),
      ['alloy-ready:fail', 'alloy-components:skip', 'alloy-docker-discovery:skip', 'alloy-docker-targets:skip', 'alloy-loki-write:skip'],
    )
  })

  describe('on a Loki with faults', () => {
    let loki: LokiProcess
    before(async () => {
      loki = await startLoki()
      const now = BigInt(Date.now()) * 1_000_000n
      const line = (reqId: string) => JSON.stringify({ level: 'info', time: Date.now(), reqId, msg: 'hi' })
      const streams = Array.from({ length: 12 }, (_, i) => ({
        stream: { app: 'cogni-template', env: 'test', service: 'app', stream: 'stdout', reqId: `r-${i}` },
        values: [[(now - BigInt(i) * 1_000_000n).toString(), line(`r-${i}`)]],
      }))
      streams.push({ stream: { app: 'cogni-template', service: 'worker', stream: 'stdout' } as never, values: [[now.toString(), line('no-env')]] })
      await pushAll(loki.addr, [streams])
      // Ten days old: Loki refuses it (reject_old_samples_max_age is 7 days).
      const old = (now - 10n * 86_400_000_000_000n).toString()
      const response = await fetch(`${loki.addr}/loki/api/v1/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          streams: [
            {
              stream: { app: 'cogni-template', env: 'test', service: 'app', stream: 'stdout' },
              values: [
                [old, 'old'],
                [old, 'older'],
              ],
            },
          ],
        }),
      })
      assert.equal(response.status, 400)
    })
    after(async () => {
      await stopAndRemove(loki)
    })

    test('reqId as a label, a stream without env and discarded lines are each named with the fix', async () => {
      const result = await runObs(['doctor', '--no-alloy', '--json'], { env: { LOKI_ADDR: loki.addr, OBS_CACHE_DIR: freshCache() } })
      assert.equal(result.code, 1)
      const checks = byId(result.stdout)
      assert.equal(checks.get('loki-labels')?.status, 'fail')
      assert.match(checks.get('loki-labels')?.detail ?? '', /reqId \(12 values in 12 streams\) is a label; it must stay a JSON field/)
      assert.match(checks.get('loki-labels')?.hint ?? '', /creates reqId in the Alloy config/)
      assert.equal(checks.get('loki-env-label')?.status, 'fail')
      assert.match(checks.get('loki-env-label')?.detail ?? '', /1 of 13 streams have no env label/)
      assert.equal(checks.get('loki-ingestion')?.status, 'fail')
      assert.match(checks.get('loki-ingestion')?.detail ?? '', /^2 lines discarded for greater_than_max_sample_age in the last 1h \(exact: Loki started inside it, at /)
      assert.match(checks.get('loki-ingestion')?.hint ?? '', /clock or the timestamp stage.*#rejected-lines/)
    })

    describe('discarded lines count within --since only', () => {
      const WINDOW_S = 10
      let processStart: number
      const ingestion = async (since: string, cache: string) => {
        const result = await runObs(['doctor', '--no-alloy', '--since', since, '--json'], { env: { LOKI_ADDR: loki.addr, OBS_CACHE_DIR: cache } })
        return { code: result.code, check: byId(result.stdout).get('loki-ingestion')! }
      }

      before(async () => {
        const metrics = await (await fetch(`${loki.addr}/metrics`)).text()
        processStart = Number(/^process_start_time_seconds (\S+)$/m.exec(metrics)?.[1])
        assert.match(metrics, /loki_discarded_samples_total\{[^}]*reason="greater_than_max_sample_age"[^}]*\} 2$/m)
        // The windows below must start after Loki did, so that its lifetime counter is not their count.
        const ageMs = Date.now() - processStart * 1000
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, (WINDOW_S + 1) * 1000 - ageMs)))
      })

      test('a window after the burst, right after a run that kept a reading: pass, the burst named as before it', async () => {
        const cache = freshCache()
        assert.equal((await ingestion('1h', cache)).check.status, 'fail')
        const { code, check } = await ingestion(`${WINDOW_S}s`, cache)
        assert.equal(check.status, 'pass', check.detail)
        assert.match(
          check.detail,
          new RegExp(
            `^no lines discarded since \\S+Z, obs's oldest reading inside the last ${WINDOW_S}s \\([\\d.]+m?s of it\\); 2 discarded since Loki started at \\S+Z, before the window began, up to that reading, not counted$`,
          ),
        )
        assert.equal(code, 1, 'loki-labels and loki-env-label still fail')
      })

      test('a window after the burst with no reading: it watches, passes, and says what it did not count', async () => {
        const { check } = await ingestion(`${WINDOW_S}s`, freshCache())
        assert.equal(check.status, 'pass', check.detail)
        assert.match(
          check.detail,
          new RegExp(
            `^no lines discarded in the 3 s watched \\(obs has no earlier reading of this Loki inside the last ${WINDOW_S}s; the next run looks back to this one\\); 2 discarded since Loki started at \\S+Z, before the window began, not counted`,
          ),
        )
      })

      test('a reading inside the window from before the burst: the burst counts, and the detail says since when', async () => {
        const cache = freshCache()
        const atMs = Date.now() - 5000
        writeFileSync(join(cache, 'doctor-readings.json'), JSON.stringify({ readings: [{ addr: loki.addr, atMs, processStart, counts: {} }] }))
        const { check } = await ingestion(`${WINDOW_S}s`, cache)
        assert.equal(check.status, 'fail')
        const since = new Date(atMs).toISOString().replace(/\.\d+Z$/, 'Z')
        assert.match(
          check.detail,
          new RegExp(
            `^2 lines discarded for greater_than_max_sample_age since ${since}, obs's oldest reading inside the last ${WINDOW_S}s \\([\\d.]+m?s of it\\) — those lines are lost$`,
          ),
        )
      })
    })
  })
})
