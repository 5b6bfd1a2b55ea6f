/**
 * A Docker Engine API stand-in on a unix socket: the few calls Alloy's
 * discovery.docker and loki.source.docker make (docs/REAL_SERVERS.md,
 * "Docker without a Docker engine"). Each container writes pino JSON lines
 * (string levels, epoch-ms `time`, a reqId the app and the worker share for
 * some requests) every `intervalMs`; the logs endpoint streams them in
 * Docker's multiplexed framing and honours `since`, `tail`, `follow`,
 * `stdout` and `stderr`. Requests it does not know are logged to stderr and answered 404,
 * so a missing endpoint shows up.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface LogLine {
  /** Nanoseconds since the epoch: Docker's own timestamp of the line. */
  ts: bigint
  stream: 'stdout' | 'stderr'
  /** The line as the process wrote it, without the newline. */
  text: string
}

export interface ContainerSpec {
  /** Without the leading slash, e.g. app-1. */
  name: string
  /** The compose service (label com.docker.compose.service). */
  service: string
  /** Lines written at tick n (one tick every intervalMs), given the wall clock in ms. */
  lines: (tick: number, nowMs: number) => { stream: 'stdout' | 'stderr'; text: string }[]
}

export interface StandinContainer extends ContainerSpec {
  id: string
  ip: string
  /** Every line written so far (the newest `historyLimit`). */
  history: LogLine[]
}

export interface StandinOptions {
  /** Defaults to docker.sock in a new temporary directory. */
  socketPath?: string
  /** Defaults to an app and a worker of the compose project `cogni`. */
  containers?: ContainerSpec[]
  apiVersion?: string
  intervalMs?: number
  /** How far Docker's timestamp lags behind the time the app logged (default 1.234567 ms). */
  dockerLagNs?: bigint
  historyLimit?: number
}

export interface DockerStandin {
  socketPath: string
  /** For DOCKER_HOST: unix://<socketPath>. */
  host: string
  apiVersion: string
  containers: StandinContainer[]
  /** Every request served, as "METHOD /path?query". */
  requests: string[]
  /** The engine goes away: open streams are cut, the socket file is removed, lines stop. */
  goAway(): Promise<void>
  /** goAway, and remove the temporary directory it made. */
  stop(): Promise<void>
}

const PROJECT = 'cogni'
const NETWORK = `${PROJECT}_default`

function pino(level: string, nowMs: number, hostname: string, fields: Record<string, unknown>, msg: string): string {
  return JSON.stringify({ level, time: nowMs, pid: 1, hostname, ...fields, msg })
}

/** An app serving a request every tick, and a worker picking up every second one with the same reqId. */
export function defaultContainers(): ContainerSpec[] {
  return [
    {
      name: 'app-1',
      service: 'app',
      lines: (tick, now) => {
        const reqId = `req-${tick}`
        if (tick % 10 === 9) return [{ stream: 'stdout', text: pino('error', now, 'app-1', { reqId, err: { type: 'Error', message: 'upstream timeout' } }, 'request failed') }]
        return [{ stream: 'stdout', text: pino('info', now, 'app-1', { reqId, req: { method: 'GET', url: `/items/${tick % 7}` }, res: { statusCode: 200 } }, 'request completed') }]
      },
    },
    {
      name: 'worker-1',
      service: 'worker',
      lines: (tick, now) => {
        if (tick % 2 !== 0) return []
        const lines: { stream: 'stdout' | 'stderr'; text: string }[] = [{ stream: 'stdout', text: pino('info', now, 'worker-1', { reqId: `req-${tick}`, job: 'index' }, 'job processed') }]
        if (tick % 20 === 0) lines.push({ stream: 'stderr', text: pino('warn', now, 'worker-1', { reqId: `req-${tick}` }, 'queue is backing up') })
        return lines
      },
    },
  ]
}

const hexId = (seed: string) => createHash('sha256').update(seed).digest('hex')
const networkId = hexId(`network ${NETWORK}`)

function rfc3339Nano(ns: bigint): string {
  const iso = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)
  return `${iso}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`
}

/** Docker's `since`: seconds with optional fraction, or an RFC 3339 time. */
function parseSince(value: string | null): bigint {
  if (!value) return 0n
  if (/^\d+(\.\d+)?$/.test(value)) {
    const [seconds, fraction = ''] = value.split('.')
    return BigInt(seconds) * 1_000_000_000n + BigInt(fraction.padEnd(9, '0').slice(0, 9))
  }
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? 0n : BigInt(ms) * 1_000_000n
}

/** One frame of Docker's multiplexed stream: 1 stdout / 2 stderr, 3 zero bytes, big-endian length, payload. */
function frame(line: LogLine): Buffer {
  const payload = Buffer.from(`${rfc3339Nano(line.ts)} ${line.text}\n`)
  const header = Buffer.alloc(8)
  header[0] = line.stream === 'stdout' ? 1 : 2
  header.writeUInt32BE(payload.length, 4)
  return Buffer.concat([header, payload])
}

export async function startDockerStandin(options: StandinOptions = {}): Promise<DockerStandin> {
  const ownDir = options.socketPath ? undefined : mkdtempSync(join(tmpdir(), 'obs-docker-'))
  const socketPath = options.socketPath ?? join(ownDir!, 'docker.sock')
  const apiVersion = options.apiVersion ?? '1.43'
  const lag = options.dockerLagNs ?? 1_234_567n
  const historyLimit = options.historyLimit ?? 10_000
  const created = Math.floor(Date.now() / 1000)
  const containers: StandinContainer[] = (options.containers ?? defaultContainers()).map((spec, i) => ({
    ...spec,
    id: hexId(`container ${spec.name}`),
    ip: `172.18.0.${i + 2}`,
    history: [],
  }))
  const followers = new Set<{ container: StandinContainer; streams: Set<string>; send: (line: LogLine) => void }>()
  const requests: string[] = []

  let tick = 0
  const timer = setInterval(() => {
    const nowMs = Date.now()
    for (const container of containers) {
      for (const { stream, text } of container.lines(tick, nowMs)) {
        const line: LogLine = { ts: BigInt(nowMs) * 1_000_000n + lag, stream, text }
        container.history.push(line)
        if (container.history.length > historyLimit) container.history.shift()
        for (const follower of followers) if (follower.container === container && follower.streams.has(stream)) follower.send(line)
      }
    }
    tick++
  }, options.intervalMs ?? 200)

  const labels = (c: StandinContainer) => ({
    'com.docker.compose.project': PROJECT,
    'com.docker.compose.service': c.service,
    'com.docker.compose.container-number': '1',
    'com.docker.compose.oneoff': 'False',
  })
  const networks = (c: StandinContainer) => ({
    [NETWORK]: { NetworkID: networkId, EndpointID: hexId(`endpoint ${c.name}`), Gateway: '172.18.0.1', IPAddress: c.ip, IPPrefixLen: 16, MacAddress: '02:42:ac:12:00:02', Aliases: null, Links: null },
  })
  const summary = (c: StandinContainer) => ({
    Id: c.id,
    Names: [`/${c.name}`],
    Image: `${PROJECT}-${c.service}`,
    ImageID: `sha256:${hexId(`image ${c.service}`)}`,
    Command: 'node server.js',
    Created: created,
    Ports: [],
    Labels: labels(c),
    State: 'running',
    Status: 'Up 5 minutes',
    HostConfig: { NetworkMode: NETWORK },
    NetworkSettings: { Networks: networks(c) },
    Mounts: [],
  })
  const inspect = (c: StandinContainer) => ({
    Id: c.id,
    Name: `/${c.name}`,
    Created: new Date(created * 1000).toISOString(),
    State: { Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 1000, ExitCode: 0, Error: '', StartedAt: new Date(created * 1000).toISOString(), FinishedAt: '0001-01-01T00:00:00Z' },
    Image: `sha256:${hexId(`image ${c.service}`)}`,
    Config: { Hostname: c.name, Tty: false, OpenStdin: false, Image: `${PROJECT}-${c.service}`, Labels: labels(c), Env: [] },
    HostConfig: { NetworkMode: NETWORK, LogConfig: { Type: 'json-file', Config: {} } },
    NetworkSettings: { Networks: networks(c) },
  })
  const network = {
    Name: NETWORK, Id: networkId, Created: new Date(created * 1000).toISOString(), Scope: 'local', Driver: 'bridge', EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' }] },
    Internal: false, Attachable: false, Ingress: false, Containers: {}, Options: {},
    Labels: { 'com.docker.compose.network': 'default', 'com.docker.compose.project': PROJECT },
  }
  const find = (ref: string) => containers.find((c) => c.id.startsWith(ref) || c.name === ref || `/${c.name}` === ref)

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Api-Version': apiVersion })
    res.end(JSON.stringify(body))
  }

  const logs = (res: ServerResponse, container: StandinContainer, query: URLSearchParams) => {
    const on = (name: string) => ['1', 'true'].includes(query.get(name) ?? '')
    const streams = new Set([on('stdout') ? 'stdout' : '', on('stderr') ? 'stderr' : ''])
    const since = parseSince(query.get('since'))
    const tail = Number.parseInt(query.get('tail') ?? '', 10) // empty or "all": every line
    const past = container.history.filter((line) => line.ts >= since && streams.has(line.stream))
    res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream', 'Api-Version': apiVersion })
    res.flushHeaders()
    const send = (line: LogLine) => res.write(frame(line))
    for (const line of tail >= 0 ? past.slice(Math.max(0, past.length - tail)) : past) send(line)
    if (!on('follow')) return void res.end()
    const follower = { container, streams, send }
    followers.add(follower)
    res.once('close', () => followers.delete(follower))
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker')
    requests.push(`${req.method} ${url.pathname}${url.search}`)
    const path = url.pathname.replace(/^\/v\d+\.\d+/, '')
    const get = req.method === 'GET' || req.method === 'HEAD'
    let match: RegExpExecArray | null
    if (path === '/_ping' && get) {
      res.writeHead(200, { 'Api-Version': apiVersion, 'Ostype': 'linux', 'Docker-Experimental': 'false', 'Cache-Control': 'no-cache', 'Content-Type': 'text/plain; charset=utf-8' })
      return void res.end('OK')
    }
    if (path === '/containers/json' && get) return json(res, 200, containers.map(summary))
    if (path === '/networks' && get) return json(res, 200, [network])
    if ((match = /^\/containers\/([^/]+)\/(json|logs)$/.exec(path)) && get) {
      const container = find(decodeURIComponent(match[1]))
      if (!container) return json(res, 404, { message: `No such container: ${match[1]}` })
      return match[2] === 'json' ? json(res, 200, inspect(container)) : logs(res, container, url.searchParams)
    }
    process.stderr.write(`docker-standin: unknown request ${req.method} ${req.url}\n`)
    json(res, 404, { message: 'page not found' })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, () => resolve())
  })

  let gone: Promise<void> | undefined
  const goAway = () =>
    (gone ??= new Promise<void>((resolve) => {
      clearInterval(timer)
      followers.clear()
      server.close(() => resolve()) // also unlinks the socket file
      server.closeAllConnections()
    }))

  return {
    socketPath,
    host: `unix://${socketPath}`,
    apiVersion,
    containers,
    requests,
    goAway,
    async stop() {
      await goAway()
      if (ownDir) rmSync(ownDir, { recursive: true, force: true })
    },
  }
}
