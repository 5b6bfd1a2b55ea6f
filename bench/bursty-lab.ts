/**
 * A lab for the bursty export, by hand: starts the bench's Loki, loads the
 * bursty dataset exactly as bench/run.ts does (BENCH_ONLY=bursty), and puts a
 * recording proxy in front of it that logs every query_range request (start,
 * end, limit, entries returned, wall time, Loki's stats.summary) as a JSON
 * line to $LAB_LOG. Prints LOKI/PROXY/FROM/TO and stays up until SIGTERM.
 *
 *   node_modules/.bin/node bench/bursty-lab.ts   # then point LOKI_ADDR at PROXY
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { Agent, createServer, request as httpRequest } from 'node:http'
import { dirname, join } from 'node:path'
import { generateBurstyDataset } from '../test/support/bursty-dataset.ts'
import { toPushBatches } from '../test/support/dataset.ts'
import { pushAll } from '../test/support/loki.ts'
import { startBenchLoki } from './lib.ts'

const LOG = process.env.LAB_LOG ?? '/tmp/lab/requests.jsonl'
const loki = await startBenchLoki(join(import.meta.dirname, 'loki-bench.yaml'))
const endMs = Math.floor(Date.now() / 60_000) * 60_000
const startMs = endMs - 50 * 60_000
const entries = generateBurstyDataset({
  seed: 20261124,
  startNs: BigInt(startMs) * 1_000_000n,
  spanNs: BigInt(endMs - startMs) * 1_000_000n,
  baseLines: 60_000,
  groups: [40, 300, 12, 60, 4000, 40, 40, 40, 40, 40],
})
await pushAll(loki.addr, toPushBatches(entries, 10_000))
mkdirSync(dirname(LOG), { recursive: true })
writeFileSync(LOG, '')
const target = new URL(loki.addr)
const agent = new Agent({ keepAlive: true })
const server = createServer((req, res) => {
  const path = req.url ?? '/'
  const began = performance.now()
  const forward = httpRequest({ host: target.hostname, port: target.port, path, method: req.method, headers: req.headers, agent }, (answer) => {
    const chunks: Buffer[] = []
    answer.on('data', (c: Buffer) => chunks.push(c))
    answer.on('end', () => {
      const body = Buffer.concat(chunks)
      const ms = performance.now() - began
      if (path.startsWith('/loki/api/v1/query_range')) {
        const p = new URL(path, 'http://x').searchParams
        let n = -1
        let summary: unknown
        try {
          const j = JSON.parse(body.toString('utf8'))
          n = j.data.result.reduce((s: number, r: { values: unknown[] }) => s + r.values.length, 0)
          summary = j.data.stats?.summary
        } catch {}
        appendFileSync(
          LOG,
          `${JSON.stringify({ t0: began, ms, start: p.get('start'), end: p.get('end'), limit: Number(p.get('limit')), direction: p.get('direction'), n, bytes: body.length, summary })}\n`,
        )
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      res.end(body)
    })
  })
  req.pipe(forward)
})
await new Promise<void>((d) => server.listen(0, '127.0.0.1', d))
const port = (server.address() as { port: number }).port
process.stdout.write(`LOKI=${loki.addr} PROXY=http://127.0.0.1:${port} FROM=${new Date(startMs).toISOString()} TO=${new Date(endMs).toISOString()} LINES=${entries.length}\n`)
process.once('SIGTERM', () => void loki.remove().then(() => process.exit(0)))
process.once('SIGINT', () => void loki.remove().then(() => process.exit(0)))
