import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { isLokiAddedLabel, pushedLabels } from '../support/dataset.ts'
import { testLoki } from '../support/env.ts'

const { addr, dataset, config } = testLoki()
const env = { LOKI_ADDR: addr }

describe('ready, labels, series and query against the real Loki', () => {
  test('ready prints "ready" and exits 0', async () => {
    const result = await runObs(['ready'], { env })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'ready\n')
    const json = await runObs(['ready', '--json'], { env })
    assert.deepEqual({ ...JSON.parse(json.stdout), waitedMs: 0 }, { ready: true, address: addr, status: 200, message: 'ready', waitedMs: 0 })
  })

  test('ready against nothing exits 3 with one line naming the address', async () => {
    const result = await runObs(['ready', '--addr', 'http://127.0.0.1:1'])
    assert.equal(result.code, 3)
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr)
    assert.match(result.stderr, /http:\/\/127\.0\.0\.1:1/)
    assert.match(result.stderr, /connection refused/)
  })

  test("labels lists exactly the policy labels (and Loki's own, on a stock Loki), and the values of one label", async () => {
    const names = await runObs(['labels', '--since', '1h'], { env })
    assert.equal(names.code, 0, names.stderr)
    const listed = names.stdout.trimEnd().split('\n')
    assert.deepEqual(
      listed.filter((name) => !isLokiAddedLabel(name)),
      ['app', 'env', 'service', 'stream'],
    )
    // Stock Loki adds service_name on ingest and __stream_shard__ to the streams it splits.
    assert.deepEqual(listed.filter(isLokiAddedLabel), config === 'stock' ? ['__stream_shard__', 'service_name'] : [])
    const services = await runObs(['labels', 'service', '--json'], { env })
    assert.deepEqual(JSON.parse(services.stdout), { label: 'service', values: ['app', 'gateway', 'worker'] })
    const scoped = await runObs(['labels', 'stream', '--query', '{service="gateway"}'], { env })
    assert.equal(scoped.stdout, 'stdout\n')
  })

  test('series lists the streams and --analyze-labels counts values and streams', async () => {
    const key = (labels: Record<string, string>) => JSON.stringify(Object.entries(pushedLabels(labels)).sort())
    const pushed = new Set(dataset.entries.map((e) => key(e.labels)))
    const list = await runObs(['series', '{app="cogni-template"}', '--json'], { env })
    assert.equal(list.code, 0, list.stderr)
    const { series } = JSON.parse(list.stdout) as { series: Record<string, string>[] }
    // Every pushed stream, and on a stock Loki some of them split into shards.
    assert.deepEqual(new Set(series.map(key)), pushed)
    if (config === 'stock') assert.ok(series.length > pushed.size, `${series.length} streams from ${pushed.size} pushed: sharded`)
    else assert.equal(series.length, pushed.size)
    const analysis = await runObs(['series', '{app="cogni-template"}', '--analyze-labels', '--json'], { env })
    const report = JSON.parse(analysis.stdout) as { totalStreams: number; labels: { label: string; uniqueValues: number; streams: number }[] }
    assert.equal(report.totalStreams, series.length)
    assert.deepEqual(
      report.labels.find((l) => l.label === 'service'),
      { label: 'service', uniqueValues: 3, streams: series.length },
    )
    const table = await runObs(['series', '{app="cogni-template"}', '--analyze-labels'], { env })
    assert.match(table.stdout, /Total streams: \d+/)
    assert.match(table.stdout, /│ service\s+│ 3\s+│/)
  })

  test('an instant metric query prints a table of the levels', async () => {
    const query = 'sum by (level) (count_over_time({app="cogni-template"} | json [5m]))'
    const result = await runObs(['query', query], { env })
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /┌/)
    assert.match(result.stdout, /\{level="info"\}\s+│ \d+/)
    const jsonl = await runObs(['query', query, '-o', 'jsonl'], { env })
    const samples = jsonl.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { metric: { level: string }; value: string })
    assert.ok(samples.some((s) => s.metric.level === 'info' && Number(s.value) > 0))
  })
})
