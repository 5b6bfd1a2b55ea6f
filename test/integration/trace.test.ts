import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { pushAll } from '../support/loki.ts'

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

test('a request longer than the first window comes back whole, and nothing of another request', async () => {
  // An app label of this test's own, so that no other test sees these lines.
  const app = `trace-span-${process.pid}`
  const reqId = `req-span-${process.pid}`
  const second = 1_000_000_000n
  const end = BigInt(Date.now()) * 1_000_000n - 90n * second
  const services = ['gateway', 'app', 'worker']
  const line = (id: string, i: number) => JSON.stringify({ level: 30, time: 0, reqId: id, msg: `step ${i}` })
  // 40 lines 25 s apart (about 16 minutes: far more than the window first
  // fetched), in turn in the three services, each with a line of another
  // request (whose id starts with this one's) a nanosecond later.
  const values = new Map<string, [string, string][]>(services.map((service) => [service, []]))
  const expected: string[] = []
  for (let i = 0; i < 40; i++) {
    const at = end - BigInt(39 - i) * 25n * second
    const service = services[i % 3]
    values.get(service)!.push([at.toString(), line(reqId, i)], [(at + 1n).toString(), line(`${reqId}0`, i)])
    expected.push(line(reqId, i))
  }
  await pushAll(addr, [services.map((service) => ({ stream: { app, env: 'test', service, stream: 'stdout' }, values: values.get(service)! }))])

  const json = await runObs(['trace', reqId, '--app', app, '--json'], { env })
  assert.equal(json.code, 0, json.stderr)
  const document = JSON.parse(json.stdout) as { from: string; to: string; entries: { line: string; labels: Record<string, string> }[] }
  assert.deepEqual(
    document.entries.map((e) => e.line),
    expected,
  )
  assert.deepEqual(new Set(document.entries.map((e) => e.labels.service)), new Set(services))
})

/**
 * Pushes one request's lines, `[seconds before now, service, level, msg]`
 * each, under an app label of the test's own, as a shipper sends them, with a
 * line of another request (whose id starts with this one's) beside each.
 */
async function pushRequest(app: string, reqId: string, lines: [number, string, number, string][]): Promise<string[]> {
  const now = BigInt(Date.now()) * 1_000_000n
  const byService = new Map<string, [string, string][]>()
  const expected: string[] = []
  for (const [secondsAgo, service, level, msg] of lines) {
    const at = now - BigInt(secondsAgo) * 1_000_000_000n
    const line = JSON.stringify({ level, time: Number(at / 1_000_000n), reqId, msg })
    const values = byService.get(service) ?? []
    byService.set(service, values)
    values.push([at.toString(), line], [(at + 1n).toString(), JSON.stringify({ level: 50, time: Number(at / 1_000_000n), reqId: `${reqId}0`, msg })])
    expected.push(line)
  }
  await pushAll(addr, [[...byService].map(([service, values]) => ({ stream: { app, env: 'test', service, stream: 'stdout' }, values }))])
  return expected
}

test('a request whose error comes minutes after its first lines is traced whole, the error counted', async () => {
  // The request: two lines 390 s and 388 s ago, its error 240 s ago.
  const app = `trace-late-${process.pid}`
  const reqId = 'job-42'
  const expected = await pushRequest(app, reqId, [
    [390, 'gateway', 30, 'request received'],
    [388, 'app', 30, 'job started'],
    [240, 'worker', 50, 'upstream call failed'],
  ])
  const json = await runObs(['trace', reqId, '--app', app, '--json'], { env })
  assert.equal(json.code, 0, json.stderr)
  const document = JSON.parse(json.stdout) as { entries: { line: string }[] }
  assert.deepEqual(
    document.entries.map((e) => e.line),
    expected,
  )
  const timeline = await runObs(['trace', reqId, '--app', app], { env })
  assert.equal(timeline.code, 0, timeline.stderr)
  assert.match(timeline.stdout, /job-42: 3 lines over 2m30s.*; 1 error\n$/)
})

test('a request of many minutes with long pauses, longer than the first window, comes back whole', async () => {
  // Nine minutes from the first line to the last, pauses of up to 3 minutes
  // (far more than --gap), the error 5 minutes after the first line.
  const app = `trace-long-${process.pid}`
  const reqId = `req-long-${process.pid}`
  const expected = await pushRequest(app, reqId, [
    [850, 'gateway', 30, 'request received'],
    [849, 'app', 30, 'export started'],
    [700, 'app', 40, 'export slow'],
    [560, 'worker', 50, 'export failed'],
    [555, 'worker', 30, 'export retried'],
    [460, 'app', 30, 'export done'],
  ])
  const json = await runObs(['trace', reqId, '--app', app, '--json'], { env })
  assert.equal(json.code, 0, json.stderr)
  const document = JSON.parse(json.stdout) as { entries: { line: string }[] }
  assert.deepEqual(
    document.entries.map((e) => e.line),
    expected,
  )
  const timeline = await runObs(['trace', reqId, '--app', app], { env })
  assert.equal(timeline.code, 0, timeline.stderr)
  assert.match(timeline.stdout, new RegExp(`${reqId}: 6 lines over .*; 1 error\\n$`))
})
