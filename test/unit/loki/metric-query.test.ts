import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { UsageError } from '../../../src/lib/errors.ts'
import { DEFAULT_QUERY_LIMITS, LimitRefusal, type LokiClient } from '../../../src/lib/loki/client.ts'
import { fetchMetricRange, metricStep } from '../../../src/lib/loki/metric-query.ts'

const HOUR = 3_600_000_000_000n
const END = 1_800_000_000n * 1_000_000_000n

describe('metricStep', () => {
  const hour = { start: END - HOUR, end: END }
  test("Loki's step in seconds, for a step within the range and Loki's 11,000 points", () => {
    assert.equal(metricStep('1m', hour), '60')
    assert.equal(metricStep('1h', hour), '3600')
    assert.equal(metricStep('500ms', hour), '0.5')
  })
  test('refused before sending: under a millisecond, more than 11,000 points, longer than the range', () => {
    assert.throws(
      () => metricStep('1ns', hour),
      (e: UsageError) => e instanceof UsageError && /at least 328ms/.test(e.render()),
    )
    assert.throws(() => metricStep('100ms', hour), /more than Loki's 11000 points per series over 1h00m/)
    assert.throws(
      () => metricStep('100000d', hour),
      (e: UsageError) => /longer than the range \(1h00m\)/.test(e.message) && /at most 1h00m/.test(e.hint ?? ''),
    )
  })
})

describe('fetchMetricRange', () => {
  test('a refusal whose measured length leaves no room for any piece ends the query, not a loop of requests', { timeout: 10_000 }, async () => {
    let asked = 0
    const client = {
      queryLimits: async () => DEFAULT_QUERY_LIMITS,
      queryRange: async () => {
        asked++
        // A turn of the event loop, as a request takes: a loop of refusals must not starve the test's timeout.
        await new Promise((resolve) => setImmediate(resolve))
        // What Loki 3.6.2 said of a 1h range with a step of 100000d: it aligns the start to the step.
        throw new LimitRefusal(
          'the query time range exceeds the limit (query length: 2400000h1m0s, limit: 30d1h)',
          { maxQueryLengthNs: 721n * HOUR },
          'narrow it',
          2_400_000n * HOUR,
        )
      },
    } as unknown as LokiClient
    await assert.rejects(fetchMetricRange(client, { query: 'count_over_time({app="a"}[1m])', start: END - HOUR, end: END, step: '8640000000' }), LimitRefusal)
    assert.ok(asked <= 2, `${asked} requests`)
  })
})
