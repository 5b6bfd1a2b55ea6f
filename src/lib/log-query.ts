import { ObsError, ExitCode, UnreachableError } from './errors.ts'
import type { Direction, EntryMetadata, Labels, LokiClient, QueryData } from './loki-client.ts'
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
}

/**
 * Fetches a log query page by page and yields each page's entries in output
 * order. A full page may end in the middle of a group of entries that share a
 * timestamp (across streams, or within one), and Loki cannot say where to
 * resume inside such a group. So the group at the page's edge is held back and
 * the next request starts at that timestamp: every entry is emitted exactly
 * once, and ties come out in one deterministic order.
 */
export async function* fetchLogPages(client: LokiClient, params: LogQueryParams): AsyncGenerator<LogEntry[]> {
  const streams = new StreamCache()
  const compare = params.direction === 'forward' ? forwardOrder : backwardOrder
  let { start, end } = params
  let remaining = params.limit === 0 ? Number.POSITIVE_INFINITY : params.limit

  while (remaining > 0) {
    const requestLimit = Math.min(params.batch, remaining)
    const data = await client.queryRange({ query: params.query, start, end, limit: requestLimit, direction: params.direction })
    const entries = flattenStreams(data, streams)
    entries.sort(compare)
    // A short page is the last one; a page of exactly what is still wanted is too.
    if (entries.length < requestLimit || requestLimit === remaining) {
      if (entries.length > 0) yield entries
      return
    }
    const edge = entries[entries.length - 1].ts
    let cut = entries.length - 1
    while (cut > 0 && entries[cut - 1].ts === edge) cut--
    if (cut === 0) {
      throw new ObsError(
        `more than ${requestLimit} entries share the timestamp ${formatNanos(edge)}, more than one page can hold`,
        ExitCode.failed,
        `raise --batch (now ${params.batch}) up to Loki's max_entries_limit_per_query`,
      )
    }
    yield entries.slice(0, cut)
    remaining -= cut
    if (params.direction === 'forward') start = BigInt(edge)
    else end = BigInt(edge) + 1n
  }
}

function flattenStreams(data: QueryData, streams: StreamCache): LogEntry[] {
  if (data.resultType !== 'streams') {
    throw new UnreachableError(`Loki answered a log query with a ${data.resultType} result`)
  }
  const entries: LogEntry[] = []
  for (const result of data.result) {
    const stream = streams.get(result.stream)
    for (const value of result.values) {
      entries.push({ ts: value[0], line: value[1], stream, meta: value[2] })
    }
  }
  return entries
}

/** Interns stream label sets so every entry of a stream shares one object. */
class StreamCache {
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

function forwardOrder(a: LogEntry, b: LogEntry): number {
  return compareNanos(a.ts, b.ts) || tieBreak(a, b)
}

function backwardOrder(a: LogEntry, b: LogEntry): number {
  return compareNanos(b.ts, a.ts) || tieBreak(a, b)
}
