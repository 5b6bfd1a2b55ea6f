import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { type DoctorContext, doctorChecks, parseAlloyConfig, parseCompose, readingsFile } from '../../../src/lib/checks/doctor.ts'
import type { CheckOutcome } from '../../../src/lib/checks/runner.ts'
import { DEFAULT_POLICY } from '../../../src/lib/config/settings.ts'
import { UsageError } from '../../../src/lib/errors.ts'
import type { Labels, LokiClient } from '../../../src/lib/loki/client.ts'
import { type CounterReading, keepReading, loadReadings, pruneReadings } from '../../../src/lib/metrics.ts'
import { REPO } from '../../support/loki.ts'

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
  test("Loki started inside the window: its counter is the window's count, exact, read once", async () => {
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
    assert.deepEqual(
      kept.map((r) => [r.addr, r.atMs, r.processStart]),
      [[ADDR, NOW_MS, BEFORE_WINDOW / 1000]],
    )
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
    assert.match(
      outcome.detail,
      /^no lines discarded since 2026-12-02T05:10:00Z, obs's oldest reading inside the last 1h \(50m00s of it\); 5 discarded since Loki started at 2026-12-02T03:00:00Z, before the window began, up to that reading, not counted/,
    )
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
    assert.deepEqual(
      loadReadings(file).map((r) => r.orgId ?? null),
      [null, 'team-a'],
    )
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
    assert.ok(
      pruned.every((r, i) => i === 0 || r.atMs > pruned[i - 1].atMs),
      'oldest first',
    )
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
    assert.match(outcome.detail, /^122 streams of \{app=~"\.\+"\}, 2 before Loki split them: labels /)
    assert.match(outcome.detail, /__stream_shard__ \(120 values in 120 streams\) is Loki's own, added by stream sharding/)
  })
})

describe('doctor alloy-config-labels', () => {
  const rule = (target: string, source = '__meta_docker_container_label_x') => `  rule {\n    source_labels = ["${source}"]\n    target_label  = "${target}"\n  }\n`
  const check = (text: string) => run(context({} as LokiClient, { alloyConfig: parseAlloyConfig(text) }), 'alloy-config-labels')

  test("Alloy's temporary __ labels are not labels; reqId is, with the line and the relabel fix", async () => {
    assert.equal((await check(`discovery.relabel "containers" {\n${rule('__tmp_service')}${rule('service')}}\n`)).status, 'pass')
    const outcome = await check(`discovery.relabel "containers" {\n${rule('__tmp_service')}${rule('reqId')}}\n`)
    assert.equal(outcome.status, 'fail')
    assert.equal(outcome.detail, 'a relabel rule sets the label reqId (line 8) — per-request values as labels create a stream per value')
    assert.match(outcome.hint ?? '', /remove the relabel rule or stage\.labels entry that creates reqId in the Alloy config/)
  })

  test("the stack's own config passes; its comments, URLs and calls are read as Alloy reads them", async () => {
    const config = parseAlloyConfig(readFileSync(join(REPO, 'stack/alloy-config.alloy'), 'utf8'))
    assert.deepEqual(
      config.labels.map((l) => [l.name, l.setBy]),
      [
        ['service', 'relabel'],
        ['stream', 'relabel'],
        ['app', 'relabel'],
        ['env', 'relabel'],
      ],
    )
    assert.equal((await run(context({} as LokiClient, { alloyConfig: config }), 'alloy-config-labels')).status, 'pass')
  })

  test('stage.labels keys, container ids, stage.docker; what comments and strings hide is not read', async () => {
    const text = [
      '// target_label = "reqId" in a comment',
      '/* rule { target_label = "userId" } */',
      'loki.write "x" {',
      '  endpoint { url = "http://loki:3100/loki/api/v1/push" } // target_label = "attemptId"',
      '}',
      'discovery.relabel "c" {',
      rule('container', '__meta_docker_container_name').trimEnd(),
      '}',
      'loki.process "p" {',
      '  stage.labels {',
      '    values = { reqId = "", "level" = "" }',
      '  }',
      '  stage.docker {}',
      '  forward_to = [loki.write.x.receiver]',
      '}',
    ].join('\n')
    const config = parseAlloyConfig(text)
    assert.deepEqual(
      config.labels.map((l) => [l.name, l.line, l.setBy, l.fromContainer]),
      [
        ['container', 9, 'relabel', true],
        ['reqId', 14, 'stage.labels', false],
        ['level', 14, 'stage.labels', false],
      ],
    )
    assert.deepEqual(config.stageDocker, [16])
    const outcome = await check(text)
    assert.equal(outcome.status, 'fail')
    assert.match(
      outcome.detail,
      /^a relabel rule sets the label container \(line 9\); stage\.labels turns reqId into a label \(line 14\); stage\.labels turns level into a label \(line 14\); container ids or names become labels \(line 9; new values at every deploy\)/,
    )
    assert.match(outcome.hint ?? '', /__meta_docker_container_label_com_docker_compose_service/)
    assert.equal((await check('loki.process "p" {\n  stage.docker {}\n  forward_to = []\n}\n')).status, 'warn')
  })

  test('values Alloy computes are not guessed at; literals of the wrong type are refused', () => {
    assert.deepEqual(parseAlloyConfig('rule {\n  target_label = sys.env("LABEL")\n  source_labels = concat(["a"], ["b"])\n}\n').labels, [])
    assert.deepEqual(parseAlloyConfig('a = `raw\n"string"`\nb = 1 +\n  2\nc = f(x)[0].y\nd = [\n  1,\n  2,\n]\n').labels, [])
    assert.throws(() => parseAlloyConfig('rule {\n  target_label = 5\n}\n', 'Alloy config a.alloy'), {
      name: 'UsageError',
      message: 'Alloy config a.alloy line 2: rule.target_label is a number; expected a string, the label to set',
    })
    assert.throws(() => parseAlloyConfig('x "y" {\n  rule {\n    source_labels = [1]\n  }\n}\n'), {
      message: /^Alloy config line 3: x "y"\.rule\.source_labels holds a number; expected label names$/,
    })
    assert.throws(() => parseAlloyConfig('stage.labels {\n  values = "level"\n}\n'), { message: /line 2: stage\.labels\.values is a string; expected an object/ })
  })
})

describe('parseAlloyConfig refuses what is not Alloy syntax, in one line', () => {
  const cases: [string, RegExp][] = [
    ['stage.labels {\n', /line 1: the "\{" of stage\.labels is never closed/],
    ['a = "unterminated\n', /line 1: a string is not closed on its line/],
    ['a = [1, 2', /line 1: the "\[" is never closed/],
    ['x "y" { a = 1 b = 2 }', /line 1: expected a new line, found "b"/],
    ['}', /line 1: a "\}" closes no block/],
    ['a.b = 1', /line 1: expected "\{" after a\.b, found "="/],
    ['a = "\\q"', /line 1: a string has an unknown escape "\\q"/],
    ['\n\n@', /line 3: unexpected character "@"/],
    ['/* open', /line 1: a \/\* comment is never closed/],
    [`a = ${'['.repeat(1000)}`, /nested deeper than 200 levels/],
    ['b {\n'.repeat(1000), /nested deeper than 200 levels/],
    [`a = ${'!'.repeat(100_000)}true`, /nested deeper than 200 levels/],
    [`a = ${'f('.repeat(100_000)}`, /nested deeper than 200 levels/],
    ['a = \u001b[31m', /unexpected character "\?"/],
    ['"label" {}', /expected a block or an attribute name, found a string/],
    ['a = ', /expected a value, found the end of the file/],
  ]
  for (const [text, message] of cases) {
    test(JSON.stringify(text.slice(0, 40)), () => {
      assert.throws(
        () => parseAlloyConfig(text),
        (error: Error) => error instanceof UsageError && message.test(error.message) && !error.message.includes('\n'),
      )
    })
  }
})

describe('doctor compose checks', () => {
  const checks = async (text: string) => {
    const ctx = context({} as LokiClient, { compose: parseCompose(text) })
    const outcomes: Record<string, CheckOutcome> = {}
    for (const id of ['compose-docker-socket', 'compose-ports', 'compose-images', 'compose-app-env']) outcomes[id] = await run(ctx, id)
    return outcomes
  }

  test("the stack's compose file passes", async () => {
    const outcomes = await checks(readFileSync(join(REPO, 'stack/docker-compose.yml'), 'utf8'))
    for (const [id, outcome] of Object.entries(outcomes)) assert.equal(outcome.status, 'pass', `${id}: ${outcome.detail}`)
  })

  test("every form Compose accepts is understood: short and long syntax, list and mapping, anchors, merge keys, extension fields, Compose's tags", async () => {
    const text = [
      'x-alloy: &alloy',
      '  image: grafana/alloy:v1.9.2',
      '  environment:',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's own interpolation, as the file has it
      '    APP_ENV: ${APP_ENV:?}',
      '    ALLOY_LOG_LEVEL: null',
      '    RETRIES: 3',
      '  labels: [team=obs]',
      'x-ports: &loopback "127.0.0.1:3100:3100"',
      'services:',
      '  alloy:',
      '    <<: *alloy',
      '    labels: { team: obs }',
      '    ports:',
      '      - target: 12345',
      '        published: "12345"',
      '        host_ip: 127.0.0.1',
      '    volumes:',
      '      - type: bind',
      '        source: /var/run/docker.sock',
      '        target: /var/run/docker.sock',
      '        read_only: true',
      '  loki:',
      '    image: grafana/loki@sha256:0123',
      '    ports: [*loopback, "[::1]:3101:3100"]',
      '    volumes: ["/var/run/docker.sock:/var/run/docker.sock:ro,z"]',
      '    environment: [A=1, B]',
      '    dns: !reset []',
      '  __proto__:',
      '    image: busybox:1.37',
    ].join('\n')
    const compose = parseCompose(text)
    assert.deepEqual(
      compose.services.map((s) => [s.name, s.image, s.environment]),
      [
        ['alloy', 'grafana/alloy:v1.9.2', ['APP_ENV', 'ALLOY_LOG_LEVEL', 'RETRIES']],
        ['loki', 'grafana/loki@sha256:0123', ['A', 'B']],
        ['__proto__', 'busybox:1.37', []],
      ],
    )
    assert.deepEqual(compose.services[0].ports, [{ text: '127.0.0.1:12345:12345', hostIp: '127.0.0.1' }])
    const outcomes = await checks(text)
    for (const [id, outcome] of Object.entries(outcomes)) assert.equal(outcome.status, 'pass', `${id}: ${outcome.detail}`)
  })

  test('what is wrong is named: a writable socket, ports on every interface, :latest, no APP_ENV', async () => {
    const outcomes = await checks(
      'services:\n  alloy:\n    image: grafana/alloy:latest\n    ports: [3100, "12345:12345", {target: 9090}]\n    volumes: [{source: /var/run/docker.sock, target: /var/run/docker.sock}]\n    environment: {OTHER: x}\n',
    )
    assert.match(outcomes['compose-docker-socket'].detail, /writable Docker socket \(alloy: \/var\/run\/docker\.sock:\/var\/run\/docker\.sock\)/)
    assert.match(outcomes['compose-ports'].detail, /published on every interface: alloy: 3100; alloy: 12345:12345; alloy: ::9090 —/)
    assert.match(outcomes['compose-images'].detail, /unpinned images: alloy: grafana\/alloy:latest/)
    assert.equal(outcomes['compose-app-env'].status, 'fail')
  })

  test('a finding about many services names ten and counts the rest; quoted text is neutralised', async () => {
    const services = Array.from({ length: 25 }, (_, i) => `  s${i}:\n    image: app\n`).join('')
    const outcomes = await checks(`services:\n${services}  "e\u009b31m":\n    image: "x\u202e:latest"\n`)
    assert.match(outcomes['compose-images'].detail, /^unpinned images: s0: app; .*s9: app; and 16 more —/)
    const named = await checks('services:\n  "e\u009b31m":\n    image: "x\u202e:latest"\n')
    assert.equal(named['compose-images'].detail.includes('\u009b') || named['compose-images'].detail.includes('\u202e'), false)
    assert.match(named['compose-images'].detail, /e\\x9b31m: x\\u202e:latest/)
  })
})

describe('parseCompose refuses what Compose would not run, in one line naming the place', () => {
  const bomb = [
    'a: &a ["x","x","x","x","x","x","x","x","x"]',
    ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
    'services: {s: {image: x}}',
  ].join('\n')
  const cases: [string, string | RegExp][] = [
    ['services:\n  loki:\n', 'compose file x.yml: services.loki is empty; expected a mapping (image, ports, volumes, environment, …)'],
    ['services:\n  loki:\n    ports: 3100\n', 'compose file x.yml: services.loki.ports is a number (3100); expected a list of ports such as "127.0.0.1:3100:3100"'],
    ['services:\n  loki:\n    image: 5\n', 'compose file x.yml: services.loki.image is a number (5); expected a string such as grafana/loki:3.6.2'],
    ['services:\n  loki:\n    volumes: [null]\n', /^compose file x\.yml: services\.loki\.volumes\[0\] is empty; expected a string such as/],
    ['services:\n  loki:\n    volumes: [{source: a, read_only: "yes"}]\n', /services\.loki\.volumes\[0\]\.read_only is a string \("yes"\); expected true or false/],
    ['services:\n  loki:\n    ports: [{host_ip: [a]}]\n', /services\.loki\.ports\[0\]\.host_ip is a list; expected a string/],
    ['services:\n  loki:\n    environment: [{A: 1}]\n', /services\.loki\.environment\[0\] is a mapping; expected a string such as APP_ENV=dev/],
    ['services:\n  loki:\n    environment: {A: [1]}\n', /services\.loki\.environment\.A is a list; expected a string, a number or true\/false/],
    ['services:\n  loki:\n    environment: APP_ENV=dev\n', /services\.loki\.environment is a string \("APP_ENV=dev"\); expected a list/],
    ['services: [loki, alloy]\n', /services is a list; expected a mapping of service names to services/],
    ['services: 7\n', /services is a number \(7\)/],
    ['name: x\n', /compose file x\.yml defines no services/],
    ['', /compose file x\.yml is empty/],
    ['# only a comment\n', /compose file x\.yml is empty/],
    ['\u0001\u0002junk', /the top level is a string \("\?\?junk"\); expected a mapping with services/],
    ['- a\n- b\n', /the top level is a list/],
    ['services:\n  "we\u001b[31mird":\n    image: 1\n', /services\["we\?\[31mird"\]\.image is a number/],
    ['services:\n  a: {image: x}\n  a: {image: y}\n', /malformed compose file x\.yml at line 3: services\.a is defined twice/],
    ['services:\n  a:\n    <<: 5\n', /at line 3: services\.a\.<< merges a number \(5\); expected a mapping or a list of mappings/],
    ['services:\n  a: *nope\n', /at line 2: services\.a refers to \*nope, which no anchor before it defines/],
    ['? [a]\n: 1\n', /the top level has a key that is not a plain value/],
    ['a: 1\n---\nb: 2\n', /malformed compose file x\.yml at line 2: Source contains multiple documents/],
    ['services:\n  a: [unclosed\n', /malformed compose file x\.yml at line \d+: /],
    ['['.repeat(5000), /malformed compose file x\.yml at line 1: nested deeper than the parser can follow/],
    [`services:\n  a:\n${Array.from({ length: 300 }, (_, i) => `${'  '.repeat(i + 2)}k:`).join('\n')}\n`, /nested deeper than 200 levels/],
    [bomb, /its aliases expand to more than 10 times its size \(an alias bomb\?\)/],
  ]
  for (const [text, message] of cases) {
    test(JSON.stringify(text.slice(0, 50)), () => {
      assert.throws(
        () => parseCompose(text, 'compose file x.yml'),
        (error: Error) => error instanceof UsageError && !error.message.includes('\n') && (typeof message === 'string' ? error.message === message : message.test(error.message)),
      )
    })
  }
})
