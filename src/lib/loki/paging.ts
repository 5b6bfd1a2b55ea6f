import { UnreachableError, UsageError } from '../errors.ts'
import { oneLine } from '../text.ts'
import { compareNanos, formatNanos, type Nanos } from '../time.ts'
import {
  DEFAULT_QUERY_LIMITS,
  type Direction,
  type EntryMetadata,
  type Labels,
  LimitRefusal,
  type LokiClient,
  NOT_LOKI_HINT,
  type QueryData,
  type QueryLimits,
  type StreamResult,
} from './client.ts'

/**
 * Loki's default max_entries_limit_per_query: the batch to ask for when a
 * caller knows no better. fetchLogPages lowers any batch to the limit the
 * tenant's Loki says it has.
 */
export const MAX_PAGE = DEFAULT_QUERY_LIMITS.maxEntriesPerQuery

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
  /** Entries per request; lowered to Loki's max_entries_limit_per_query. */
  batch: number
  /** Windows fetched concurrently; output order does not change. */
  parallel?: number
}

/**
 * What paging needs of a Loki client. One that cannot tell its limits (a
 * stand-in in a test) is paged within Loki's shipped defaults.
 */
export type PagingClient = Pick<LokiClient, 'queryRange'> & Partial<Pick<LokiClient, 'queryLimits' | 'limitsKnown'>>

/** Windows aim at this share of a batch, leaving room for bursts. */
const TARGET_FILL = 0.75

/**
 * Where the density has proven steady (a window carved by the estimate came
 * back within STEADY_TOLERANCE of its aim), windows aim at this share: fewer
 * requests, each of which costs Loki a fixed part (it decodes whole chunk
 * blocks at a window's edges, in every stream). A count of 4,500 is off by
 * 1.5% (Poisson), a full page is 11% away.
 */
const STEADY_FILL = 0.9
const STEADY_TOLERANCE = 0.1

/**
 * A window cut from a full page that comes back full itself shows that the
 * page left entries out (a sharded frontend); the next cut keeps this many
 * times fewer of the page's entries, so even a frontend that answers a random
 * subset is narrowed down in a few requests.
 */
const DISTRUST = 4

/** How much larger a one-nanosecond window is asked again when it came back full from a Loki with no page limit. */
const PAGE_GROWTH = 4

/** A stretch [start, end) of the range that no window covers yet; windows are carved from its front. */
interface Gap {
  kind: 'gap'
  start: Nanos
  end: Nanos
}

/** A time window [start, end) to ask of Loki, and its answer once asked. */
interface Window {
  kind: 'window'
  start: Nanos
  end: Nanos
  /** Full pages this window was cut from, one inside the other. */
  refinements: number
  /** One timestamp cut out of a full page, where the entries pile up: its count says nothing of the density around it. */
  alone: boolean
  /** The width in effect when the window was carved from a gap; none for windows cut from a page. */
  carvedAt?: Nanos
  /** The entries that width aimed at. */
  aim?: number
  /** Set when the window is asked. */
  requestLimit: number
  response?: Promise<LogEntry[]>
  /** Set when the response has arrived (or failed): the window no longer takes a request slot. */
  settled?: { entries?: LogEntry[] }
}

type Part = Gap | Window

function window(start: Nanos, end: Nanos, refinements: number, alone = false): Window {
  return { kind: 'window', start, end, refinements, alone, requestLimit: 0 }
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
 * density seen so far. A window that comes back full is not used, but its
 * timestamps say where the entries are: it is asked again cut at the page's
 * own k-th timestamp, k chosen for the window to hold TARGET_FILL of a batch
 * (or exactly the entries still wanted when the limit is near), and a
 * timestamp holding more than a page goes into a one-nanosecond window of its
 * own, asked with the largest page Loki serves. Windows never overlap and
 * entries that share a timestamp always land in the same window, so every
 * entry is emitted once, and the output is the same sorted sequence however
 * the range was cut.
 *
 * Loki's limits are read once: no window is longer than max_query_length nor
 * asks more than max_entries_limit_per_query. A window Loki refuses for a
 * limit its message names is planned again within it; a refusal that would
 * not change the window is thrown.
 *
 * Costs, with a frontend that answers full pages exactly: a window cut from a
 * full page never comes back full, so each full page (a request wasted) comes
 * from a window planned by the density estimate, and at most two requests
 * follow it before the density is known again. Windows hold about
 * TARGET_FILL of a batch, STEADY_FILL once a window carved by the estimate
 * came back within STEADY_TOLERANCE of its aim; where the density drops the
 * width grows by batch/entries per window (4× when empty), so a quiet gap
 * costs a few requests, logarithmic in its length. A frontend that leaves
 * entries out of full pages shows it when a cut window comes back full; cuts
 * then keep DISTRUST times fewer entries each time, and near the limit
 * windows are sized for their request, so the cost stays within a few times
 * the exact one (test/reliability/properties.test.ts checks 4×).
 *
 * With `parallel` > 1, that many requests are in flight at once; windows are
 * still emitted strictly in order. A page that arrives ahead of its turn
 * waits, and takes no request slot while it waits: otherwise a full page at
 * the head, asked again as narrower windows that go before the ones already
 * fetched ahead, would leave the export with one request in flight until it
 * caught up with them (a whole spike). In a full export, a page ahead that
 * comes back full is cut at once, wherever it is. Memory holds at most 2 × `parallel` pages
 * (`parallel` + 1 requests in flight at most, when the head is asked again).
 */
export async function* fetchLogPages(client: PagingClient, params: LogQueryParams): AsyncGenerator<LogEntry[]> {
  const streams = new StreamCache()
  const forward = params.direction === 'forward'
  const compare = forward ? forwardOrder : backwardOrder
  const parallel = Math.max(1, params.parallel ?? 1)
  // A short query usually ends with its first page: that page goes out at
  // once, within Loki's shipped limits, and this tenant's are read only if
  // more requests follow (a refusal would teach them too). A longer one reads
  // them first, to size its windows, and so does any query once they are known.
  const short = params.limit > 0 && params.limit < params.batch && (params.parallel ?? 1) <= 1 && !client.limitsKnown?.()
  const limits = new PagingLimits(short ? DEFAULT_QUERY_LIMITS : ((await client.queryLimits?.()) ?? DEFAULT_QUERY_LIMITS), params.batch)
  let tenantRead = !short
  let asked = 0
  let remaining = params.limit === 0 ? Number.POSITIVE_INFINITY : params.limit
  // Sequentially the first window is the whole range: often it fits. In
  // parallel, the range is cut so that every worker has a window from the start.
  let width = limits.fit((params.end - params.start) / BigInt(parallel))
  // The share of a batch windows aim at: TARGET_FILL, STEADY_FILL once proven.
  let fill = TARGET_FILL
  const plan: Part[] = params.start < params.end ? [{ kind: 'gap', start: params.start, end: params.end }] : []
  // Windows fetched ahead and then not needed are abandoned, retries included.
  const abandon = new AbortController()
  // Set once a window cut from a full page comes back full: the frontend
  // leaves entries out of full pages, so cuts from them are trusted less.
  let inexact = false

  // Wakes the loop when any request settles, so that a full page ahead is
  // cut, and its slot used, without waiting for the head.
  let wake: (() => void) | undefined
  const ask = (part: Window) => {
    asked++
    // One more than still wanted: a page short of its limit is complete. A
    // one-nanosecond window cannot be cut, so it gets the largest page.
    part.requestLimit = part.end - part.start === 1n ? limits.largestPage : Math.min(limits.batch, remaining + 1)
    part.response = client
      .queryRange({ query: params.query, start: part.start, end: part.end, limit: part.requestLimit, direction: params.direction, signal: abandon.signal })
      .then((data) => flattenStreams(data, streams))
    part.response
      .then(
        (entries) => (part.settled = { entries }),
        // Windows fetched ahead may be abandoned when the limit is reached.
        () => (part.settled = {}),
      )
      .finally(() => wake?.())
  }
  // Asks the first windows of the plan, carving gaps at the current width,
  // while fewer than `parallel` take a slot and fewer than 2 × `parallel`
  // pages are held. A window takes a slot while its request is out, and once
  // answered while it waits only for the windows before it; an answered one
  // behind a window or gap not yet asked (stranded there by a cut) takes
  // none. The head is always asked: the output waits on it.
  const planAhead = () => {
    let slots = 0
    let held = 0
    let stranded = false
    for (const part of plan) {
      if (part.kind === 'window' && part.response) {
        held++
        if (!part.settled || !stranded) slots++
      } else stranded = true
    }
    for (let i = 0; i < plan.length && (i === 0 || (slots < parallel && held < 2 * parallel)); i++) {
      const part = plan[i]
      if (part.kind === 'window') {
        if (!part.response) {
          ask(part)
          slots++
          held++
        }
        continue
      }
      // An inexact frontend makes a full page cost several requests: near the
      // limit, windows are sized for what their request can hold.
      const planned = inexact && remaining < limits.batch ? scaleWidth(width, remaining + 1, limits.batch) : width
      const span = planned < part.end - part.start ? planned : part.end - part.start
      const carved = forward ? window(part.start, part.start + span, 0) : window(part.end - span, part.end, 0)
      if (forward) part.start += span
      else part.end -= span
      carved.carvedAt = width
      carved.aim = limits.batch * fill
      ask(carved)
      slots++
      held++
      plan.splice(i, part.start < part.end ? 0 : 1, carved)
    }
  }
  // What follows `boundary` in a window replaced by narrower ones goes back
  // to the plan, joined to the gap after it if there is one.
  const giveBack = (at: number, replaced: Window, boundary: Nanos) => {
    const rest: Gap = forward ? { kind: 'gap', start: boundary, end: replaced.end } : { kind: 'gap', start: replaced.start, end: boundary }
    if (rest.start >= rest.end) return
    const next = plan[at]
    if (next?.kind === 'gap') {
      if (forward) next.start = rest.start
      else next.end = rest.end
    } else plan.splice(at, 0, rest)
  }

  // A window whose page came back full, at plan[at], is replaced by narrower
  // windows cut at the page's own timestamps; the rest goes back to the plan.
  const replaceFull = (at: number, full: Window, entries: LogEntry[]) => {
    if (full.refinements > 0) inexact = true
    entries.sort(compare)
    const pageLimit = Math.min(limits.batch, remaining + 1)
    const wanted = remaining < limits.batch ? remaining : Math.floor(limits.batch * TARGET_FILL)
    const cut = cutAtPage(full, entries, Math.floor(wanted / DISTRUST ** (full.refinements + (inexact ? 1 : 0))), pageLimit, forward)
    plan.splice(at, 1, ...cut.windows.map((part) => window(part.start, part.end, full.refinements + 1, part.alone)))
    giveBack(at + cut.windows.length, full, cut.boundary)
    // The density just changed: back to the cautious aim.
    fill = TARGET_FILL
    if (cut.sample) width = limits.fit(scaleWidth(cut.sample.span, limits.batch * fill, cut.sample.entries))
  }
  // Cuts the full pages that came back ahead of the head (not a
  // one-nanosecond window's: the head's turn decides about those). Only in a
  // full export: under a limit, what a window ahead should hold depends on
  // what the windows before it bring.
  const cutAhead = () => {
    if (remaining !== Number.POSITIVE_INFINITY) return
    for (let i = 1; i < plan.length; i++) {
      const part = plan[i]
      const entries = part.kind === 'window' ? part.settled?.entries : undefined
      if (part.kind === 'window' && entries && entries.length >= part.requestLimit && part.end - part.start > 1n) {
        replaceFull(i, part, entries)
      }
    }
  }

  try {
    while (remaining > 0) {
      // Before any request but the first: the first one did not end the query.
      if (!tenantRead && asked > 0 && plan.length > 0) {
        tenantRead = true
        const known = await client.queryLimits?.()
        if (known) {
          limits.adopt(known, params.batch)
          width = limits.fit(width)
        }
      }
      cutAhead()
      planAhead()
      // planAhead asked the head (a window), if anything is left to ask.
      const head = plan[0] as Window | undefined
      if (!head) return
      while (!head.settled) {
        await new Promise<void>((resolve) => (wake = resolve))
        cutAhead()
        planAhead()
      }
      wake = undefined
      plan.shift()
      let entries: LogEntry[]
      try {
        entries = await head.response!
      } catch (error) {
        if (!(error instanceof LimitRefusal) || !limits.learn(error, head)) throw error
        // Planned again as a gap, the window is carved within the new limits.
        width = limits.fit(width)
        plan.unshift({ kind: 'gap', start: head.start, end: head.end })
        continue
      }
      const span = head.end - head.start
      if (entries.length >= head.requestLimit) {
        if (span === 1n) {
          if (!limits.growLargestPage()) {
            throw new UsageError(
              `${head.requestLimit} or more entries share the timestamp ${formatNanos(head.start)}, more than one page can hold`,
              `raise Loki's max_entries_limit_per_query above ${head.requestLimit}`,
            )
          }
          plan.unshift(window(head.start, head.end, head.refinements, true))
          continue
        }
        plan.unshift(head)
        replaceFull(0, head, entries)
        continue
      }
      entries.sort(compare)
      if (entries.length > 0) yield entries.length > remaining ? entries.slice(0, remaining) : entries
      remaining -= entries.length
      // An empty window says only that the density is lower than the width assumed.
      if (!head.alone) {
        if (head.aim !== undefined) fill = Math.abs(entries.length - head.aim) <= STEADY_TOLERANCE * head.aim ? STEADY_FILL : TARGET_FILL
        width = limits.fit(nextWidth(head, width, entries.length, limits.batch * fill))
      }
    }
  } finally {
    abandon.abort()
  }
}

interface PageCut {
  /** The windows that replace the full one, in output order. */
  windows: { start: Nanos; end: Nanos; alone?: boolean }[]
  /** Where the rest of the full window, still to plan, begins: [boundary, end) forward, [start, boundary) backward. */
  boundary: Nanos
  /** The first new window's length and the page's entries in it: the density there, if the page knows it. */
  sample?: { span: Nanos; entries: number }
}

/**
 * How to ask again a window whose page came back full, from the page itself
 * (sorted in output order): the window up to and including the timestamp of
 * its `keep`-th entry, if the page says that holds fewer than `pageLimit`
 * entries and is narrower than the window. Otherwise the entries pile on that
 * timestamp: the window before it, and the timestamp alone. An entry outside
 * the window (no Loki sends one) makes the page worthless: halve the window.
 */
export function cutAtPage(window: { start: Nanos; end: Nanos }, page: LogEntry[], keep: number, pageLimit: number, forward: boolean): PageCut {
  const { start, end } = window
  const k = Math.min(Math.max(1, keep), page.length) - 1
  const at = BigInt(page[k].ts)
  if (at < start || at >= end) {
    const middle = start + (end - start) / 2n
    return { windows: [forward ? { start, end: middle } : { start: middle, end }], boundary: middle }
  }
  let first = k
  while (first > 0 && page[first - 1].ts === page[k].ts) first--
  let last = k
  while (last + 1 < page.length && page[last + 1].ts === page[k].ts) last++
  // Boundaries after and before the timestamp's entries, in output order.
  const after = forward ? at + 1n : at
  const before = forward ? at : at + 1n
  const upTo = (boundary: Nanos) => (forward ? { start, end: boundary } : { start: boundary, end })
  const through = upTo(after)
  if (last + 1 < pageLimit && through.end - through.start < end - start) {
    return { windows: [through], boundary: after, sample: { span: through.end - through.start, entries: last + 1 } }
  }
  const preceding = upTo(before)
  const alone = { start: at, end: at + 1n, alone: true }
  if (preceding.start === preceding.end) return { windows: [alone], boundary: after }
  return { windows: [preceding, alone], boundary: after, sample: first > 0 ? { span: preceding.end - preceding.start, entries: first } : undefined }
}

/**
 * The limits a paged query keeps to, from Loki's tenant limits and from what
 * its refusals teach; 0 means Loki sets none.
 */
class PagingLimits {
  maxLength = 0n
  maxEntries = 0
  batch = 0
  /** What a one-nanosecond window asks: it cannot be cut, so all that Loki serves. */
  largestPage = 0

  constructor(limits: QueryLimits, batch: number) {
    this.adopt(limits, batch)
  }

  /** Takes the tenant's limits, read after the first page of a short query went out with the shipped ones. */
  adopt(limits: QueryLimits, batch: number): void {
    this.maxLength = limits.maxQueryLengthNs
    this.maxEntries = limits.maxEntriesPerQuery
    this.batch = this.maxEntries > 0 ? Math.min(batch, this.maxEntries) : batch
    this.largestPage = this.maxEntries > 0 ? this.maxEntries : Math.max(batch, MAX_PAGE)
  }

  /** A window width within max_query_length, at least one nanosecond. */
  fit(width: Nanos): Nanos {
    if (this.maxLength > 0n && width > this.maxLength) return this.maxLength
    return width > 0n ? width : 1n
  }

  /**
   * Takes in the limits a refusal of `refused` names. True when they change
   * how that window is asked; false when it already kept to them, so asking
   * again would be refused again.
   */
  learn(refusal: LimitRefusal, refused: Window): boolean {
    const { learned } = refusal
    let changed = false
    const length = learned.maxQueryLengthNs
    const asked = refused.end - refused.start
    // Loki can measure a range longer than end − start (seen: 1h0m28s for a
    // 1h window): what it counted beyond the window is kept below the limit.
    const beyond = refusal.queryLengthNs !== undefined && refusal.queryLengthNs > asked ? refusal.queryLengthNs - asked : 0n
    if (length !== undefined && length > beyond && asked > length - beyond) {
      this.maxLength = length - beyond
      changed = true
    }
    const entries = learned.maxEntriesPerQuery
    if (entries !== undefined && entries > 0 && refused.requestLimit > entries) {
      this.maxEntries = entries
      this.batch = Math.min(this.batch, entries)
      this.largestPage = entries
      changed = true
    }
    return changed
  }

  /** After a one-nanosecond window came back full: a larger page, if Loki has no limit to refuse it. */
  growLargestPage(): boolean {
    if (this.maxEntries > 0) return false
    this.largestPage *= PAGE_GROWTH
    return true
  }
}

/**
 * The width, for windows to hold `target` entries, after a complete window
 * held `got`. A count near the target is noisy evidence (a Poisson count of 18
 * is off by a quarter): the estimate is averaged with the width the window was
 * carved at. A count far below is a density drop: followed at once. An empty
 * window only says the density is lower than its width assumed; one cut from
 * a page says not even that.
 */
function nextWidth(done: Window, width: Nanos, got: number, target: number): Nanos {
  if (got === 0) return done.carvedAt !== undefined && done.carvedAt * 4n > width ? done.carvedAt * 4n : width
  const estimate = scaleWidth(done.end - done.start, target, got)
  return done.carvedAt !== undefined && got * 2 >= target ? (done.carvedAt + estimate) / 2n : estimate
}

/** width × wanted / got, at least one nanosecond. */
function scaleWidth(width: Nanos, wanted: number, got: number): Nanos {
  const scaled = (width * BigInt(Math.max(1, Math.floor(wanted)))) / BigInt(Math.max(1, got))
  return scaled > 0n ? scaled : 1n
}

function flattenStreams(data: QueryData, streams: StreamCache): LogEntry[] {
  if (data === null || typeof data !== 'object' || data.resultType !== 'streams') {
    throw new UnreachableError(`Loki answered a log query with ${data?.resultType ? `a ${oneLine(String(data.resultType))}` : 'no'} result`, NOT_LOKI_HINT)
  }
  return streamEntries(data.result, streams)
}

function badShape(what: string): never {
  throw new UnreachableError(`Loki's answer is not a log query result: ${what}`, NOT_LOKI_HINT)
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
  // Entries of separate fetches hold separate objects for one stream: equal text is the same stream.
  if (a.stream !== b.stream && a.stream.json !== b.stream.json) return a.stream.json < b.stream.json ? -1 : 1
  return a.line < b.line ? -1 : a.line > b.line ? 1 : 0
}

export function forwardOrder(a: LogEntry, b: LogEntry): number {
  return compareNanos(a.ts, b.ts) || tieBreak(a, b)
}

function backwardOrder(a: LogEntry, b: LogEntry): number {
  return compareNanos(b.ts, a.ts) || tieBreak(a, b)
}
