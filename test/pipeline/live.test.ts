/**
 * The design doc's goal, "Verify logs flow: App → Docker → Alloy → Loki", on
 * the live pipeline of the global setup (test/support/pipeline-setup.ts): a
 * real dockerd running the app's `app` and `worker` containers, a real Alloy
 * on the stack's config, a real Loki on the stack's config. obs's runbook
 * commands run against it as a user runs them; the delivery test holds Loki
 * against what the containers wrote.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { BUSYBOX_IMAGE, docker } from '../support/docker-engine.ts'
import { livePipeline } from '../support/env.ts'
import { COMPOSE_PROJECT, compareDelivery, storedLines, type WrittenLine, withoutProbes, writtenLines } from '../support/pipeline.ts'

const pipeline = livePipeline()
const skip = pipeline ? false : "no live pipeline here (see the global setup's message)"
const dockerHost = pipeline ? `unix://${pipeline.dockerSocket}` : ''

interface CheckJson {
  id: string
  status: string
  detail: string
  hint?: string
}

const byId = (stdout: string) => new Map((JSON.parse(stdout) as { checks: CheckJson[] }).checks.map((check) => [check.id, check]))

/** A request whose lines both services wrote, from the containers' own records. */
function requestInBothServices(lines: WrittenLine[]): { reqId: string; lines: WrittenLine[] } {
  const byRequest = new Map<string, WrittenLine[]>()
  for (const line of lines) {
    const reqId = /"reqId":"([^"]+)"/.exec(line.line)?.[1]
    if (reqId) byRequest.set(reqId, [...(byRequest.get(reqId) ?? []), line])
  }
  // Old enough to have arrived (Alloy batches for a second), with an error line so the trace has something to show.
  const done = [...byRequest].filter(([, group]) => new Set(group.map((l) => l.service)).size === 2 && group.some((l) => l.line.includes('"level":"error"')))
  const [reqId, group] = done[Math.max(0, done.length - 5)]!
  return { reqId, lines: group }
}

describe('the live pipeline: App → Docker → Alloy → Loki', { skip }, () => {
  test('obs smoke passes every check, alloy-targets with both containers, and the probe through the pipeline', async () => {
    const result = await runObs(['smoke', '--env', 'test', '--since', '5m', '--probe', '--probe-image', BUSYBOX_IMAGE, '--json'], { env: { ...pipeline!.env } })
    const checks = byId(result.stdout)
    for (const [id, check] of checks) assert.equal(check.status, 'pass', `${id}: ${check.detail}`)
    assert.deepEqual([...checks.keys()], ['loki-ready', 'logs-ingested', 'service-logs-json', 'error-filter', 'reqid-trace', 'label-policy', 'alloy-targets', 'pipeline-probe'])
    assert.match(checks.get('alloy-targets')!.detail, /^2 Docker targets discovered, 2 read$/, 'the probe, a one-off container, is not counted')
    assert.match(checks.get('pipeline-probe')!.detail, /^marker obs-probe-[0-9a-f]{12} arrived in Loki \d+\.\ds after its container started$/)
    // Query 4 takes a request of the app's from Query 2's sample, never the probe's marker.
    assert.match(checks.get('reqid-trace')!.detail, new RegExp(`^reqId ${pipeline!.runId}-\\d+: \\d+ lines in (app|app, worker|worker, app)$`))
    assert.equal(result.code, 0)
    // The probe cleans up after itself.
    assert.equal(await docker(dockerHost, ['ps', '-aq', '--filter', 'name=obs-probe-']), '')
  })

  test('obs trace follows one request across app and worker, every line of it in time order', async () => {
    const { reqId, lines } = requestInBothServices(writtenLines(pipeline!))
    const result = await runObs(['trace', reqId, '--since', '15m', '--json'], { env: { ...pipeline!.env } })
    assert.equal(result.code, 0, result.stderr)
    const trace = JSON.parse(result.stdout) as { entries: { timestamp: string; labels: Record<string, string>; line: string }[] }
    assert.deepEqual(trace.entries.map((e) => e.line).sort(), lines.map((l) => l.line).sort())
    assert.deepEqual(new Set(trace.entries.map((e) => e.labels.service)), new Set(['app', 'worker']))
    const times = trace.entries.map((e) => e.timestamp)
    assert.deepEqual(times, [...times].sort())
  })

  test('obs doctor exits 0 and lists the running targets', async () => {
    const ids = (await docker(dockerHost, ['ps', '-q', '--filter', `label=com.docker.compose.project=${COMPOSE_PROJECT}`])).split('\n').sort()
    const result = await runObs(['doctor', '--since', '5m', '--json'], { env: { ...pipeline!.env } })
    const checks = byId(result.stdout)
    assert.equal(result.code, 0, result.stdout)
    for (const [id, check] of checks) {
      // Alloy v1.1.1 runs where the stack pins v1.9.2 (the newest that builds here): a warning, said so.
      if (id === 'alloy-ready') assert.match(check.detail, /Alloy v1\.1\.1\S* runs, the stack pins v1\.9\.2/)
      else assert.equal(check.status, 'pass', `${id}: ${check.detail}`)
    }
    const listed = /^2 targets read: ([0-9a-f]{12}, [0-9a-f]{12})/.exec(checks.get('alloy-docker-targets')!.detail)?.[1]?.split(', ').sort()
    assert.deepEqual(listed, ids)
  })

  test("every line the containers wrote is in Loki exactly once, with the four labels and pino's time", async (t) => {
    // Pausing the containers bounds the run: what they recorded is all they will have written.
    const ids = (await docker(dockerHost, ['ps', '-q', '--filter', `label=com.docker.compose.project=${COMPOSE_PROJECT}`])).split('\n')
    await docker(dockerHost, ['pause', ...ids])
    try {
      const written = writtenLines(pipeline!)
      const start = Math.min(...written.map((l) => Number(/"time":(\d+)/.exec(l.line)?.[1] ?? Date.now()))) - 60_000
      let delivery = compareDelivery(written, [])
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
        delivery = compareDelivery(written, withoutProbes(await storedLines(pipeline!.env.LOKI_ADDR, start, Date.now() + 1000)))
        if (delivery.lost.length === 0) break
        await new Promise((r) => setTimeout(r, 1000))
      }
      t.diagnostic(
        `written ${delivery.written}, stored ${delivery.stored}, lost ${delivery.lost.length}, duplicated ${delivery.duplicated.length}, containers ${delivery.perContainer.size}, requests ${delivery.perRequest.size}`,
      )
      assert.deepEqual(delivery.lost.slice(0, 3), [], `${delivery.lost.length} lines lost`)
      assert.deepEqual(delivery.duplicated.slice(0, 3), [], `${delivery.duplicated.length} lines stored twice`)
      assert.deepEqual(delivery.unexpected.slice(0, 3), [])
      for (const [container, counts] of delivery.perContainer) assert.equal(counts.stored, counts.written, `container ${container}`)
      for (const [reqId, counts] of delivery.perRequest) assert.equal(counts.stored, counts.written, `request ${reqId}`)
      assert.ok(delivery.written > 200, `a bounded run of some length (${delivery.written} lines)`)

      const stored = withoutProbes(await storedLines(pipeline!.env.LOKI_ADDR, start, Date.now() + 1000))
      for (const entry of stored) {
        assert.deepEqual(Object.keys(entry.labels).sort(), ['app', 'env', 'service', 'stream'])
        assert.equal(entry.labels.env, 'test')
        const time = /^\{"level":"\w+","time":(\d+),/.exec(entry.line)?.[1]
        if (time) assert.equal(entry.ts, BigInt(time) * 1_000_000n, `timestamp of ${entry.line}`)
      }
      const kinds = {
        json: stored.filter((e) => e.line.startsWith('{')).length,
        plain: stored.filter((e) => e.line.startsWith('plain text')).length,
        stack: stored.filter((e) => e.line.startsWith('    at ')).length,
      }
      assert.ok(kinds.json > 0 && kinds.plain > 0 && kinds.stack > 0, JSON.stringify(kinds))
      assert.ok(
        stored.some((e) => e.labels.stream === 'stderr' && e.line.includes('"level":"error"')),
        'errors on stderr',
      )
    } finally {
      await docker(dockerHost, ['unpause', ...ids])
    }
  })
})
