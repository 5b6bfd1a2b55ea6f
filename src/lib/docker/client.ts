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
}

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
    }
    return { id: answer.Id, running: answer.State.Running, status: answer.State.Status, exitCode: answer.State.ExitCode, labels: answer.Config.Labels ?? {} }
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

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, tolerated: number[] = []): Promise<unknown> {
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
