import type { ChalkInstance } from 'chalk'
import { formatDistanceStrict } from 'date-fns/formatDistanceStrict'
import type { LokiClient } from '../loki/client.ts'
import { quoteLogQL, streamSelector } from '../loki/logql.ts'
import type { LogEntry } from '../loki/paging.ts'
import { fetchLogPages } from '../loki/paging.ts'
import { colorLevel } from '../render/output.ts'
import { neutralize } from '../text.ts'
import { formatNanos, humanDuration, type Nanos, parseDuration, startBefore } from '../time.ts'

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

export interface TraceSummary {
  spanNs: Nanos
  services: Record<string, number>
  errors: number
}

const ERROR_LEVELS = new Set(['error', 'fatal', '50', '60'])

function summarizeTrace(trace: Trace): TraceSummary {
  const services: Record<string, number> = {}
  let errors = 0
  for (const { entry, fields } of trace.entries) {
    const service = entry.stream.labels.service ?? '?'
    services[service] = (services[service] ?? 0) + 1
    if (ERROR_LEVELS.has(String(fields.level).toLowerCase())) errors++
  }
  const first = trace.entries[0]?.entry.ts
  const last = trace.entries.at(-1)?.entry.ts
  return { spanNs: first && last ? BigInt(last) - BigInt(first) : 0n, services, errors }
}

/** Fields every pino line has; the timeline shows them in columns or not at all. */
const ROUTINE_FIELDS = new Set(['level', 'msg', 'time', 'reqId', 'pid', 'hostname', 'v'])

/** The request as a timeline: time, offset from the first line, service, level, message, notable fields. */
export function renderTimeline(trace: Trace, chalk: ChalkInstance): string {
  const first = trace.entries[0] ? BigInt(trace.entries[0].entry.ts) : 0n
  const serviceWidth = Math.max(7, ...trace.entries.map(({ entry }) => (entry.stream.labels.service ?? '?').length))
  const lines = trace.entries.map(({ entry, fields }) => {
    const clock = formatNanos(entry.ts).slice(11, 23)
    const offset = `+${humanDuration(BigInt(entry.ts) - first)}`.padStart(9)
    const service = neutralize(entry.stream.labels.service ?? '?').padEnd(serviceWidth)
    const level = colorLevel(chalk, String(fields.level ?? '-').toLowerCase())
    const message = neutralize(typeof fields.msg === 'string' ? fields.msg : entry.line)
    const notable = Object.entries(fields)
      .filter(([name]) => !ROUTINE_FIELDS.has(name))
      .map(([name, value]) => `${neutralize(name)}=${neutralize(typeof value === 'string' ? value : JSON.stringify(value))}`)
      .join(' ')
    return `${chalk.dim(clock)} ${chalk.dim(offset)}  ${chalk.cyan(service)} ${level} ${message}${notable ? `  ${chalk.dim(notable)}` : ''}`
  })
  const summary = summarizeTrace(trace)
  const services = Object.entries(summary.services)
    .map(([name, count]) => `${neutralize(name)} (${count})`)
    .join(', ')
  const firstDate = new Date(Number(first / 1_000_000n))
  const errors = summary.errors > 0 ? chalk.red.bold(`${summary.errors} error${summary.errors === 1 ? '' : 's'}`) : 'no errors'
  lines.push(
    '',
    `${chalk.bold(neutralize(trace.reqId))}: ${trace.entries.length} lines over ${humanDuration(summary.spanNs)}, ` +
      `started ${formatDistanceStrict(firstDate, new Date(), { addSuffix: true })} (${formatNanos(first).slice(0, 19)}Z); ` +
      `services: ${services}; ${errors}`,
  )
  return `${lines.join('\n')}\n`
}
