import type { Agent as AgentType } from 'undici'
import undiciRequest from 'undici/lib/api/api-request.js'
import Agent from 'undici/lib/dispatcher/agent.js'
import { UnreachableError, UsageError } from '../errors.ts'
import { oneLine } from '../text.ts'

/** Where the Docker Engine's API listens, as DOCKER_HOST names it. */
export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'

/** A container as the engine describes it, the parts obs reads. */
export interface ContainerState {
  id: string
  running: boolean
  status: string
  exitCode: number
  labels: Record<string, string>
  /** The container's log driver (json-file, local, none, syslog, …), when the engine said. */
  logDriver?: string
}

/** A running container, as the engine lists it. */
export interface ContainerSummary {
  id: string
  /** Its name without Docker's leading slash. */
  name: string
  labels: Record<string, string>
}

/** The newest line a container logged, with the time Docker received it. */
export interface NewestLogLine {
  /** Docker's timestamp of the line (RFC 3339, nanoseconds), as the engine wrote it. */
  dockerTime: string
  line: string
}

/** The most of a container's newest log line obs reads: Loki's own max_line_size, 256 KB. */
const MAX_LOG_LINE_BYTES = 256 * 1024

export interface ContainerSpec {
  name: string
  image: string
  cmd: string[]
  labels: Record<string, string>
}

/**
 * The few calls of the Docker Engine API the pipeline probe needs, over its
 * unix socket (or tcp://, as DOCKER_HOST allows). Unversioned paths: the
 * engine serves its own API version on them, so any engine since 1.12 answers.
 */
export class DockerClient {
  readonly host: string
  private readonly agent: AgentType
  private readonly origin: string
  private readonly timeoutMs: number

  constructor(host: string = DEFAULT_DOCKER_HOST, timeoutMs = 10_000) {
    this.host = host
    this.timeoutMs = timeoutMs
    // Never through a proxy, HTTPS_PROXY or not: the probe's engine is the one next to Alloy, on its socket or a local tcp:// port.
    if (host.startsWith('unix://')) {
      this.origin = 'http://docker'
      this.agent = new Agent({ connect: { socketPath: host.slice('unix://'.length) } })
    } else if (host.startsWith('tcp://') || host.startsWith('http://')) {
      this.origin = `http://${host.replace(/^\w+:\/\//, '')}`
      this.agent = new Agent()
    } else {
      throw new UsageError(`DOCKER_HOST "${oneLine(host)}" is neither unix:// nor tcp://`, `set DOCKER_HOST to ${DEFAULT_DOCKER_HOST} or tcp://HOST:2375`)
    }
  }

  /** Creates and starts a container with no network; resolves with its id. */
  async run(spec: ContainerSpec): Promise<string> {
    const created = (await this.call('POST', `/containers/create?name=${encodeURIComponent(spec.name)}`, {
      Image: spec.image,
      Cmd: spec.cmd,
      Labels: spec.labels,
      HostConfig: { NetworkMode: 'none' },
    })) as { Id: string }
    await this.call('POST', `/containers/${created.Id}/start`)
    return created.Id
  }

  async inspect(id: string): Promise<ContainerState> {
    const answer = (await this.call('GET', `/containers/${encodeURIComponent(id)}/json`)) as {
      Id: string
      State: { Running: boolean; Status: string; ExitCode: number }
      Config: { Labels: Record<string, string> | null }
      HostConfig?: { LogConfig?: { Type?: string } }
    }
    return {
      id: answer.Id,
      running: answer.State.Running,
      status: answer.State.Status,
      exitCode: answer.State.ExitCode,
      labels: answer.Config.Labels ?? {},
      logDriver: answer.HostConfig?.LogConfig?.Type || undefined,
    }
  }

  /** Every running container. */
  async running(): Promise<ContainerSummary[]> {
    const answer = (await this.call('GET', '/containers/json')) as { Id: string; Names?: string[] | null; Labels: Record<string, string> | null }[]
    return answer.map((c) => ({ id: c.Id, name: (c.Names?.[0] ?? '').replace(/^\//, ''), labels: c.Labels ?? {} }))
  }

  /**
   * The newest line of a container's log (stdout and stderr), with Docker's
   * timestamp of it; undefined when it logged nothing. A log driver Docker
   * cannot read back (none, syslog, …) is a DockerRefusal.
   */
  async newestLogLine(id: string): Promise<NewestLogLine | undefined> {
    const raw = await this.call('GET', `/containers/${encodeURIComponent(id)}/logs?stdout=1&stderr=1&tail=1&timestamps=1`, undefined, [], MAX_LOG_LINE_BYTES)
    const text = demultiplex(raw as Buffer).trimEnd()
    const newest = text.slice(text.lastIndexOf('\n') + 1)
    const space = newest.indexOf(' ')
    if (space <= 0) return undefined
    return { dockerTime: newest.slice(0, space), line: newest.slice(space + 1) }
  }

  /** Running containers carrying this label (name=value). */
  async containersWithLabel(label: string): Promise<ContainerState[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [label] }))
    const answer = (await this.call('GET', `/containers/json?filters=${filters}`)) as { Id: string; State: string; Status: string; Labels: Record<string, string> | null }[]
    return answer.map((c) => ({ id: c.Id, running: c.State === 'running', status: c.Status, exitCode: 0, labels: c.Labels ?? {} }))
  }

  async remove(id: string): Promise<void> {
    await this.call('DELETE', `/containers/${encodeURIComponent(id)}?force=true`, undefined, [404])
  }

  async close(): Promise<void> {
    await this.agent.close()
  }

  /** The engine's JSON answer; with maxBytes, the raw body instead, its first maxBytes bytes at most. */
  private async call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, tolerated: number[] = [], maxBytes?: number): Promise<unknown> {
    let response: Awaited<ReturnType<typeof undiciRequest>>
    try {
      response = await undiciRequest.call(this.agent, {
        origin: this.origin,
        path,
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch (error) {
      // The timeout's DOMException carries a numeric code (23) that means nothing to a reader.
      const name = (error as Error).name
      const cause = name === 'TimeoutError' || name === 'AbortError' ? `no answer in ${this.timeoutMs / 1000}s` : ((error as { code?: string }).code ?? name)
      throw new UnreachableError(`cannot reach Docker at ${this.host} (${cause})`, 'check that Docker runs and DOCKER_HOST names its socket')
    }
    if (maxBytes !== undefined && response.statusCode < 300) return readAtMost(response.body, maxBytes)
    const text = await response.body.text()
    if (response.statusCode >= 300 && !tolerated.includes(response.statusCode)) {
      let message = text
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text
      } catch {
        // Docker answers JSON; a proxy may not.
      }
      throw new DockerRefusal(response.statusCode, oneLine(message).slice(0, 300))
    }
    return text ? (JSON.parse(text) as unknown) : undefined
  }
}

/** Docker answered, and said no (an image that is not there, a name in use). */
export class DockerRefusal extends UnreachableError {
  readonly status: number
  readonly reason: string

  constructor(status: number, reason: string) {
    super(`Docker refused: ${reason}`)
    this.name = 'DockerRefusal'
    this.status = status
    this.reason = reason
  }
}

/** The first maxBytes of a body; the rest is not read (a log line can be megabytes). */
async function readAtMost(body: AsyncIterable<Buffer> & { destroy(): unknown }, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    chunks.push(chunk)
    size += chunk.length
    if (size >= maxBytes) {
      body.destroy()
      break
    }
  }
  return Buffer.concat(chunks, size).subarray(0, maxBytes)
}

/**
 * A container's log as text. Without a TTY the engine multiplexes stdout and
 * stderr in frames (a byte for the stream, three zero bytes, the payload's
 * length as 32 bits big-endian); with one it sends the text as it is.
 */
export function demultiplex(raw: Buffer): string {
  const framed = raw.length >= 8 && raw[0]! <= 2 && raw[1] === 0 && raw[2] === 0 && raw[3] === 0
  if (!framed) return raw.toString('utf8')
  const parts: Buffer[] = []
  for (let at = 0; at + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(at + 4)
    parts.push(raw.subarray(at + 8, at + 8 + size))
    at += 8 + size
  }
  return Buffer.concat(parts).toString('utf8')
}
