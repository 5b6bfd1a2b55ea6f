/** The deploy verdict's comparisons: thresholds at their edges, windows, and what a failing check says. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type DeployContext, deployChecks, deployWindow, errorRateChanges, newErrorPatterns, volumeChanges } from '../../../src/lib/checks/deploy.ts'
import { DEFAULT_DEPLOY_THRESHOLDS, type DeployThresholds } from '../../../src/lib/config/deploy-thresholds.ts'
import { UnavailableError, UsageError } from '../../../src/lib/errors.ts'
import type { PatternRow } from '../../../src/lib/incident/patterns.ts'
import type { PatternSeries, QueryData, SampleSeries } from '../../../src/lib/loki/client.ts'

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

describe('newErrorPatterns', () => {
  const row = (pattern: string, level: string | undefined, before: number, after: number): PatternRow => ({
    pattern,
    level,
    count: before + after,
    share: 0,
    trend: [],
    before,
    after,
    isNew: before === 0 && after > 0,
  })
  test('error-level patterns with no line before, at least the minimum after', () => {
    const rows = [row('a', 'error', 0, 3), row('b', 'error', 2, 3), row('c', 'info', 0, 9), row('d', 'fatal', 0, 1), row('e', undefined, 0, 4)]
    assert.deepEqual(
      newErrorPatterns(rows, t).map((r) => r.pattern),
      ['a', 'd'],
    )
    assert.deepEqual(
      newErrorPatterns(rows, { ...t, newPatternMinCount: 2 }).map((r) => r.pattern),
      ['a'],
    )
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
  const deploySeconds = Number(deployedAt / S)
  function context(loki: Partial<DeployContext['loki']>): DeployContext {
    return {
      loki: {
        queryInstant: async ({ time }) => (time === deployedAt ? vector({ app: 20 }) : vector({ app: 60 })),
        labelValues: async () => ['app'],
        queryRange: async () => ({ resultType: 'streams', result: [] }),
        patterns: async () => [],
        volume: async ({ start }) => (start < deployedAt ? volume({ app: 100_000 }) : volume({ app: 0 })),
        ...loki,
      },
      identity: { app: 'shop', service: 'app', env: 'prod' },
      thresholds: t,
      deployedAt,
      windowNs: 10n * MIN,
      now: () => now,
    }
  }
  const run = async (loki: Partial<DeployContext['loki']> = {}) => Promise.all(deployChecks(context(loki)).map(async (c) => ({ id: c.id, ...(await c.run({})) })))

  test('each failing check names the service, the change, its thresholds and a query to look with', async () => {
    const patterns: PatternSeries[] = [
      { pattern: '{"level":"error","msg":"db down <_>"}', level: '', samples: [[deploySeconds + 60, 4]] },
      { pattern: '{"level":"info","msg":"ok <_>"}', level: 'info', samples: [[deploySeconds - 300, 9]] },
    ]
    const [errors, fresh, shift] = await run({ patterns: async () => patterns })
    assert.equal(errors.status, 'fail')
    assert.equal(errors.detail, 'error lines up: app: 2.00 → 6.00 a minute (×3.00) (fails above ×1.5 and 1 a minute)')
    assert.match(
      errors.hint ?? '',
      /^look at them: obs query-range '\{app="shop", env="prod", service="app"\} \| json level \| __error__="" \| level=~"\(\?i\)error\|err\|fatal\|critical\|50\|60"' --from \S+ --to \S+$/,
    )
    assert.deepEqual(errors.thresholds, { errorRateRatio: 1.5, errorRateFloor: 1, windowSeconds: 600 })
    assert.equal(fresh.status, 'fail')
    assert.equal(fresh.detail, 'new error patterns: app: {"level":"error","msg":"db down <_>"} (4 lines)')
    assert.match(fresh.hint ?? '', /obs query-range '\{app="shop", env="prod", service="app"\} \|> "\{\\"level\\":\\"error\\",\\"msg\\":\\"db down <_>\\"\}"'/)
    assert.equal(shift.status, 'fail')
    assert.equal(shift.detail, 'volume outside ×0.25–×4: app: 100 kB → 0 bytes (×0.00)')
    assert.match(shift.hint ?? '', /obs volume '\{app="shop", env="prod"\}' --by service --from \S+ --to \S+ --compare 600s$/)
  })

  test('an unchanged deploy passes every check', async () => {
    const steady: PatternSeries[] = [
      {
        pattern: '{"level":"error","msg":"x"}',
        samples: [
          [deploySeconds - 300, 5],
          [deploySeconds + 300, 5],
        ],
      },
    ]
    const results = await run({ queryInstant: async () => vector({ app: 20 }), volume: async () => volume({ app: 100_000 }), patterns: async () => steady })
    assert.deepEqual(
      results.map((r) => [r.id, r.status]),
      [
        ['error-rate', 'pass'],
        ['new-patterns', 'pass'],
        ['volume-shift', 'pass'],
      ],
    )
  })

  test("a pattern whose level Loki does not know (the stack's config) gets its line's: pino's 50 is an error, 30 is not", async () => {
    const unknown: PatternSeries[] = [
      { pattern: '<_>db refused the connection again<_>', level: 'unknown', samples: [[deploySeconds + 60, 40]] },
      { pattern: '<_>cache warmed up in time<_>', level: 'unknown', samples: [[deploySeconds + 60, 40]] },
      { pattern: '<_>request served fine today<_>', level: 'unknown', samples: [[deploySeconds - 300, 40]] },
    ]
    const asked: string[] = []
    const [, fresh] = await run({
      patterns: async () => unknown,
      queryRange: async ({ query }) => {
        asked.push(query)
        const level = query.includes('refused') ? 50 : 30
        return { resultType: 'streams', result: [{ stream: {}, values: [['1', JSON.stringify({ level, msg: 'x' })]] }] }
      },
    })
    assert.equal(fresh.status, 'fail')
    assert.equal(fresh.detail, 'new error patterns: app: <_>db refused the connection again<_> (40 lines)')
    assert.equal(asked.length, 2, 'only the new patterns are looked up')
    assert.ok(asked.every((q) => q.startsWith('{app="shop", env="prod", service="app"} |> "<_>')))
  })

  test('a service without patterns before the deploy is noted, not failed: the ingester has no history of it', async () => {
    const onlyAfter: PatternSeries[] = [{ pattern: '{"level":"error","msg":"x"}', samples: [[deploySeconds + 60, 5]] }]
    const [, fresh] = await run({ patterns: async () => onlyAfter })
    assert.equal(fresh.status, 'pass')
    assert.match(fresh.detail, /no patterns before the deploy to compare with for app/)
  })

  test('patterns and volumes switched off skip their checks with the setting that turns them on', async () => {
    const off = (feature: string) => async () => {
      throw new UnavailableError(feature, `${feature} are off`, `turn ${feature} on`)
    }
    const [errors, fresh, shift] = await run({ patterns: off('patterns'), volume: off('volumes') })
    assert.equal(errors.status, 'fail')
    assert.deepEqual([fresh.status, fresh.detail, fresh.hint], ['skip', 'skipped: patterns are off', 'turn patterns on'])
    assert.deepEqual([shift.status, shift.detail, shift.hint], ['skip', 'skipped: volumes are off', 'turn volumes on'])
  })

  test('a window before the deploy older than the pattern ingester keeps is skipped', async () => {
    const checks = deployChecks({ ...context({}), deployedAt: now - 2n * 3600n * S, windowNs: 2n * 3600n * S })
    const fresh = await checks[1].run({})
    assert.equal(fresh.status, 'skip')
    assert.match(fresh.detail, /more than 3h ago/)
  })
})
