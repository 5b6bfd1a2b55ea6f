import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'

const { addr, dataset } = testLoki()
const env = { LOKI_ADDR: addr }

test("trace prints exactly one request's lines across services, in time order", async () => {
  const reqId = dataset.crossServiceRequests[123]
  const expected = dataset.entries
    .filter((e) => (JSON.parse(e.line) as { reqId?: string }).reqId === reqId)
    .sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : 0))
  assert.ok(new Set(expected.map((e) => e.labels.service)).size >= 2)

  const json = await runObs(['trace', reqId, '--json'], { env })
  assert.equal(json.code, 0, json.stderr)
  const document = JSON.parse(json.stdout) as {
    reqId: string
    from: string
    to: string
    entries: { timestamp: string; labels: Record<string, string>; line: string; fields: Record<string, unknown> }[]
  }
  assert.equal(document.reqId, reqId)
  assert.deepEqual(
    document.entries.map((e) => e.line),
    expected.map((e) => e.line),
  )
  for (const entry of document.entries) assert.equal(entry.fields.reqId, reqId)

  const timeline = await runObs(['trace', reqId], { env })
  assert.equal(timeline.code, 0, timeline.stderr)
  const rows = timeline.stdout.trimEnd().split('\n')
  assert.equal(rows.length, expected.length + 2)
  assert.match(rows[0], /^\d\d:\d\d:\d\d\.\d{3}\s+\+0ms\s+\S+\s+INFO/)
  assert.match(rows.at(-1) ?? '', new RegExp(`${reqId}: ${expected.length} lines over .*services: `))
})

test('trace of an unknown id widens the window, then exits 1 with a hint', async () => {
  const result = await runObs(['trace', 'req-does-not-exist', '--since', '30m'], { env })
  assert.equal(result.code, 1)
  assert.equal(result.stdout, '')
  assert.match(result.stderr, /nothing in the last 30m; widening to 1h/)
  assert.match(result.stderr, /no lines for reqId "req-does-not-exist" .*last 7d/)
})
