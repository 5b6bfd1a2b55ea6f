import { UnreachableError } from '../errors.ts'
import { maskUrl } from '../http.ts'
import { oneLine } from '../text.ts'
import { compareNanos, type Nanos, NS_PER_SECOND, nowNanos, sleep } from '../time.ts'
import type { LokiClient, StreamResult } from './client.ts'
import { fetchLogPages, forwardOrder, type LogEntry, MAX_PAGE, StreamCache, streamEntries } from './paging.ts'

export interface TailOptions {
  query: string
  /** Where the first connection starts: now − --since. */
  start: Nanos
  /** Lines of history on the first connection. */
  limit: number
  delayForSeconds: number
  /**
   * How long after its own timestamp a line may reach Loki (a shipper's
   * backlog, clock skew between hosts) and still be printed: --poll asks this
   * much again every round, a reconnect catches up from this much before the
   * newest printed line.
   */
  lookBackNs: Nanos
  signal: AbortSignal
  onEntries: (entries: LogEntry[]) => Promise<void>
  onDropped?: (count: number) => void
  onReconnect?: (reason: string, attempt: number, delayMs: number) => void
  /** A line reached Loki about this long after its timestamp, at or past the look-back. */
  onLate?: (latenessNs: Nanos) => void
  /** --poll: Loki holds this many lines in (fromNs, toNs] that reached it past the look-back and were not printed. */
  onMissed?: (count: number, fromNs: Nanos, toNs: Nanos) => void
}

export interface TailStats {
  lines: number
  reconnects: number
  dropped: number
}

/** The look-back when none is given: a shipper retrying through a short Loki outage. */
export const DEFAULT_LOOK_BACK = '1m'

/**
 * A WebSocket that carries no frame for this long is dead: Loki pings every
 * second, so five missed pings mean a frozen connection or proxy, not a
 * quiet query.
 */
const TAIL_SILENCE_MS = 5000

/** How long a closing WebSocket may wait for Loki's close frame before its socket is cut. */
const CLOSE_GRACE_MS = 1000

/**
 * What a tail has printed: the newest timestamp, and the lines of the last
 * look-back before it. A resumed tail starts that much before the newest
 * printed line, so nothing is skipped (not even a line that reached Loki
 * late, from another stream), and this drops what was printed already, so
 * nothing repeats. Entries are told apart by entryIdentity.
 */
export class ResumePoint {
  lastTs?: string
  private readonly printed = new Map<string, bigint>()
  private readonly lookBackNs: Nanos
  private sincePrune = 0

  constructor(lookBackNs: Nanos) {
    this.lookBackNs = lookBackNs
  }

  /** Keeps the entries not printed before. */
  accept(entries: LogEntry[]): LogEntry[] {
    const fresh: LogEntry[] = []
    for (const entry of entries) {
      const key = entryIdentity(entry)
      if (this.printed.has(key)) continue
      const ts = BigInt(entry.ts)
      this.printed.set(key, ts)
      if (this.lastTs === undefined || compareNanos(entry.ts, this.lastTs) > 0) this.lastTs = entry.ts
      fresh.push(entry)
    }
    this.sincePrune += fresh.length
    if (this.sincePrune > 1000) this.prune()
    return fresh
  }

  /** Where a resumed tail starts. */
  resumeFrom(fallback: Nanos): Nanos {
    return this.lastTs === undefined ? fallback : BigInt(this.lastTs) - this.lookBackNs
  }

  private prune(): void {
    this.sincePrune = 0
    const horizon = BigInt(this.lastTs ?? '0') - this.lookBackNs
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
function entryIdentity(entry: LogEntry): string {
  return `${entry.ts}\u0000${entry.stream.json}\u0000${entry.line}`
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
  const resume = new ResumePoint(options.lookBackNs)
  const streams = new StreamCache()
  const delayNs = BigInt(options.delayForSeconds) * NS_PER_SECOND
  const emit = async (entries: LogEntry[]) => {
    const fresh = resume.accept(entries.sort(forwardOrder))
    if (fresh.length === 0) return
    stats.lines += fresh.length
    await options.onEntries(fresh)
  }
  // Loki's tail sends a line when it is ingested, whatever its timestamp: a
  // line older than the look-back is printed now, but one like it arriving
  // while obs is reconnecting would be missed, and the user should know.
  const watchLateness = (entries: LogEntry[]) => {
    if (entries.length === 0) return
    const oldest = entries.reduce((min, entry) => (compareNanos(entry.ts, min) < 0 ? entry.ts : min), entries[0].ts)
    const lateness = nowNanos() - delayNs - BigInt(oldest)
    if (lateness > options.lookBackNs) options.onLate?.(lateness)
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
      let sweep: (() => Promise<void>) | undefined
      if (resume.lastTs !== undefined || everOpened) {
        // Catch up exactly on what happened while disconnected.
        const from = resume.resumeFrom(openedAt)
        const catchUp = async (end: Nanos) => {
          for await (const page of fetchLogPages(client, { query: options.query, start: from, end, direction: 'forward', limit: 0, batch: MAX_PAGE })) {
            await emit(page)
          }
        }
        const until = nowNanos()
        await catchUp(until)
        start = until
        limit = MAX_PAGE
        // A line stamped before `until` that reaches Loki after the catch-up but
        // before the new tail is registered with the ingesters would fall
        // between the two (a shipper flushing its backlog just as Loki comes
        // back). Once Loki's first frame shows the tail is registered, the same
        // range is asked again up to now; the resume point drops what repeats.
        sweep = () => catchUp(nowNanos())
      }
      const outcome = await openTail(
        client,
        { ...options, start, limit },
        async (message) => {
          if (message.streams) {
            const entries = streamEntries(message.streams, streams)
            watchLateness(entries)
            await emit(entries)
          }
          if (message.dropped_entries?.length) {
            stats.dropped += message.dropped_entries.length
            options.onDropped?.(message.dropped_entries.length)
          }
        },
        sweep,
      )
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
        throw new UnreachableError(
          `cannot open a tail on Loki at ${client.address}: ${maskUrl(oneLine(outcome.reason)) || 'connection failed'}`,
          'check --addr, and use --poll where a proxy blocks WebSockets',
        )
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
  await client.queryRange({ query, start: now - NS_PER_SECOND, end: now, limit: 1, direction: 'backward' })
}

interface TailOutcome {
  opened: boolean
  openedAt: Nanos
  code: number
  reason: string
}

/**
 * One WebSocket tail, until it closes. It has a connection of its own, so
 * that a dead one can be cut: the handshake must finish within --timeout, an
 * open socket must carry a frame (Loki's pings included) every
 * TAIL_SILENCE_MS, and a close asked by Ctrl-C waits CLOSE_GRACE_MS for
 * Loki's close frame. Whichever is missed, the socket is destroyed and the
 * outcome says why.
 */
async function openTail(client: LokiClient, options: TailOptions, onMessage: (message: TailMessage) => Promise<void>, onRegistered?: () => Promise<void>): Promise<TailOutcome> {
  const channels = await import('node:diagnostics_channel')
  // openTail creates the socket last: only microtasks run before the listeners below are attached, and its events come from I/O.
  const tail = await client.openTail({ query: options.query, limit: options.limit, start: options.start, delayForSeconds: options.delayForSeconds })
  const { socket } = tail
  const timeoutMs = client.timeoutMs
  return new Promise((resolve) => {
    let opened = false
    let openedAt = 0n
    let cutReason: string | undefined
    let lastFrame = Date.now()
    // Messages are handled one at a time, in order, even when printing waits for stdout.
    let queue = Promise.resolve()
    const cut = (reason: string) => {
      cutReason ??= reason
      tail.cut()
    }
    // Loki upgrades the connection first and registers the tail with its
    // ingesters after; its first frame (a ping each second, or lines) comes
    // once that is done.
    let registered = false
    const onFrame = () => {
      lastFrame = Date.now()
      if (registered || !opened) return
      registered = true
      if (onRegistered) queue = queue.then(onRegistered).catch(() => socket.close(1000))
    }
    // undici answers pings itself and reports them only on this channel.
    const onPing = (message: unknown) => {
      if ((message as { websocket?: unknown }).websocket === socket) onFrame()
    }
    channels.subscribe('undici:websocket:ping', onPing)
    const watchdog = setInterval(() => {
      const silentMs = Date.now() - lastFrame
      if (!opened && silentMs > timeoutMs) cut(`no WebSocket handshake within the ${timeoutMs / 1000}s timeout`)
      else if (opened && silentMs > TAIL_SILENCE_MS) cut(`no frame from Loki for ${TAIL_SILENCE_MS / 1000}s (it pings every second): the connection is dead`)
    }, 250)
    const abort = () => {
      socket.close(1000, 'obs tail stopped')
      setTimeout(() => cut('stopped'), CLOSE_GRACE_MS).unref()
    }
    options.signal.addEventListener('abort', abort, { once: true })
    socket.addEventListener('open', () => {
      opened = true
      lastFrame = Date.now()
      openedAt = nowNanos() - BigInt(options.delayForSeconds) * NS_PER_SECOND - options.lookBackNs
    })
    socket.addEventListener('message', (event) => {
      onFrame()
      // Masked before it is read, as every answer of the HTTP client is.
      queue = queue.then(() => onMessage(JSON.parse(client.http.redactor.redact(String(event.data))) as TailMessage)).catch(() => socket.close(1000))
    })
    socket.addEventListener('close', (event) => {
      clearInterval(watchdog)
      channels.unsubscribe('undici:websocket:ping', onPing)
      options.signal.removeEventListener('abort', abort)
      tail.release()
      void queue.then(() => resolve({ opened, openedAt, code: event.code, reason: cutReason ?? event.reason }))
    })
  })
}

/**
 * Follows a query with range queries instead of a WebSocket, for proxies that
 * block WebSockets: every interval, everything from the last printed line up
 * to now − delay, with the same no-loss, no-repeat resume point.
 */
export async function tailPoll(client: LokiClient, options: TailOptions & { intervalMs: number }): Promise<TailStats> {
  const stats: TailStats = { lines: 0, reconnects: 0, dropped: 0 }
  const resume = new ResumePoint(options.lookBackNs)
  const delayNs = BigInt(options.delayForSeconds) * NS_PER_SECOND
  let from = nowNanos() - delayNs
  // History first: the newest --limit lines since --since, oldest first.
  const history: LogEntry[] = []
  for await (const page of fetchLogPages(client, { query: options.query, start: options.start, end: from, direction: 'backward', limit: options.limit, batch: MAX_PAGE })) {
    history.push(...page)
  }
  const emitFresh = async (entries: LogEntry[]): Promise<LogEntry[]> => {
    const fresh = resume.accept(entries)
    stats.lines += fresh.length
    if (fresh.length > 0) await options.onEntries(fresh)
    return fresh
  }
  const warnLate = (fresh: LogEntry[], settled: Nanos) => {
    let oldest: Nanos | undefined
    for (const entry of fresh) {
      const ts = BigInt(entry.ts)
      if (ts < settled && (oldest === undefined || ts < oldest)) oldest = ts
    }
    if (oldest !== undefined && settled - oldest >= options.lookBackNs / 2n) options.onLate?.(nowNanos() - delayNs - oldest)
  }
  await emitFresh(history.reverse())
  const audit = new LateLineAudit(client, options.query, options.lookBackNs, from)
  let live = false
  while (!options.signal.aborted) {
    await sleep(options.intervalMs, options.signal)
    if (options.signal.aborted) break
    const until = nowNanos() - delayNs
    // Ask the look-back again for lines that reached Loki late; the resume
    // point drops what was printed already (also after a failed round).
    const start = live ? from - options.lookBackNs : from
    if (until <= start) continue
    try {
      for await (const page of fetchLogPages(client, { query: options.query, start, end: until, direction: 'forward', limit: 0, batch: MAX_PAGE })) {
        // A line first seen now but older than the last round's end reached
        // Loki that late; past half the look-back, later ones are likely missed.
        const settled = live ? from : undefined
        const fresh = await emitFresh(page)
        audit.record(fresh)
        if (settled !== undefined) warnLate(fresh, settled)
      }
      from = until
      live = true
      const missed = await audit.due(until - options.lookBackNs)
      if (missed) options.onMissed?.(missed.count, missed.fromNs, missed.toNs)
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error
      stats.reconnects++
      options.onReconnect?.(error.message, stats.reconnects, options.intervalMs)
    }
  }
  return stats
}

/** How often --poll counts with Loki what it may have missed, and how far back. */
const AUDIT_EVERY_MS = 10_000
const AUDIT_LOOK_BACKS = 10n
const AUDIT_MAX_SPAN_NS = 3_600_000_000_000n

/**
 * --poll asks each stretch of time again for one look-back, then never: a line
 * that reaches Loki later than that is not printed. So that the loss is never
 * silent, the audit keeps when each printed line was stamped and, every
 * AUDIT_EVERY_MS, has Loki count the lines of the settled stretch behind the
 * look-back (ten look-backs long, at most an hour, since the tail began); more
 * there than were printed means lines arrived too late. Timestamps are kept as
 * float milliseconds: 8 bytes a line, for the span audited.
 */
class LateLineAudit {
  private printedMs: number[] = []
  private lastAudit = Date.now()
  private reported = 0
  private readonly client: LokiClient
  private readonly query: string
  private readonly lookBackNs: Nanos
  private readonly followedFrom: Nanos

  constructor(client: LokiClient, query: string, lookBackNs: Nanos, followedFrom: Nanos) {
    this.client = client
    this.query = query
    this.lookBackNs = lookBackNs
    this.followedFrom = followedFrom
  }

  record(entries: LogEntry[]): void {
    for (const entry of entries) this.printedMs.push(Number(BigInt(entry.ts) / 1000n) / 1000)
  }

  async due(settled: Nanos): Promise<{ count: number; fromNs: Nanos; toNs: Nanos } | undefined> {
    if (Date.now() - this.lastAudit < AUDIT_EVERY_MS) return undefined
    this.lastAudit = Date.now()
    // Half a millisecond past a whole one: lines stamped on whole milliseconds never sit on the edge.
    const to = (settled / 1_000_000n) * 1_000_000n + 500_000n
    let span = this.lookBackNs * AUDIT_LOOK_BACKS
    if (span > AUDIT_MAX_SPAN_NS) span = AUDIT_MAX_SPAN_NS
    const from = to - span > this.followedFrom ? to - span : this.followedFrom
    if (to - from < 1_000_000n) return undefined
    const fromMs = Number(from / 1000n) / 1000
    const toMs = Number(to / 1000n) / 1000
    this.printedMs = this.printedMs.filter((ms) => ms > fromMs)
    let printed = 0
    for (const ms of this.printedMs) if (ms <= toMs) printed++
    const data = await this.client.queryInstant({ query: `sum(count_over_time(${this.query} [${(to - from) / 1_000_000n}ms]))`, time: to })
    const stored = data.resultType === 'vector' && data.result.length > 0 ? Number(data.result[0].value?.[1] ?? 0) : 0
    const missing = stored - printed
    if (missing <= this.reported) return undefined
    this.reported = missing
    return { count: missing, fromNs: from, toNs: to }
  }
}
