/** Pattern summaries: counts, shares, trends, levels, and what counts as before a time. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { patternLevel, patternStepSeconds, summarizePatterns } from '../../../src/lib/incident/patterns.ts'

const S = 1_000_000_000n
const start = 1_700_000_000n * S
const end = start + 600n * S

describe('summarizePatterns', () => {
  test('counts, shares and trends on the range grid, largest first', () => {
    const rows = summarizePatterns(
      [
        { pattern: 'b <_>', samples: [[1_700_000_000, 1]] },
        {
          pattern: 'a <_>',
          samples: [
            [1_700_000_000, 2],
            [1_700_000_590, 1],
          ],
        },
      ],
      { start, end, stepSeconds: 60 },
    )
    assert.deepEqual(
      rows.map((r) => [r.pattern, r.count, r.share, r.trend]),
      [
        ['a <_>', 3, 0.75, [2, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
        ['b <_>', 1, 0.25, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
      ],
    )
    assert.equal(rows[0].isNew, undefined)
  })

  test('before a time means in a step that ends by then: the step that straddles it counts after', () => {
    const since = start + 300n * S
    const rows = summarizePatterns(
      [
        { pattern: 'old', samples: [[1_700_000_290, 1]] },
        { pattern: 'straddles', samples: [[1_700_000_295, 4]] },
        { pattern: 'fresh', samples: [[1_700_000_300, 2]] },
        { pattern: 'empty', samples: [] },
      ],
      { start, end, stepSeconds: 10, newSince: since },
    )
    assert.deepEqual(
      rows.map((r) => [r.pattern, r.before, r.after, r.isNew]),
      [
        ['straddles', 0, 4, true],
        ['fresh', 0, 2, true],
        ['old', 1, 0, false],
        ['empty', 0, 0, false],
      ],
    )
  })
})

test("a pattern's level: Loki's where it knows one, else pino's in the text, names or numbers", () => {
  assert.equal(patternLevel({ pattern: 'x', level: 'error' }), 'error')
  assert.equal(patternLevel({ pattern: '{"level":"error","msg":<_>}', level: 'unknown' }), 'error')
  assert.equal(patternLevel({ pattern: '{"level":50,"msg":<_>}', level: '' }), 'error')
  assert.equal(patternLevel({ pattern: 'GET /health <_>' }), undefined)
})

test('the step: about 40 points, whole 10-second buckets of the ingester', () => {
  assert.equal(patternStepSeconds(start, start + 3600n * S), 90)
  assert.equal(patternStepSeconds(start, start + 60n * S), 10)
  assert.equal(patternStepSeconds(start, start + 1200n * S, 240), 10)
})

test('resolveLevels: only patterns of unknown level are looked up; a pattern Loki refuses as a filter stays unknown', async () => {
  const { resolveLevels } = await import('../../../src/lib/incident/patterns.ts')
  const { UsageError } = await import('../../../src/lib/errors.ts')
  const rows = summarizePatterns(
    [
      { pattern: '<_>', level: 'unknown', samples: [[1_700_000_000, 40]] },
      { pattern: '<_>disk nearly full on host<_>', level: 'unknown', samples: [[1_700_000_000, 40]] },
      { pattern: '<_>known already here now<_>', level: 'warn', samples: [[1_700_000_000, 40]] },
    ],
    { start, end, stepSeconds: 60 },
  )
  const asked: string[] = []
  await resolveLevels(
    {
      queryRange: async ({ query }) => {
        asked.push(query)
        if (query.endsWith('|> "<_>"')) throw new UsageError('Loki rejected the request: at least one literal is required')
        return { resultType: 'streams', result: [{ stream: {}, values: [['1', '{"level":60,"msg":"disk nearly full on host"}']] }] }
      },
    },
    '{app="x"}',
    { start, end },
    rows,
  )
  assert.equal(asked.length, 2)
  assert.deepEqual(
    rows.map((r) => [r.pattern, r.level]),
    [
      ['<_>', undefined],
      ['<_>disk nearly full on host<_>', 'fatal'],
      ['<_>known already here now<_>', 'warn'],
    ],
  )
})
