/**
 * A forwarding proxy in front of Loki that counts what a pager costs: every
 * query_range request, the pages that came back full (entries = limit, which
 * exact paging cannot use), and the ones Loki refused. It can also hide
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

export interface PageCounter {
  addr: string
  /** Counts since the last reset. */
  counts(): PageCounts
  reset(): void
  hideTenantLimits: boolean
  close(): Promise<void>
}

export async function startPageCounter(upstream: string): Promise<PageCounter> {
  const target = new URL(upstream)
  const agent = new Agent({ keepAlive: true })
  let counts: PageCounts = { requests: 0, full: 0, refused: 0, entries: 0 }
  const counter: PageCounter = {
    addr: '',
    counts: () => ({ ...counts }),
    reset: () => (counts = { requests: 0, full: 0, refused: 0, entries: 0 }),
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
    const isQuery = path.startsWith('/loki/api/v1/query_range')
    const forward = httpRequest({ host: target.hostname, port: target.port, path, method: req.method, headers: req.headers, agent }, (answer) => {
      const chunks: Buffer[] = []
      answer.on('data', (chunk: Buffer) => chunks.push(chunk))
      answer.on('end', () => {
        const body = Buffer.concat(chunks)
        if (isQuery) {
          counts.requests++
          if (answer.statusCode === 200) {
            const limit = Number(new URL(path, 'http://x').searchParams.get('limit'))
            const result = (JSON.parse(body.toString('utf8')) as { data: { result: { values: unknown[] }[] } }).data.result
            const entries = result.reduce((sum, stream) => sum + stream.values.length, 0)
            counts.entries += entries
            if (entries >= limit) counts.full++
          } else if (answer.statusCode === 400) counts.refused++
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
