import { UnreachableError } from './errors.ts'
import { oneLine } from './http.ts'
import { fetchLogPages, forwardOrder, MAX_PAGE, StreamCache, streamEntries, type LogEntry } from './log-query.ts'
import { CATEGORIZE_LABELS, type LokiClient, type StreamResult } from './loki-client.ts'
import { nowNanos, type Nanos } from './time.ts'

export interface TailOptions {
  query: string
  /** Where the first connection starts: now − --since. */
  start: Nanos
  /** Lines of history on the first connection. */
  limit: number
  delayForSeconds: number
  signal: AbortSignal
  onEntries: (entries: LogEntry[]) => Promise<void>
  onDropped?: (count: number) => void
  onReconnect?: (reason: string, attempt: number, delayMs: number) => void
}

export interface TailStats {
  lines: number
  reconnects: number
  dropped: number
}

/** How far back a resumed tail looks again, for lines that reached Loki late. */
export const RESUME_OVERLAP_NS = 10_000_000_000n

/**
 * What a tail has printed: the newest timestamp, and the lines of the last
 * RESUME_OVERLAP_NS before it. A resumed tail starts that much before the
 * newest printed line, so nothing is skipped (not even a line that reached Loki
 * late, from another stream), and this drops what was printed already, so
 * nothing repeats. Entries are told apart by entryIdentity.
 */
export class ResumePoint {
  lastTs?: string
  private readonly printed = new Map<string, bigint>()
  private sincePrune = 0

  /** Keeps the entries not printed before. */
  accept(entries: LogEntry[]): LogEntry[] {
    const fresh: LogEntry[] = []
    for (const entry of entries) {
      const key = entryIdentity(entry)
      if (this.printed.has(key)) continue
      const ts = BigInt(entry.ts)
      this.printed.set(key, ts)
      if (this.lastTs === undefined || compareTs(entry.ts, this.lastTs) > 0) this.lastTs = entry.ts
      fresh.push(entry)
    }
    if ((this.sincePrune += fresh.length) > 1000) this.prune()
    return fresh
  }

  /** Where a resumed tail starts. */
  resumeFrom(fallback: Nanos): Nanos {
    return this.lastTs === undefined ? fallback : BigInt(this.lastTs) - RESUME_OVERLAP_NS
  }

  private prune(): void {
    this.sincePrune = 0
    const horizon = BigInt(this.lastTs ?? '0') - RESUME_OVERLAP_NS
    for (const [key, ts] of this.printed) if (ts < horizon) this.printed.delete(key)
  }
}

/**
 * What identifies an entry in Loki: its stream (indexed labels only, Loki's own
 * such as __stream_shard__ included), timestamp and line. Structured metadata
 * and parsed labels are not part of it, so the same entry from the WebSocket
 * and from a range query is one entry even where only one of them carried
 * metadata such as detected_level.
 */
export function entryIdentity(entry: LogEntry): string {
  return `${entry.ts}\u0000${entry.stream.json}\u0000${entry.line}`
}

function compareTs(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000]

interface TailMessage {
  streams?: StreamResult[]
  dropped_entries?: unknown[]
}

/**
 * Follows a query over Loki's WebSocket tail until the signal aborts.
 * Whatever closes the connection (network loss, a Loki restart, Loki's own
 * one-hour limit), the tail reconnects with backoff: it first fetches what it
 * missed since the last printed line with exact range queries (Loki's tail
 * would replay only its newest `limit` lines), then opens a new tail there.
 * A refusal from Loki (too many tails) ends it with exit 3.
 */
export async function tailWebSocket(client: LokiClient, options: TailOptions): Promise<TailStats> {
  await checkTailQuery(client, options.query)
  const stats: TailStats = { lines: 0, reconnects: 0, dropped: 0 }
  const resume = new ResumePoint()
  const streams = new StreamCache()
  const emit = async (entries: LogEntry[]) => {
    const fresh = resume.accept(entries.sort(forwardOrder))
    if (fresh.length === 0) return
    stats.lines += fresh.length
    await options.onEntries(fresh)
  }
  let failures = 0
  let everOpened = false
  // Nothing printed yet when the first connection drops: catch up from when it opened.
  let openedAt = options.start
  while (!options.signal.aborted) {
    let start = options.start
    let limit = options.limit
    let reason: string
    try {
      if (resume.lastTs !== undefined || everOpened) {
        // Catch up exactly on what happened while disconnected.
        const from = resume.resumeFrom(openedAt)
        const until = nowNanos()
        for await (const page of fetchLogPages(client, { query: options.query, start: from, end: until, direction: 'forward', limit: 0, batch: MAX_PAGE })) {
          await emit(page)
        }
        start = until
        limit = MAX_PAGE
      }
      const outcome = await openTail(client, { ...options, start, limit }, async (message) => {
        if (message.streams) await emit(streamEntries(message.streams, streams))
        if (message.dropped_entries?.length) {
          stats.dropped += message.dropped_entries.length
          options.onDropped?.(message.dropped_entries.length)
        }
      })
      if (outcome.opened) {
        if (!everOpened) openedAt = outcome.openedAt
        everOpened = true
        failures = 0
      }
      if (options.signal.aborted) break
      // Loki closes with 1011 both to refuse a tail and to end one at tail_max_duration
      // ("reached tail max duration limit"): only the refusal ends obs tail.
      if (outcome.code === 1011 && /concurrent tail/i.test(outcome.reason)) {
        throw new UnreachableError(`Loki refused the tail: ${oneLine(outcome.reason)}`, 'close other tails (Loki allows max_concurrent_tail_requests) or use --poll')
      }
      if (!outcome.opened && !everOpened) {
        throw new UnreachableError(`cannot open a tail on Loki at ${client.address}: ${oneLine(outcome.reason) || 'connection failed'}`, 'check --addr, and use --poll where a proxy blocks WebSockets')
      }
      reason = outcome.reason ? `closed (${outcome.code}: ${oneLine(outcome.reason)})` : `closed (${outcome.code})`
    } catch (error) {
      if (!(error instanceof UnreachableError) || !everOpened || /refused the tail/.test(error.message)) throw error
      reason = error.message
    }
    const delay = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]
    failures++
    stats.reconnects++
    options.onReconnect?.(reason, stats.reconnects, delay)
    await sleep(delay, options.signal)
  }
  return stats
}

/**
 * Loki's WebSocket tail accepts a query its range queries reject (an invalid
 * line_format template): it upgrades, pings, and never sends a line or the
 * reason. One range query over the last second, before the first connection,
 * gets Loki's own refusal instead of a tail that waits forever.
 */
async function checkTailQuery(client: LokiClient, query: string): Promise<void> {
  const now = nowNanos()
  await client.queryRange({ query, start: now - 1_000_000_000n, end: now, limit: 1, direction: 'backward' })
}

function openTail(
  client: LokiClient,
  options: TailOptions,
  onMessage: (message: TailMessage) => Promise<void>,
): Promise<{ opened: boolean; openedAt: Nanos; code: number; reason: string }> {
  const url = new URL(`${client.address}/loki/api/v1/tail`)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  url.searchParams.set('query', options.query)
  url.searchParams.set('limit', String(options.limit))
  url.searchParams.set('start', options.start.toString())
  url.searchParams.set('delay_for', String(options.delayForSeconds))
  return import('undici').then(({ WebSocket }) => new Promise((resolve) => {
    // Categorized like the range queries of the catch-up, so an entry from
    // either has the same stream labels (without it Loki merges structured
    // metadata such as detected_level into the stream).
    const socket = new WebSocket(url, { headers: { ...client.http.settings.headers, ...CATEGORIZE_LABELS }, dispatcher: client.http.dispatcher })
    let opened = false
    let openedAt = 0n
    // Messages are handled one at a time, in order, even when printing waits for stdout.
    let queue = Promise.resolve()
    const abort = () => socket.close(1000, 'obs tail stopped')
    options.signal.addEventListener('abort', abort, { once: true })
    socket.addEventListener('open', () => {
      opened = true
      openedAt = nowNanos() - BigInt(options.delayForSeconds) * 1_000_000_000n - RESUME_OVERLAP_NS
    })
    socket.addEventListener('message', (event) => {
      queue = queue.then(() => onMessage(JSON.parse(String(event.data)) as TailMessage)).catch(() => socket.close(1000))
    })
    socket.addEventListener('close', (event) => {
      options.signal.removeEventListener('abort', abort)
      void queue.then(() => resolve({ opened, openedAt, code: event.code, reason: event.reason }))
    })
  }))
}

/**
 * Follows a query with range queries instead of a WebSocket, for proxies that
 * block WebSockets: every interval, everything from the last printed line up
 * to now − delay, with the same no-loss, no-repeat resume point.
 */
export async function tailPoll(client: LokiClient, options: TailOptions & { intervalMs: number }): Promise<TailStats> {
  const stats: TailStats = { lines: 0, reconnects: 0, dropped: 0 }
  const resume = new ResumePoint()
  const delayNs = BigInt(options.delayForSeconds) * 1_000_000_000n
  let from = nowNanos() - delayNs
  // History first: the newest --limit lines since --since, oldest first.
  const history: LogEntry[] = []
  for await (const page of fetchLogPages(client, { query: options.query, start: options.start, end: from, direction: 'backward', limit: options.limit, batch: MAX_PAGE })) {
    history.push(...page)
  }
  const emit = async (entries: LogEntry[]) => {
    const fresh = resume.accept(entries)
    stats.lines += fresh.length
    if (fresh.length > 0) await options.onEntries(fresh)
  }
  await emit(history.reverse())
  let live = false
  while (!options.signal.aborted) {
    await sleep(options.intervalMs, options.signal)
    if (options.signal.aborted) break
    const until = nowNanos() - delayNs
    // Look back a little for lines that reached Loki late; the resume point
    // drops what was printed already (also after a failed round).
    const start = live ? from - RESUME_OVERLAP_NS : from
    if (until <= start) continue
    try {
      for await (const page of fetchLogPages(client, { query: options.query, start, end: until, direction: 'forward', limit: 0, batch: MAX_PAGE })) {
        await emit(page)
      }
      from = until
      live = true
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error
      stats.reconnects++
      options.onReconnect?.(error.message, stats.reconnects, options.intervalMs)
    }
  }
  return stats
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
