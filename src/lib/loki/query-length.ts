/**
 * Loki refuses a request over a range longer than the tenant's
 * max_query_length (721h shipped) with 400, on every endpoint that takes a
 * range. query-range and the metric queries read a longer range in pieces
 * that fit (paging.ts, metric-query.ts); labels, series, the index's stats
 * and volume, and detected fields each answer about their range as a whole,
 * so every command that asks them keeps to one rule: it asks for the most
 * recent part of the range that fits, and says so on stderr, instead of
 * ending on Loki's refusal after the user waited for it.
 */
import { UsageError } from '../errors.ts'
import { formatNanos, humanDuration, type Nanos, type TimeRange } from '../time.ts'
import { DEFAULT_QUERY_LIMITS, type LokiClient, limitRefusal } from './client.ts'

/** What the cut needs of a client; one that cannot say its limits (a test's stand-in) learns them from refusals alone. */
export type LengthClient = Partial<Pick<LokiClient, 'queryLimits' | 'limitsKnown'>>

export interface Fitted<T> {
  /** The range asked: the one given, or its most recent part that fits. */
  range: TimeRange
  value: T
  /** The note said when the range was cut; undefined when it was not. */
  cut?: string
}

/**
 * Runs `ask` over the range, cut to the tenant's max_query_length. The
 * tenant's limits are read first only when the range is longer than Loki's
 * shipped limit (or are known already), so a short range costs no request
 * more; a tenant whose limit is lower is learned from its refusal, and the
 * range asked again once, cut to fit.
 */
export async function withinQueryLength<T>(
  client: LengthClient,
  range: TimeRange,
  ask: (range: TimeRange) => Promise<T>,
  note: (line: string) => void,
  /** Which end of the range the part asked keeps: the most recent (the default), or the earliest (the window just after a deploy). */
  keep: 'recent' | 'earliest' = 'recent',
): Promise<Fitted<T>> {
  const known = client.limitsKnown?.()
  const limits = known ? await known : range.end - range.start > DEFAULT_QUERY_LIMITS.maxQueryLengthNs ? await client.queryLimits?.() : undefined
  const first = fit(range, limits?.maxQueryLengthNs ?? 0n, note, keep)
  try {
    return { ...first, value: await ask(first.range) }
  } catch (error) {
    const refusal = error instanceof UsageError ? limitRefusal(error) : undefined
    const limit = refusal?.learned.maxQueryLengthNs
    const asked = first.range.end - first.range.start
    // Loki may measure a range a little longer than end − start: what it counted beyond is kept below the limit too.
    const beyond = refusal?.queryLengthNs !== undefined && refusal.queryLengthNs > asked ? refusal.queryLengthNs - asked : 0n
    if (limit === undefined || limit - beyond <= 0n || asked <= limit - beyond) throw error
    const second = fit(range, limit - beyond, note, keep, limit)
    return { ...second, value: await ask(second.range) }
  }
}

/** The most recent (or earliest) `length` of the range, said in a note; the range itself when it fits or Loki sets no limit (0). */
function fit(range: TimeRange, length: Nanos, note: (line: string) => void, keep: 'recent' | 'earliest', limit = length): { range: TimeRange; cut?: string } {
  const span = range.end - range.start
  if (length <= 0n || span <= length) return { range }
  const fitted = keep === 'recent' ? { start: range.end - length, end: range.end } : { start: range.start, end: range.start + length }
  const cut =
    `the range (${humanDuration(span)}) is longer than Loki's max_query_length (${humanDuration(limit)}): ` +
    (keep === 'recent'
      ? `using its most recent ${humanDuration(length)}, from ${formatNanos(fitted.start)}`
      : `using its first ${humanDuration(length)}, to ${formatNanos(fitted.end)}`)
  note(cut)
  return { range: fitted, cut }
}
