import type { LokiClient } from '../loki/client.ts'
import { quoteLogQL, streamSelector } from '../loki/logql-text.ts'
import type { LogEntry } from '../loki/paging.ts'
import { fetchLogPages, StreamCache, streamEntries } from '../loki/paging.ts'
import { isErrorLevel, levelName } from '../pino.ts'
import type { ContextGroup } from '../render/output.ts'
import { type Nanos, parseBoundedDuration, parseDuration, startBefore } from '../time.ts'
import { withContext } from './context.ts'

/**
 * The query for one request's lines. The line filter comes first because it
 * is cheap and cuts most lines before any JSON parsing; it looks for the id as
 * it appears inside a JSON string (quotes and backslashes escaped). The exact
 * `reqId` match after `| json` keeps `abc123` from matching `abc1234`. Both
 * values are quoted literals, so no id can change the query's structure.
 */
export function traceQuery(reqId: string, app: string): string {
  const asInJson = JSON.stringify(reqId).slice(1, -1)
  return `${streamSelector({ app })} |= ${quoteLogQL(asInJson)} | json | reqId=${quoteLogQL(reqId)}`
}

/** Windows tried in turn when nothing is found, up to the last. */
export const WIDENING = ['1h', '6h', '24h', '7d']

/**
 * How far before the oldest line found a request's earlier lines may lie. The
 * search runs newest first and reads the first stretch holding a line whole,
 * so every later line of the request is found, however long the pauses
 * between them. Earlier lines lie in stretches not searched: the window
 * widens back for as long as its oldest line lies closer than this to its
 * start. A pause longer than this before the oldest line found cuts the
 * request there: `--gap` raises it.
 */
export const REQUEST_GAP = '30s'
/**
 * --gap's bounds: the window reaches 1.5 gaps either side of a line found,
 * so a gap of days asks Loki for times past its limits (100000d: before
 * 1970, and past 2262 where the end overflows), and no request pauses a day.
 */
export const GAP_BOUNDS = { min: '1ms', max: '24h' } as const

/** The first stretch searched for a line of the request, the newest; each next one, older, is twice as long. */
const FIRST_PROBE = 60_000_000_000n
const HOUR = 3_600_000_000_000n

export interface TraceEntry {
  entry: LogEntry
  fields: Record<string, unknown>
}

export interface Trace {
  reqId: string
  query: string
  /** The window the request's lines were fetched from (the whole search when none was found). */
  start: Nanos
  end: Nanos
  /** The windows searched, when the first one found nothing. */
  widenedTo?: string
  entries: TraceEntry[]
}

/**
 * Every line of one request across the app's services, oldest first (stable
 * on equal timestamps), in two steps that keep Loki from reading the whole
 * range for a handful of lines:
 *
 * 1. Locate: the request's lines in stretches of time searched newest
 *    first, each twice as long as the one before (the last 1m, the 2m before
 *    it, then 4m, …), so that a recent request costs the last minutes only.
 *    Starts with `since` and widens through WIDENING while nothing is found,
 *    each time searching only the part not searched yet. The first stretch
 *    holding any line is read to its end for the request's oldest and
 *    newest line there: its later lines, an error minutes after its first
 *    line included, lie anywhere in it, and none after it (the newer
 *    stretches were searched and held none).
 * 2. Fetch: every line of the request, forward and complete (fetchLogPages),
 *    from `gap` before the oldest line found to the newest, widened back for
 *    as long as the oldest line lies within `gap` of the window's start:
 *    earlier lines lie in stretches not searched.
 */
export async function findTrace(
  client: LokiClient,
  options: {
    reqId: string
    app: string
    since: string
    end: Nanos
    gap?: string
    onWiden?: (wider: string, searched: string) => void
  },
): Promise<Trace> {
  const query = traceQuery(options.reqId, options.app)
  const gap = parseBoundedDuration(options.gap ?? REQUEST_GAP, '--gap', GAP_BOUNDS)
  const first = parseDuration(options.since, '--since')
  const windows = [options.since, ...WIDENING.filter((w) => parseDuration(w) > first)]
  // Where the stretches searched so far begin: a wider window is only
  // searched where the narrower ones did not reach, and there found nothing.
  let searchedFrom = options.end
  let probe = FIRST_PROBE
  for (const [index, since] of windows.entries()) {
    if (index > 0) options.onWiden?.(since, windows[index - 1])
    const start = startBefore(options.end, since)
    while (searchedFrom > start) {
      // Loki refuses a range longer than its max_query_length (721h shipped).
      if (probe > HOUR) {
        const { maxQueryLengthNs } = await client.queryLimits()
        if (maxQueryLengthNs > 0n && probe > maxQueryLengthNs) probe = maxQueryLengthNs
      }
      const from = searchedFrom - probe > start ? searchedFrom - probe : start
      const found = await spanIn(client, query, from, searchedFrom)
      if (found !== undefined) {
        const fetched = await fetchBack(client, query, found, gap)
        return { reqId: options.reqId, query, ...fetched, end: searchedFrom, widenedTo: index > 0 ? since : undefined }
      }
      searchedFrom = from
      probe *= 2n
    }
  }
  return { reqId: options.reqId, query, start: searchedFrom, end: options.end, widenedTo: windows.length > 1 ? windows.at(-1) : undefined, entries: [] }
}

/** Entries asked of a stretch at once: more than a request's lines, so that its last is among them. */
const STRETCH_LINES = 100

/**
 * The oldest and the newest timestamp of `query`'s entries in [start, end),
 * if any. One request, asked forward (Loki reads a stream backward a whole
 * block at a time and reverses it, which measured 2 to 6 times the lines
 * read forward to the same match: bench, 1M lines) and plain (an empty answer
 * is then trusted without a second request; its labels mix in the parsed
 * fields, so the lines themselves are fetched apart). Where the request is
 * not, Loki reads every stream to the stretch's end whatever the limit; where
 * it is, a limit above its lines has Loki read on to the end, where later
 * lines may be. A stretch holding STRETCH_LINES or more counts as held to
 * its end.
 */
async function spanIn(client: LokiClient, query: string, start: Nanos, end: Nanos): Promise<{ first: Nanos; last: Nanos } | undefined> {
  const data = await client.queryRange({ query, start, end, limit: STRETCH_LINES, direction: 'forward', plain: true })
  const entries = streamEntries(data?.resultType === 'streams' ? data.result : [], new StreamCache())
  if (entries.length === 0) return undefined
  let first = BigInt(entries[0].ts)
  let last = first
  for (const entry of entries) {
    const ts = BigInt(entry.ts)
    if (ts < first) first = ts
    if (ts > last) last = ts
  }
  return { first, last: entries.length >= STRETCH_LINES ? end - 1n : last }
}

/** Every entry of `query` in [start, end), forward and complete. */
async function fetchAll(client: LokiClient, query: string, start: Nanos, end: Nanos): Promise<TraceEntry[]> {
  const entries: TraceEntry[] = []
  for await (const page of fetchLogPages(client, { query, start, end, direction: 'forward', limit: 0, batch: 5000 })) {
    for (const entry of page) entries.push({ entry, fields: parseFields(entry.line) })
  }
  return entries
}

/**
 * Every entry of `query` from 1.5 gap before `found.first` to `found.last`
 * (the half gap for the request's own lines just before the stretch it was
 * found in, so that a request of a few seconds needs no widening), then
 * widened back (doubling what is added) until the oldest entry lies at least
 * `gap` inside the window, no further back than the widest search.
 */
async function fetchBack(client: LokiClient, query: string, found: { first: Nanos; last: Nanos }, gap: Nanos): Promise<{ start: Nanos; entries: TraceEntry[] }> {
  let windowStart = found.first - (gap + gap / 2n)
  let entries = await fetchAll(client, query, windowStart, found.last + 1n)
  // The oldest allowed start: as far back as the widest search.
  const floor = found.first - parseDuration(WIDENING.at(-1)!)
  let step = gap
  for (;;) {
    // `first` itself was found, so there is always an entry; the guard is for a Loki that loses it.
    const oldest = entries.length > 0 ? BigInt(entries[0].entry.ts) : found.first
    if (oldest - windowStart >= gap || windowStart <= floor) break
    step *= 2n
    // Forward paging yields time order, ties in one stable order; the part
    // fetched before the window joins it at its start.
    const from = oldest - step > floor ? oldest - step : floor
    entries = [...(await fetchAll(client, query, from, windowStart)), ...entries]
    windowStart = from
  }
  return { start: windowStart, entries }
}

function parseFields(line: string): Record<string, unknown> {
  try {
    const value = JSON.parse(line) as unknown
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/** The request's error lines (pino's error and fatal), each with `lines` lines of its stream before and after. */
export function errorContext(client: LokiClient, trace: Trace, lines: number): Promise<ContextGroup[]> {
  const errors = trace.entries.filter(({ fields }) => isErrorLevel(levelName(fields.level))).map(({ entry }) => entry)
  return withContext(client, errors, { before: lines, after: lines, allStreams: false })
}
