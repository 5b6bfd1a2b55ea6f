/** The deploy verdict's comparisons: thresholds at their edges, windows, and what a failing check says. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type DeployContext, deployChecks, deployWindow, errorRateChanges, volumeChanges } from '../../../src/lib/checks/deploy.ts'
import { DEFAULT_DEPLOY_THRESHOLDS, type DeployThresholds } from '../../../src/lib/config/deploy-thresholds.ts'
import { UnavailableError, UsageError } from '../../../src/lib/errors.ts'
import type { QueryData, SampleSeries } from '../../../src/lib/loki/client.ts'

const t: DeployThresholds = { ...DEFAULT_DEPLOY_THRESHOLDS }
const m = (entries: Record<string, number>) => new Map(Object.entries(entries))
const S = 1_000_000_000n
const MIN = 60n * S

describe('errorRateChanges', () => {
  test('fails above the ratio only when the floor is met too', () => {
    // Over 10 minutes: 10 → 20 errors is 1 → 2 a minute (×2, at the floor); 1 → 5 is ×5 but 0.5 a minute.
    const changes = errorRateChanges(m({ app: 10, gateway: 1, worker: 30 }), m({ app: 20, gateway: 5, worker: 44 }), 10, t)
    assert.deepEqual(
      changes.map((c) => [c.service, c.before, c.after, c.failed]),
      [
        ['app', 1, 2, true],
        ['gateway', 0.1, 0.5, false],
        ['worker', 3, 4.4, false],
      ],
    )
  })

  test('errors where there were none fail at the floor; fewer errors never fail', () => {
    const changes = errorRateChanges(m({ app: 50 }), m({ app: 0, fresh: 10 }), 10, t)
    assert.deepEqual(
      changes.map((c) => [c.service, c.failed]),
      [
        ['app', false],
        ['fresh', true],
      ],
    )
    assert.equal(errorRateChanges(m({}), m({ fresh: 9 }), 10, t)[0].failed, false, '0.9 a minute is under the floor')
  })

  test('exactly the ratio passes: the limit is "more than"', () => {
    assert.equal(errorRateChanges(m({ app: 20 }), m({ app: 30 }), 10, t)[0].failed, false)
    assert.equal(errorRateChanges(m({ app: 20 }), m({ app: 31 }), 10, t)[0].failed, true)
  })
})

describe('volumeChanges', () => {
  test('fails outside the band, above the floor', () => {
    const changes = volumeChanges(
      m({ app: 100_000, quiet: 50_000, loud: 20_000, tiny: 2_000, same: 80_000 }),
      m({ app: 0, quiet: 13_000, loud: 81_000, tiny: 9_000, same: 81_000 }),
      t,
    )
    assert.deepEqual(
      changes.map((c) => [c.service, c.failed]),
      [
        ['app', true],
        ['loud', true],
        ['quiet', false],
        ['same', false],
        ['tiny', false],
      ],
    )
  })

  test('a new service above the floor is a shift; one below it is not', () => {
    assert.deepEqual(
      volumeChanges(m({}), m({ big: 20_000, small: 500 }), t).map((c) => c.failed),
      [true, false],
    )
  })
})

describe('coverage: a service measured over the time it existed', () => {
  test('errors a minute over the part of each window the service existed in; less than a minute before is not compared', () => {
    const coverage = new Map([
      ['started', { before: 0.2, after: 1 }],
      ['fresh', { before: 0, after: 0.5 }],
    ])
    const changes = errorRateChanges(m({ started: 4 }), m({ started: 20, fresh: 30 }), 10, t, coverage)
    assert.deepEqual(
      changes.map((c) => [c.service, c.before, c.after, c.failed, c.noHistory ?? false]),
      [
        ['fresh', 0, 6, false, true],
        ['started', 2, 2, false, false],
      ],
    )
    // Over the whole window the started service's 0.4 → 2 a minute would fail.
    assert.equal(errorRateChanges(m({ started: 4 }), m({ started: 20 }), 10, t)[0].failed, true)
  })

  test('bytes of a service that existed in part of a window are scaled to the whole window', () => {
    const coverage = new Map([['started', { before: 0.2, after: 1 }]])
    const [started] = volumeChanges(m({ started: 20_000 }), m({ started: 100_000 }), t, coverage, 10n * MIN)
    assert.deepEqual([started.before, started.after, started.failed], [100_000, 100_000, false])
    assert.equal(volumeChanges(m({ started: 20_000 }), m({ started: 100_000 }), t)[0].failed, true)
    const [fresh] = volumeChanges(m({}), m({ fresh: 100_000 }), t, new Map([['fresh', { before: 0, after: 1 }]]), 10n * MIN)
    assert.deepEqual([fresh.failed, fresh.noHistory], [false, true])
  })
})

describe('deployWindow', () => {
  const now = 1_800_000_000n * S
  test('from the deploy to now by default; --window cut to now, in whole seconds', () => {
    assert.deepEqual(deployWindow('now-10m', undefined, now), { deployedAt: now - 10n * MIN, windowNs: 10n * MIN, cut: undefined })
    assert.deepEqual(deployWindow('now-10m', '30m', now), { deployedAt: now - 10n * MIN, windowNs: 10n * MIN, cut: '10m00s' })
    assert.deepEqual(deployWindow('now-10m', '5m', now + 500_000_000n), { deployedAt: now + 500_000_000n - 10n * MIN, windowNs: 5n * MIN, cut: undefined })
  })
  test('a deploy less than a minute ago, in the future, or a window under a minute: exit 2', () => {
    assert.throws(
      () => deployWindow('now-30s', undefined, now),
      (e) => e instanceof UsageError && /less than a minute ago/.test(e.message),
    )
    assert.throws(
      () => deployWindow('now+5m', undefined, now),
      (e) => e instanceof UsageError && /in the future/.test(e.message),
    )
    assert.throws(
      () => deployWindow('now-10m', '30s', now),
      (e) => e instanceof UsageError && /shorter than a minute/.test(e.message),
    )
    assert.throws(() => deployWindow('yesterday', undefined, now), UsageError)
  })
})

describe('deployChecks', () => {
  const now = 1_800_000_000n * S
  const deployedAt = now - 10n * MIN
  const vector = (values: Record<string, number>): QueryData => ({
    resultType: 'vector',
    result: Object.entries(values).map(([service, v]) => ({ metric: { service }, value: [0, String(v)] })),
  })
  const volume = (values: Record<string, number>): SampleSeries[] => Object.entries(values).map(([service, v]) => ({ metric: { service }, value: [0, String(v)] }))
  const streams = (lines: string[], ts = deployedAt + MIN): QueryData => ({
    resultType: 'streams',
    result: [{ stream: { service: 'app' }, values: lines.map((line) => [String(ts), line] as [string, string]) }],
  })
  const errorLines = ['{"level":"error","msg":"db down 3"}', '{"level":"error","msg":"db down 12"}', '{"level":50,"msg":"db down 4"}', '{"level":"error","msg":"db down 7"}']
  /** A fake Loki: the error lines after the deploy, each service's first line, counts of error lines and of each template before. */
  function context(loki: Partial<DeployContext['loki']> & { firstLine?: bigint; templateBefore?: number } = {}): DeployContext {
    const { firstLine = deployedAt - 30n * MIN, templateBefore = 0, ...rest } = loki
    return {
      loki: {
        queryInstant: async ({ query, time }) => (query.includes('obs_msg') ? vector({ '': templateBefore }) : time === deployedAt ? vector({ app: 20 }) : vector({ app: 60 })),
        queryRange: async ({ query }) => (query.includes('| json level') ? streams(errorLines) : streams(['{"level":"info","msg":"up"}'], firstLine)),
        volume: async ({ start }) => (start < deployedAt ? volume({ app: 100_000 }) : volume({ app: 0 })),
        ...rest,
      },
      identity: { app: 'shop', service: 'app', env: 'prod' },
      thresholds: t,
      deployedAt,
      windowNs: 10n * MIN,
      now: () => now,
    }
  }
  const run = async (loki: Parameters<typeof context>[0] = {}) => Promise.all(deployChecks(context(loki)).map(async (c) => ({ id: c.id, ...(await c.run({})) })))

  test('each failing check names the service, the change, its thresholds and a query to look with', async () => {
    const asked: string[] = []
    const [errors, fresh, shift] = await run({
      queryInstant: async ({ query, time }) => {
        if (query.includes('obs_msg')) asked.push(query)
        return query.includes('obs_msg') ? vector({}) : time === deployedAt ? vector({ app: 20 }) : vector({ app: 60 })
      },
    })
    assert.equal(errors.status, 'fail')
    assert.equal(errors.detail, 'error lines up: app: 2.00 → 6.00 a minute (×3.00) (fails above ×1.5 and 1 a minute)')
    assert.match(
      errors.hint ?? '',
      /^look at them: obs query-range '\{app="shop", env="prod", service="app"\} \| json level \| __error__="" \| level=~"\(\?i\)error\|err\|fatal\|critical\|50\|60"' --from \S+ --to \S+$/,
    )
    assert.deepEqual(errors.thresholds, { errorRateRatio: 1.5, errorRateFloor: 1, windowSeconds: 600 })
    assert.equal(fresh.status, 'fail')
    assert.equal(fresh.detail, 'new error messages: app: db down <_> (4 lines)')
    assert.deepEqual(asked, ['sum(count_over_time({app="shop", env="prod", service="app"} |= "db down" | json obs_msg="msg" | obs_msg=~"db down .+" [600s]))'])
    assert.match(fresh.hint ?? '', /obs query-range '\{app="shop", env="prod", service="app"\} \|= "db down" \| json obs_msg="msg" \| obs_msg=~"db down \.\+"' --from/)
    assert.equal(shift.status, 'fail')
    assert.equal(shift.detail, 'volume outside ×0.25–×4: app: 100 kB → 0 bytes (×0.00)')
    assert.match(shift.hint ?? '', /obs volume '\{app="shop", env="prod"\}' --by service --from \S+ --to \S+ --compare 600s$/)
  })

  test('an unchanged deploy passes every check', async () => {
    const results = await run({ queryInstant: async ({ query }) => vector(query.includes('obs_msg') ? { '': 5 } : { app: 20 }), volume: async () => volume({ app: 100_000 }) })
    assert.deepEqual(
      results.map((r) => [r.id, r.status, r.detail]),
      [
        ['error-rate', 'pass', 'error lines app: 2.00 → 2.00 a minute (×1.00)'],
        ['new-patterns', 'pass', 'no new error messages: 1 error messages after the deploy, each seen before it'],
        ['volume-shift', 'pass', 'app: 100 kB → 100 kB (×1.00)'],
      ],
    )
  })

  test('a service whose first line is after the deploy: could not compare, warn in every check, never pass or fail', async () => {
    const results = await run({ firstLine: deployedAt + MIN, volume: async ({ start }) => (start < deployedAt ? volume({}) : volume({ app: 100_000 })) })
    assert.deepEqual(
      results.map((r) => [r.id, r.status]),
      [
        ['error-rate', 'warn'],
        ['new-patterns', 'warn'],
        ['volume-shift', 'warn'],
      ],
    )
    assert.match(results[1].detail, /^could not compare: no lines before the deploy to compare with for app$/)
    assert.match(results[0].detail, /^not enough history for app: less than a minute of lines before the deploy/)
  })

  test('a service that started 2 minutes before the deploy is measured over those 2 minutes', async () => {
    const results = await run({
      firstLine: deployedAt - 2n * MIN,
      templateBefore: 3,
      queryInstant: async ({ query, time }) => vector(query.includes('obs_msg') ? { '': 3 } : time === deployedAt ? { app: 4 } : { app: 20 }),
      volume: async ({ start }) => (start < deployedAt ? volume({ app: 20_000 }) : volume({ app: 100_000 })),
    })
    assert.deepEqual(
      results.map((r) => [r.id, r.status, r.detail]),
      [
        ['error-rate', 'pass', 'error lines app: 2.00 → 2.00 a minute (×1.00) (over the 2m00s before it existed)'],
        ['new-patterns', 'pass', 'no new error messages: 1 error messages after the deploy, each seen before it'],
        ['volume-shift', 'pass', 'app: 100 kB → 100 kB (×1.00) (over the 2m00s before it existed, scaled to the window)'],
      ],
    )
  })

  test('volumes switched off skip volume-shift with the setting that turns them on; new errors need no pattern ingester', async () => {
    const off = (feature: string) => async () => {
      throw new UnavailableError(feature, `${feature} are off`, `turn ${feature} on`)
    }
    const [errors, fresh, shift] = await run({ volume: off('volumes') })
    assert.equal(errors.status, 'fail')
    assert.equal(fresh.status, 'fail')
    assert.deepEqual([shift.status, shift.detail, shift.hint], ['skip', 'skipped: volumes are off', 'turn volumes on'])
  })
})
