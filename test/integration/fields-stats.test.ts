/**
 * obs fields and obs stats on the real Loki, against lines pushed here with
 * known fields and counts; and the cost guard in front of query-range.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { pushAll } from '../support/loki.ts'

const { addr } = testLoki()
const env = { LOKI_ADDR: addr }
const APP = 'fields-test'
const LINES = 200

before(async () => {
  const now = BigInt(Date.now()) * 1_000_000n
  const values = Array.from({ length: LINES }, (_, i) => {
    const failed = i % 4 === 0
    const line = JSON.stringify({
      level: failed ? 'error' : 'info',
      status: failed ? 500 : 200,
      userId: `u-${i % 7}`,
      http: { method: i % 2 ? 'GET' : 'POST' },
      ms: i + 0.5,
      msg: failed ? 'payment failed' : 'ok',
    })
    return [(now - BigInt(LINES - i) * 1_000_000_000n).toString(), line]
  })
  await pushAll(addr, [[{ stream: { app: APP, env: 'test', service: 'app', stream: 'stdout' }, values }]])
})

interface FieldsDocument {
  sampled: number
  lokiUnavailable?: string
  fields: {
    name: string
    type: string
    parsers: string[]
    sampleCardinality: number
    lokiCardinality?: number
    lines: number
    top: { value: string; count: number }[]
    filter: string
    neverALabel: boolean
  }[]
}

test('fields: each field with its type, values and counts as pushed, a filter that finds its lines, and the policy mark', async () => {
  const result = await runObs(['fields', `{app="${APP}"}`, '--since', '1h', '--json'], { env })
  assert.equal(result.code, 0, result.stderr)
  const document = JSON.parse(result.stdout) as FieldsDocument
  assert.equal(document.sampled, LINES)
  const field = (name: string) => document.fields.find((f) => f.name === name)!
  assert.deepEqual(field('level').top, [
    { value: 'info', count: 150 },
    { value: 'error', count: 50 },
  ])
  assert.equal(field('status').type, 'int')
  assert.equal(field('status').filter, '| json | status>=200')
  assert.equal(field('ms').type, 'float')
  assert.equal(field('http_method').sampleCardinality, 2)
  assert.equal(field('userId').sampleCardinality, 7)
  assert.equal(field('userId').neverALabel, true)
  assert.deepEqual(field('msg').parsers, ['json'])
  if (document.lokiUnavailable === undefined) assert.equal(field('level').lokiCardinality, 2, "Loki's detected_fields agrees on level")

  // The filter obs prints is LogQL Loki runs, and finds the lines with that value.
  const filtered = await runObs(['query-range', `{app="${APP}"} ${field('level').filter}`, '--since', '1h', '--limit', '1000', '-o', 'raw'], { env })
  assert.equal(filtered.code, 0, filtered.stderr)
  assert.equal(filtered.stdout.trim().split('\n').length, 150)
})

test("stats: Loki's index estimate with the caveat that the ingesters' lines are not in it", async () => {
  // Fresh lines are in the ingester: the estimate may well be all zeros, which is what the caveat says.
  const result = await runObs(['stats', `{app="${APP}"} |= "payment"`, '--since', '1h', '--json'], { env })
  assert.equal(result.code, 0, result.stderr)
  const document = JSON.parse(result.stdout) as { selector: string; streams: number; chunks: number; entries: number; bytes: number; note: string }
  assert.equal(document.selector, `{app="${APP}"}`)
  for (const key of ['streams', 'chunks', 'entries', 'bytes'] as const) assert.ok(Number.isInteger(document[key]) && document[key] >= 0, `${key}: ${document[key]}`)
  assert.match(document.note, /ingesters/)
  const text = await runObs(['stats', `{app="${APP}"}`, '--since', '1h'], { env })
  assert.match(text.stdout, /^about .* in [\d,]+ entries, [\d,]+ chunks, [\d,]+ streams \(from Loki's index: lines still in the ingesters/)
})

test('the cost guard: a --limit 0 query estimated above maxQueryBytes is refused without --yes, exit 2; --yes runs it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'obs-cost-'))
  writeFileSync(join(dir, 'obs.config.yaml'), `defaultProfile: tight\nprofiles:\n  tight:\n    addr: ${addr}\n    maxQueryBytes: "1"\n`)
  // The index knows flushed chunks only (measured: 0 bytes for lines still in the ingester): flush them first.
  assert.equal((await fetch(`${addr}/flush`, { method: 'POST' })).status, 204)
  const estimated = async () => (JSON.parse((await runObs(['stats', '{app=~".+"}', '--since', '30d', '--json'], { env })).stdout) as { bytes: number }).bytes
  const deadline = Date.now() + 30_000
  while ((await estimated()) <= 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500))
  const args = ['query-range', '{app=~".+"}', '--from', 'now-30d', '--to', 'now', '--limit', '0', '-o', 'raw']
  const refused = await runObs(args, { cwd: dir, env: { LOKI_ADDR: undefined } })
  assert.equal(refused.code, 2, refused.stderr)
  assert.equal(refused.stdout, '')
  assert.match(refused.stderr, /the query would read about .* above the limit of 1 bytes/)
  assert.match(refused.stderr, /--yes/)
  const allowed = await runObs([...args, '--yes', '--stats'], { cwd: dir, env: { LOKI_ADDR: undefined } })
  assert.equal(allowed.code, 0, allowed.stderr)
  assert.match(allowed.stderr, /stats: \d+ requests?; Loki processed .* in [\d,]+ lines, returned [\d,]+ entries; execution [\d.]+ s/)
})
