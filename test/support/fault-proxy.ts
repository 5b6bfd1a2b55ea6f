/**
 * A fault-injecting HTTP proxy on loopback, in front of a real Loki, for the
 * faults a real Loki cannot be made to produce on demand: resets in the
 * middle of a body, truncated answers, HTML pages from a "proxy", 429 with
 * Retry-After, a server that never answers. Every request is recorded and a
 * rule chooses its fault; the default is to forward it unchanged.
 *
 * WebSockets (Loki's tail) are tunnelled to the upstream with their frames
 * parsed on the way back, so a test can cut a tail abruptly, close it with a
 * code and reason of its choosing, or inject a message (dropped_entries) at a
 * frame boundary. With `fakeWebSocket` set, the proxy answers the upgrade
 * itself instead (a minimal RFC 6455 server) and hands the connection to the test.
 */
import { createHash } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'

export type Fault =
  /** Forward unchanged. */
  | { type: 'pass' }
  /** Wait, then forward. */
  | { type: 'delay'; ms: number }
  /** Answer without asking the upstream. */
  | { type: 'respond'; status: number; headers?: Record<string, string>; body?: string | Buffer }
  /** Accept the request and never answer. */
  | { type: 'hang' }
  /** Forward, send the status line and headers, then never send the body. */
  | { type: 'stall-body' }
  /** Forward, send the headers and the first `fraction` of the body, then reset the connection (TCP RST). */
  | { type: 'reset-mid-body'; fraction?: number }
  /** Forward, then close the connection cleanly (FIN) after part of the body, with Content-Length promising more. */
  | { type: 'close-mid-body'; fraction?: number }
  /** Forward a cut body as if it were whole: Content-Length is the cut length (a broken proxy or cache). */
  | { type: 'truncate'; fraction?: number }
  /** Destroy the connection without answering. */
  | { type: 'drop' }

export interface ProxiedRequest {
  /** 1-based, in arrival order. */
  n: number
  method: string
  /** Path without the query string. */
  path: string
  url: URL
  headers: IncomingHttpHeaders
  /** performance.now() at arrival. */
  at: number
  fault: Fault['type']
  /** Status sent to the client, if any. */
  status?: number
}

export type FaultRule = (request: ProxiedRequest) => Fault | undefined

/** The server → client half of a tunnelled WebSocket, with the test's controls. */
export interface WsTunnel {
  url: URL
  /** Text frames forwarded from the upstream so far. */
  messages: number
  /** Sends a text frame to the client, between upstream frames. */
  inject(text: string): void
  /** Sends a close frame with this code and reason to the client, then closes both sides. */
  close(code: number, reason: string): void
  /** Destroys both sockets: no close frame, as when the network drops. */
  cut(): void
  closed: boolean
}

/** A WebSocket connection answered by the proxy itself. */
export interface FakeWs {
  url: URL
  headers: IncomingHttpHeaders
  send(text: string): void
  close(code: number, reason: string): void
  destroy(): void
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export interface FaultProxy {
  addr: string
  /** Every HTTP request seen, in order (upgrades included, with fault "pass"). */
  requests: ProxiedRequest[]
  tunnels: WsTunnel[]
  /** Sets the rule; undefined forwards everything. */
  setRule(rule: FaultRule | undefined): void
  /** Answer WebSocket upgrades here instead of tunnelling them to the upstream. */
  fakeWebSocket: ((ws: FakeWs) => void) | undefined
  /** Refuse WebSocket upgrades with this HTTP answer (a proxy that does not pass WebSockets). */
  rejectUpgrade: { status: number; reason: string; headers?: Record<string, string>; body: string } | undefined
  /** Hold WebSocket upgrades until this settles before tunnelling them (a slow proxy or handshake). */
  holdUpgrade: Promise<void> | undefined
  /** Requests whose path contains `part`. */
  count(part: string): number
  close(): Promise<void>
}

/**
 * `upstream` is Loki's address, or a route from a request's path to one (the
 * gateway in front of a scalable Loki, test/support/loki.ts).
 */
export async function startFaultProxy(upstream: string | ((path: string) => string)): Promise<FaultProxy> {
  const upstreamFor = (path: string) => new URL(typeof upstream === 'string' ? upstream : upstream(path))
  const sockets = new Set<Duplex>()
  let rule: FaultRule | undefined
  const requests: ProxiedRequest[] = []
  const tunnels: WsTunnel[] = []

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy')
    const record: ProxiedRequest = {
      n: requests.length + 1,
      method: req.method ?? 'GET',
      path: url.pathname,
      url,
      headers: req.headers,
      at: performance.now(),
      fault: 'pass',
    }
    requests.push(record)
    const fault = rule?.(record) ?? { type: 'pass' }
    record.fault = fault.type
    void handle(req, res, record, fault).catch(() => res.destroy())
  })
  server.keepAliveTimeout = 30_000
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })

  async function handle(req: IncomingMessage, res: ServerResponse, record: ProxiedRequest, fault: Fault): Promise<void> {
    const body = await readAll(req)
    switch (fault.type) {
      case 'drop':
        res.socket?.destroy()
        return
      case 'hang':
        return
      case 'respond': {
        const payload = fault.body ?? ''
        record.status = fault.status
        res.writeHead(fault.status, { 'content-length': Buffer.byteLength(payload), ...fault.headers })
        res.end(payload)
        return
      }
      case 'delay':
        await new Promise((resolve) => setTimeout(resolve, fault.ms))
        break
    }
    let answer: { status: number; headers: IncomingHttpHeaders; body: Buffer }
    try {
      answer = await forward(req, body)
    } catch {
      // The upstream is down (a restarting Loki): the client sees the connection drop.
      res.socket?.destroy()
      return
    }
    record.status = answer.status
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !['transfer-encoding', 'content-length', 'connection', 'keep-alive'].includes(name)) headers[name] = value
    }
    const cutAt = (fraction = 0.5) => Math.max(1, Math.floor(answer.body.length * fraction))
    switch (fault.type) {
      case 'stall-body':
        res.writeHead(answer.status, { ...headers, 'content-length': answer.body.length })
        res.flushHeaders()
        return
      case 'reset-mid-body':
      case 'close-mid-body': {
        res.writeHead(answer.status, { ...headers, 'content-length': answer.body.length })
        await new Promise<void>((resolve) => res.write(answer.body.subarray(0, cutAt(fault.fraction)), () => resolve()))
        await new Promise((resolve) => setTimeout(resolve, 30))
        const socket = res.socket as Socket | null
        if (fault.type === 'reset-mid-body') socket?.resetAndDestroy()
        else socket?.destroySoon()
        return
      }
      case 'truncate': {
        const cut = answer.body.subarray(0, cutAt(fault.fraction))
        res.writeHead(answer.status, { ...headers, 'content-length': cut.length })
        res.end(cut)
        return
      }
      default:
        res.writeHead(answer.status, { ...headers, 'content-length': answer.body.length })
        res.end(answer.body)
    }
  }

  function forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    const target = upstreamFor(new URL(req.url ?? '/', 'http://proxy').pathname)
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: target.host }
      delete headers.connection
      const upstreamRequest = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false }, (upstreamResponse) => {
        readAll(upstreamResponse).then((data) => resolve({ status: upstreamResponse.statusCode ?? 502, headers: upstreamResponse.headers, body: data }), reject)
      })
      upstreamRequest.once('error', reject)
      upstreamRequest.end(body)
    })
  }

  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    sockets.add(client)
    client.once('close', () => sockets.delete(client))
    client.on('error', () => {})
    const url = new URL(req.url ?? '/', 'http://proxy')
    requests.push({ n: requests.length + 1, method: req.method ?? 'GET', path: url.pathname, url, headers: req.headers, at: performance.now(), fault: 'pass' })
    if (proxy.rejectUpgrade) {
      const { status, reason, headers = {}, body } = proxy.rejectUpgrade
      const head = Object.entries({ ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('')
      client.end(`HTTP/1.1 ${status} ${reason}\r\n${head}\r\n${body}`)
      return
    }
    if (proxy.fakeWebSocket) {
      const key = String(req.headers['sec-websocket-key'] ?? '')
      const accept = createHash('sha1')
        .update(key + WS_GUID)
        .digest('base64')
      client.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      proxy.fakeWebSocket({
        url,
        headers: req.headers,
        send: (text) => client.write(frame(0x1, Buffer.from(text))),
        close: (code, reason) => {
          client.write(closeFrame(code, reason))
          setTimeout(() => client.end(), 100)
        },
        destroy: () => client.destroy(),
      })
      return
    }
    if (proxy.holdUpgrade) void proxy.holdUpgrade.then(() => tunnel(req, client, head, url))
    else tunnel(req, client, head, url)
  })

  function tunnel(req: IncomingMessage, client: Duplex, head: Buffer, url: URL): void {
    const target = upstreamFor(url.pathname)
    const upstreamSocket = connect(Number(target.port), target.hostname)
    sockets.add(upstreamSocket)
    upstreamSocket.once('close', () => sockets.delete(upstreamSocket))
    upstreamSocket.on('error', () => client.destroy())
    const lines = [`${req.method} ${req.url} HTTP/1.1`]
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]
      lines.push(`${name}: ${name.toLowerCase() === 'host' ? target.host : req.rawHeaders[i + 1]}`)
    }
    upstreamSocket.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (head.length) upstreamSocket.write(head)
    client.pipe(upstreamSocket)

    let handshakeDone = false
    let pending = Buffer.alloc(0)
    const state: WsTunnel = {
      url,
      messages: 0,
      closed: false,
      inject(text) {
        if (!state.closed) client.write(frame(0x1, Buffer.from(text)))
      },
      close(code, reason) {
        if (state.closed) return
        state.closed = true
        client.unpipe(upstreamSocket)
        upstreamSocket.destroy()
        client.write(closeFrame(code, reason))
        setTimeout(() => client.end(), 100)
      },
      cut() {
        state.closed = true
        upstreamSocket.destroy()
        client.destroy()
      },
    }
    tunnels.push(state)
    upstreamSocket.on('data', (chunk: Buffer) => {
      if (state.closed) return
      pending = Buffer.concat([pending, chunk])
      if (!handshakeDone) {
        const end = pending.indexOf('\r\n\r\n')
        if (end === -1) return
        client.write(pending.subarray(0, end + 4))
        pending = pending.subarray(end + 4)
        handshakeDone = true
      }
      // Forward whole frames only, so an injected frame never lands inside one.
      for (;;) {
        const size = frameSize(pending)
        if (size === undefined || pending.length < size) break
        if ((pending[0] & 0x0f) === 0x1) state.messages++
        client.write(pending.subarray(0, size))
        pending = pending.subarray(size)
      }
    })
    upstreamSocket.once('end', () => {
      if (!state.closed) client.end()
    })
    client.once('close', () => {
      state.closed = true
      upstreamSocket.destroy()
    })
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0

  const proxy: FaultProxy = {
    addr: `http://127.0.0.1:${port}`,
    requests,
    tunnels,
    fakeWebSocket: undefined,
    rejectUpgrade: undefined,
    holdUpgrade: undefined,
    setRule(next) {
      rule = next
    },
    count(part) {
      return requests.filter((r) => r.path.includes(part)).length
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return proxy
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.once('end', () => resolve(Buffer.concat(chunks)))
    stream.once('error', reject)
  })
}

/** The total size of the first WebSocket frame in `data`, or undefined when its header is incomplete. */
function frameSize(data: Buffer): number | undefined {
  if (data.length < 2) return undefined
  const masked = (data[1] & 0x80) !== 0
  let length = data[1] & 0x7f
  let offset = 2
  if (length === 126) {
    if (data.length < 4) return undefined
    length = data.readUInt16BE(2)
    offset = 4
  } else if (length === 127) {
    if (data.length < 10) return undefined
    length = Number(data.readBigUInt64BE(2))
    offset = 10
  }
  return offset + (masked ? 4 : 0) + length
}

/** An unmasked server frame (FIN set). */
export function frame(opcode: number, payload: Buffer): Buffer {
  let header: Buffer
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, payload.length])
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4)
    header[0] = 0x80 | opcode
    header[1] = 126
    header.writeUInt16BE(payload.length, 2)
  } else {
    header = Buffer.alloc(10)
    header[0] = 0x80 | opcode
    header[1] = 127
    header.writeBigUInt64BE(BigInt(payload.length), 2)
  }
  return Buffer.concat([header, payload])
}

export function closeFrame(code: number, reason: string): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason))
  payload.writeUInt16BE(code, 0)
  payload.write(reason, 2)
  return frame(0x8, payload)
}

/** An HTML error page like the ones nginx or a cloud load balancer send. */
export function htmlErrorPage(status: number, title: string): string {
  return (
    `<!DOCTYPE html>\n<html>\n<head><title>${status} ${title}</title>\n<style>body{font-family:sans-serif}</style></head>\n` +
    `<body>\n<center><h1>${status} ${title}</h1></center>\n<hr><center>nginx/1.27.3</center>\n` +
    '<script>window.location.reload()</script>\n</body>\n</html>\n'
  )
}
