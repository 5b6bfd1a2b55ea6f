/**
 * A forwarding proxy in front of Loki that records what a pager costs: every
 * query_range request (its target, status, the entries that came back and the
 * limit asked, the body's size) and the headers of the first. The paging tests
 * count full pages (entries = limit, which exact paging cannot use) and
 * refusals from it; the bench replays the recorded targets. It can also hide
 * /config/tenant/v1/limits, as a Loki behind a proxy that does not serve it,
 * so that obs has to learn the limits from Loki's refusals.
 */
import { Agent, createServer, request as httpRequest } from 'node:http'

export interface PageCounts {
  requests: number
  full: number
  refused: number
  entries: number
}

export interface QueryRecord {
  target: string
  status: number
  /** Entries in a 200 answer, and the limit asked for. */
  entries: number
  limit: number
  bytes: number
  /** The start of the body of an answer other than 200: Loki's reason for a refusal. */
  reason?: string
}

export interface PageCounter {
  addr: string
  /** query_range requests since the last reset, in the order they were sent. */
  records: QueryRecord[]
  /** The headers of the first query_range request since the last reset (hop-by-hop ones left out). */
  headers: Record<string, string>
  /** Counts since the last reset. */
  counts(): PageCounts
  reset(): void
  hideTenantLimits: boolean
  close(): Promise<void>
}

const QUERY_RANGE = '/loki/api/v1/query_range'
const HOP_BY_HOP = new Set(['host', 'connection', 'keep-alive'])

export async function startPageCounter(upstream: string): Promise<PageCounter> {
  const target = new URL(upstream)
  const agent = new Agent({ keepAlive: true })
  const counter: PageCounter = {
    addr: '',
    records: [],
    headers: {},
    counts: () => {
      const answered = counter.records.filter((r) => r.status === 200)
      return {
        requests: counter.records.length,
        full: answered.filter((r) => r.entries >= r.limit).length,
        refused: counter.records.filter((r) => r.status === 400).length,
        entries: answered.reduce((sum, r) => sum + r.entries, 0),
      }
    },
    reset: () => {
      counter.records = []
      counter.headers = {}
    },
    hideTenantLimits: false,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((done) => server.close(() => done()))
      agent.destroy()
    },
  }
  const server = createServer((req, res) => {
    const path = req.url ?? '/'
    if (counter.hideTenantLimits && path.startsWith('/config/tenant/v1/limits')) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('404 page not found\n')
      return
    }
    let record: QueryRecord | undefined
    if (path.startsWith(QUERY_RANGE)) {
      record = { target: path, status: 0, entries: 0, limit: Number(new URL(path, 'http://x').searchParams.get('limit')), bytes: 0 }
      if (counter.records.length === 0) {
        for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && typeof value === 'string') counter.headers[name] = value
      }
      counter.records.push(record)
    }
    const forward = httpRequest({ host: target.hostname, port: target.port, path, method: req.method, headers: req.headers, agent }, (answer) => {
      const chunks: Buffer[] = []
      answer.on('data', (chunk: Buffer) => chunks.push(chunk))
      answer.on('end', () => {
        const body = Buffer.concat(chunks)
        if (record) {
          record.status = answer.statusCode ?? 0
          record.bytes = body.length
          if (record.status !== 200) record.reason = body.toString('utf8', 0, 300).trim()
          if (record.status === 200) {
            const result = (JSON.parse(body.toString('utf8')) as { data: { result: { values: unknown[] }[] } }).data.result
            record.entries = result.reduce((sum, stream) => sum + stream.values.length, 0)
          }
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        res.end(body)
      })
    })
    forward.on('error', (error) => {
      res.writeHead(502)
      res.end(String(error))
    })
    req.pipe(forward)
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const address = server.address()
  counter.addr = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  return counter
}
