/** Prometheus' text format as Loki and Alloy expose it, read for doctor's and the probe's counters. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gaugeValue, parseMetrics, sumBy } from '../../src/lib/metrics.ts'

const TEXT = `# HELP loki_write_request_duration_seconds Duration of send requests.
# TYPE loki_write_request_duration_seconds histogram
loki_write_request_duration_seconds_count{host="127.0.0.1:3100",status_code="204"} 120
loki_write_request_duration_seconds_count{host="127.0.0.1:3100",status_code="-1"} 5
loki_discarded_samples_total{reason="line_too_long",tenant="fake"} 3
loki_discarded_samples_total{reason="rate_limited",tenant="fake"} 1.5e2
label_with_escapes{msg="a \\"quoted\\" \\\\ and\\nnewline"} 1
process_start_time_seconds 1.7962e+09
loki_request_duration_seconds_bucket{le="+Inf"} +Inf
not a sample line
`

test('samples by name, with their labels unescaped and values as numbers; comments and junk skipped', () => {
  const all = parseMetrics(TEXT)
  assert.equal(all.length, 7)
  assert.equal(all.find((s) => s.name === 'loki_request_duration_seconds_bucket')?.value, Number.POSITIVE_INFINITY)
  assert.deepEqual(parseMetrics(TEXT, ['label_with_escapes']), [{ name: 'label_with_escapes', labels: { msg: 'a "quoted" \\ and\nnewline' }, value: 1 }])
  assert.deepEqual(
    parseMetrics(TEXT, ['loki_discarded_samples_total']).map((s) => [s.labels.reason, s.value]),
    [
      ['line_too_long', 3],
      ['rate_limited', 150],
    ],
  )
})

test('sums by one label, and the unlabelled gauge', () => {
  const samples = parseMetrics(TEXT)
  assert.deepEqual(
    [...sumBy(samples, 'loki_write_request_duration_seconds_count', 'status_code')],
    [
      ['204', 120],
      ['-1', 5],
    ],
  )
  assert.equal(gaugeValue(samples, 'process_start_time_seconds'), 1.7962e9)
  assert.equal(gaugeValue(samples, 'absent'), undefined)
})
