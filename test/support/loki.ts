/**
 * A real Loki 3.6.2 for the tests, on free loopback ports and a temporary
 * directory, with one of two configs: the stack's own (`stack`) or Loki's
 * stock limits (`stock`, test/support/loki-stock.yaml). A test run picks one
 * with OBS_TEST_LOKI_CONFIG; `npm test` runs the integration suites on both.
 * The binary comes from LOKI_BIN or the cache that scripts/build-servers.sh
 * fills (built on first use).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const REPO = resolve(import.meta.dirname, '../..')
export const LOKI_VERSION = '3.6.2'

export type LokiConfigName = 'stack' | 'stock'

const CONFIG_FILES: Record<LokiConfigName, string> = {
  stack: join(REPO, 'stack/loki-config.yaml'),
  stock: join(REPO, 'test/support/loki-stock.yaml'),
}

/** The config this test run runs its Lokis with. */
export function lokiConfigName(): LokiConfigName {
  const name = process.env.OBS_TEST_LOKI_CONFIG ?? 'stack'
  if (name !== 'stack' && name !== 'stock') throw new Error(`OBS_TEST_LOKI_CONFIG must be stack or stock, not ${name}`)
  return name
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

export interface LokiProcess {
  config: LokiConfigName
  addr: string
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
}

export async function startLoki(options: StartOptions = {}): Promise<LokiProcess> {
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
