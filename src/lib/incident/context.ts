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
 *
 * Where matches are dense, the same lines come cheaper from one export of the
 * stretch around them than from windows per match: withContext chooses per
 * group of close matches (planGroups), with the same output either way.
 */
import { UsageError } from '../errors.ts'
import type { Labels } from '../loki/client.ts'
import { streamSelector } from '../loki/logql-text.ts'
import { fetchLogPages, forwardOrder, type LogEntry, type PagingClient } from '../loki/paging.ts'
import type { ContextGroup, ContextLine } from '../render/output.ts'
import { neutralize } from '../text.ts'
import { type Nanos, parseDuration } from '../time.ts'

export interface ContextOptions {
  before: number
  after: number
  /** The context of every stream of the match's app (all containers of the compose project), interleaved. */
  allStreams: boolean
  /** Matches (or groups of matches) looked at concurrently. */
  concurrency?: number
  /**
   * How the context is fetched: 'auto' chooses by cost (see planGroups);
   * 'export' and 'windows' force one plan. The output is the same either way.
   */
  plan?: ContextPlan
}

export type ContextPlan = 'auto' | 'export' | 'windows'

/**
 * The plan OBS_CONTEXT_PLAN forces, for tests and benchmarks that compare the
 * plans on the same data; unset is 'auto'.
 */
export function contextPlanFromEnv(value: string | undefined): ContextPlan {
  if (value === undefined || value === '') return 'auto'
  if (value === 'auto' || value === 'export' || value === 'windows') return value
  throw new UsageError(`OBS_CONTEXT_PLAN=${neutralize(value)} is not a context plan`, 'set it to auto, export or windows, or unset it')
}

/** How far back and ahead each side may look, widened in turn while lines are missing. */
export const CONTEXT_WINDOWS = ['10s', '1m', '10m', '1h', '6h', '24h']

/** The farthest a side looks: a context line beyond it is not shown, whichever plan found it. */
const REACH = parseDuration(CONTEXT_WINDOWS[CONTEXT_WINDOWS.length - 1])

/** The stretch a covering export adds before its first match and after its last: the first window's. */
const PAD = parseDuration(CONTEXT_WINDOWS[0])

/** A gap no two matches are apart by: one group per selector. */
const WHOLE = 1n << 80n

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
 * The requests one match costs at least in the windows plan: its own
 * nanosecond, and per side a first window and the farthest line's nanosecond.
 */
export function windowsCost(options: Pick<ContextOptions, 'before' | 'after'>): number {
  return 1 + (options.before > 0 ? 2 : 0) + (options.after > 0 ? 2 : 0)
}

/** Matches of one context selector close enough in time to be read by one covering export. */
interface MatchGroup {
  query: string
  /** Indexes into the matches, oldest match first. */
  members: number[]
}

/**
 * The plan by cost, in two passes, each an exact export read forward while it
 * pays, the lines around each match cut from it as its pages arrive:
 *
 * 1. Per context selector (stream, or app with allStreams), one export of the
 *    whole stretch of its matches, from PAD before the first to PAD after the
 *    last. It goes on while its requests stay within c × (matches it served
 *    + 1), c = windowsCost (5 with -C N, 3 with only -A or -B): the least the
 *    windows would have cost them. A stream whose matches are dense, or whose
 *    lines are few, is read here in one pass.
 * 2. The matches the first pass did not reach (it stopped: lines between
 *    matches are many) form groups wherever two consecutive ones are within
 *    2 × PAD (their pads touch); each group gets an export of its own covering
 *    range, stopped at c × its matches.
 *
 * What neither export can tell exactly gets its windows (`around`): a match
 * with fewer lines than asked within the pad at a group's edge (at most
 * `before` of them at a group's start, `after` at its end), or one a stopped
 * export had not reached.
 *
 * Why a budget rather than an estimate: what an export costs depends on the
 * lines between the matches, and Loki's index does not count the lines still
 * in the ingesters (the last hour or two: where incidents are), so an index
 * estimate is blind where it matters. The matches' times and the export's own
 * progress say it; the budget caps what a wrong guess costs.
 *
 * The bound, with P the covering export's pages (about lines / 5,000) and W
 * what one match's windows cost (c, plus one request per wider window a side
 * needs; at most 1 + 2 × 7 = 15 where no window holds more than a page):
 *   requests ≤ Σ per selector min(P, c × (served + 1))
 *            + Σ per group of pass 2 min(P(g), c × matches(g))
 *            + W × matches left to windows.
 * So dense matches cost about the export's pages, a lone match about one
 * request (its pads hold its context), and no match more than about twice its
 * windows.
 */
export function planGroups(matches: LogEntry[], allStreams: boolean, which: number[], gap: Nanos): MatchGroup[] {
  const bySelector = new Map<string, number[]>()
  which.forEach((index) => {
    const query = contextSelector(matches[index], allStreams)
    const list = bySelector.get(query) ?? []
    list.push(index)
    bySelector.set(query, list)
  })
  const groups: MatchGroup[] = []
  for (const [query, indexes] of bySelector) {
    indexes.sort((a, b) => forwardOrder(matches[a], matches[b]))
    let current: MatchGroup | undefined
    let last = 0n
    for (const index of indexes) {
      const ts = BigInt(matches[index].ts)
      if (current === undefined || ts - last > gap) {
        current = { query, members: [] }
        groups.push(current)
      }
      current.members.push(index)
      last = ts
    }
  }
  return groups
}

/** First index in `sorted` (forward order) whose entry sorts after `match`, and the first that does not sort before it. */
function splitAt(sorted: LogEntry[], match: LogEntry): { below: number; above: number } {
  const bound = (strict: boolean) => {
    let lo = 0
    let hi = sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const order = forwardOrder(sorted[mid], match)
      if (order < 0 || (strict && order === 0)) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  return { below: bound(false), above: bound(true) }
}

/**
 * A match's context from an exact export read so far (every line of the
 * selector from the export's start up to its last line's nanosecond, in
 * forward order, less the lines no pending match needs): the same lines and
 * roles as `around`; 'wait' while the export has not passed the match's
 * context yet; 'windows' when it cannot tell it exactly: fewer lines than
 * asked before the match (the export starts a pad before the group) or after
 * it at the export's end, or a line beyond REACH (the windows would not show it).
 */
function fromExport(lines: LogEntry[], match: LogEntry, options: ContextOptions, finished: boolean): ContextLine[] | 'wait' | 'windows' {
  const { below, above } = splitAt(lines, match)
  // A line after the match has arrived: the match's nanosecond is whole (paging never splits one).
  if (!finished && lines.length - above < Math.max(1, options.after)) return 'wait'
  if (below < options.before) return 'windows'
  const ts = BigInt(match.ts)
  const before = options.before === 0 ? [] : lines.slice(below - options.before, below)
  const after = lines.slice(above, above + options.after)
  if (after.length < options.after) return 'windows'
  if (before.length > 0 && BigInt(before[0].ts) < ts - REACH) return 'windows'
  if (after.length > 0 && BigInt(after[after.length - 1].ts) > ts + REACH) return 'windows'
  return [...before.map((entry) => ({ entry, role: 'before' as const })), { entry: match, role: 'match' }, ...after.map((entry) => ({ entry, role: 'after' as const }))]
}

/**
 * One group by its covering export, within `budget` requests (Infinity: no
 * budget). Fills `results` for the matches the export serves, as the pages
 * arrive, and returns the others. The export stops once every match is
 * served, and holds only the lines the matches still to serve may need.
 */
async function exportGroup(
  client: PagingClient,
  group: MatchGroup,
  matches: LogEntry[],
  options: ContextOptions,
  budget: { base: number; perServed: number },
  results: ContextLine[][],
): Promise<{ windows: number[]; unreached: number[] }> {
  const { members } = group
  const first = BigInt(matches[members[0]].ts)
  const last = BigInt(matches[members[members.length - 1]].ts)
  let requests = 0
  const counting: PagingClient = {
    queryRange: (params) => {
      requests++
      return client.queryRange(params)
    },
    queryLimits: client.queryLimits?.bind(client),
    limitsKnown: client.limitsKnown?.bind(client),
  }
  let lines: LogEntry[] = []
  const left: number[] = []
  let next = 0
  let served = 0
  const settle = (finished: boolean) => {
    for (; next < members.length; next++) {
      const context = fromExport(lines, matches[members[next]], options, finished)
      if (context === 'wait') break
      if (context === 'windows') left.push(members[next])
      else {
        results[members[next]] = context
        served++
      }
    }
    if (next < members.length) lines = lines.slice(Math.max(0, splitAt(lines, matches[members[next]]).below - options.before))
  }
  const pages = fetchLogPages(counting, { query: group.query, start: first - PAD, end: last + 1n + PAD, direction: 'forward', limit: 0, batch: PAGE })
  let stopped = false
  for await (const page of pages) {
    for (const entry of page) lines.push(entry)
    settle(false)
    if (next === members.length) break
    // Over budget: the windows of the matches left cost less than the rest of the export may.
    if (requests >= budget.base + budget.perServed * served) {
      stopped = true
      break
    }
  }
  if (!stopped) settle(true)
  return { windows: left, unreached: members.slice(next) }
}

/** Runs `work` over `items`, `concurrency` at a time. */
async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await work(items[next++])
  })
  await Promise.all(workers)
}

/**
 * The context of every match, merged into groups where lines overlap, in the
 * order of `matches` (the query's direction). A line that is a match is
 * marked so in every group it ends up in; one between two matches is 'after'.
 * Fetched by the cheaper plan (planGroups); the output does not depend on it.
 */
export async function withContext(client: PagingClient, matches: LogEntry[], options: ContextOptions): Promise<ContextGroup[]> {
  const results: ContextLine[][] = new Array(matches.length)
  const concurrency = options.concurrency ?? 4
  const plan = options.plan ?? 'auto'
  let windowed: number[] = matches.map((_, index) => index)
  if (plan !== 'windows') {
    const all = windowed
    windowed = []
    const c = windowsCost(options)
    const cost = plan === 'export' ? { base: Number.POSITIVE_INFINITY, perServed: 0 } : { base: c, perServed: c }
    // First the whole stretch of each selector's matches, while it pays.
    const unreached: number[] = []
    await pool(planGroups(matches, options.allStreams, all, WHOLE), concurrency, async (group) => {
      const done = await exportGroup(client, group, matches, options, cost, results)
      windowed.push(...done.windows)
      unreached.push(...done.unreached)
    })
    // Then the matches it did not reach, by groups of close matches, each within what its windows cost.
    await pool(planGroups(matches, options.allStreams, unreached, 2n * PAD), concurrency, async (group) => {
      const done = await exportGroup(client, group, matches, options, { base: c * group.members.length, perServed: 0 }, results)
      windowed.push(...done.windows, ...done.unreached)
    })
    windowed.sort((a, b) => a - b)
  }
  await pool(windowed, concurrency, async (index) => {
    results[index] = await around(client, matches[index], options)
  })
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
