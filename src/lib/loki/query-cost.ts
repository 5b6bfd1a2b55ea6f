/**
 * What a query will cost before it runs, and what it cost after: Loki's index
 * estimate for its selector (the cost guard, `obs stats`) and the execution
 * summaries of its answers (`--stats`).
 *
 * The index knows only flushed chunks: lines still in the ingesters (by
 * default up to the last hour or two, longer on a quiet stream) are not in
 * the estimate, so a recent range can read as nearly empty. Every figure obs
 * prints from it says so.
 */
import { ObsError, UsageError } from '../errors.ts'
import { formatBytes, groupDigits } from '../units.ts'
import { type ExecSummary, execSummary, type IndexStats } from './answer-shapes.ts'
import type { LokiClient } from './client.ts'
import { querySelector } from './logql.ts'
import type { PagingClient } from './paging.ts'

export const INDEX_CAVEAT = "from Loki's index: lines still in the ingesters (the last hour or two) are not counted"

export interface QueryEstimate extends IndexStats {
  selector: string
}

/** The index estimate for the query's stream selector over the range. */
export async function estimateQuery(
  client: Pick<LokiClient, 'indexStats'>,
  query: string,
  range: { start: bigint; end: bigint },
  options: { retries?: number } = {},
): Promise<QueryEstimate> {
  const selector = querySelector(query) ?? query
  return { selector, ...(await client.indexStats(selector, range, options)) }
}

export function describeEstimate(estimate: IndexStats): string {
  return (
    `about ${formatBytes(estimate.bytes)} in ${groupDigits(estimate.entries)} entries, ` +
    `${groupDigits(estimate.chunks)} chunks, ${groupDigits(estimate.streams)} streams (${INDEX_CAVEAT})`
  )
}

/**
 * Asks for the estimate of a wide query and refuses it above `maxBytes`
 * unless the user said yes. `show` gets the estimate (for a terminal). A Loki
 * or proxy that gives no estimate does not stop the query: asked once,
 * without retries, so an unreachable Loki fails on the query itself, once.
 */
export async function guardQueryCost(
  client: Pick<LokiClient, 'indexStats'>,
  query: string,
  range: { start: bigint; end: bigint },
  options: { maxBytes: number; yes: boolean; show?: (line: string) => void },
): Promise<QueryEstimate | undefined> {
  let estimate: QueryEstimate
  try {
    estimate = await estimateQuery(client, query, range, { retries: 0 })
  } catch (error) {
    if (!(error instanceof ObsError)) throw error
    options.show?.(`no estimate from Loki's index (${error.message}); running the query unguarded`)
    return undefined
  }
  options.show?.(`estimate: ${describeEstimate(estimate)}`)
  if (estimate.bytes > options.maxBytes && !options.yes) {
    throw new UsageError(
      `the query would read ${describeEstimate(estimate)}, above the limit of ${formatBytes(options.maxBytes)}`,
      'narrow the range (--since, --from/--to) or the selector, set a --limit, or add --yes to run it anyway (maxQueryBytes in obs.config.yaml sets the limit)',
    )
  }
  return estimate
}

/** The execution summaries of every answer a command got, added up. */
export class ExecTotals {
  requests = 0
  readonly sum: ExecSummary = { execTime: 0, queueTime: 0, totalBytesProcessed: 0, totalLinesProcessed: 0, totalEntriesReturned: 0 }

  /** A client whose range queries add their answers' summaries here. */
  counting<C extends PagingClient>(client: C): C {
    const queryRange: PagingClient['queryRange'] = async (params) => {
      const data = await client.queryRange(params)
      this.add(execSummary(data))
      return data
    }
    return Object.assign(Object.create(client) as C, { queryRange })
  }

  add(summary: ExecSummary | undefined): void {
    this.requests++
    if (!summary) return
    for (const key of Object.keys(this.sum) as (keyof ExecSummary)[]) this.sum[key] += summary[key]
  }

  describe(): string {
    const s = this.sum
    return (
      `stats: ${this.requests} request${this.requests === 1 ? '' : 's'}; Loki processed ${formatBytes(s.totalBytesProcessed)} in ` +
      `${groupDigits(s.totalLinesProcessed)} lines, returned ${groupDigits(s.totalEntriesReturned)} entries; ` +
      `execution ${s.execTime.toFixed(2)} s, queued ${s.queueTime.toFixed(2)} s`
    )
  }
}
