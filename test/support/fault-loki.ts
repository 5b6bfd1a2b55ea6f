/**
 * A real Loki of a test's own, like startLoki() in loki.ts (the test run's
 * config file, loopback ports, a temporary directory), with extra command-line flags
 * so a test can make Loki misbehave on purpose, e.g. a tail max duration of a
 * few seconds instead of an hour. Also stop and start as separate steps, so a
 * test can act while Loki is down.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, type LokiProcess, lokiBinary, lokiConfigFile, lokiConfigName, lokiEnv, stopChild, waitReady } from './loki.ts'

/** Lokis still running when this process exits (a crashed or cancelled test) are killed with it. */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export interface FaultLoki extends LokiProcess {
  /**
   * Starts Loki again after stop(), on the same port and data, without
   * waiting for /ready. `stackTiming` drops the fast-start flags, so the
   * restarted Loki takes its usual ~10 s before it answers queries.
   */
  launch(options?: { stackTiming?: boolean }): void
  remove(): Promise<void>
}

export interface FaultLokiOptions {
  /** Extra flags, e.g. -querier.tail-max-duration=3s. */
  args?: string[]
  /** Do not wait for /ready. */
  noWait?: boolean
}

/**
 * Flags that make a single-binary Loki answer queries within a second of
 * starting: the querier and the query frontend find the scheduler at a fixed
 * address instead of through the scheduler ring, which they poll only every
 * 10 s. Nothing else about the stack's configuration changes.
 */
function fastStartArgs(grpcPort: number): string[] {
  const scheduler = `127.0.0.1:${grpcPort}`
  return ['-query-scheduler.use-scheduler-ring=false', `-frontend.scheduler-address=${scheduler}`, `-querier.scheduler-address=${scheduler}`]
}

export async function startFaultLoki(options: FaultLokiOptions = {}): Promise<FaultLoki> {
  const binary = lokiBinary()
  const port = await freePort()
  const grpcPort = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'obs-fault-loki-'))
  const logFile = join(dataDir, 'loki.log')
  const env = lokiEnv(port, grpcPort, dataDir)
  const start = (stackTiming = false): ChildProcess => {
    const log = openSync(logFile, 'a')
    const child = spawn(binary, [`-config.file=${lokiConfigFile()}`, '-config.expand-env=true', ...(stackTiming ? [] : fastStartArgs(grpcPort)), ...(options.args ?? [])], {
      env,
      stdio: ['ignore', log, log],
    })
    closeSync(log)
    running.add(child)
    child.once('exit', () => running.delete(child))
    return child
  }
  const loki: FaultLoki = {
    config: lokiConfigName(),
    addr: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    logFile,
    child: start(),
    async stop() {
      await stopChild(loki.child)
    },
    launch(launchOptions = {}) {
      if (loki.child.exitCode === null && loki.child.signalCode === null) throw new Error('Loki is still running')
      loki.child = start(launchOptions.stackTiming)
    },
    async restart() {
      await stopChild(loki.child)
      loki.child = start()
      await waitReady(loki)
    },
    async remove() {
      await stopChild(loki.child)
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  if (!options.noWait) await waitReady(loki)
  return loki
}

/** Pushes one stream's lines with timestamps `baseNs`, `baseNs + stepNs`, …; returns the timestamps. */
export async function pushLines(addr: string, labels: Record<string, string>, lines: (string | Buffer)[], baseNs: bigint, stepNs = 1000n): Promise<string[]> {
  const stamps = lines.map((_, i) => (baseNs + BigInt(i) * stepNs).toString())
  const body = pushBody(
    labels,
    lines.map((line, i) => [stamps[i], line]),
  )
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`${addr}/loki/api/v1/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    if (response.status === 204) return stamps
    const text = await response.text()
    if (response.status !== 429 || attempt > 20) throw new Error(`push failed: ${response.status} ${text}`)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
}

/**
 * A push body written by hand, so a line given as bytes goes into the JSON
 * string exactly as those bytes (invalid UTF-8 included), which
 * JSON.stringify could not do.
 */
export function pushBody(labels: Record<string, string>, values: [string, string | Buffer][]): Buffer {
  const parts: Buffer[] = [Buffer.from(`{"streams":[{"stream":${JSON.stringify(labels)},"values":[`)]
  values.forEach(([ts, line], i) => {
    parts.push(Buffer.from(`${i ? ',' : ''}["${ts}","`))
    parts.push(typeof line === 'string' ? Buffer.from(JSON.stringify(line).slice(1, -1)) : escapeJsonBytes(line))
    parts.push(Buffer.from('"]'))
  })
  parts.push(Buffer.from(']}]}'))
  return Buffer.concat(parts)
}

/** Escapes the bytes JSON requires escaped (quote, backslash, below 0x20) and leaves every other byte as it is. */
function escapeJsonBytes(bytes: Buffer): Buffer {
  const out: number[] = []
  for (const byte of bytes) {
    if (byte === 0x22 || byte === 0x5c) out.push(0x5c, byte)
    else if (byte < 0x20) out.push(...Buffer.from(`\\u${byte.toString(16).padStart(4, '0')}`))
    else out.push(byte)
  }
  return Buffer.from(out)
}
