/**
 * A real Loki of a test's own: startLoki() (loki.ts: the test run's config
 * file, loopback ports, a temporary directory) answering queries within a
 * second of starting, with extra command-line flags so a test can make Loki
 * misbehave on purpose (a tail max duration of a few seconds instead of an
 * hour), and stop and launch as separate steps, so a test can act while Loki
 * is down. Also the push helpers those tests share.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type LokiProcess, startLoki } from './loki.ts'

export type FaultLoki = LokiProcess

export interface FaultLokiOptions {
  /** Extra flags, e.g. -querier.tail-max-duration=3s. */
  args?: string[]
  /** Do not wait for /ready. */
  noWait?: boolean
}

export function startFaultLoki(options: FaultLokiOptions = {}): Promise<FaultLoki> {
  return startLoki({ ...options, fastStart: true, dataDir: mkdtempSync(join(tmpdir(), 'obs-fault-loki-')) })
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
