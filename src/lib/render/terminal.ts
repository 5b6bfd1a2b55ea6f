import type { Writable } from 'node:stream'
import { Chalk, type ChalkInstance } from 'chalk'
import { ExitCode, type ExitCodeValue, ObsError } from '../errors.ts'
import { neutralize } from '../text.ts'

/** Whether to colour a stream: NO_COLOR and FORCE_COLOR first, then whether it is a terminal. */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  return Boolean(stream.isTTY) && env.TERM !== 'dumb'
}

export function chalkFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): ChalkInstance {
  return new Chalk({ level: wantsColor(stream, env) ? 1 : 0 })
}

/**
 * A write that failed (a full disk, a read-only file system, a path that is
 * not writable) as one line. Exit 1 by default: the command ran, but its
 * result did not reach its reader, and the contract has no closer code (2 is
 * for bad input, 3 for the servers); it is also what Unix tools give.
 */
export function writeFailure(target: string, error: unknown, exitCode: ExitCodeValue = ExitCode.failed): ObsError {
  const { code, message } = (error ?? {}) as NodeJS.ErrnoException
  // Node's text is "ENOSPC: no space left on device, write"; the reason is the middle.
  const reason = String(message ?? error)
    .replace(/^[A-Z]+: /, '')
    .replace(/, (?:write|open)\b.*$/, '')
  return new ObsError(neutralize(`cannot write ${target}: ${reason}${code ? ` (${code})` : ''}`), exitCode, WRITE_HINTS[code ?? ''] ?? 'check where the output goes')
}

const WRITE_HINTS: Record<string, string> = {
  ENOSPC: 'free space on that disk or send the output elsewhere',
  EDQUOT: 'free space within your quota or send the output elsewhere',
  EFBIG: 'send the output to a file system that takes larger files, or narrow the query',
  EACCES: 'choose a path you can write to',
  EPERM: 'choose a path you can write to',
  EROFS: 'choose a path on a writable file system',
  ENOENT: 'create the directory first or choose another path',
  EISDIR: 'give a file name, not a directory',
}

/**
 * What to do when standard output fails: a reader that went away (`obs … |
 * head`) ends the command quietly with 0; anything else is one line on stderr
 * and exit 1. Stream errors arrive as events, outside any command's promise,
 * so this ends the process itself.
 */
export function onStdoutError(error: NodeJS.ErrnoException, stderr: Pick<Writable, 'write'> = process.stderr, exit: (code: number) => never = process.exit): never {
  if (error.code === 'EPIPE') exit(ExitCode.ok)
  const failure = writeFailure('to standard output', error)
  stderr.write(`${chalkFor(process.stderr).red('error:')} ${failure.render()}\n`)
  return exit(failure.exitCode)
}

/**
 * Puts onStdoutError ahead of every other listener: oclif installs one when
 * it loads that rethrows anything but EPIPE as an uncaught exception (a stack
 * trace and exit 1), and listeners run in the order they were added.
 */
export function guardStdout(stdout: Writable = process.stdout): void {
  stdout.prependListener('error', (error: NodeJS.ErrnoException) => onStdoutError(error))
}

/** Writes and waits for the stream to drain when its buffer is full, so memory stays flat. */
export async function writeChunk(out: Writable, chunk: string): Promise<void> {
  // A stream that failed says so once, as an event; every later write must not look like success.
  if (out.errored) throw writeFailure('the output', out.errored)
  if (chunk === '' || out.write(chunk)) return
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      out.off('drain', done)
      out.off('error', done)
      out.off('close', done)
      if (error) reject(writeFailure('the output', error))
      else resolve()
    }
    out.once('drain', done)
    out.once('error', done)
    out.once('close', done)
  })
}

const SPARK = '▁▂▃▄▅▆▇█'

/**
 * A one-line chart of a series, for terminals. Bars stand on zero (on the
 * lowest value only when it is below zero): scaled from the series' own
 * minimum, 100, 100, 101 would draw a flat line with a spike.
 */
export function sparkline(series: number[], width = 40): string {
  const values = downsample(series, width)
  const finite = values.filter(Number.isFinite)
  if (finite.length === 0) return ''
  const low = Math.min(0, ...finite)
  const high = Math.max(...finite)
  return values
    .map((v) => {
      if (!Number.isFinite(v)) return ' '
      if (high === low) return SPARK[0]
      return SPARK[Math.round(((v - low) / (high - low)) * (SPARK.length - 1))]
    })
    .join('')
}

/** Keeps a series within `width` points, each the largest of its bucket so spikes survive. */
function downsample(values: number[], width: number): number[] {
  if (values.length <= width) return values
  const out: number[] = []
  for (let i = 0; i < width; i++) {
    const bucket = values.slice(Math.floor((i * values.length) / width), Math.floor(((i + 1) * values.length) / width))
    out.push(Math.max(...bucket))
  }
  return out
}

/**
 * A progress line on stderr, redrawn in place at most a few times a second.
 * Silent unless stderr is a terminal and stdout is not, so it never mixes
 * with the data.
 */
export class Progress {
  private readonly enabled: boolean
  private lastDraw = 0
  private drawn = false

  constructor(stdout: { isTTY?: boolean } = process.stdout, stderr: { isTTY?: boolean } = process.stderr) {
    this.enabled = Boolean(stderr.isTTY) && !stdout.isTTY
  }

  update(text: string): void {
    if (!this.enabled) return
    const now = Date.now()
    if (now - this.lastDraw < 200) return
    this.lastDraw = now
    this.drawn = true
    process.stderr.write(`\r\u001b[K${text}`)
  }

  done(): void {
    if (this.drawn) process.stderr.write('\r\u001b[K')
    this.drawn = false
  }
}
