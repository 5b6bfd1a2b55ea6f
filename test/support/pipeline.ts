/**
 * The design doc's pipeline, live: App → Docker → Alloy → Loki, every part
 * real and on this machine. A real dockerd (docker-engine.ts) runs the app's
 * containers with the labels compose sets; a real Alloy (alloy.ts) runs the
 * stack's config against that engine's socket and pushes to a real Loki with
 * the stack's config. Only unix sockets and 127.0.0.1 connect them.
 *
 * Used by the pipeline tests' global setup, by the fault tests (a pipeline of
 * their own, since they break it) and by the sandbox.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AlloyProcess, startAlloy } from './alloy.ts'
import { APP_IMAGE, type DockerEngine, docker as dockerAt, importImages, startDockerEngine } from './docker-engine.ts'
import { type LokiProcess, startLoki, stopAndRemove } from './loki.ts'

/** The compose project the containers belong to, as `docker compose -p` would name it. */
export const COMPOSE_PROJECT = 'cogni'
/** The app's compose services; `billing` runs only in the fault a wrong clock makes, so its lines are told apart by service. */
export type AppService = 'app' | 'worker' | 'billing'

export interface ContainerOptions {
  /** Requests to log before going quiet; 0 (the default) logs until stopped. */
  requests?: number
  /** When request 0 is due (epoch ms); now by default. */
  startMs?: number
  /** Prefix of the reqIds; the pipeline's own by default. */
  runId?: string
  tickMs?: number
  /** Container number, as compose numbers replicas (name cogni-<service>-<n>). */
  number?: number
  /** Record every line for the delivery tests (the default); the sandbox's containers log for days and record nothing. */
  record?: boolean
  /** Docker's --log-driver (json-file, Docker's default, otherwise): `none` is the fault doctor names. */
  logDriver?: string
  /** Added to the app's pino `time`: a container whose clock is wrong (its lines too old or too new for Loki). */
  clockOffsetMs?: number
}

export interface Pipeline {
  dir: string
  docker: DockerEngine
  loki: LokiProcess
  alloy: AlloyProcess
  appEnv: string
  runId: string
  /** Where the containers record every line they write (pipeline-app.mjs). */
  recordDir: string
  /** The environment that points obs at this pipeline. */
  env: Record<string, string>
  /** Starts one container of a compose service; resolves with its full id. */
  startContainer(service: AppService, options?: ContainerOptions): Promise<string>
  stop(): Promise<void>
}

export interface PipelineOptions {
  /** Keep everything here (the sandbox); a new temporary directory by default. */
  dir?: string
  /** Let the servers outlive this process (the sandbox). */
  detached?: boolean
  appEnv?: string
  lokiPort?: number
  alloyPort?: number
}

export async function startPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'obs-pipeline-'))
  const recordDir = join(dir, 'record')
  mkdirSync(recordDir, { recursive: true })
  const appEnv = options.appEnv ?? 'test'
  const started: { stop(): Promise<void> }[] = []
  try {
    const docker = await startDockerEngine({ dir: join(dir, 'docker'), detached: options.detached })
    started.push(docker)
    await importImages(docker)
    mkdirSync(join(dir, 'loki'), { recursive: true })
    const loki = await startLoki({ config: 'stack', dataDir: join(dir, 'loki'), port: options.lokiPort, detached: options.detached })
    started.push({ stop: () => stopAndRemove(loki) })
    const alloy = await startAlloy({
      dir: join(dir, 'alloy'),
      dockerHost: docker.host,
      lokiPushUrl: `${loki.addr}/loki/api/v1/push`,
      appEnv,
      port: options.alloyPort,
      detached: options.detached,
    })
    started.push(alloy)
    const runId = `r${Date.now().toString(36)}`
    const pipeline: Pipeline = {
      dir,
      docker,
      loki,
      alloy,
      appEnv,
      runId,
      recordDir,
      env: { LOKI_ADDR: loki.addr, ALLOY_ADDR: alloy.addr, DOCKER_HOST: docker.host },
      async startContainer(service, container = {}) {
        const number = container.number ?? 1
        return docker.docker([
          'run',
          '-d',
          '--network',
          'none',
          '--name',
          `${COMPOSE_PROJECT}-${service}-${number}`,
          // As the stack's compose file runs the app: Docker brings it back after a crash or a daemon restart.
          '--restart',
          'unless-stopped',
          ...composeLabels(service, number).flatMap((label) => ['--label', label]),
          '-e',
          `SERVICE=${service}`,
          '-e',
          `RUN_ID=${container.runId ?? runId}`,
          '-e',
          `START_MS=${container.startMs ?? Date.now()}`,
          '-e',
          `TICK_MS=${container.tickMs ?? 200}`,
          '-e',
          `REQUESTS=${container.requests ?? 0}`,
          ...(container.logDriver ? ['--log-driver', container.logDriver] : []),
          ...(container.clockOffsetMs ? ['-e', `CLOCK_OFFSET_MS=${container.clockOffsetMs}`] : []),
          ...(container.record === false ? [] : ['-e', 'RECORD_DIR=/record', '-v', `${recordDir}:/record`]),
          APP_IMAGE,
        ])
      },
      async stop() {
        for (const part of started.reverse()) await part.stop()
        rmSync(dir, { recursive: true, force: true })
      },
    }
    return pipeline
  } catch (error) {
    for (const part of started.reverse()) await part.stop().catch(() => undefined)
    if (!options.dir) rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

/** The labels `docker compose up` puts on a service's container (compose v2 names them so). */
export function composeLabels(service: string, number = 1): string[] {
  return [
    `com.docker.compose.project=${COMPOSE_PROJECT}`,
    `com.docker.compose.service=${service}`,
    `com.docker.compose.container-number=${number}`,
    'com.docker.compose.oneoff=False',
    `com.docker.compose.project.working_dir=/srv/${COMPOSE_PROJECT}`,
    'com.docker.compose.project.config_files=/srv/cogni/docker-compose.yml',
    'com.docker.compose.version=2.29.7',
  ]
}

/** A release of the app: its version, and whether it is the bad one (pipeline-app.mjs's VERSION and BAD). */
export interface Release {
  version: string
  bad?: boolean
}

/** What deployService did: when the deploy began (epoch ms, the verdict's --deployed-at) and the containers it replaced. */
export interface Deployed {
  deployedAt: number
  from: string
  replaced: { service: string; old: string; new: string }[]
}

/**
 * Rolls compose services to a new release as `docker compose up -d` does when
 * a service's configuration changed: for each, the running container is
 * stopped, renamed to <short id>_<name>, a new one is created with the old
 * one's name, labels, mounts and environment (the release's VERSION and BAD
 * changed), started, and the old one removed. The engine is named by its
 * DOCKER_HOST (the sandbox's engine belongs to another process).
 */
export async function deployService(host: string, services: readonly AppService[], release: Release, number = 1): Promise<Deployed> {
  const docker = (args: string[]) => dockerAt(host, args)
  const deployedAt = Date.now()
  const replaced: Deployed['replaced'] = []
  let from = ''
  for (const service of services) {
    const name = `${COMPOSE_PROJECT}-${service}-${number}`
    const [old] = JSON.parse(await docker(['inspect', name])) as {
      Id: string
      Config: { Env: string[] | null; Labels: Record<string, string>; Image: string }
      HostConfig: { Binds: string[] | null; RestartPolicy: { Name: string }; LogConfig: { Type: string }; NetworkMode: string }
    }[]
    const env = (old!.Config.Env ?? []).filter((e) => !/^(VERSION|BAD)=/.test(e))
    from ||= /^VERSION=(.*)$/m.exec((old!.Config.Env ?? []).join('\n'))?.[1] ?? '1.0.0'
    env.push(`VERSION=${release.version}`, ...(release.bad ? ['BAD=1'] : []))
    await docker(['stop', old!.Id])
    await docker(['rename', old!.Id, `${old!.Id.slice(0, 12)}_${name}`])
    const id = await docker([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      old!.HostConfig.NetworkMode,
      '--restart',
      old!.HostConfig.RestartPolicy.Name || 'no',
      '--log-driver',
      old!.HostConfig.LogConfig.Type,
      ...Object.entries(old!.Config.Labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]),
      ...env.flatMap((e) => ['-e', e]),
      ...(old!.HostConfig.Binds ?? []).flatMap((bind) => ['-v', bind]),
      old!.Config.Image,
    ])
    await docker(['rm', old!.Id])
    replaced.push({ service, old: old!.Id, new: id })
  }
  return { deployedAt, from, replaced }
}

/** One line a container wrote, from its record. */
export interface WrittenLine {
  /** When it was written (epoch ms; pino's `time` for JSON lines). */
  ms: number
  service: string
  /** The container's hostname: the first 12 characters of its id. */
  container: string
  stream: 'stdout' | 'stderr'
  line: string
}

/** Every line the containers wrote so far, from their records. */
export function writtenLines(pipeline: Pick<Pipeline, 'recordDir'>): WrittenLine[] {
  const lines: WrittenLine[] = []
  for (const file of readdirSync(pipeline.recordDir).filter((name) => name.endsWith('.log'))) {
    const [service, container] = file.slice(0, -'.log'.length).split('.') as [string, string]
    for (const record of readFileSync(join(pipeline.recordDir, file), 'utf8').split('\n')) {
      if (!record) continue
      const [, ms, stream, line] = /^(\d+) (stdout|stderr) (.*)$/s.exec(record)!
      lines.push({ ms: Number(ms), service, container, stream: stream as WrittenLine['stream'], line: line! })
    }
  }
  return lines
}

/** One entry as Loki stores it. */
export interface StoredLine {
  labels: Record<string, string>
  ts: bigint
  line: string
}

/**
 * Every entry of the app in Loki between two times, read with Loki's own API
 * (not obs: this is the ground truth obs is judged by), window by window, each
 * window small enough to come back whole.
 */
export async function storedLines(lokiAddr: string, startMs: number, endMs: number, windowMs = 30_000): Promise<StoredLine[]> {
  const lines: StoredLine[] = []
  for (let from = startMs; from < endMs; from += windowMs) {
    const params = new URLSearchParams({
      query: '{app="cogni-template"}',
      start: `${BigInt(from) * 1_000_000n}`,
      end: `${BigInt(Math.min(from + windowMs, endMs)) * 1_000_000n - 1n}`,
      limit: '5000',
      direction: 'forward',
    })
    const answer = (await (await fetch(`${lokiAddr}/loki/api/v1/query_range?${params}`)).json()) as {
      data: { result: { stream: Record<string, string>; values: [string, string][] }[] }
    }
    const window = answer.data.result.flatMap((stream) => stream.values.map(([ts, line]) => ({ labels: stream.stream, ts: BigInt(ts), line })))
    if (window.length >= 5000) throw new Error(`more than 5000 lines in ${windowMs}ms from ${new Date(from).toISOString()}: use smaller windows`)
    lines.push(...window)
  }
  return lines
}

/** Written against stored: what was lost, what arrived twice, per container and per request. */
export interface Delivery {
  written: number
  stored: number
  lost: WrittenLine[]
  duplicated: StoredLine[]
  /** Stored lines no container wrote (the probe's markers are left out before). */
  unexpected: StoredLine[]
  perContainer: Map<string, { written: number; stored: number }>
  perRequest: Map<string, { written: number; stored: number }>
}

const keyOf = (service: string, stream: string, line: string) => `${service}\u0000${stream}\u0000${line}`
const reqIdOf = (line: string) => /"reqId":"([^"]+)"/.exec(line)?.[1]
const containerOf = (line: string) => /"hostname":"([0-9a-f]{12})"|from \w+ ([0-9a-f]{12}) #| on ([0-9a-f]{12}) #/.exec(line)?.slice(1).find(Boolean)

/** Compares what the containers wrote with what Loki holds, as multisets of (service, stream, line). */
export function compareDelivery(written: WrittenLine[], stored: StoredLine[]): Delivery {
  const expected = new Map<string, WrittenLine[]>()
  for (const line of written) {
    const key = keyOf(line.service, line.stream, line.line)
    expected.set(key, [...(expected.get(key) ?? []), line])
  }
  const delivery: Delivery = { written: written.length, stored: stored.length, lost: [], duplicated: [], unexpected: [], perContainer: new Map(), perRequest: new Map() }
  const count = (map: Map<string, { written: number; stored: number }>, key: string | undefined, field: 'written' | 'stored') => {
    if (!key) return
    const entry = map.get(key) ?? { written: 0, stored: 0 }
    entry[field] += 1
    map.set(key, entry)
  }
  for (const line of written) {
    // A stack trace's frames name no container; the multiset comparison covers them.
    count(delivery.perContainer, containerOf(line.line), 'written')
    count(delivery.perRequest, reqIdOf(line.line), 'written')
  }
  const seen = new Map<string, number>()
  for (const entry of stored) {
    const key = keyOf(entry.labels.service ?? '', entry.labels.stream ?? '', entry.line)
    const times = (seen.get(key) ?? 0) + 1
    seen.set(key, times)
    const wanted = expected.get(key)?.length ?? 0
    if (wanted === 0) delivery.unexpected.push(entry)
    else if (times > wanted) delivery.duplicated.push(entry)
    count(delivery.perContainer, containerOf(entry.line), 'stored')
    count(delivery.perRequest, reqIdOf(entry.line), 'stored')
  }
  for (const [key, lines] of expected) delivery.lost.push(...lines.slice(seen.get(key) ?? 0))
  return delivery
}

/** Leaves out the probe's marker lines, which no app container writes. */
export function withoutProbes(stored: StoredLine[]): StoredLine[] {
  return stored.filter((entry) => !entry.line.includes('"reqId":"obs-probe-'))
}
