/**
 * The built CLI on a pseudo-terminal, for what obs does only on a terminal
 * (progress, notes about empty results, the cost estimate): util-linux's
 * `script` gives it a pty for stdout and stderr alike, so the two arrive
 * merged, with the terminal's \r\n line ends turned back into \n.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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

export type ShellName = 'bash' | 'zsh'

/**
 * An interactive bash or zsh on a pseudo-terminal with obs's completion
 * sourced, driven key by key without fixed pauses: Ctrl-T (bound here) writes
 * the line being edited to a file, and `obs` is a function that runs the
 * built CLI for `completion` and `__complete` (what Tab calls) but only records
 * its arguments otherwise, so Enter shows exactly the words the shell made of
 * the line. Keys are handled in order, so a dump after Tab sees the completion.
 */
export class ShellSession {
  readonly dir: string
  private readonly child: ReturnType<typeof spawn>
  private readonly chunks: Buffer[] = []
  private closed = false
  readonly shell: ShellName

  private constructor(shell: ShellName, cwd: string, env: Record<string, string>) {
    this.shell = shell
    this.dir = mkdtempSync(join(tmpdir(), 'obs-shell-'))
    const clean: Record<string, string | undefined> = {
      ...process.env,
      NO_COLOR: '1',
      TERM: 'xterm',
      PS1: '$ ',
      HISTFILE: join(this.dir, 'history'),
      OBS_CACHE_DIR: TEST_CACHE_DIR,
      XDG_CONFIG_HOME: '/nonexistent-obs-test-config',
    }
    for (const name of SETTING_ENV_VARS) delete clean[name]
    const command = shell === 'bash' ? 'bash --norc --noprofile -i' : 'zsh -f -i'
    this.child = spawn('script', ['-qfc', command, '/dev/null'], { cwd, env: { ...clean, ...env } as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
    this.child.stdout?.on('data', (chunk: Buffer) => this.chunks.push(chunk))
    this.child.stderr?.on('data', (chunk: Buffer) => this.chunks.push(chunk))
    this.child.once('close', () => {
      this.closed = true
    })
  }

  /** Starts the shell in `cwd` and sources `obs completion SHELL` (the script under test). */
  static async start(shell: ShellName, cwd: string, env: Record<string, string> = {}): Promise<ShellSession> {
    const session = new ShellSession(shell, cwd, env)
    const node = quote(process.execPath)
    const obs = quote(OBS)
    const args = quote(join(session.dir, 'args'))
    const line = quote(join(session.dir, 'line'))
    const define = `obs() { case "$1" in __complete|completion) ${node} ${obs} "$@" ;; *) printf '%s\\0' "$@" > ${args}.tmp; mv ${args}.tmp ${args} ;; esac; }`
    const dump =
      shell === 'bash'
        ? `bind -x '"\\C-t": printf "%s" "$READLINE_LINE" > ${line.replaceAll("'", `'\\''`)}.tmp; mv ${line.replaceAll("'", `'\\''`)}.tmp ${line.replaceAll("'", `'\\''`)}'`
        : `_obs_dump() { print -rn -- "$BUFFER" > ${line}.tmp; mv ${line}.tmp ${line} }; zle -N _obs_dump; bindkey '^T' _obs_dump`
    // compinit as a zshrc runs it (-u: the test runs as whoever it runs as; -D: no dump file).
    const init = shell === 'zsh' ? 'autoload -Uz compinit && compinit -u -D; ' : ''
    session.type(`${init}${define}; ${dump}; source <(obs completion ${shell}); printf '%s%s\\n' RE ADY\r`)
    await session.waitFor(() => session.screen().includes('READY\n'), 20_000, 'the shell to start')
    return session
  }

  /** All the terminal showed so far, \r\n turned into \n. */
  screen(): string {
    return Buffer.concat(this.chunks).toString('utf8').replace(/\r\n/g, '\n')
  }

  type(keys: string): void {
    this.child.stdin?.write(keys)
  }

  /** The line being edited, after the keys typed so far. */
  async line(timeoutMs = 20_000): Promise<string> {
    const file = join(this.dir, 'line')
    rmSync(file, { force: true })
    this.type('\u0014')
    await this.waitFor(() => existsSync(file), timeoutMs, 'the line (Ctrl-T)')
    return readFileSync(file, 'utf8')
  }

  /** Abandons the line (Ctrl-C) and waits for an empty one: zsh drops keys typed while it handles the interrupt. */
  async cancel(): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      this.type('\u0003')
      await new Promise((resolve) => setTimeout(resolve, 200))
      if ((await this.line(2000).catch(() => undefined)) === '') return
    }
    throw new Error(`${this.shell}: the line could not be abandoned; the terminal showed:\n${this.screen().slice(-3000)}`)
  }

  /** Presses Enter: the arguments obs got, or undefined if it did not run within `timeoutMs` (the line is then abandoned). */
  async enter(timeoutMs = 5000): Promise<string[] | undefined> {
    const file = join(this.dir, 'args')
    rmSync(file, { force: true })
    this.type('\r')
    try {
      await this.waitFor(() => existsSync(file), timeoutMs, 'obs to run')
    } catch {
      await this.cancel()
      return undefined
    }
    return readFileSync(file, 'utf8').split('\0').slice(0, -1)
  }

  async waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const until = performance.now() + timeoutMs
    while (!done()) {
      if (this.closed || performance.now() > until) throw new Error(`${this.shell}: waited for ${what}; the terminal showed:\n${this.screen().slice(-3000)}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.type('\u0003exit\r')
      await this.waitFor(() => this.closed, 5000, 'exit').catch(() => this.child.kill('SIGKILL'))
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
