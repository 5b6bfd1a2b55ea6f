import { UnreachableError, UsageError } from './errors.ts'
import { oneLine } from './http.ts'
import type { Direction, EntryMetadata, Labels, LokiClient, QueryData, StreamResult } from './loki-client.ts'
import { compareNanos, formatNanos, type Nanos } from './time.ts'

/** Loki's default max_entries_limit_per_query: the largest page it serves. */
export const MAX_PAGE = 5000

/** A stream as seen in results, shared by all its entries. */
export interface StreamInfo {
  labels: Labels
  /** Canonical text of the labels: a sort key and, as JSON, the jsonl `labels`. */
  json: string
}

export interface LogEntry {
  /** Nanoseconds since the epoch, as Loki sends them. */
  ts: string
  line: string
  stream: StreamInfo
  meta?: EntryMetadata
}

export interface LogQueryParams {
  query: string
  start: Nanos
  end: Nanos
  direction: Direction
  /** Entries wanted in all; 0 for every entry in the range. */
  limit: number
  /** Entries per request, at most what Loki serves in one query. */
  batch: number
  /** Windows fetched concurrently; output order does not change. */
  parallel?: number
}

/** Windows aim at this share of a page, leaving room for bursts. */
const TARGET_FILL = 0.75

/** A time window [start, end) asked of Loki, and its answer once it comes. */
interface Window {
  start: Nanos
  end: Nanos
  requestLimit: number
  response: Promise<LogEntry[]>
}

/**
 * Fetches a log query window by window and yields each window's entries in
 * output order.
 *
 * Loki does not return the exact first `limit` entries of a range once the
 * query frontend splits or shards it: a full page can miss lines of one stream
 * that are newer than lines it returned from another (grafana/loki #19133,
 * #17270). Resuming from the edge of a full page, as logcli does, therefore
 * loses lines. A page with fewer entries than the limit is complete, though,
 * so obs sizes each time window to come back below the limit, judging by the
 * density seen so far; a window that comes back full is not used but asked
 * again in narrower parts. Windows never overlap and entries that share a
 * timestamp always land in the same window, so every entry is emitted once,
 * and the output is the same sorted sequence however the range was cut.
 *
 * With `parallel` > 1, that many windows ahead are in flight at once; they are
 * still emitted strictly in order, and memory holds at most that many pages.
 */
export async function* fetchLogPages(client: LokiClient, params: LogQueryParams): AsyncGenerator<LogEntry[]> {
  const streams = new StreamCache()
  const forward = params.direction === 'forward'
  const compare = forward ? forwardOrder : backwardOrder
  const parallel = Math.max(1, params.parallel ?? 1)
  let remaining = params.limit === 0 ? Number.POSITIVE_INFINITY : params.limit
  // The part of the range no window covers yet: [low, high).
  let low = params.start
  let high = params.end
  // Sequentially the first window is the whole range: often it fits. In
  // parallel, the range is cut so that every worker has a window from the start.
  let width = (high - low) / BigInt(parallel) || 1n
  const pending: Window[] = []
  // Windows fetched ahead and then not needed are abandoned, retries included.
  let abandon = new AbortController()

  const request = (start: Nanos, end: Nanos): Window => {
    // One more than still wanted: a page short of its limit is complete. A
    // one-nanosecond window cannot be split, so it gets the largest page.
    const requestLimit = end - start === 1n ? Math.max(MAX_PAGE, params.batch) : Math.min(params.batch, remaining + 1)
    const response = client
      .queryRange({ query: params.query, start, end, limit: requestLimit, direction: params.direction, signal: abandon.signal })
      .then((data) => flattenStreams(data, streams))
    // Windows fetched ahead may be abandoned when the limit is reached.
    response.catch(() => undefined)
    return { start, end, requestLimit, response }
  }
  const planAhead = () => {
    while (pending.length < parallel && low < high) {
      const span = width < high - low ? width : high - low
      if (forward) {
        pending.push(request(low, low + span))
        low += span
      } else {
        pending.push(request(high - span, high))
        high -= span
      }
    }
  }

  try {
    while (remaining > 0) {
      planAhead()
      const window = pending.shift()
      if (!window) return
      const entries = await window.response
      const span = window.end - window.start
      if (entries.length >= window.requestLimit) {
        if (span === 1n) {
          throw new UsageError(
            `${window.requestLimit} or more entries share the timestamp ${formatNanos(window.start)}, more than one page can hold`,
            `raise Loki's max_entries_limit_per_query and --batch above ${window.requestLimit}`,
          )
        }
        // Too dense: ask again from this window on, narrower. Windows planned
        // after it were sized by the same wrong estimate, so they are dropped.
        width = scaleWidth(span, window.requestLimit * TARGET_FILL, entries.length * 2)
        if (width >= span) width = span / 2n
        pending.length = 0
        abandon.abort()
        abandon = new AbortController()
        if (forward) low = window.start
        else high = window.end
        continue
      }
      entries.sort(compare)
      if (entries.length > 0) yield entries.length > remaining ? entries.slice(0, remaining) : entries
      remaining -= entries.length
      width = entries.length === 0 ? span * 4n : scaleWidth(span, window.requestLimit * TARGET_FILL, entries.length)
    }
  } finally {
    abandon.abort()
  }
}

/** width × wanted / got, at least one nanosecond. */
function scaleWidth(width: Nanos, wanted: number, got: number): Nanos {
  const scaled = (width * BigInt(Math.max(1, Math.floor(wanted)))) / BigInt(Math.max(1, got))
  return scaled > 0n ? scaled : 1n
}

function flattenStreams(data: QueryData, streams: StreamCache): LogEntry[] {
  if (data === null || typeof data !== 'object' || data.resultType !== 'streams') {
    throw new UnreachableError(`Loki answered a log query with ${data?.resultType ? `a ${oneLine(String(data.resultType))}` : 'no'} result`)
  }
  return streamEntries(data.result, streams)
}

function badShape(what: string): never {
  throw new UnreachableError(`Loki's answer is not a log query result: ${what}`, 'check that --addr points at Loki, not a proxy that rewrites answers')
}

/** The entries of stream results, each stream's labels interned in `streams`. */
export function streamEntries(results: StreamResult[], streams: StreamCache): LogEntry[] {
  const entries: LogEntry[] = []
  if (!Array.isArray(results)) badShape('result is not a list of streams')
  for (const result of results) {
    if (!result || typeof result.stream !== 'object' || result.stream === null || !Array.isArray(result.values)) badShape('a stream without labels or values')
    const stream = streams.get(result.stream)
    for (const value of result.values) {
      if (!Array.isArray(value) || typeof value[0] !== 'string' || !/^\d+$/.test(value[0]) || typeof value[1] !== 'string') badShape('an entry that is not ["<ns>", "<line>"]')
      entries.push({ ts: value[0], line: value[1], stream, meta: value[2] })
    }
  }
  return entries
}

/** Interns stream label sets so every entry of a stream shares one object. */
export class StreamCache {
  private readonly byJson = new Map<string, StreamInfo>()

  get(labels: Labels): StreamInfo {
    const sorted: Labels = {}
    for (const name of Object.keys(labels).sort()) sorted[name] = labels[name]
    const json = JSON.stringify(sorted)
    let info = this.byJson.get(json)
    if (!info) {
      info = { labels: sorted, json }
      this.byJson.set(json, info)
    }
    return info
  }
}

function tieBreak(a: LogEntry, b: LogEntry): number {
  if (a.stream !== b.stream) return a.stream.json < b.stream.json ? -1 : 1
  return a.line < b.line ? -1 : a.line > b.line ? 1 : 0
}

export function forwardOrder(a: LogEntry, b: LogEntry): number {
  return compareNanos(a.ts, b.ts) || tieBreak(a, b)
}

function backwardOrder(a: LogEntry, b: LogEntry): number {
  return compareNanos(b.ts, a.ts) || tieBreak(a, b)
}
