/**
 * The built CLI as a subprocess, for the reliability tests: output kept as
 * bytes (to compare log lines byte for byte), stdout that can be paused (so a
 * paged export stops between pages while Loki restarts), and an environment
 * cleaned of every setting obs reads, so only what a test gives counts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { SETTING_ENV_VARS } from '../../src/lib/config/table.ts'
import { OBS, TEST_CACHE_DIR } from './cli.ts'
import { REPO } from './loki.ts'

export interface ObsOutput {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: Buffer
  /** Both as text, for assertions on messages. */
  out: string
  err: string
  ms: number
}

/** Every variable obs reads (its settings, the settings table's; debug and colour); removed unless a test sets it. */
const OBS_ENV = [...SETTING_ENV_VARS, 'OBS_DEBUG', 'FORCE_COLOR']

export interface SpawnOptions {
  env?: Record<string, string | undefined>
  cwd?: string
}

function environment(options: SpawnOptions): NodeJS.ProcessEnv {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', OBS_CACHE_DIR: TEST_CACHE_DIR }
  for (const name of OBS_ENV) delete env[name]
  // No config file from the developer's home: a test that wants one writes it into its cwd.
  env.XDG_CONFIG_HOME = '/nonexistent-obs-test-config'
  Object.assign(env, options.env)
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name]
  return env as NodeJS.ProcessEnv
}

export interface ObsProcess {
  child: ChildProcess
  stdout(): Buffer
  stderr(): string
  /** Complete lines on stdout so far. */
  lineCount(): number
  /** Stops reading stdout: obs blocks once the pipe is full. */
  pause(): void
  resume(): void
  waitFor(check: () => boolean, what: string, timeoutMs?: number): Promise<void>
  /** Resolves when obs exits. */
  done: Promise<ObsOutput>
  /** Sends the signal (if still running) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<ObsOutput>
}

export function spawnObs(args: string[], options: SpawnOptions = {}): ObsProcess {
  const started = performance.now()
  const child = spawn(process.execPath, [OBS, ...args], { cwd: options.cwd ?? REPO, env: environment(options) })
  const out: Buffer[] = []
  const err: Buffer[] = []
  let newlines = 0
  child.stdout!.on('data', (chunk: Buffer) => {
    out.push(chunk)
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++
  })
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk))
  const done = new Promise<ObsOutput>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out)
      const stderr = Buffer.concat(err)
      resolve({ code, signal, stdout, stderr, out: stdout.toString('utf8'), err: stderr.toString('utf8'), ms: performance.now() - started })
    })
  })
  const running = () => child.exitCode === null && child.signalCode === null
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => Buffer.concat(err).toString('utf8'),
    lineCount: () => newlines,
    pause: () => child.stdout!.pause(),
    resume: () => child.stdout!.resume(),
    async waitFor(check, what, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      while (!check()) {
        if (!running()) throw new Error(`obs exited (${child.exitCode}) before ${what}; stderr: ${Buffer.concat(err).toString().slice(-1000)}`)
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${Buffer.concat(err).toString().slice(-1000)}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    done,
    async stop(signal = 'SIGINT') {
      if (running()) child.kill(signal)
      return done
    },
  }
}

/** Runs obs to the end; kills it after `timeoutMs` so a hanging obs fails the test instead of the run. */
export async function obs(args: string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<ObsOutput> {
  const run = spawnObs(args, options)
  const timer = setTimeout(() => run.child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  try {
    return await run.done
  } finally {
    clearTimeout(timer)
  }
}

/** Runs `tasks` with at most `limit` at a time, keeping their order in the result. */
export async function pool<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index], index)
    }
  })
  await Promise.all(workers)
  return results
}

/** Lines of stderr that are not empty. */
export function stderrLines(result: ObsOutput): string[] {
  return result.err.split('\n').filter((line) => line.trim() !== '')
}

/** At most `slots` tasks at a time across every caller: obs start-up is CPU-bound and this machine may have two cores. */
export function semaphore(slots: number): <R>(task: () => Promise<R>) => Promise<R> {
  let free = slots
  const waiting: (() => void)[] = []
  return async (task) => {
    if (free > 0) free--
    else await new Promise<void>((resolve) => waiting.push(resolve))
    try {
      return await task()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else free++
    }
  }
}
