/** Runs the built CLI as a subprocess, as users and scripts do. */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SETTING_ENV_VARS } from '../../src/lib/config/table.ts'
import { REPO } from './loki.ts'

/**
 * obs keeps state in its cache directory (doctor's readings of Loki's
 * counters): a test run gets one of its own, so it neither reads the user's
 * nor leaves anything there. A test that needs its own passes OBS_CACHE_DIR.
 */
export const TEST_CACHE_DIR = mkdtempSync(join(tmpdir(), 'obs-test-cache-'))
process.once('exit', () => rmSync(TEST_CACHE_DIR, { recursive: true, force: true }))

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export const OBS = join(REPO, 'bin/run.js')

export function runObs(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', OBS_DEBUG: undefined, OBS_CACHE_DIR: TEST_CACHE_DIR, ...options.env }
    // The settings table's variables, unless the test sets them: a developer's LOKI_ADDR must not point a test elsewhere.
    for (const name of SETTING_ENV_VARS) {
      if (!options.env || !(name in options.env)) delete env[name]
    }
    const child = spawn(process.execPath, [OBS, ...args], { cwd: options.cwd ?? REPO, env: env as NodeJS.ProcessEnv })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }))
  })
}

export interface RunningObs {
  stdout: () => string
  stderr: () => string
  /** Sends the signal and waits for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<CliResult>
  /** Waits for obs to exit by itself; undefined if it is still running after the timeout. */
  exit: (timeoutMs: number) => Promise<CliResult | undefined>
  /** Resolves once stdout or stderr holds text matching the pattern. */
  waitFor: (pattern: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number) => Promise<void>
}

/** Starts a long-running command (tail) to be stopped with a signal, as Ctrl-C would. */
export function startObs(args: string[], options: { env?: Record<string, string | undefined> } = {}): RunningObs {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', OBS_CACHE_DIR: TEST_CACHE_DIR, ...options.env }
  const child = spawn(process.execPath, [OBS, ...args], { cwd: REPO, env: env as NodeJS.ProcessEnv })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
  return {
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const code = await exited
      return { code, stdout: out, stderr: err }
    },
    async exit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)))
      const code = await Promise.race([exited, timeout])
      clearTimeout(timer)
      return code === undefined ? undefined : { code, stdout: out, stderr: err }
    },
    async waitFor(pattern, stream = 'stdout', timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(stream === 'stdout' ? out : err)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on ${stream}; stdout: ${out.slice(-500)} stderr: ${err.slice(-500)}`)
        if (child.exitCode !== null) throw new Error(`obs exited with ${child.exitCode} before ${pattern}; stderr: ${err}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    },
  }
}
