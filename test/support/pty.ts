/**
 * The built CLI on a pseudo-terminal, for what obs does only on a terminal
 * (progress, notes about empty results, the cost estimate): util-linux's
 * `script` gives it a pty for stdout and stderr alike, so the two arrive
 * merged, with the terminal's \r\n line ends turned back into \n.
 */
import { spawn } from 'node:child_process'
import { SETTING_ENV_VARS } from '../../src/lib/config/table.ts'
import { OBS, TEST_CACHE_DIR } from './cli.ts'
import { REPO } from './loki.ts'

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`

export function runInTerminal(
  args: string[],
  env: Record<string, string> = {},
  options: { cwd?: string; input?: string[]; timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, OBS, ...args].map(quote).join(' ')
  const clean: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', TERM: 'xterm', OBS_CACHE_DIR: TEST_CACHE_DIR, XDG_CONFIG_HOME: '/nonexistent-obs-test-config' }
  for (const name of SETTING_ENV_VARS) delete clean[name]
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: options.cwd ?? REPO, env: { ...clean, ...env } as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
    const chunks: Buffer[] = []
    // Typed answers, one per prompt (a prompt ends in "]: ", readline may follow it with cursor
    // movements); stdin stays open until obs exits, as a terminal's would.
    const input = [...(options.input ?? [])]
    let answered = 0
    child.stdout.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      const prompts = Buffer.concat(chunks).toString('utf8').split(']: ').length - 1
      while (answered < prompts && input.length > 0) {
        child.stdin.write(`${input.shift()}\r`)
        answered++
      }
    })
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      child.stdin.destroy()
      resolve({ code, output: Buffer.concat(chunks).toString('utf8').replace(/\r\n/g, '\n') })
    })
  })
}

/**
 * An interactive bash on a pseudo-terminal, fed `keys` one chunk at a time
 * (each after `pauseMs`, so completion has answered), with `obs` defined as the
 * built CLI: what a person typing sees, echo and completions included.
 */
export function typeInBash(keys: string[], env: Record<string, string> = {}, pauseMs = 2500): Promise<string> {
  const clean: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: '1',
    TERM: 'xterm',
    PS1: '$ ',
    OBS_CACHE_DIR: TEST_CACHE_DIR,
    XDG_CONFIG_HOME: '/nonexistent-obs-test-config',
  }
  for (const name of SETTING_ENV_VARS) delete clean[name]
  const child = spawn('script', ['-qfc', 'bash --norc --noprofile -i', '/dev/null'], { cwd: REPO, env: { ...clean, ...env } as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
  const chunks: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk))
  const setup = `obs() { ${quote(process.execPath)} ${quote(OBS)} "$@"; }; source <(obs completion bash)\r`
  const steps = [setup, ...keys, '\u0003', 'exit\r']
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), (steps.length + 4) * pauseMs + 10_000)
    child.once('error', reject)
    child.once('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('utf8').replace(/\r\n/g, '\n'))
    })
    let at = 0
    const next = () => {
      if (at >= steps.length) return
      child.stdin.write(steps[at++])
      setTimeout(next, pauseMs)
    }
    setTimeout(next, 500)
  })
}
