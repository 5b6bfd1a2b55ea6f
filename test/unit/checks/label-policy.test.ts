import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { judgeLabels, labelPolicyOutcome, lokiOwnExplanation, pipelineStreams, policyViolation, streamLabelsOutcome, violationHint } from '../../../src/lib/checks/label-policy.ts'
import { DEFAULT_POLICY } from '../../../src/lib/config/settings.ts'
import type { Labels, LokiClient } from '../../../src/lib/loki/client.ts'

describe('judgeLabels', () => {
  test("the stack's labels pass; the summary names each with its values and streams", () => {
    const verdict = judgeLabels(
      [
        { name: 'app', values: 1, streams: 4 },
        { name: 'env', values: 1, streams: 4 },
        { name: 'service', values: 3, streams: 4 },
        { name: 'stream', values: 2, streams: 4 },
      ],
      DEFAULT_POLICY,
    )
    assert.deepEqual(verdict.violations, [])
    assert.deepEqual(verdict.lokiOwn, [])
    const outcome = labelPolicyOutcome(verdict, '4 streams')
    assert.equal(outcome.status, 'pass')
    assert.equal(outcome.detail, '4 streams: labels app (1 value in 4 streams), env (1 value in 4 streams), service (3 values in 4 streams), stream (2 values in 4 streams)')
  })

  test("__stream_shard__ with more values than the limit is Loki's own: information, never a violation", () => {
    const verdict = judgeLabels(
      [
        { name: 'app', values: 1, streams: 150 },
        { name: '__stream_shard__', values: 146, streams: 146 },
      ],
      DEFAULT_POLICY,
    )
    assert.deepEqual(verdict.violations, [])
    assert.deepEqual(
      verdict.lokiOwn.map((l) => l.use.name),
      ['__stream_shard__'],
    )
    const outcome = labelPolicyOutcome(verdict, '150 streams')
    assert.equal(outcome.status, 'pass')
    assert.match(outcome.detail, /__stream_shard__ \(146 values in 146 streams\) is Loki's own, added by stream sharding \(limits_config\.shard_streams\)/)
    assert.match(outcome.detail, /harmless/)
    assert.doesNotMatch(outcome.detail, /remove the relabel rule/)
    assert.equal(outcome.hint, undefined)
  })

  test('service_name says what adds it and how the stack turns it off', () => {
    const explanation = lokiOwnExplanation('service_name') ?? ''
    assert.match(explanation, /limits_config\.discover_service_name/)
    assert.match(explanation, /discover_service_name: \[\]/)
  })

  test("__time_shard__, detected_level and any other __ label are Loki's, with nothing to remove from Alloy", () => {
    assert.match(lokiOwnExplanation('__time_shard__') ?? '', /time_sharding_enabled.*nothing to change in Alloy/)
    assert.match(lokiOwnExplanation('detected_level') ?? '', /discover_log_levels.*structured metadata|structured metadata.*discover_log_levels/)
    assert.match(lokiOwnExplanation('__aggregated_metric__') ?? '', /Loki-internal.*nothing to change in Alloy/)
    assert.equal(lokiOwnExplanation('reqId'), undefined)
    assert.equal(lokiOwnExplanation('_private'), undefined)
  })

  test("Loki's own labels are noted on a failure too, and only the violations get the relabel fix", () => {
    const outcome = labelPolicyOutcome(
      judgeLabels(
        [
          { name: 'reqId', values: 23 },
          { name: 'service_name', values: 1 },
          { name: 'app', values: 1 },
        ],
        DEFAULT_POLICY,
      ),
      '{app="x"}',
    )
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.detail, /^reqId \(23 values\) is a label; it must stay a JSON field — every value/)
    assert.match(outcome.detail, /service_name \(1 value\) is Loki's own/)
    assert.match(outcome.hint ?? '', /creates reqId in the Alloy config/)
    assert.doesNotMatch(outcome.hint ?? '', /service_name/)
    assert.match(outcome.hint ?? '', /TROUBLESHOOTING\.md#high-cardinality-labels/)
  })
})

describe('policyViolation', () => {
  test('forbidden, not allowed and too many values, each with its own fix', () => {
    const forbidden = policyViolation({ name: 'userId', values: 5 }, DEFAULT_POLICY)
    const unknown = policyViolation({ name: 'pod' }, DEFAULT_POLICY)
    const crowded = policyViolation({ name: 'service', values: 101, streams: 101 }, DEFAULT_POLICY)
    assert.equal(forbidden?.kind, 'forbidden')
    assert.equal(unknown?.kind, 'not-allowed')
    assert.equal(unknown?.problem, 'pod is not an allowed label')
    assert.equal(crowded?.kind, 'too-many-values')
    assert.equal(crowded?.problem, 'service (101 values in 101 streams) has more values than the limit of 100')
    assert.equal(policyViolation({ name: 'service', values: 100 }, DEFAULT_POLICY), undefined)
    const hint = violationHint([forbidden!, unknown!, crowded!])
    assert.match(hint, /creates userId, pod in the Alloy config/)
    assert.match(hint, /service takes too many values: .*policy\.maxValuesPerLabel/)
  })

  test('a policy that allows a label lets it pass', () => {
    assert.equal(policyViolation({ name: 'pod', values: 3 }, { ...DEFAULT_POLICY, allowedLabels: [...DEFAULT_POLICY.allowedLabels, 'pod'] }), undefined)
  })
})

describe('pipelineStreams', () => {
  test("counts the streams the pipeline made, Loki's shards merged back", () => {
    const base = { app: 'a', env: 'test', service_name: 'app', stream: 'stdout' }
    const series = [
      ...Array.from({ length: 5 }, (_, i) => ({ ...base, service: 'app', __stream_shard__: String(i) })),
      { ...base, service: 'app' },
      { ...base, service: 'worker' },
      { ...base, service: 'worker', __time_shard__: '1796180000_1796181800' },
    ]
    assert.equal(pipelineStreams(series), 2)
    assert.equal(pipelineStreams([{ a: '1' }, { a: '2' }]), 2)
  })
})

describe('streamLabelsOutcome', () => {
  const base = { app: 'a', env: 'test', service: 'app', stream: 'stdout' }
  const lokiWith = (series: Labels[], asked: string[][] = []) =>
    ({
      series: async (matchers: string[]) => {
        asked.push(matchers)
        return series
      },
    }) as unknown as LokiClient
  const range = { start: 0n, end: 1n }

  test('asks the series API for the selector, and counts values and streams per label', async () => {
    const asked: string[][] = []
    const series = [base, { ...base, service: 'worker' }, { ...base, __stream_shard__: '1' }]
    const found = await streamLabelsOutcome(lokiWith(series, asked), DEFAULT_POLICY, '{app="a"}', range)
    assert.deepEqual(asked, [['{app="a"}']])
    assert.deepEqual(found?.labels, ['__stream_shard__', 'app', 'env', 'service', 'stream'])
    assert.equal(found?.outcome.status, 'pass')
    assert.match(
      found?.outcome.detail ?? '',
      /^3 streams of \{app="a"\}, 2 before Loki split them: labels app \(1 value in 3 streams\), env \(1 value in 3 streams\), service \(2 values in 3 streams\), stream \(1 value in 3 streams\); __stream_shard__ \(1 value in 1 stream\) is Loki's own/,
    )
  })

  test('a label made of request ids fails with its counts; no streams is undefined', async () => {
    const series = Array.from({ length: 4 }, (_, i) => ({ ...base, reqId: `r-${i}` }))
    const found = await streamLabelsOutcome(lokiWith(series), DEFAULT_POLICY, '{app="a"}', range)
    assert.equal(found?.outcome.status, 'fail')
    assert.match(found?.outcome.detail ?? '', /^reqId \(4 values in 4 streams\) is a label; it must stay a JSON field/)
    assert.equal(await streamLabelsOutcome(lokiWith([]), DEFAULT_POLICY, '{app="a"}', range), undefined)
  })
})
