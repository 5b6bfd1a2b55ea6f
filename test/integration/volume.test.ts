/**
 * obs volume's total and shares on the real Loki, over every series Loki
 * has, not only the rows shown: lines pushed here as a shipper sends them,
 * under labels of this file's own, a few minutes back (whole chunks in the
 * range, so Loki's bytes are at least the lines' own). On a Loki of its own:
 * 130 values of a `pod` label would break the label policy of the shared
 * Loki that doctor's and smoke's tests check.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { type LokiProcess, pushAll, startLoki, stopAndRemove } from '../support/loki.ts'

let loki: LokiProcess
const env: Record<string, string> = {}
const prefix = `vol${process.pid}`

interface VolumeJson {
  totalBytes: number
  values: number
  rows: { value: string; bytes: number; share: number }[]
}

/** Pushes `lines` lines of about 200 bytes to each stream, two minutes back; the bytes pushed. */
async function push(streams: Record<string, string>[], lines: (index: number) => number): Promise<number> {
  const at = BigInt(Date.now() - 120_000) * 1_000_000n
  let bytes = 0
  const batch = streams.map((stream, index) => {
    const values: [string, string][] = []
    for (let i = 0; i < lines(index); i++) {
      const line = JSON.stringify({ level: 30, msg: 'request completed', i, pad: 'x'.repeat(150) })
      bytes += Buffer.byteLength(line)
      values.push([(at + BigInt(i) * 1_000_000n).toString(), line])
    }
    return { stream, values }
  })
  await pushAll(loki.addr, [batch])
  return bytes
}

let twoAppsBytes = 0
let podsBytes = 0
before(async () => {
  loki = await startLoki()
  env.LOKI_ADDR = loki.addr
  // Two apps, 60 and 40 lines: 60% and 40% of the total.
  twoAppsBytes = await push(
    [
      { app: `${prefix}-a`, env: 'test', service: 'app' },
      { app: `${prefix}-b`, env: 'test', service: 'app' },
    ],
    (index) => (index === 0 ? 60 : 40),
  )
  // 130 pods of one app: more values than Loki's volume API returns by default (100).
  podsBytes = await push(
    Array.from({ length: 130 }, (_, i) => ({ app: `${prefix}-pods`, env: 'test', pod: `pod-${String(i).padStart(3, '0')}` })),
    (index) => 5 + (index % 7),
  )
})

after(async () => {
  if (loki) await stopAndRemove(loki)
})

test('--limit cuts the rows shown, not the total nor the shares: "top 1 of 2"', async () => {
  const selector = `{app=~"${prefix}-[ab]"}`
  const json = await runObs(['volume', selector, '--by', 'app', '--limit', '1', '--since', '1h', '--json'], { env })
  assert.equal(json.code, 0, json.stderr)
  const report = JSON.parse(json.stdout) as VolumeJson
  assert.equal(report.rows.length, 1)
  assert.equal(report.rows[0].value, `${prefix}-a`)
  assert.ok(report.totalBytes >= twoAppsBytes, `${report.totalBytes} < ${twoAppsBytes}`)
  assert.ok(Math.abs(report.rows[0].share - 0.6) < 0.01, `share ${report.rows[0].share}`)
  assert.equal(report.values, 2)

  const table = await runObs(['volume', selector, '--by', 'app', '--limit', '1', '--since', '1h'], { env })
  assert.equal(table.code, 0, table.stderr)
  assert.match(table.stdout, /60\.0%/)
  assert.match(table.stderr, /top 1 of 2 values of app/)
})

test("past Loki's default of 100 series, every one is counted: 130 pods", async () => {
  const selector = `{app="${prefix}-pods"}`
  const json = await runObs(['volume', selector, '--by', 'pod', '--since', '1h', '--json'], { env })
  assert.equal(json.code, 0, json.stderr)
  const report = JSON.parse(json.stdout) as VolumeJson
  assert.equal(report.rows.length, 100)
  assert.ok(report.totalBytes >= podsBytes, `${report.totalBytes} < ${podsBytes}`)
  const shown = report.rows.reduce((sum, row) => sum + row.share, 0)
  assert.ok(shown < 0.9, `the rows shown hold ${shown} of the total`)
  assert.equal(report.values, 130)

  const all = await runObs(['volume', selector, '--by', 'pod', '--since', '1h', '--limit', '1000', '--json'], { env })
  assert.equal(all.code, 0, all.stderr)
  const whole = JSON.parse(all.stdout) as VolumeJson
  assert.equal(whole.rows.length, 130)
  assert.equal(whole.totalBytes, report.totalBytes)
})
