/** Volume summaries: shares, the comparison and its order, trends on the range's grid. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { volumeBy, volumeTable } from '../../../src/lib/incident/volume.ts'
import type { SampleSeries, VolumeParams } from '../../../src/lib/loki/client.ts'

const S = 1_000_000_000n
const start = 1_700_000_000n * S
const end = start + 400n * S
const vector = (bytes: Record<string, number>): SampleSeries[] =>
  Object.entries(bytes).map(([service, v]) => ({ metric: service === '' ? ({} as Record<string, string>) : { service }, value: [0, String(v)] }))

test('shares of the total; with --compare, the previous range and the change, who grew most first', async () => {
  const asked: VolumeParams[] = []
  const client = {
    volume: async (params: VolumeParams) => {
      asked.push(params)
      return params.start === start ? vector({ app: 600, gateway: 300, '': 100 }) : vector({ app: 550, gateway: 100, gone: 50 })
    },
  }
  const report = await volumeBy(client, { selector: '{app="x"}', by: 'service', start, end, compareNs: 3600n * S })
  assert.deepEqual(asked[1], { query: '{app="x"}', targetLabels: ['service'], limit: 1000, start: start - 3600n * S, end: end - 3600n * S })
  assert.equal(report.totalBytes, 1000)
  assert.equal(report.compared?.totalBytes, 700)
  assert.deepEqual(
    report.rows.map((r) => [r.value, r.bytes, r.share, r.previousBytes, r.change]),
    [
      ['gateway', 300, 0.3, 100, 2],
      ['', 100, 0.1, 0, null],
      ['app', 600, 0.6, 550, 600 / 550 - 1],
      ['gone', 0, 0, 50, -1],
    ],
  )
})

test('--limit keeps the top rows; the total, the shares and the count of values are over every one Loki has', async () => {
  const asked: VolumeParams[] = []
  const client = {
    volume: async (params: VolumeParams) => {
      asked.push(params)
      return vector({ a: 300, b: 300, c: 400 })
    },
  }
  const report = await volumeBy(client, { selector: '{app=~"x.+"}', by: 'service', start, end, limit: 1 })
  assert.equal(asked[0].limit, 1000)
  assert.equal(report.totalBytes, 1000)
  assert.equal(report.values, 3)
  assert.equal(report.valuesCut, false)
  assert.deepEqual(
    report.rows.map((r) => [r.value, r.share]),
    [['c', 0.4]],
  )
})

test('trends: one volume request a step on the range grid (never volume_range, which Loki prorates from its cache), largest row first', async () => {
  const asked: [bigint, bigint][] = []
  const client = {
    volume: async ({ start: from, end: to }: VolumeParams) => {
      asked.push([from, to])
      if (from === start && to === end) return vector({ app: 30, gateway: 5 })
      const step = Number((from - start) / (10n * S))
      return step === 0 ? vector({ app: 10 }) : step === 38 ? vector({ app: 20, gateway: 5 }) : []
    },
  }
  const report = await volumeBy(client, { selector: '{app="x"}', by: 'service', start, end, trend: true })
  assert.equal(report.stepSeconds, 10)
  assert.equal(asked.length, 41)
  assert.deepEqual(asked.at(-1), [start + 390n * S, end], 'the last step ends with the range')
  assert.deepEqual(
    report.rows.map((r) => [r.value, r.trend?.length, r.trend?.[0], r.trend?.[38], r.trend?.at(-1)]),
    [
      ['app', 40, 10, 20, 0],
      ['gateway', 40, 0, 5, 0],
    ],
  )
})

test('the table: (none) for streams without the label, the change or "new", a trend column only when asked; values neutralized', async () => {
  const client = { volume: async (params: VolumeParams) => (params.start === start ? vector({ 'a\u001b[2J': 600, '': 400 }) : vector({ 'a\u001b[2J': 300 })) }
  const report = await volumeBy(client, { selector: '{app="x"}', by: 'service', start, end, compareNs: 3600n * S })
  const table = volumeTable(report, { sparklines: false })
  assert.deepEqual(table.head, ['service', 'bytes', 'share', 'before', 'change'])
  assert.deepEqual(table.rows, [
    ['(none)', '400 bytes', '40.0%', '0 bytes', 'new'],
    ['a\\x1b[2J', '600 bytes', '60.0%', '300 bytes', '+100%'],
  ])
  const withTrend = volumeTable({ ...report, compared: undefined, rows: report.rows.map((row) => ({ ...row, trend: [1, 2, 3] })) }, { sparklines: true })
  assert.deepEqual(withTrend.head, ['service', 'bytes', 'share', 'trend'])
  assert.equal(withTrend.rows[0].length, 4)
})
