/**
 * A gateway that echoes every request's headers back, as some error pages and
 * debug endpoints do: 503 on /ready with the headers in the page, 200 with
 * the headers inside a plausible Loki answer (label values, stream labels, log
 * lines, patterns, a volume's labels, the build's revision, a tail's frames),
 * 400 for a query holding "echo-400", and 500 with the headers for anything
 * else. It records what it was sent, so a test can tell that the credentials
 * were really in play.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface EchoLoki {
  addr: string
  /** Every request's headers, in order. */
  requests: { path: string; headers: IncomingMessage['headers'] }[]
  close(): Promise<void>
}

/** The request's headers as one line, "name: value" pairs. */
function echoOf(request: IncomingMessage): string {
  return Object.entries(request.headers)
    .map(([name, value]) => `${name}: ${String(value)}`)
    .join(', ')
}

function answer(path: string, search: URLSearchParams, echo: string, values: string[]): { status: number; body: unknown } | undefined {
  const now = Date.now()
  const nanos = `${now}000000`
  const streams = (line: string) => ({
    status: 'success',
    data: { resultType: 'streams', result: [{ stream: { app: 'cogni-template', service: 'app', echo }, values: [[nanos, line]] }], stats: {} },
  })
  const query = search.get('query') ?? ''
  if (query.includes('echo-400')) return { status: 400, body: `parse error: ${echo}` }
  if (/^\/loki\/api\/v1\/(labels|label\/[^/]+\/values)$/.test(path)) return { status: 200, body: { status: 'success', data: ['app', 'service', ...values] } }
  if (path === '/loki/api/v1/series') return { status: 200, body: { status: 'success', data: [{ app: 'cogni-template', service: 'app', echo }] } }
  if (path === '/loki/api/v1/query_range' || path === '/loki/api/v1/query') {
    if (/^\s*\{/.test(query)) return { status: 200, body: streams(JSON.stringify({ level: 'error', msg: echo, reqId: 'req-echo' })) }
    const metric = { app: 'cogni-template', echo }
    const data =
      path === '/loki/api/v1/query'
        ? { resultType: 'vector', result: [{ metric, value: [now / 1000, '1'] }] }
        : {
            resultType: 'matrix',
            result: [
              {
                metric,
                values: [
                  [now / 1000 - 60, '1'],
                  [now / 1000, '2'],
                ],
              },
            ],
          }
    return { status: 200, body: { status: 'success', data: { ...data, stats: {} } } }
  }
  if (path === '/loki/api/v1/index/stats') return { status: 200, body: { streams: 1, chunks: 1, bytes: 1000, entries: 10 } }
  if (path === '/loki/api/v1/index/volume') {
    return { status: 200, body: { status: 'success', data: { resultType: 'vector', result: [{ metric: { service_name: echo }, value: [now / 1000, '1000'] }] } } }
  }
  if (path === '/loki/api/v1/patterns') return { status: 200, body: { status: 'success', data: [{ pattern: `<_> ${echo}`, samples: [[Math.floor(now / 1000), 3]] }] } }
  if (path === '/loki/api/v1/detected_fields') return { status: 200, body: { fields: [{ label: echo, type: 'string', cardinality: 1, parsers: ['json'] }] } }
  if (path === '/loki/api/v1/status/buildinfo') return { status: 200, body: { version: '3.6.2', revision: echo, branch: echo } }
  return undefined
}

/** A WebSocket text frame from the server (unmasked), for payloads up to 64 KiB. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text)
  const head = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff])
  return Buffer.concat([head, payload])
}

export async function startEchoLoki(): Promise<EchoLoki> {
  const requests: EchoLoki['requests'] = []
  // Upgraded sockets leave the server's books: closed by hand.
  const upgraded = new Set<import('node:stream').Duplex>()
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://echo')
    requests.push({ path: url.pathname, headers: request.headers })
    const echo = echoOf(request)
    if (url.pathname === '/ready') {
      response.writeHead(503, { 'content-type': 'text/plain' }).end(`Ingester not ready: waiting for 15s after being ready; request was ${echo}\n`)
      return
    }
    const known = answer(url.pathname, url.searchParams, echo, Object.values(request.headers).map(String))
    if (known?.status === 200) response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(known.body))
    else if (known) response.writeHead(known.status, { 'content-type': 'text/plain' }).end(String(known.body))
    else response.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error while serving ${url.pathname}: ${echo}\n`)
  })
  // The tail: a real handshake, then one frame of entries that carry the headers, then silence (Ctrl-C ends it).
  server.on('upgrade', (request, socket) => {
    requests.push({ path: new URL(request.url ?? '/', 'http://echo').pathname, headers: request.headers })
    const accept = createHash('sha1').update(`${request.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
    const echo = echoOf(request)
    const entry = { streams: [{ stream: { app: 'cogni-template', service: 'app', echo }, values: [[`${Date.now()}000000`, `tail line: ${echo}`]] }] }
    socket.write(textFrame(JSON.stringify(entry)))
    upgraded.add(socket)
    socket.on('error', () => {})
    socket.on('data', () => {})
    socket.on('close', () => upgraded.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    addr: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of upgraded) socket.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
