/**
 * A reproducible pino-style dataset for the integration tests: several
 * services, info/warn/error, request ids whose lines span services, and lines
 * that share a nanosecond timestamp across streams (some with the very same
 * text), which is where paging loses or repeats lines if it is wrong.
 */
import type { PushStream } from '../../src/lib/loki/client.ts'

export interface TruthEntry {
  labels: Record<string, string>
  ts: string
  line: string
}

export interface Dataset {
  entries: TruthEntry[]
  /** Request ids whose lines span at least two services. */
  crossServiceRequests: string[]
}

export const APP = 'cogni-template'
export const ENV = 'test'

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const MESSAGES = {
  gateway: ['request received', 'request completed', 'upstream slow'],
  app: ['handling request', 'session loaded', 'payment attempt started', 'payment attempt failed', 'llm call finished'],
  worker: ['job picked up', 'job finished', 'job retried'],
}

function labelsOf(service: string, stream = 'stdout'): Record<string, string> {
  return { app: APP, env: ENV, service, stream }
}

function pinoLine(fields: Record<string, unknown>): string {
  return JSON.stringify(fields)
}

/**
 * Generates `requests` requests ending before `endNs`, spread over `spanMs`.
 * Each request writes 2–4 lines across gateway, app and worker.
 */
export function generateDataset(options: { seed: number; endNs: bigint; spanMs: number; requests: number }): Dataset {
  const random = mulberry32(options.seed)
  const entries: TruthEntry[] = []
  const crossServiceRequests: string[] = []
  const startNs = options.endNs - BigInt(options.spanMs) * 1_000_000n
  const stepNs = (BigInt(options.spanMs) * 1_000_000n) / BigInt(options.requests)

  for (let i = 0; i < options.requests; i++) {
    const reqId = `req-${options.seed}-${i.toString(36).padStart(5, '0')}`
    const userId = `user-${Math.floor(random() * 500)}`
    let ts = startNs + BigInt(i) * stepNs + BigInt(Math.floor(random() * 1_000_000))
    const push = (service: string, level: string, msg: string, extra: Record<string, unknown> = {}, stream = 'stdout') => {
      const time = Number(ts / 1_000_000n)
      entries.push({
        labels: labelsOf(service, stream),
        ts: ts.toString(),
        line: pinoLine({ level, time, pid: 1, hostname: `${service}-1`, reqId, userId, msg, ...extra }),
      })
    }
    push('gateway', 'info', MESSAGES.gateway[0], { method: 'GET', url: `/api/items/${i}` })
    ts += BigInt(1 + Math.floor(random() * 2_000_000))
    const failed = random() < 0.08
    push('app', failed ? 'error' : 'info', failed ? MESSAGES.app[3] : MESSAGES.app[Math.floor(random() * 3)], failed ? { err: 'card declined' } : {}, failed ? 'stderr' : 'stdout')
    let services = 2
    if (random() < 0.5) {
      ts += BigInt(1 + Math.floor(random() * 5_000_000))
      push('worker', random() < 0.1 ? 'warn' : 'info', MESSAGES.worker[Math.floor(random() * 3)], { attemptId: `att-${i}` })
      services++
    }
    if (i % 40 === 0) {
      // Same nanosecond in two streams: a page boundary must keep both.
      push('app', 'info', 'request timing', { durationMs: Math.floor(random() * 900) })
      push('worker', 'info', 'request timing', { durationMs: Math.floor(random() * 900) })
    }
    if (i % 97 === 0) {
      // The very same line at the same nanosecond in four streams.
      const line = pinoLine({ level: 'info', time: Number(ts / 1_000_000n), msg: 'heartbeat' })
      for (const [service, stream] of [
        ['app', 'stdout'],
        ['worker', 'stdout'],
        ['gateway', 'stdout'],
        ['app', 'stderr'],
      ]) {
        entries.push({ labels: labelsOf(service, stream), ts: ts.toString(), line })
      }
    }
    ts += BigInt(1 + Math.floor(random() * 1_000_000))
    push('gateway', 'info', MESSAGES.gateway[1], { status: failed ? 502 : 200 })
    if (services >= 2) crossServiceRequests.push(reqId)
  }
  return { entries, crossServiceRequests }
}

/** Groups entries into push streams, in chunks small enough for Loki's default rate limits. */
export function toPushBatches(entries: TruthEntry[], perBatch = 2000): PushStream[][] {
  const batches: PushStream[][] = []
  for (let i = 0; i < entries.length; i += perBatch) {
    const byStream = new Map<string, PushStream>()
    for (const entry of entries.slice(i, i + perBatch)) {
      const key = JSON.stringify(entry.labels)
      const stream = byStream.get(key) ?? { stream: entry.labels, values: [] as [string, string][] }
      byStream.set(key, stream)
      ;(stream.values as [string, string][]).push([entry.ts, entry.line])
    }
    batches.push([...byStream.values()])
  }
  return batches
}

/**
 * Labels a Loki adds to streams itself (stock limits: service_name discovery,
 * stream sharding's __stream_shard__). The dataset never pushes them, so the
 * ground truth is compared with what obs prints without them.
 */
export function isLokiAddedLabel(name: string): boolean {
  return name === 'service_name' || name.startsWith('__')
}

/** The pushed labels of a stream as Loki returns it. */
export function pushedLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([name]) => !isLokiAddedLabel(name)))
}

/** The key that identifies one entry: its stream (as pushed), timestamp and line. */
export function entryKey(labels: Record<string, string>, ts: string, line: string): string {
  const sorted = Object.keys(labels)
    .filter((name) => !isLokiAddedLabel(name))
    .sort()
    .map((name) => `${name}=${labels[name]}`)
    .join(',')
  return `${sorted}\u0000${ts}\u0000${line}`
}
