import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { analyzeLabels } from '../../../src/lib/loki/cardinality.ts'

describe('analyzeLabels', () => {
  test('no series: an empty report', () => {
    assert.deepEqual(analyzeLabels([]), { totalStreams: 0, labels: [] })
  })

  test('counts distinct values and the streams carrying each label', () => {
    const report = analyzeLabels([
      { app: 'cogni-template', service: 'app', stream: 'stdout' },
      { app: 'cogni-template', service: 'app', stream: 'stderr' },
      { app: 'cogni-template', service: 'worker', stream: 'stdout' },
      { app: 'other', stream: 'stdout' },
    ])
    assert.equal(report.totalStreams, 4)
    const byLabel = Object.fromEntries(report.labels.map((l) => [l.label, l]))
    assert.deepEqual(byLabel.app, { label: 'app', uniqueValues: 2, streams: 4, sampleValues: ['cogni-template', 'other'] })
    assert.deepEqual(byLabel.service, { label: 'service', uniqueValues: 2, streams: 3, sampleValues: ['app', 'worker'] })
    assert.deepEqual(byLabel.stream, { label: 'stream', uniqueValues: 2, streams: 4, sampleValues: ['stdout', 'stderr'] })
  })

  test('highest cardinality first, then most streams, then by name', () => {
    const report = analyzeLabels([{ a: '1', b: '1', c: '1', reqId: 'r1' }, { a: '1', b: '2', reqId: 'r2' }, { a: '1', b: '2', c: '2', reqId: 'r3' }, { z: 'only' }])
    assert.deepEqual(
      report.labels.map((l) => [l.label, l.uniqueValues, l.streams]),
      [
        ['reqId', 3, 3],
        ['b', 2, 3],
        ['c', 2, 2],
        ['a', 1, 3],
        ['z', 1, 1],
      ],
    )
  })

  test('sample values: at most five, most frequent first, ties alphabetical', () => {
    const series = [
      ...Array.from({ length: 3 }, () => ({ pod: 'p-hot' })),
      ...Array.from({ length: 2 }, () => ({ pod: 'p-warm' })),
      ...['p-d', 'p-c', 'p-b', 'p-a', 'p-e'].map((pod) => ({ pod })),
    ]
    const [pod] = analyzeLabels(series).labels
    assert.equal(pod.uniqueValues, 7)
    assert.equal(pod.streams, 10)
    assert.deepEqual(pod.sampleValues, ['p-hot', 'p-warm', 'p-a', 'p-b', 'p-c'])
  })

  test('an empty value counts as a value', () => {
    const [label] = analyzeLabels([{ env: '' }, { env: 'prod' }]).labels
    assert.equal(label.uniqueValues, 2)
  })
})
