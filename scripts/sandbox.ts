/**
 * The main job on a fresh machine: the design doc's pipeline, live and local —
 * a real Docker Engine running the app's `app` and `worker` containers, which
 * log pino JSON until stopped, a real Alloy on stack/alloy-config.alloy and a
 * real Loki on stack/loki-config.yaml — then `obs smoke --probe`, `obs trace`
 * on a request it found, `obs doctor`, and what to try next.
 *
 *   npm run sandbox          # start (or reuse) the sandbox and run the checks
 *   npm run sandbox -- stop  # stop it and remove what it made
 *   npm run sandbox -- deploy [--bad]  # roll app and worker to a new release, then the deploy verdict
 *
 * Without a Docker Engine (not root, or docker.io not installed) it says so
 * and falls back to Loki alone, fed by the same app as plain processes that a
 * small feeder pushes to Loki, so the data stays fresh either way. With
 * LOKI_ADDR set it starts nothing and runs the checks against that Loki.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { alive, BUSYBOX_IMAGE, dockerUnavailable, removeEngine } from '../test/support/docker-engine.ts'
import { cacheDir, freePort, REPO, startLoki } from '../test/support/loki.ts'
import { deployService, type Release, startPipeline } from '../test/support/pipeline.ts'
import { waitForServices } from '../test/support/pipeline-setup.ts'

const home = join(cacheDir(), 'sandbox')
const stateFile = join(home, 'sandbox.json')
const APP_ENV = 'dev'
const say = (text: string) => process.stdout.write(`${text}\n`)
const step = (text: string) => process.stdout.write(process.stdout.isTTY ? `\n\u001b[1m== ${text}\u001b[0m\n` : `\n== ${text}\n`)

/** What a running sandbox is made of, so a second run reuses it and `stop` removes it. */
interface SandboxState {
  mode: 'pipeline' | 'feeder'
  env: Record<string, string>
  /** Processes to stop: Loki, Alloy, the feeder. */
  pids: number[]
  /** The Docker Engine's directory (pipeline mode). */
  dockerDir?: string
  /** The feeder's pid (feeder mode): SIGHUP makes it restart the app's processes on the release in release.json. */
  feeder?: number
  /** The release running now (pipeline-app.mjs's VERSION): 1.0.0 at the start, the patch number up with each deploy. */
  version?: string
}

const releaseFile = join(home, 'release.json')

function obs(args: string[], env: Record<string, string>): { status: number | null; stdout: string } {
  say(`$ obs ${args.map((a) => (/^[\w./:=-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`)
  const result = spawnSync(process.execPath, [join(REPO, 'bin/run.js'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  })
  process.stdout.write(result.stdout)
  return { status: result.status, stdout: result.stdout }
}

function runningSandbox(): SandboxState | undefined {
  if (!existsSync(stateFile)) return undefined
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as SandboxState
  return state.pids.every(alive) ? state : undefined
}

async function stopSandbox(): Promise<void> {
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as SandboxState
    for (const pid of state.pids.filter(alive)) process.kill(pid, 'SIGTERM')
    if (state.dockerDir) await removeEngine(state.dockerDir)
    // As docker stop does: 10 s to exit, then SIGKILL (Alloy holds on to a push that Loki, stopped first, never answers).
    for (let i = 0; i < 100 && state.pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100))
    for (const pid of state.pids.filter(alive)) process.kill(pid, 'SIGKILL')
  }
  rmSync(home, { recursive: true, force: true })
}

/** The port if nothing listens on it, else a free one: 3100 and 12345 are the stack's, and what obs assumes by default. */
async function portOr(port: number): Promise<number> {
  try {
    await fetch(`http://127.0.0.1:${port}/`)
    return freePort()
  } catch {
    return port
  }
}

async function startSandbox(): Promise<SandboxState> {
  await stopSandbox()
  mkdirSync(home, { recursive: true })
  const lokiPort = await portOr(3100)
  const missing = dockerUnavailable()
  if (!missing) {
    say('starting dockerd, Loki 3.6.2 and Alloy (the first run builds Loki and Alloy from the Go module proxy: 15 minutes or more)')
    const pipeline = await startPipeline({ dir: home, detached: true, appEnv: APP_ENV, lokiPort, alloyPort: await portOr(12345) })
    // `obs smoke --probe` starts `busybox` by default: the engine has no registry, so it gets the one made here.
    await pipeline.docker.docker(['tag', BUSYBOX_IMAGE, 'busybox:latest'])
    for (const service of ['app', 'worker'] as const) await pipeline.startContainer(service, { record: false })
    say(`containers ${['app', 'worker'].map((s) => `cogni-${s}-1`).join(', ')} log until \`npm run sandbox -- stop\`; waiting for their first lines in Loki`)
    await waitForServices(pipeline, ['app', 'worker'])
    return { mode: 'pipeline', env: pipeline.env, pids: [pipeline.loki.child.pid!, pipeline.alloy.child.pid!], dockerDir: pipeline.docker.dir }
  }
  say(`no Docker Engine: ${missing}. Falling back to Loki alone, fed by the app's processes (no Alloy, no containers)`)
  mkdirSync(join(home, 'loki'), { recursive: true })
  const loki = await startLoki({ config: 'stack', port: lokiPort, dataDir: join(home, 'loki'), detached: true })
  const log = openSync(join(home, 'feeder.log'), 'a')
  const feeder = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', import.meta.filename, 'feed', loki.addr], { detached: true, stdio: ['ignore', log, log] })
  feeder.unref()
  await waitForServices({ env: { LOKI_ADDR: loki.addr } }, ['app', 'worker'])
  return { mode: 'feeder', env: { LOKI_ADDR: loki.addr }, pids: [loki.child.pid!, feeder.pid!], feeder: feeder.pid! }
}

/**
 * The fallback's feeder: the pipeline's app (test/support/pipeline-app.mjs) as
 * two plain processes, their lines pushed to Loki once a second with the
 * labels and timestamps Alloy would give them.
 */
async function feed(lokiAddr: string): Promise<void> {
  const pending: { service: string; stream: string; line: string }[] = []
  // As the containers do: one run's requests numbered from one start, so app and worker log the same reqIds, across deploys too.
  const run = { RUN_ID: `r${Date.now().toString(36)}`, START_MS: String(Date.now()) }
  let apps: ReturnType<typeof spawn>[] = []
  const start = () => {
    const release = existsSync(releaseFile) ? (JSON.parse(readFileSync(releaseFile, 'utf8')) as Release) : { version: '1.0.0' }
    apps = ['app', 'worker'].map((service) => {
      const env = { ...process.env, ...run, SERVICE: service, VERSION: release.version, BAD: release.bad ? '1' : '' }
      const app = spawn(process.execPath, [join(REPO, 'test/support/pipeline-app.mjs')], { env })
      for (const stream of ['stdout', 'stderr'] as const) {
        createInterface({ input: app[stream]! }).on('line', (line) => pending.push({ service, stream, line }))
      }
      return app
    })
  }
  start()
  // A deploy: the old processes stopped, the new release started, as compose replaces a container.
  process.on('SIGHUP', () => {
    for (const app of apps) app.kill()
    start()
  })
  process.once('SIGTERM', () => {
    for (const app of apps) app.kill()
    process.exit(0)
  })
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000))
    const batch = pending.splice(0)
    const streams = new Map<string, { stream: Record<string, string>; values: [string, string][] }>()
    for (const { service, stream, line } of batch) {
      const key = `${service}/${stream}`
      const entry = streams.get(key) ?? { stream: { app: 'cogni-template', env: APP_ENV, service, stream }, values: [] }
      const time = /"time":(\d+)/.exec(line)?.[1]
      entry.values.push([`${BigInt(time ?? Date.now()) * 1_000_000n}`, line])
      streams.set(key, entry)
    }
    if (streams.size === 0) continue
    await fetch(`${lokiAddr}/loki/api/v1/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ streams: [...streams.values()] }),
    }).catch((error: unknown) => process.stderr.write(`push failed: ${String(error)}\n`))
  }
}

async function main(): Promise<void> {
  const [command, arg, ...rest] = process.argv.slice(2)
  if (command === 'feed') return feed(arg!)
  if (command === 'stop') {
    await stopSandbox()
    say('sandbox stopped; nothing of it is left running')
    return
  }
  if (command === 'deploy' && (arg === undefined || arg === '--bad') && rest.length === 0) return deploy(arg === '--bad')
  if (command) {
    process.stderr.write(
      `unknown argument ${[command, arg, ...rest].filter(Boolean).join(' ')}: use \`npm run sandbox\`, \`npm run sandbox -- deploy [--bad]\` or \`npm run sandbox -- stop\`\n`,
    )
    process.exitCode = 2
    return
  }

  step('the pipeline')
  let env: Record<string, string>
  let mode: SandboxState['mode'] | 'external' = 'external'
  if (process.env.LOKI_ADDR) {
    env = { LOKI_ADDR: process.env.LOKI_ADDR }
    say(`using the Loki that LOKI_ADDR names: ${env.LOKI_ADDR}`)
  } else {
    const reused = runningSandbox()
    if (reused)
      say(
        `reusing the running sandbox (${reused.mode}): ${Object.entries(reused.env)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      )
    const state = reused ?? (await startSandbox())
    writeFileSync(stateFile, JSON.stringify(state))
    env = state.env
    mode = state.mode
  }
  obs(['ready', '--wait', '60s'], env)

  step(mode === 'pipeline' ? 'smoke checks, with a probe line through Docker, Alloy and Loki' : 'smoke checks (no Alloy here)')
  const smoke = obs(['smoke', '--since', '10m', ...(mode === 'pipeline' ? ['--probe', '--wait', '30s'] : ['--no-alloy', '--wait', '30s'])], env)

  step('one request across services')
  const found = obs(['query-range', '{service="worker"} |= "reqId"', '--since', '10m', '--limit', '1', '-o', 'raw'], env)
  const reqId = /"reqId":"([^"]+)"/.exec(found.stdout)?.[1]
  if (reqId) obs(['trace', reqId, '--since', '10m'], env)
  else say('no request found to trace')

  if (mode === 'pipeline') {
    step('the whole pipeline, inspected')
    obs(['doctor', '--since', '10m', '--compose', 'stack/docker-compose.yml', '--alloy-config', 'stack/alloy-config.alloy'], env)
  }

  step('try next')
  for (const [name, value] of Object.entries(env)) say(`export ${name}=${value}`)
  say(`obs tail '{app="cogni-template"}'`)
  say(`obs query-range '{app="cogni-template"} | json | level="error"' --since 10m`)
  say(`obs query 'sum by (service) (count_over_time({app="cogni-template"}[1m]))'`)
  say(`obs series '{app="cogni-template"}' --analyze-labels`)
  if (mode === 'pipeline') say(`obs smoke --probe     # a marker line through the pipeline, timed`)
  if (mode !== 'external') {
    say('npm run sandbox -- deploy --bad     # roll out a bad release and see the deploy verdict fail')
    say('npm run sandbox -- deploy           # roll out a good one (a rollback) and see it pass')
    say('npm run sandbox -- stop     # stop the sandbox and remove what it made')
  }
  process.exitCode = smoke.status === 0 ? 0 : 1
}

/** How long a deploy is watched before the verdict: the shortest window it compares (a minute), and a few seconds for the last lines to arrive. */
const VERDICT_WINDOW_S = 60
const SETTLE_S = 5

/**
 * `npm run sandbox -- deploy [--bad]`: app and worker rolled to the next
 * release (as `docker compose up -d` replaces a changed service's container;
 * in the fallback, the feeder's processes restarted on it), then, a minute
 * later, the deploy verdict on that minute against the minute before, and
 * what it means.
 */
async function deploy(bad: boolean): Promise<void> {
  const state = runningSandbox()
  if (!state) {
    process.stderr.write('no sandbox is running: start one with `npm run sandbox`, then deploy to it\n')
    process.exitCode = 1
    return
  }
  const from = state.version ?? '1.0.0'
  const [major, minor, patch] = from.split('.').map(Number) as [number, number, number]
  const release: Release = { version: `${major}.${minor}.${patch + 1}`, bad }
  step(`deploying ${release.version}${bad ? ' (a bad release)' : ''}`)
  let deployedAt: number
  if (state.mode === 'pipeline') {
    const deployed = await deployService(`unix://${join(state.dockerDir!, 'docker.sock')}`, ['app', 'worker'], release)
    deployedAt = deployed.deployedAt
    for (const r of deployed.replaced)
      say(`${r.service}: container ${r.old.slice(0, 12)} (${from}) replaced by ${r.new.slice(0, 12)} (${release.version}), as docker compose up -d does`)
  } else {
    deployedAt = Date.now()
    writeFileSync(releaseFile, JSON.stringify(release))
    process.kill(state.feeder!, 'SIGHUP')
    say(`app, worker: the feeder's processes (${from}) replaced by new ones (${release.version})`)
  }
  writeFileSync(stateFile, JSON.stringify({ ...state, version: release.version }))
  if (bad) say('this release fails a quarter of the app\'s requests with an error never logged before: "db connection refused on pool N"')
  const at = new Date(deployedAt).toISOString()
  say(`deployed at ${at}`)

  step('the deploy verdict')
  say(
    `obs smoke --deployed-at compares the ${VERDICT_WINDOW_S} s after the deploy with the ${VERDICT_WINDOW_S} s before it, per service: ` +
      'error-rate (error lines a minute), new-patterns (error messages never seen before the deploy), volume-shift (bytes logged)',
  )
  say(`waiting ${VERDICT_WINDOW_S + SETTLE_S} s for a minute of the new release's lines to reach Loki…`)
  await new Promise((r) => setTimeout(r, Math.max(0, deployedAt + (VERDICT_WINDOW_S + SETTLE_S) * 1000 - Date.now())))
  const verdict = obs(['smoke', '--since', '5m', '--deployed-at', at, '--window', `${VERDICT_WINDOW_S}s`, ...(state.mode === 'pipeline' ? [] : ['--no-alloy'])], state.env)

  step('what it means')
  if (verdict.status === 0) {
    say(
      `PASS: the minute after ${release.version} went out looks like the minute before: no more errors, no error message it did not have, no service gone quiet or loud. Keep it.`,
    )
    if (/[1-9]\d* warn/.test(verdict.stdout))
      say('a warn above is a check that could not compare (a service with less than a minute of lines before the deploy: deploy again a minute later); it does not fail the gate')
  } else if (verdict.status === 1) {
    say(`FAIL: ${release.version} made things worse; the failed checks above say what (and each hint, the query that shows the lines).`)
    say('in CI this exit code 1 stops the rollout; here, roll back to a good release: npm run sandbox -- deploy')
  } else {
    say(`obs smoke could not reach the sandbox (exit ${verdict.status}): is it still running? npm run sandbox starts it again`)
  }
  process.exitCode = verdict.status ?? 1
}

await main()
