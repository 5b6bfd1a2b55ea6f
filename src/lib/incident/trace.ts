import type { LokiClient } from '../loki/client.ts'
import { quoteLogQL, streamSelector } from '../loki/logql.ts'
import type { LogEntry } from '../loki/paging.ts'
import { fetchLogPages } from '../loki/paging.ts'
import { isErrorLevel, levelName } from '../pino.ts'
import type { ContextGroup } from '../render/output.ts'
import { type Nanos, parseDuration, startBefore } from '../time.ts'
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

export interface TraceEntry {
  entry: LogEntry
  fields: Record<string, unknown>
}

export interface Trace {
  reqId: string
  query: string
  start: Nanos
  end: Nanos
  /** The windows searched, when the first one found nothing. */
  widenedTo?: string
  entries: TraceEntry[]
}

/**
 * Every line of one request across the app's services, oldest first (stable
 * on equal timestamps). Starts with `since` and widens through WIDENING while
 * nothing is found, each time searching only the part not searched yet.
 */
export async function findTrace(
  client: LokiClient,
  options: { reqId: string; app: string; since: string; end: Nanos; onWiden?: (wider: string, searched: string) => void },
): Promise<Trace> {
  const query = traceQuery(options.reqId, options.app)
  const first = parseDuration(options.since, '--since')
  const windows = [options.since, ...WIDENING.filter((w) => parseDuration(w) > first)]
  let trace: Trace | undefined
  // Where the windows searched so far begin. A wider window is only searched
  // where the narrower ones did not reach: they found nothing.
  let searchedFrom = options.end
  for (const [index, since] of windows.entries()) {
    if (index > 0) options.onWiden?.(since, windows[index - 1])
    const start = startBefore(options.end, since)
    const entries: TraceEntry[] = []
    for await (const page of fetchLogPages(client, { query, start, end: searchedFrom, direction: 'forward', limit: 0, batch: 5000 })) {
      for (const entry of page) entries.push({ entry, fields: parseFields(entry.line) })
    }
    searchedFrom = start
    trace = { reqId: options.reqId, query, start, end: options.end, widenedTo: index > 0 ? since : undefined, entries }
    if (entries.length > 0) break
  }
  // Forward paging already yields time order, ties in one stable order.
  return trace!
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
