import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import type { CheckOutcome } from '../../src/lib/checks.ts'
import { DEFAULT_POLICY } from '../../src/lib/config.ts'
import { doctorChecks, readingsFile, type DoctorContext } from '../../src/lib/doctor.ts'
import type { Labels, LokiClient } from '../../src/lib/loki-client.ts'
import { keepReading, loadReadings, pruneReadings, type CounterReading } from '../../src/lib/metrics.ts'

const MINUTE = 60_000
/** The clock of these tests: "now" is fixed, the window is the hour before it. */
const NOW_MS = Date.parse('2026-12-02T06:00:00Z')
const ADDR = 'http://127.0.0.1:3100'

/** /metrics of a real Loki 3.6.2 (stack config) that refused two too-old lines, a 300 KB line and a 3000-byte label value. */
function recordedMetrics(startedMs: number, counts: { old?: number; long?: number; label?: number } = {}): string {
  const sample = (reason: string, n: number) => `loki_discarded_samples_total{format="loki",policy="",reason="${reason}",retention_hours="0",tenant="fake"} ${n}`
  return [
    '# HELP loki_discarded_samples_total The total number of samples that were discarded.',
    '# TYPE loki_discarded_samples_total counter',
    sample('greater_than_max_sample_age', counts.old ?? 2),
    sample('invalid_labels', counts.label ?? 1),
    sample('label_value_too_long', counts.label ?? 1),
    sample('line_too_long', counts.long ?? 1),
    '# HELP loki_index_chunk_refs_total Number of chunks refs downloaded, partitioned by whether they intersect the query bounds.',
    'loki_index_chunk_refs_total{status="discarded"} 0',
    '# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.',
    '# TYPE process_start_time_seconds gauge',
    `process_start_time_seconds ${(startedMs / 1000).toExponential(11)}`,
    '',
  ].join('\n')
}

/** A Loki that answers /metrics with each text in turn (the last one again after that). */
function lokiAnswering(...texts: string[]): { loki: LokiClient; reads: () => number } {
  let reads = 0
  const loki = { metrics: async () => texts[Math.min(reads++, texts.length - 1)] } as unknown as LokiClient
  return { loki, reads: () => reads }
}

function context(loki: LokiClient, overrides: Partial<DoctorContext> = {}): DoctorContext {
  const ns = (ms: number) => BigInt(ms) * 1_000_000n
  return { loki, policy: DEFAULT_POLICY, range: () => ({ start: ns(NOW_MS - 60 * MINUTE), end: ns(NOW_MS) }), window: '1h', liveWindowMs: 10, ...overrides }
}

async function run(ctx: DoctorContext, id: string): Promise<CheckOutcome> {
  const check = doctorChecks(ctx).find((c) => c.id === id)
  assert.ok(check, id)
  return check.run({})
}

const cacheFile = () => join(mkdtempSync(join(tmpdir(), 'obs-doctor-')), 'obs', 'doctor-readings.json')
const reading = (atMs: number, startedMs: number, counts: Record<string, number>, addr = ADDR): CounterReading => ({ addr, atMs, processStart: startedMs / 1000, counts })
const BEFORE_WINDOW = NOW_MS - 3 * 60 * MINUTE

describe('doctor loki-ingestion covers the --since window', () => {
  test('Loki started inside the window: its counter is the window\'s count, exact, read once', async () => {
    const started = NOW_MS - 20 * MINUTE
    const { loki, reads } = lokiAnswering(recordedMetrics(started))
    const outcome = await run(context(loki), 'loki-ingestion')
    assert.equal(outcome.status, 'fail')
    assert.equal(
      outcome.detail,
      '2 lines discarded for greater_than_max_sample_age; 1 lines discarded for invalid_labels; 1 lines discarded for label_value_too_long; 1 lines discarded for line_too_long in the last 1h (exact: Loki started inside it, at 2026-12-02T05:40:00Z) — those lines are lost',
    )
    assert.match(outcome.hint ?? '', /greater_than_max_sample_age: .*fix the clock.*line_too_long: .*max_line_size.*#rejected-lines/)
    assert.equal(reads(), 1)
  })

  test('Loki started before the window and no reading: it watches, passes, and says what it did not count', async () => {
    const file = cacheFile()
    const { loki, reads } = lokiAnswering(recordedMetrics(BEFORE_WINDOW), recordedMetrics(BEFORE_WINDOW))
    const outcome = await run(context(loki, { readings: { file, addr: ADDR } }), 'loki-ingestion')
    assert.equal(outcome.status, 'pass', outcome.detail)
    assert.match(outcome.detail, /^no lines discarded in the 0\.01 s watched \(obs has no earlier reading of this Loki inside the last 1h; the next run looks back to this one\)/)
    assert.match(outcome.detail, /5 discarded since Loki started at 2026-12-02T03:00:00Z, before the window began, not counted/)
    assert.equal(reads(), 2)
    const kept = loadReadings(file)
    assert.deepEqual(kept.map((r) => [r.addr, r.atMs, r.processStart]), [[ADDR, NOW_MS, BEFORE_WINDOW / 1000]])
    assert.deepEqual(kept[0].counts, { greater_than_max_sample_age: 2, invalid_labels: 1, label_value_too_long: 1, line_too_long: 1 })
  })

  test('lines discarded while it watches fail the check', async () => {
    const { loki } = lokiAnswering(recordedMetrics(BEFORE_WINDOW), recordedMetrics(BEFORE_WINDOW, { long: 4 }))
    const outcome = await run(context(loki), 'loki-ingestion')
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.detail, /^3 lines discarded for line_too_long in the 0\.01 s watched/)
  })

  test("the increase since obs's oldest reading inside the window counts; readings outside it, of another Loki or of an earlier process do not", async () => {
    const file = cacheFile()
    const earlier = { greater_than_max_sample_age: 2, invalid_labels: 0, label_value_too_long: 0, line_too_long: 0 }
    writeReadings(file, [
      reading(NOW_MS - 90 * MINUTE, BEFORE_WINDOW, {}),
      reading(NOW_MS - 45 * MINUTE, BEFORE_WINDOW - MINUTE, {}),
      reading(NOW_MS - 40 * MINUTE, BEFORE_WINDOW, {}, 'http://127.0.0.1:3101'),
      reading(NOW_MS - 30 * MINUTE, BEFORE_WINDOW, earlier),
      reading(NOW_MS - 10 * MINUTE, BEFORE_WINDOW, { ...earlier, line_too_long: 1 }),
    ])
    const { loki, reads } = lokiAnswering(recordedMetrics(BEFORE_WINDOW))
    const outcome = await run(context(loki, { readings: { file, addr: ADDR } }), 'loki-ingestion')
    assert.equal(outcome.status, 'fail')
    assert.equal(
      outcome.detail,
      "1 lines discarded for invalid_labels; 1 lines discarded for label_value_too_long; 1 lines discarded for line_too_long since 2026-12-02T05:30:00Z, obs's oldest reading inside the last 1h (30m00s of it) — those lines are lost; 2 discarded since Loki started at 2026-12-02T03:00:00Z, before the window began, up to that reading, not counted",
    )
    assert.equal(reads(), 1, 'a reading in the window needs no watching')
  })

  test('no increase since the reading: pass, with the earlier discards as information', async () => {
    const file = cacheFile()
    writeReadings(file, [reading(NOW_MS - 50 * MINUTE, BEFORE_WINDOW, { greater_than_max_sample_age: 2, invalid_labels: 1, label_value_too_long: 1, line_too_long: 1 })])
    const { loki } = lokiAnswering(recordedMetrics(BEFORE_WINDOW))
    const outcome = await run(context(loki, { readings: { file, addr: ADDR } }), 'loki-ingestion')
    assert.equal(outcome.status, 'pass')
    assert.match(outcome.detail, /^no lines discarded since 2026-12-02T05:10:00Z, obs's oldest reading inside the last 1h \(50m00s of it\); 5 discarded since Loki started at 2026-12-02T03:00:00Z, before the window began, up to that reading, not counted/)
    assert.equal(loadReadings(file).length, 2)
  })

  test('a reading with higher counts than now is from another life of the process: not used', async () => {
    const file = cacheFile()
    writeReadings(file, [reading(NOW_MS - 20 * MINUTE, BEFORE_WINDOW, { line_too_long: 9 })])
    const { loki, reads } = lokiAnswering(recordedMetrics(BEFORE_WINDOW))
    const outcome = await run(context(loki, { readings: { file, addr: ADDR } }), 'loki-ingestion')
    assert.equal(outcome.status, 'pass')
    assert.match(outcome.detail, /in the 0\.01 s watched/)
    assert.equal(reads(), 2)
  })

  test('an org id keeps its own readings', async () => {
    const file = cacheFile()
    writeReadings(file, [reading(NOW_MS - 20 * MINUTE, BEFORE_WINDOW, {})])
    const { loki } = lokiAnswering(recordedMetrics(BEFORE_WINDOW))
    const outcome = await run(context(loki, { readings: { file, addr: ADDR, orgId: 'team-a' } }), 'loki-ingestion')
    assert.match(outcome.detail, /in the 0\.01 s watched/)
    assert.deepEqual(loadReadings(file).map((r) => r.orgId ?? null), [null, 'team-a'])
  })

  test('a Loki without discards passes; one without process_start_time_seconds is watched', async () => {
    const { loki, reads } = lokiAnswering('# no metrics of interest\n')
    const outcome = await run(context(loki), 'loki-ingestion')
    assert.equal(outcome.status, 'pass')
    assert.match(outcome.detail, /^no lines discarded in the 0\.01 s watched/)
    assert.equal(reads(), 2)
    const withoutStart = recordedMetrics(NOW_MS).replace(/^process_start_time_seconds .*$/m, '')
    const unknown = await run(context(lokiAnswering(withoutStart).loki), 'loki-ingestion')
    assert.equal(unknown.status, 'pass')
    assert.match(unknown.detail, /; 5 discarded since Loki started \(when is unknown: it exposes no process_start_time_seconds\), not counted/)
  })

  test('a cache it cannot write is said, and the check still answers', async () => {
    const notADirectory = join(mkdtempSync(join(tmpdir(), 'obs-doctor-')), 'file')
    writeFileSync(notADirectory, '')
    const { loki } = lokiAnswering(recordedMetrics(NOW_MS - MINUTE))
    const outcome = await run(context(loki, { readings: { file: join(notADirectory, 'doctor-readings.json'), addr: ADDR } }), 'loki-ingestion')
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.detail, /those lines are lost; could not keep this reading in .* \((ENOTDIR|EEXIST)\).*set OBS_CACHE_DIR/)
  })
})

function writeReadings(file: string, readings: CounterReading[]): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify({ readings }))
}

describe('counter readings kept between runs', () => {
  test('the cache file sits in OBS_CACHE_DIR, else $XDG_CACHE_HOME/obs, else ~/.cache/obs', () => {
    assert.equal(readingsFile({ OBS_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x', HOME: '/h' }), '/c/doctor-readings.json')
    assert.equal(readingsFile({ OBS_CACHE_DIR: '', XDG_CACHE_HOME: '/x', HOME: '/h' }), '/x/obs/doctor-readings.json')
    assert.equal(readingsFile({ HOME: '/h' }), '/h/.cache/obs/doctor-readings.json')
  })

  test('written atomically, private, holding addresses and counts only; a broken file is no history', () => {
    const file = cacheFile()
    keepReading(file, reading(NOW_MS, BEFORE_WINDOW, { line_too_long: 1 }))
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.deepEqual(readdirSync(dirname(file)), ['doctor-readings.json'])
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { readings: [{ addr: ADDR, atMs: NOW_MS, processStart: BEFORE_WINDOW / 1000, counts: { line_too_long: 1 } }] })
    writeFileSync(file, '{"readings": [')
    assert.deepEqual(loadReadings(file), [])
    writeFileSync(file, JSON.stringify({ readings: [{ addr: ADDR }, null, reading(NOW_MS, BEFORE_WINDOW, {})] }))
    assert.equal(loadReadings(file).length, 1)
  })

  test('pruned: nothing older than 32 days or from the future, and sparser with age', () => {
    const everyMinute = Array.from({ length: 3 * 24 * 60 }, (_, i) => reading(NOW_MS - i * MINUTE, BEFORE_WINDOW - 3 * 86_400_000, {}))
    const pruned = pruneReadings([...everyMinute, reading(NOW_MS - 33 * 86_400_000, 0, {}), reading(NOW_MS + MINUTE, BEFORE_WINDOW, {})], NOW_MS)
    assert.ok(pruned.length < 120, `${pruned.length} readings kept`)
    assert.equal(pruned.at(-1)?.atMs, NOW_MS, 'the newest is kept')
    assert.ok(pruned.every((r, i) => i === 0 || r.atMs > pruned[i - 1].atMs), 'oldest first')
    for (const ageMs of [5 * MINUTE, 60 * MINUTE, 24 * 60 * MINUTE, 2 * 24 * 60 * MINUTE]) {
      const oldestInside = pruned.find((r) => r.atMs >= NOW_MS - ageMs)!
      assert.ok(NOW_MS - oldestInside.atMs >= ageMs * 0.85, `a ${ageMs / MINUTE} min window keeps a reading near its start`)
    }
  })
})

describe('doctor loki-labels', () => {
  test("a Loki that sharded a stream passes, naming __stream_shard__ as Loki's own", async () => {
    const base = { app: 'cogni-template', env: 'test', service: 'app', stream: 'stdout' }
    const series: Labels[] = [base, ...Array.from({ length: 120 }, (_, i) => ({ ...base, __stream_shard__: String(i) })), { ...base, service: 'worker' }]
    const loki = { series: async () => series } as unknown as LokiClient
    const outcome = await run(context(loki), 'loki-labels')
    assert.equal(outcome.status, 'pass', outcome.detail)
    assert.match(outcome.detail, /^122 streams, 2 before Loki split them: labels /)
    assert.match(outcome.detail, /__stream_shard__ \(120 values in 120 streams\) is Loki's own, added by stream sharding/)
  })
})

describe('doctor alloy-config-labels', () => {
  test("Alloy's temporary __ labels are not labels; reqId is, with the relabel fix", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'obs-alloy-')), 'config.alloy')
    const rule = (target: string) => `  rule {\n    source_labels = ["__meta_docker_container_label_x"]\n    target_label  = "${target}"\n  }\n`
    writeFileSync(file, `discovery.relabel "containers" {\n${rule('__tmp_service')}${rule('service')}}\n`)
    const ctx = context({} as LokiClient, { alloyConfigFile: file })
    assert.equal((await run(ctx, 'alloy-config-labels')).status, 'pass')
    writeFileSync(file, `discovery.relabel "containers" {\n${rule('__tmp_service')}${rule('reqId')}}\n`)
    const outcome = await run(ctx, 'alloy-config-labels')
    assert.equal(outcome.status, 'fail')
    assert.equal(outcome.detail, 'a relabel rule sets the label reqId — per-request values as labels create a stream per value')
    assert.match(outcome.hint ?? '', /remove the relabel rule or stage\.labels entry that creates reqId in the Alloy config/)
  })
})
