/**
 * Helpers of the benchmark harness: a Loki of our own, the dataset load,
 * measured child processes (wall time, peak RSS), statistics.
 */
import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { sleep } from '../src/lib/time.ts'
import { type LokiProcess, startLoki } from '../test/support/loki.ts'
import { type DatasetOptions, type DatasetSummary, generateBatches } from './dataset.ts'

export function log(message: string): void {
  const clock = new Date().toISOString().slice(11, 19)
  process.stderr.write(`[bench ${clock}] ${message}\n`)
}

// ---------------------------------------------------------------- Loki

export type BenchLoki = LokiProcess

/** Starts Loki with `configFile` on free loopback ports and a temporary directory: the tests' launcher (test/support/loki.ts). */
export function startBenchLoki(configFile: string): Promise<BenchLoki> {
  return startLoki({ configFile, dataDir: mkdtempSync(join(tmpdir(), 'obs-bench-loki-')) })
}

/** Peak and current RSS of a running process, from /proc. */
export function procMemory(pid: number): { hwmKb: number; rssKb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
    return { hwmKb: field('VmHWM'), rssKb: field('VmRSS') }
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------- load

export interface LoadResult {
  summary: DatasetSummary
  ms: number
  requests: number
  retries: number
}

/** Generates the dataset and pushes it with `concurrency` requests in flight. */
export async function loadDataset(addr: string, options: DatasetOptions, subSpanMs: number, concurrency: number): Promise<LoadResult> {
  const generator = generateBatches(options, subSpanMs)
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 30_000 })
  let summary: DatasetSummary | undefined
  let requests = 0
  let retries = 0
  let pushedLines = 0
  let lastReport = Date.now()
  const started = performance.now()
  const next = (): string | undefined => {
    const step = generator.next()
    if (step.done) {
      // Only the first `done` carries the summary; later calls return undefined.
      summary ??= step.value
      return undefined
    }
    for (const stream of step.value) pushedLines += stream.values.length
    return JSON.stringify({ streams: step.value })
  }
  const worker = async () => {
    for (let body = next(); body !== undefined; body = next()) {
      for (let attempt = 0; ; attempt++) {
        const response = await request(`${addr}/loki/api/v1/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          dispatcher: agent,
        })
        const text = await response.body.text()
        requests++
        if (response.statusCode === 204) break
        if ((response.statusCode !== 429 && response.statusCode < 500) || attempt > 30) {
          throw new Error(`push failed: ${response.statusCode} ${text.slice(0, 300)}`)
        }
        retries++
        await sleep(250 * Math.min(8, attempt + 1))
      }
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now()
        log(`  pushed ${pushedLines.toLocaleString('en-US')} lines`)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  await agent.close()
  return { summary: summary!, ms: performance.now() - started, requests, retries }
}

// ---------------------------------------------------------------- measured runs

export interface Run {
  wallMs: number
  /** Peak resident set size, KiB. */
  maxRssKb: number
  userS: number
  sysS: number
  code: number | null
  stderr: string
  /** Counting runs: newline-terminated lines on stdout. */
  lines?: number
  /** Counting runs: distinct and repeated `seq` values, lines without one. */
  seq?: SeqCount
  /** With stampStderr: each stderr line and when it arrived, ms since spawn. */
  stderrLines?: { at: number; line: string }[]
}

export interface SeqCount {
  distinct: number
  repeated: number
  noSeq: number
  outOfRange: number
}

export interface RunOptions {
  env?: Record<string, string>
  cwd?: string
  /** 'null': stdout to /dev/null (timed runs); 'count': count lines and `seq` values; 'capture': keep it. */
  stdout?: 'null' | 'count' | 'capture'
  /** For 'count': the number of distinct seq values expected (0..total-1). */
  total?: number
  /** Note when each stderr line arrived (ms since spawn), e.g. to place OBS_DEBUG's request lines in time. */
  stampStderr?: boolean
}

const TIME = '/usr/bin/time'
export const HAVE_TIME = existsSync(TIME)

/**
 * Runs a command to completion and measures it: wall time from spawn to exit
 * in this process, peak RSS and CPU from GNU time (or, without it, peak RSS
 * sampled from /proc/<pid>/status VmHWM).
 */
export async function runMeasured(command: string, args: string[], options: RunOptions = {}): Promise<Run & { stdoutText?: string }> {
  const mode = options.stdout ?? 'null'
  const timeFile = join(scratchDir(), `time-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const argv = HAVE_TIME ? ['-f', '%M %U %S', '-o', timeFile, command, ...args] : args
  const devNull = mode === 'null' ? openSync('/dev/null', 'w') : undefined
  const started = performance.now()
  const child = spawn(HAVE_TIME ? TIME : command, argv, {
    cwd: options.cwd ?? scratchDir(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', devNull ?? 'pipe', 'pipe'],
  })
  if (devNull !== undefined) closeSync(devNull)
  let stderr = ''
  const stderrLines: { at: number; line: string }[] = []
  let partial = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => {
    if (stderr.length < 4_000_000) stderr += chunk
    if (options.stampStderr) {
      const at = performance.now() - started
      const parts = (partial + chunk).split('\n')
      partial = parts.pop()!
      for (const line of parts) stderrLines.push({ at, line })
    }
  })
  let stdoutText = ''
  let counter: LineCounter | undefined
  if (mode === 'count') {
    counter = new LineCounter(options.total ?? 0)
    child.stdout!.on('data', (chunk: Buffer) => counter!.push(chunk))
  } else if (mode === 'capture') {
    child.stdout!.setEncoding('utf8')
    child.stdout!.on('data', (chunk: string) => (stdoutText += chunk))
  }
  // Without GNU time: sample the peak from /proc while the process runs.
  let sampledKb = 0
  const sampler = HAVE_TIME
    ? undefined
    : setInterval(() => {
        const memory = child.pid ? procMemory(child.pid) : undefined
        if (memory) sampledKb = Math.max(sampledKb, memory.hwmKb)
      }, 5)
  const code = await new Promise<number | null>((done) => child.once('close', (exitCode) => done(exitCode)))
  const wallMs = performance.now() - started
  if (sampler) clearInterval(sampler)
  let maxRssKb = sampledKb
  let userS = Number.NaN
  let sysS = Number.NaN
  if (HAVE_TIME) {
    const text = existsSync(timeFile) ? readFileSync(timeFile, 'utf8') : ''
    rmSync(timeFile, { force: true })
    // GNU time prefixes "Command exited with non-zero status N" on failure.
    const fields = text.trim().split('\n').at(-1)!.split(' ').map(Number)
    ;[maxRssKb, userS, sysS] = fields
  }
  const run: Run & { stdoutText?: string } = { wallMs, maxRssKb, userS, sysS, code, stderr }
  if (options.stampStderr) run.stderrLines = stderrLines
  if (counter) {
    run.lines = counter.lines
    run.seq = counter.result()
  }
  if (mode === 'capture') run.stdoutText = stdoutText
  return run
}

/** Counts lines and the `"seq":N` value in each, with a bitmap of the values seen. */
class LineCounter {
  lines = 0
  private rest = ''
  private readonly seen: Uint8Array
  private repeated = 0
  private noSeq = 0
  private outOfRange = 0
  private distinct = 0

  constructor(total: number) {
    this.seen = new Uint8Array(total)
  }

  push(chunk: Buffer): void {
    const text = this.rest + chunk.toString('latin1')
    let from = 0
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', from)) {
      this.line(text, from, at)
      from = at + 1
    }
    this.rest = text.slice(from)
  }

  private line(text: string, from: number, to: number): void {
    this.lines++
    const at = text.indexOf('"seq":', from)
    if (at === -1 || at > to) {
      this.noSeq++
      return
    }
    let value = 0
    for (let i = at + 6; i < to; i++) {
      const digit = text.charCodeAt(i) - 48
      if (digit < 0 || digit > 9) break
      value = value * 10 + digit
    }
    if (value >= this.seen.length) this.outOfRange++
    else if (this.seen[value]) this.repeated++
    else {
      this.seen[value] = 1
      this.distinct++
    }
  }

  result(): SeqCount {
    return { distinct: this.distinct, repeated: this.repeated, noSeq: this.noSeq, outOfRange: this.outOfRange }
  }
}

let scratch: string | undefined
/** An empty working directory (no obs.config.yaml to find) and scratch space. */
export function scratchDir(): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'obs-bench-'))
  return scratch
}
export function removeScratch(): void {
  if (scratch) rmSync(scratch, { recursive: true, force: true })
}

// ---------------------------------------------------------------- statistics

export interface Stats {
  median: number
  min: number
  max: number
  n: number
}

export function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  return { median, min: sorted[0], max: sorted.at(-1)!, n: sorted.length }
}

/** Runs each labelled command `rounds` times, interleaved and rotated so that no tool always runs first. */
export async function interleaved<K extends string>(
  rounds: number,
  commands: Record<K, () => Promise<Run>>,
  onRun?: (key: K, run: Run, round: number) => void,
): Promise<Record<K, Run[]>> {
  const keys = Object.keys(commands) as K[]
  const results = Object.fromEntries(keys.map((key) => [key, [] as Run[]])) as Record<K, Run[]>
  for (let round = 0; round < rounds; round++) {
    const order = keys.map((_, i) => keys[(i + round) % keys.length])
    for (const key of order) {
      const run = await commands[key]()
      if (run.code !== 0) {
        throw new Error(`${key} exited with ${run.code}: ${run.stderr.trim().split('\n').slice(-5).join(' | ')}`)
      }
      results[key].push(run)
      onRun?.(key, run, round)
    }
  }
  return results
}
