/**
 * grep-style context around log lines: for each line a query matched, the N
 * lines before and after it in its stream (or, with allStreams, in every
 * stream of its app), exact to the nanosecond.
 *
 * Order is paging's forward order: timestamp, then stream, then line. Lines
 * that share the match's nanosecond are split by that order into before and
 * after, so none is lost or shown twice. Each side is searched in windows
 * that widen only while fewer than N lines were found; when a side's N-th
 * line shares its nanosecond with others, that whole nanosecond is fetched
 * and cut in the same order, since a limited query may return any of them.
 */
import type { Labels } from '../loki/client.ts'
import { streamSelector } from '../loki/logql-text.ts'
import { fetchLogPages, forwardOrder, type LogEntry, type PagingClient } from '../loki/paging.ts'
import type { ContextGroup, ContextLine } from '../render/output.ts'
import { type Nanos, parseDuration } from '../time.ts'

export interface ContextOptions {
  before: number
  after: number
  /** The context of every stream of the match's app (all containers of the compose project), interleaved. */
  allStreams: boolean
  /** Matches looked at concurrently. */
  concurrency?: number
}

/** How far back and ahead each side may look, widened in turn while lines are missing. */
export const CONTEXT_WINDOWS = ['10s', '1m', '10m', '1h', '6h', '24h']

const PAGE = 5000

/** The selector of the lines that make a match's context: its own stream, or all streams of its app. */
export function contextSelector(entry: LogEntry, allStreams: boolean): string {
  const labels = entry.stream.labels
  if (allStreams && labels.app !== undefined) return streamSelector({ app: labels.app })
  // Loki's own labels (__stream_shard__ and the like) split one stream of the pipeline: leave them out.
  return streamSelector(Object.fromEntries(Object.entries(labels).filter(([name]) => !name.startsWith('__'))) as Labels)
}

function key(entry: LogEntry): string {
  return `${entry.ts}\u0000${entry.stream.json}\u0000${entry.line}`
}

async function fetchAll(client: PagingClient, query: string, start: Nanos, end: Nanos, direction: 'forward' | 'backward', limit: number): Promise<LogEntry[]> {
  const entries: LogEntry[] = []
  if (end <= start) return entries
  for await (const page of fetchLogPages(client, { query, start, end, direction, limit, batch: PAGE })) entries.push(...page)
  return entries
}

/**
 * The `count` lines nearest to `from` on one side (exclusive of `from`'s
 * nanosecond), nearest last for 'before' and first for 'after', in forward order.
 */
async function side(client: PagingClient, query: string, from: Nanos, count: number, direction: 'before' | 'after'): Promise<LogEntry[]> {
  if (count === 0) return []
  const found: LogEntry[] = []
  let reached = 0n
  for (const window of CONTEXT_WINDOWS) {
    const span = parseDuration(window)
    const [start, end] = direction === 'before' ? [from - span, from - reached] : [from + 1n + reached, from + 1n + span]
    reached = span
    found.push(...(await fetchAll(client, query, start, end, direction === 'before' ? 'backward' : 'forward', count - found.length)))
    if (found.length >= count) break
  }
  // Short of `count`, nothing was cut: every line the windows hold is here.
  if (found.length < count) return found.sort(forwardOrder)
  // The farthest line's nanosecond may hold more lines than the limit let through: take it whole, then cut.
  const farthest = BigInt(found[found.length - 1].ts)
  const group = await fetchAll(client, query, farthest, farthest + 1n, 'forward', 0)
  const nearer = found.filter((entry) => BigInt(entry.ts) !== farthest)
  const all = [...nearer, ...group].sort(forwardOrder)
  return direction === 'before' ? all.slice(-count) : all.slice(0, count)
}

/** One match with its context, oldest first. */
async function around(client: PagingClient, match: LogEntry, options: ContextOptions): Promise<ContextLine[]> {
  const query = contextSelector(match, options.allStreams)
  const ts = BigInt(match.ts)
  const [sameNanosecond, earlier, later] = await Promise.all([
    fetchAll(client, query, ts, ts + 1n, 'forward', 0),
    side(client, query, ts, options.before, 'before'),
    side(client, query, ts, options.after, 'after'),
  ])
  sameNanosecond.sort(forwardOrder)
  const at = sameNanosecond.findIndex((entry) => forwardOrder(entry, match) === 0)
  // The match is in its own nanosecond unless it left Loki since (retention): then only the lines around it.
  const tiesBefore = at === -1 ? sameNanosecond.filter((entry) => forwardOrder(entry, match) < 0) : sameNanosecond.slice(0, at)
  const tiesAfter = at === -1 ? sameNanosecond.filter((entry) => forwardOrder(entry, match) > 0) : sameNanosecond.slice(at + 1)
  const before = options.before === 0 ? [] : [...earlier, ...tiesBefore].slice(-options.before)
  const after = [...tiesAfter, ...later].slice(0, options.after)
  return [...before.map((entry) => ({ entry, role: 'before' as const })), { entry: match, role: 'match' }, ...after.map((entry) => ({ entry, role: 'after' as const }))]
}

/**
 * The context of every match, merged into groups where lines overlap, in the
 * order of `matches` (the query's direction). A line that is a match is
 * marked so in every group it ends up in; one between two matches is 'after'.
 */
export async function withContext(client: PagingClient, matches: LogEntry[], options: ContextOptions): Promise<ContextGroup[]> {
  const results: ContextLine[][] = new Array(matches.length)
  let next = 0
  const workers = Array.from({ length: Math.min(options.concurrency ?? 4, matches.length) }, async () => {
    while (next < matches.length) {
      const index = next++
      results[index] = await around(client, matches[index], options)
    }
  })
  await Promise.all(workers)
  return mergeGroups(results, new Map(matches.map((match) => [key(match), match])))
}

/** Merges windows that share a line into one group, oldest first; groups keep the order of their first window. */
export function mergeGroups(windows: ContextLine[][], matches: Map<string, LogEntry>): ContextGroup[] {
  let groups: Map<string, LogEntry>[] = []
  for (const window of windows) {
    const merged = new Map(window.map(({ entry }) => [key(entry), entry]))
    const overlapping = groups.filter((group) => [...merged.keys()].some((k) => group.has(k)))
    for (const group of overlapping) for (const [k, entry] of group) merged.set(k, entry)
    const at = overlapping.length === 0 ? groups.length : groups.indexOf(overlapping[0])
    groups = groups.filter((group) => !overlapping.includes(group))
    groups.splice(at, 0, merged)
  }
  return groups.map((group) => {
    let seenMatch = false
    return [...group.values()].sort(forwardOrder).map((entry): ContextLine => {
      // A match keeps its own entry, with what its query parsed; its context lines were fetched without parsers.
      const match = matches.get(key(entry))
      seenMatch ||= match !== undefined
      return { entry: match ?? entry, role: match ? 'match' : seenMatch ? 'after' : 'before' }
    })
  })
}
