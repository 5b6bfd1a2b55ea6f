/**
 * A real Loki 3.6.2 for the tests, on free loopback ports and a temporary
 * directory, with one of three configs: the stack's own (`stack`), Loki's
 * stock limits (`stock`, test/support/loki-stock.yaml), or the stack's limits
 * on a Loki run as separate write, read and backend processes (`scalable`,
 * test/support/loki-scalable.yaml) behind a gateway. A test run picks one
 * with OBS_TEST_LOKI_CONFIG; `npm test` runs the integration suites on the
 * first two and the paging, tail and trace suites on the third. The binary
 * comes from LOKI_BIN or the cache that scripts/build-servers.sh fills
 * (built on first use).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type FaultProxy, startFaultProxy } from './fault-proxy.ts'

export const REPO = resolve(import.meta.dirname, '../..')
export const LOKI_VERSION = '3.6.2'

export type LokiConfigName = 'stack' | 'stock' | 'scalable'

const CONFIG_FILES: Record<LokiConfigName, string> = {
  stack: join(REPO, 'stack/loki-config.yaml'),
  stock: join(REPO, 'test/support/loki-stock.yaml'),
  scalable: join(REPO, 'test/support/loki-scalable.yaml'),
}

/** The config this test run runs its Lokis with. */
export function lokiConfigName(): LokiConfigName {
  const name = process.env.OBS_TEST_LOKI_CONFIG ?? 'stack'
  if (!(name in CONFIG_FILES)) throw new Error(`OBS_TEST_LOKI_CONFIG must be stack, stock or scalable, not ${name}`)
  return name as LokiConfigName
}

export function lokiConfigFile(name: LokiConfigName = lokiConfigName()): string {
  return CONFIG_FILES[name]
}

export function cacheDir(): string {
  return process.env.OBS_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'obs')
}

/** The Loki binary, built into the cache if it is not there yet. */
export function lokiBinary(): string {
  if (process.env.LOKI_BIN) return process.env.LOKI_BIN
  const binary = join(cacheDir(), `loki-${LOKI_VERSION}`, 'loki')
  if (!existsSync(binary)) {
    process.stderr.write(`Loki ${LOKI_VERSION} is not built yet; building it into ${cacheDir()} (a cold build takes minutes)\n`)
    const build = spawnSync(join(REPO, 'scripts/build-servers.sh'), ['loki'], { stdio: ['ignore', 'ignore', 'inherit'] })
    if (build.status !== 0) throw new Error('building Loki failed; see the output above')
  }
  return binary
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/**
 * The environment that points the stack's config (its ${VAR:-default}
 * placeholders) at loopback ports and a data directory: addresses and paths only.
 */
export function lokiEnv(port: number, grpcPort: number, dataDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LOKI_HTTP_ADDRESS: '127.0.0.1',
    LOKI_HTTP_PORT: String(port),
    LOKI_GRPC_ADDRESS: '127.0.0.1',
    LOKI_GRPC_PORT: String(grpcPort),
    LOKI_INSTANCE_ADDR: '127.0.0.1',
    LOKI_DATA_DIR: join(dataDir, 'data'),
    LOKI_LOG_LEVEL: 'warn',
  }
}

/** One process of a scalable Loki. */
export interface LokiTarget {
  target: 'backend' | 'write' | 'read'
  /** Its own HTTP address: a read's serves queries, a write's pushes. */
  addr: string
  child: ChildProcess
  logFile: string
}

export interface LokiProcess {
  config: LokiConfigName
  /** Where obs and the tests send everything: Loki itself, or the gateway in front of a scalable one. */
  addr: string
  /** A scalable Loki's processes, backend first; the single process is `child`. */
  targets?: LokiTarget[]
  port: number
  dataDir: string
  logFile: string
  child: ChildProcess
  stop(): Promise<void>
  /** Stops Loki and starts it again on the same port and data. */
  restart(): Promise<void>
  /**
   * Starts Loki again after stop(), on the same port and data, without
   * waiting for /ready. `stackTiming` drops the fast-start flags, so the
   * restarted Loki takes its usual ~10 s before it answers queries.
   */
  launch(options?: { stackTiming?: boolean }): void
  /** Stops Loki and deletes its data. */
  remove(): Promise<void>
}

/** Lokis still running when this process exits (a crashed or cancelled test) are killed with it; the sandbox's (detached) are not. */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * Flags that make a single-binary Loki answer queries within a second of
 * starting: the querier and the query frontend find the scheduler at a fixed
 * address instead of through the scheduler ring, which they poll only every
 * 10 s. Nothing else about the config changes.
 */
function fastStartArgs(grpcPort: number): string[] {
  const scheduler = `127.0.0.1:${grpcPort}`
  return ['-query-scheduler.use-scheduler-ring=false', `-frontend.scheduler-address=${scheduler}`, `-querier.scheduler-address=${scheduler}`]
}

export interface StartOptions {
  /** Do not wait for /ready (to test waiting for a starting Loki). */
  noWait?: boolean
  port?: number
  /** Keep the data here instead of a new temporary directory. */
  dataDir?: string
  /** Let Loki outlive this process (the sandbox). */
  detached?: boolean
  /** Which config; the test run's own by default. */
  config?: LokiConfigName
  /** A config file of the test's own (tight limits), instead of a named one. */
  configFile?: string
  /** Extra command-line flags, after the config file (they override it). */
  args?: string[]
  /** Answer queries within a second of starting (fastStartArgs), as the fault tests need. */
  fastStart?: boolean
  /** A scalable Loki's read processes (1 by default). */
  reads?: number
}

export async function startLoki(options: StartOptions = {}): Promise<LokiProcess> {
  if ((options.config ?? lokiConfigName()) === 'scalable' && !options.configFile) return startScalableLoki(options)
  const binary = lokiBinary()
  const port = options.port ?? (await freePort())
  const grpcPort = await freePort()
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'obs-loki-'))
  const logFile = join(dataDir, 'loki.log')
  const env = lokiEnv(port, grpcPort, dataDir)
  const config = options.config ?? lokiConfigName()
  const configFile = options.configFile ?? lokiConfigFile(config)
  const launch = (fastStart = options.fastStart ?? false) => {
    const log = openSync(logFile, 'a')
    const child = spawn(binary, [`-config.file=${configFile}`, '-config.expand-env=true', ...(fastStart ? fastStartArgs(grpcPort) : []), ...(options.args ?? [])], {
      env,
      stdio: ['ignore', log, log],
      detached: options.detached,
    })
    closeSync(log)
    if (!options.detached) {
      running.add(child)
      child.once('exit', () => running.delete(child))
    }
    return child
  }

  const loki: LokiProcess = {
    config,
    addr: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    logFile,
    child: launch(),
    async stop() {
      await stopChild(loki.child)
    },
    async restart() {
      await stopChild(loki.child)
      loki.child = launch()
      await waitServerReady('Loki', loki, '/ready', 90_000)
    },
    launch(launchOptions = {}) {
      if (loki.child.exitCode === null && loki.child.signalCode === null) throw new Error('Loki is still running')
      loki.child = launch(launchOptions.stackTiming ? false : options.fastStart)
    },
    async remove() {
      await stopChild(loki.child)
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  if (options.detached) loki.child.unref()
  if (!options.noWait) await waitServerReady('Loki', loki, '/ready', 90_000)
  return loki
}

/** Paths a gateway sends to the write processes; everything else goes to a read. */
const PUSH_PATHS = ['/loki/api/v1/push', '/api/prom/push', '/otlp/v1/logs']

/**
 * A scalable Loki: one backend, one write and `reads` read processes of the
 * same binary on loopback (test/support/loki-scalable.yaml), sharing one
 * object store directory, and in front of them a gateway (fault-proxy.ts with
 * a route) that sends pushes to the write and everything else to the reads in
 * turn, as the Helm chart's nginx does. The gateway stays up across stop()
 * and launch(), as a real one does while Loki restarts behind it.
 */
async function startScalableLoki(options: StartOptions): Promise<LokiProcess> {
  const binary = lokiBinary()
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'obs-loki-'))
  const shared = join(dataDir, 'shared')
  const names: LokiTarget['target'][] = ['backend', 'write', ...Array.from({ length: options.reads ?? 1 }, () => 'read' as const)]
  const ports: { http: number; grpc: number; memberlist: number }[] = []
  for (const _ of names) ports.push({ http: await freePort(), grpc: await freePort(), memberlist: await freePort() })
  const [backend] = ports
  const launchOne = (index: number): LokiTarget => {
    const target = names[index]
    const { http, grpc, memberlist } = ports[index]
    const own = join(dataDir, `${target}-${index}`)
    const logFile = join(dataDir, `${target}-${index}.log`)
    const env = {
      ...lokiEnv(http, grpc, dataDir),
      LOKI_DATA_DIR: own,
      LOKI_SHARED_DIR: shared,
      LOKI_MEMBERLIST_PORT: String(memberlist),
      LOKI_MEMBERLIST_JOIN_PORT: String(backend.memberlist),
      LOKI_BACKEND_GRPC_ADDRESS: `127.0.0.1:${backend.grpc}`,
    }
    const log = openSync(logFile, 'a')
    const args = [`-config.file=${lokiConfigFile('scalable')}`, '-config.expand-env=true', `-target=${target}`, ...(options.args ?? [])]
    const child = spawn(binary, args, { env, stdio: ['ignore', log, log], detached: options.detached })
    closeSync(log)
    if (!options.detached) {
      running.add(child)
      child.once('exit', () => running.delete(child))
    }
    return { target, addr: `http://127.0.0.1:${http}`, child, logFile }
  }
  const launchAll = () => names.map((_, index) => launchOne(index))
  const waitAll = async (targets: LokiTarget[]) => {
    for (const target of targets) await waitServerReady(`Loki ${target.target}`, target, '/ready', 90_000)
    await waitRingSeen(targets)
  }
  const stopAll = async (targets: LokiTarget[]) => {
    // Reads first, backend last: nothing is left asking a process already gone.
    for (const target of [...targets].reverse()) await stopChild(target.child)
  }

  let targets = launchAll()
  let turn = 0
  const gateway: FaultProxy = await startFaultProxy((path) => {
    if (PUSH_PATHS.includes(path)) return targets[1].addr
    const reads = targets.slice(2)
    return reads[turn++ % reads.length].addr
  })
  const loki: LokiProcess = {
    config: 'scalable',
    addr: gateway.addr,
    port: Number(new URL(gateway.addr).port),
    dataDir,
    logFile: targets[2].logFile,
    child: targets[2].child,
    targets,
    async stop() {
      await stopAll(targets)
    },
    async restart() {
      await stopAll(targets)
      loki.launch()
      await waitAll(targets)
    },
    launch() {
      if (targets.some((target) => target.child.exitCode === null && target.child.signalCode === null)) throw new Error('Loki is still running')
      targets = launchAll()
      loki.targets = targets
      loki.child = targets[2].child
    },
    async remove() {
      await stopAll(targets)
      await gateway.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  if (!options.noWait) await waitAll(targets)
  return loki
}

/**
 * Every read process must see the write's ingester in the ring, which
 * reaches it by gossip after /ready: until then a query would not ask the
 * ingester and find nothing of what was just pushed.
 */
async function waitRingSeen(targets: LokiTarget[]): Promise<void> {
  const deadline = Date.now() + 30_000
  for (const target of targets.filter((t) => t.target === 'read')) {
    for (;;) {
      // The ingester ring as this process sees it.
      const page = await fetch(`${target.addr}/ring`, { headers: { accept: 'application/json' } })
        .then((response) => response.text())
        .catch(() => '')
      if (page.includes('"state":"ACTIVE"')) break
      if (Date.now() > deadline) throw new Error(`Loki read at ${target.addr} does not see an active ingester after 30 s; see ${target.logFile}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

export async function stopAndRemove(loki: LokiProcess): Promise<void> {
  await loki.remove()
}

/** Stops a server child: SIGTERM, then SIGKILL after 10 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

/**
 * Polls a server the tests started until `path` answers 200 (Loki's /ready,
 * Alloy's /-/ready); fails at once when the process exits, naming its log.
 */
export async function waitServerReady(name: string, server: { addr: string; child: ChildProcess; logFile: string }, path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`${name} exited with ${server.child.exitCode}; see ${server.logFile}`)
    try {
      const response = await fetch(`${server.addr}${path}`)
      last = await response.text()
      if (response.status === 200) return
    } catch (error) {
      last = String(error)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`${name} at ${server.addr} not ready after ${timeoutMs}ms: ${last}`)
}

/** Pushes batches with Loki's push API, retrying when its rate limit answers 429. */
export async function pushAll(addr: string, batches: unknown[][], headers: Record<string, string> = {}): Promise<void> {
  for (const streams of batches) {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(`${addr}/loki/api/v1/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ streams }),
      })
      if (response.status === 204) break
      const text = await response.text()
      if (response.status !== 429 || attempt > 20) throw new Error(`push failed: ${response.status} ${text}`)
      await new Promise((r) => setTimeout(r, 500))
    }
  }
}
