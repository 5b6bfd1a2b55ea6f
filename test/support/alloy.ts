/**
 * A real Alloy for the pipeline tests and the sandbox, running the stack's own
 * stack/alloy-config.alloy. The stack pins v1.9.2; the module proxy serves no
 * v1.9 and v1.1.1 is the newest that builds here (../shared/docs/REAL_SERVERS.md),
 * so the file passes through `configForAlloyV111` on its way in: the one place
 * where what v1.1.1 cannot read is rewritten. Everything else (discovery, the
 * relabel rules, the pino timestamp stages, loki.write) runs as the stack ships it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cacheDir, freePort, REPO, stopChild, waitServerReady } from './loki.ts'

export const ALLOY_VERSION = '1.1.1'
export const STACK_ALLOY_CONFIG = join(REPO, 'stack/alloy-config.alloy')

/**
 * What differs between the stack's v1.9 config and what v1.1.1 runs:
 *   - `sys.env(NAME)` is `env(NAME)` in v1.1 (the sys namespace came in v1.5).
 * Nothing else is touched; a test asserts that this is the only difference.
 */
export function configForAlloyV111(text: string): string {
  return text.replaceAll('sys.env(', 'env(')
}

/** The Alloy binary: ALLOY_BIN, or the cache scripts/build-servers.sh fills (built on first use). */
export function alloyBinary(): string {
  if (process.env.ALLOY_BIN) return process.env.ALLOY_BIN
  const binary = join(cacheDir(), `alloy-v${ALLOY_VERSION}`, 'alloy')
  if (!existsSync(binary)) {
    process.stderr.write(`Alloy v${ALLOY_VERSION} is not built yet; building it into ${cacheDir()} (a cold build takes about 20 minutes)\n`)
    const build = spawnSync(join(REPO, 'scripts/build-servers.sh'), ['alloy'], { stdio: ['ignore', 'ignore', 'inherit'] })
    if (build.status !== 0) throw new Error('building Alloy failed; see the output above')
  }
  return binary
}

export interface AlloyProcess {
  addr: string
  dir: string
  logFile: string
  configFile: string
  env: Record<string, string | undefined>
  child: ChildProcess
  stop(): Promise<void>
  /** Stops Alloy and starts it again with this environment (and config text, if given). */
  restart(env?: Record<string, string | undefined>, configText?: string): Promise<void>
}

export interface AlloyOptions {
  dir: string
  dockerHost: string
  lokiPushUrl: string
  /** APP_ENV as compose passes it; undefined leaves it unset (the fault doctor reports). */
  appEnv: string | undefined
  /** The config's text, before the v1.1.1 rewrite; the stack's file by default. */
  configText?: string
  port?: number
  detached?: boolean
}

export async function startAlloy(options: AlloyOptions): Promise<AlloyProcess> {
  const binary = alloyBinary()
  mkdirSync(options.dir, { recursive: true })
  const port = options.port ?? (await freePort())
  const configFile = join(options.dir, 'config.alloy')
  const logFile = join(options.dir, 'alloy.log')
  const writeConfig = (text: string) => writeFileSync(configFile, configForAlloyV111(text))
  writeConfig(options.configText ?? readFileSync(STACK_ALLOY_CONFIG, 'utf8'))
  const baseEnv = (appEnv: string | undefined): Record<string, string | undefined> => ({
    DOCKER_HOST: options.dockerHost,
    LOKI_PUSH_URL: options.lokiPushUrl,
    APP_ENV: appEnv,
  })
  const launch = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, GODEBUG: 'httpmuxgo121=1' }
    for (const [key, value] of Object.entries(alloy.env)) {
      if (value === undefined) delete env[key]
      else env[key] = value
    }
    return spawn(binary, ['run', configFile, `--server.http.listen-addr=127.0.0.1:${port}`, `--storage.path=${join(options.dir, 'data')}`, '--disable-reporting'], {
      env,
      stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')],
      detached: options.detached,
    })
  }
  const alloy: AlloyProcess = {
    addr: `http://127.0.0.1:${port}`,
    dir: options.dir,
    logFile,
    configFile,
    env: baseEnv(options.appEnv),
    child: undefined as unknown as ChildProcess,
    async stop() {
      await stopChild(alloy.child)
    },
    async restart(env, configText) {
      await stopChild(alloy.child)
      if (env) alloy.env = { ...alloy.env, ...env }
      if (configText !== undefined) writeConfig(configText)
      alloy.child = launch()
      await waitServerReady('Alloy', alloy, '/-/ready', 60_000)
    },
  }
  alloy.child = launch()
  if (options.detached) alloy.child.unref()
  await waitServerReady('Alloy', alloy, '/-/ready', 60_000)
  return alloy
}
