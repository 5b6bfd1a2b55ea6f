/**
 * The raw-HTTP baseline of the bulk export: issues, one after the other, the
 * very requests an `obs query-range` run issued (captured by bench/run.ts),
 * with the same headers, over one keep-alive undici Agent, and only reads each
 * body to its end. No parsing, no output: the least any client of Loki's HTTP
 * API must spend to fetch those pages.
 *
 *   node bench/raw-replay.ts ORIGIN REQUESTS_FILE [HEADERS_JSON]
 *
 * REQUESTS_FILE holds one request target (path and query string) per line.
 * Prints a one-line JSON summary on stderr.
 */
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'

const [origin, requestsFile, headersJson] = process.argv.slice(2)
if (!origin || !requestsFile) {
  process.stderr.write('usage: raw-replay.ts ORIGIN REQUESTS_FILE [HEADERS_JSON]\n')
  process.exit(2)
}
const targets = readFileSync(requestsFile, 'utf8').split('\n').filter(Boolean)
const headers = headersJson ? (JSON.parse(headersJson) as Record<string, string>) : {}
const agent = new Agent({ keepAliveTimeout: 30_000, connections: 1 })

const started = performance.now()
let bytes = 0
for (const path of targets) {
  const response = await request(origin + path, { method: 'GET', headers, dispatcher: agent })
  for await (const chunk of response.body) bytes += (chunk as Buffer).length
  if (response.statusCode !== 200) {
    process.stderr.write(`${path} -> ${response.statusCode}\n`)
    process.exit(1)
  }
}
const ms = performance.now() - started
await agent.close()
process.stderr.write(`${JSON.stringify({ requests: targets.length, bytes, ms: Math.round(ms) })}\n`)
