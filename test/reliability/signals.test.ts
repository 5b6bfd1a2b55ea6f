/**
 * Exit codes through the launcher: where the machine's Node is older than 22,
 * bin/run.js starts obs on the bundled Node and must pass signals on and
 * report how obs ended with the contract's codes (128+n for a signal, never 1,
 * which means "a check failed"). A terminal's Ctrl-C reaches the launcher's
 * whole process group: obs must still see one SIGINT and print the tail's
 * summary. Run through the machine's own old Node, as users there run obs.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { OBS } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { REPO } from '../support/loki.ts'

const OLD_NODE = '/usr/bin/node'
const oldMajor = existsSync(OLD_NODE) ? Number(execFileSync(OLD_NODE, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' })) : undefined
const skip = oldMajor === undefined || oldMajor >= 22 ? `the launcher hands over only from a Node older than 22; ${OLD_NODE} is ${oldMajor ?? 'missing'}` : false

const QUERY = '{app="cogni-template"}'
/** Long enough for the machine to be slow, short enough that a hang fails the test instead of the run. */
const PATIENCE_MS = 30_000

interface Launched {
  child: ChildProcess
  out: () => string
  err: () => string
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** obs through the launcher, in a process group of its own as a shell's job is, so the test can play the terminal. */
function launch(args: string[]): Launched {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-obs-test-config' }
  for (const name of Object.keys(env)) if (/^(LOKI_|OBS_|ALLOY_)/.test(name)) delete env[name]
  const child = spawn(OLD_NODE, [OBS, ...args], { cwd: REPO, env, detached: true })
  let out = ''
  let err = ''
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 4 * PATIENCE_MS)
  void done.then(() => clearTimeout(timer))
  return { child, out: () => out, err: () => err, done }
}

async function until(check: () => boolean, what: string, run: Launched): Promise<void> {
  const deadline = Date.now() + PATIENCE_MS
  while (!check()) {
    if (run.child.exitCode !== null) throw new Error(`obs exited (${run.child.exitCode}) before ${what}; stderr: ${run.err()}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${run.err().slice(-500)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The pid of the bundled Node the launcher started. */
async function obsPid(run: Launched): Promise<number> {
  const pid = run.child.pid!
  let children = ''
  await until(
    () => {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
      return children !== ''
    },
    'the launcher to start obs',
    run,
  )
  return Number(children.split(' ')[0])
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A tail that has printed history, so its handlers are in place. */
async function runningTail(): Promise<Launched> {
  const run = launch(['tail', QUERY, '--addr', testLoki().addr, '--limit', '5', '-o', 'raw'])
  await until(() => run.out().includes('\n'), 'the tail to print its history', run)
  return run
}

describe('signals through the launcher', { skip, concurrency: 2 }, () => {
  test('Ctrl-C at a terminal (SIGINT to the whole process group) ends tail with 0 and its summary, every time (5 runs)', async () => {
    for (let run = 1; run <= 5; run++) {
      const tail = await runningTail()
      process.kill(-tail.child.pid!, 'SIGINT')
      const { code } = await tail.done
      assert.equal(code, 0, `run ${run}: exit ${code}; stderr: ${tail.err()}`)
      assert.match(tail.err(), /tail stopped: \d+ lines, \d+ reconnects, \d+ dropped/, `run ${run}`)
    }
  })

  test('SIGINT to the launcher alone (kill, a supervisor) reaches obs: tail ends with 0 and its summary', async () => {
    const tail = await runningTail()
    tail.child.kill('SIGINT')
    const { code } = await tail.done
    assert.equal(code, 0, tail.err())
    assert.match(tail.err(), /tail stopped: /)
  })

  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    test(`${signal} to the launcher ends a command that does not catch it with ${code}, without a word`, async () => {
      const ready = launch(['ready', '--wait', '5m', '--addr', 'http://127.0.0.1:1'])
      await until(() => ready.err().includes('waiting for Loki'), 'the first poll', ready)
      ready.child.kill(signal)
      assert.equal((await ready.done).code, code, ready.err())
      assert.doesNotMatch(ready.err(), /killed|error:/)
    })
  }

  test('obs killed by SIGKILL (the out-of-memory killer) gives 137 and says so on stderr', async () => {
    const ready = launch(['ready', '--wait', '5m', '--addr', 'http://127.0.0.1:1'])
    process.kill(await obsPid(ready), 'SIGKILL')
    assert.equal((await ready.done).code, 137, ready.err())
    assert.match(ready.err(), /^error: obs was killed by SIGKILL; if nobody sent it, the out-of-memory killer did/m)
  })

  test('obs does not outlive a launcher killed by SIGKILL', async () => {
    const ready = launch(['ready', '--wait', '5m', '--addr', 'http://127.0.0.1:1'])
    const pid = await obsPid(ready)
    // The launcher's exit, not the close of its pipes, which an orphaned obs would hold open.
    const exited = new Promise((resolve) => ready.child.once('exit', resolve))
    ready.child.kill('SIGKILL')
    await exited
    const deadline = Date.now() + PATIENCE_MS
    while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    const survived = alive(pid)
    if (survived) process.kill(pid, 'SIGKILL')
    assert.equal(survived, false, 'obs kept running without its launcher')
  })

  test('the exit code of obs itself passes through: bad input is 2', async () => {
    const bad = launch(['ready', '--wait', 'forever'])
    assert.equal((await bad.done).code, 2, bad.err())
  })
})
