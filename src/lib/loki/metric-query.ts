import { UsageError } from '../errors.ts'
import { shown } from '../text.ts'
import { humanDuration, type Nanos, NS_PER_SECOND, parseDuration, type TimeRange } from '../time.ts'
import { LimitRefusal, type LokiClient, type QueryData, type SampleSeries } from './client.ts'

export interface MetricRangeParams {
  query: string
  start: Nanos
  end: Nanos
  /** Seconds between points, as Loki's `step`; Loki's own default when absent. */
  step?: string
}

/** Loki's most points per series of one range query (its query_range refuses more, whatever the limits). */
const MAX_POINTS = 11_000n

/**
 * A metric query's --step for the range, as Loki's `step` (seconds), refused
 * before anything is sent where Loki would refuse it: under a millisecond,
 * more than 11,000 points, or longer than the range (one point at most; Loki
 * aligns the start to the step, so a step of days reads days before the range
 * and a step of years passes every max_query_length).
 */
export function metricStep(text: string, range: TimeRange, flag = '--step'): string {
  const step = parseDuration(text, flag)
  const span = range.end - range.start
  const shortest = (span + MAX_POINTS - 1n) / MAX_POINTS
  if (step < 1_000_000n || step < shortest) {
    const least = shortest > 1_000_000n ? humanDuration(((shortest + 999_999n) / 1_000_000n) * 1_000_000n) : '1ms'
    throw new UsageError(`invalid ${flag} "${shown(text)}": more than Loki's ${MAX_POINTS} points per series over ${humanDuration(span)}`, `give a ${flag} of at least ${least}`)
  }
  if (step > span)
    throw new UsageError(
      `invalid ${flag} "${shown(text)}": longer than the range (${humanDuration(span)}), which it would cover with one point at most`,
      `give a ${flag} of at most ${humanDuration(span)}`,
    )
  return `${Number(step / 1_000_000n) / 1000}`
}

/**
 * A metric range query, cut into pieces that fit the tenant's
 * max_query_length when the range is longer, so `--since 40d` gives the same
 * points whatever the limit. Every piece is evaluated at the same step, on
 * the same grid (start + k·step), and the pieces' series are joined by their
 * labels.
 *
 * Loki's querier measures a metric query from its start minus the range of
 * its range vector ([5m]), so a piece exactly as long as the limit is still
 * refused; the refusal says by how much, and the pieces are cut that much
 * shorter. A refusal that teaches nothing new is the user's to see.
 */
export async function fetchMetricRange(client: LokiClient, params: MetricRangeParams): Promise<QueryData> {
  const span = params.end - params.start
  let lookback = 0n
  for (;;) {
    const { maxQueryLengthNs } = await client.queryLimits()
    const room = maxQueryLengthNs - lookback
    const asked = maxQueryLengthNs === 0n || span <= room ? span : room
    try {
      if (asked === span) return await client.queryRange(params)
      return await fetchPieces(client, params, room)
    } catch (error) {
      if (!(error instanceof LimitRefusal) || error.queryLengthNs === undefined) throw error
      const measuredBeyond = error.queryLengthNs - asked
      const limit = error.learned.maxQueryLengthNs ?? maxQueryLengthNs
      if (limit === maxQueryLengthNs && measuredBeyond <= lookback) throw error
      // What Loki counts beyond the range leaves no room for any piece: asking again would be refused forever.
      if (measuredBeyond >= limit) throw error
      lookback = measuredBeyond > lookback ? measuredBeyond : lookback
    }
  }
}

async function fetchPieces(client: LokiClient, params: MetricRangeParams, room: Nanos): Promise<QueryData> {
  const stepNs = params.step === undefined ? defaultStepNs(params.start, params.end) : BigInt(Math.round(Number(params.step) * 1e9))
  const step = `${Number(stepNs) / 1e9}`
  // Points fall on start + k·step; each piece covers whole steps, and the
  // next starts one step after the last point of the one before.
  const pieceNs = (room / stepNs) * stepNs
  if (pieceNs <= 0n) return client.queryRange({ ...params, step })
  const bySeries = new Map<string, SampleSeries>()
  for (let start = params.start; start <= params.end; start += pieceNs + stepNs) {
    const end = start + pieceNs < params.end ? start + pieceNs : params.end
    const data = await client.queryRange({ query: params.query, start, end, step })
    if (data.resultType !== 'matrix') return data
    for (const series of data.result) {
      const key = JSON.stringify(Object.entries(series.metric ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      const joined = bySeries.get(key)
      if (joined) joined.values = [...(joined.values ?? []), ...(series.values ?? [])]
      else bySeries.set(key, { metric: series.metric, values: [...(series.values ?? [])] })
    }
  }
  return { resultType: 'matrix', result: [...bySeries.values()] }
}

/** Loki's own default step for a range: a 250th of it, at least one second. */
function defaultStepNs(start: Nanos, end: Nanos): Nanos {
  const seconds = (end - start) / NS_PER_SECOND / 250n
  return (seconds > 1n ? seconds : 1n) * NS_PER_SECOND
}
