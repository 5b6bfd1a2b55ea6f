/**
 * Bytes per service (or any label) from Loki's volume API: who writes how
 * much, each row's share, a trend, and with a comparison window, who got
 * noisy.
 *
 * Precision, as Loki computes it (v3.6 sources, measured on the test Loki):
 * the volume is the uncompressed size of the chunks that overlap the range,
 * flushed ones from the index and unflushed ones from the ingesters, each
 * prorated by how much of the chunk's time span falls in the range. So fresh
 * lines are counted, and the bytes are the lines' own; but a chunk whose
 * lines bunch up on one side of a boundary is spread evenly across it.
 */
import { type LokiClient, type SampleSeries, VOLUME_ALL } from '../loki/client.ts'
import { sparkline } from '../render/terminal.ts'
import { neutralize } from '../text.ts'
import { type Nanos, NS_PER_SECOND } from '../time.ts'
import { formatBytes } from '../units.ts'

/** What every printed volume says about its precision. */
export const VOLUME_CAVEAT =
  "Loki's: uncompressed bytes of the chunks that overlap the range, unflushed ones included, each prorated by the share of its time span inside the range"

export interface VolumeRow {
  /** The value of the `by` label; '' for streams without it. */
  value: string
  bytes: number
  /** Of the total, 0–1. */
  share: number
  /** Bytes in the comparison window, with --compare. */
  previousBytes?: number
  /** bytes ÷ previousBytes − 1; null when there was nothing before. */
  change?: number | null
  /** Bytes per step over the range, for a sparkline. */
  trend?: number[]
}

export interface VolumeReport {
  selector: string
  by: string
  start: Nanos
  end: Nanos
  /** Over every value Loki has, shown or not. */
  totalBytes: number
  /** How many values of `by` Loki has (in either window, with --compare); the rows are the top `limit` of them. */
  values: number
  /** True when Loki may have more values than it answered with (a tenant whose volume_max_series is above VOLUME_ALL): the total is then a lower bound. */
  valuesCut: boolean
  rows: VolumeRow[]
  /** The comparison window, with --compare. */
  compared?: { start: Nanos; end: Nanos; totalBytes: number }
  /** The trend's step, in seconds. */
  stepSeconds?: number
}

export interface VolumeOptions {
  selector: string
  by: string
  start: Nanos
  end: Nanos
  /** Compare with the same range this much earlier. */
  compareNs?: Nanos
  trend?: boolean
  /** Rows kept, the top ones in the report's order; the total and the shares are over every value. */
  limit?: number
}

/** Points a trend has: enough to show a shape in a table cell. */
const TREND_POINTS = 40
/** Steps of a trend asked at once. */
const TREND_CONCURRENCY = 8

export async function volumeBy(client: Pick<LokiClient, 'volume'>, options: VolumeOptions): Promise<VolumeReport> {
  const { selector, by, start, end } = options
  // Every series, not Loki's top `limit`: the total and the shares are over all of them.
  const ask = { query: selector, targetLabels: [by], limit: VOLUME_ALL }
  const stepSeconds = Math.max(1, Math.ceil(Number((end - start) / NS_PER_SECOND) / TREND_POINTS))
  const [current, previous, trends] = await Promise.all([
    client.volume({ ...ask, start, end }),
    options.compareNs === undefined ? undefined : client.volume({ ...ask, start: start - options.compareNs, end: end - options.compareNs }),
    options.trend ? trendsBy(client, ask, by, start, end, stepSeconds) : undefined,
  ])
  const bytes = bytesBy(current, by)
  const before = previous && bytesBy(previous, by)
  const totalBytes = sum(bytes.values())
  const values = new Set([...bytes.keys(), ...(before?.keys() ?? [])])
  const rows = [...values].map((value): VolumeRow => {
    const now = bytes.get(value) ?? 0
    const row: VolumeRow = { value, bytes: now, share: totalBytes > 0 ? now / totalBytes : 0 }
    if (before) {
      row.previousBytes = before.get(value) ?? 0
      row.change = row.previousBytes > 0 ? now / row.previousBytes - 1 : null
    }
    if (trends) row.trend = trends.map((step) => step.get(value) ?? 0)
    return row
  })
  // With a comparison, the rows that grew most come first: who got noisy. Otherwise the largest.
  rows.sort((a, b) => (before ? b.bytes - (b.previousBytes ?? 0) - (a.bytes - (a.previousBytes ?? 0)) : b.bytes - a.bytes) || (a.value < b.value ? -1 : 1))
  const valuesCut = current.length >= VOLUME_ALL || (previous?.length ?? 0) >= VOLUME_ALL
  const report: VolumeReport = { selector, by, start, end, totalBytes, values: rows.length, valuesCut, rows: rows.slice(0, options.limit) }
  if (before) report.compared = { start: start - options.compareNs!, end: end - options.compareNs!, totalBytes: sum(before.values()) }
  if (trends) report.stepSeconds = stepSeconds
  return report
}

/** Bytes per value of `by` in a volume answer (a vector). */
export function bytesBy(series: SampleSeries[], by: string): Map<string, number> {
  const bytes = new Map<string, number>()
  for (const { metric, value } of series) {
    const key = metric[by] ?? ''
    bytes.set(key, (bytes.get(key) ?? 0) + Number(value?.[1] ?? 0))
  }
  return bytes
}

/**
 * Bytes per value of `by` for each step of the range, one volume request a
 * step. Not /index/volume_range: Loki answers it step by step through its
 * volume cache, which merges the steps it has answered and prorates the
 * merged total over any step asked again (measured: a range asked twice drew
 * a flat line where a service had stopped halfway). Each step asked alone
 * gets a cache key of its own (LokiClient.volume).
 */
async function trendsBy(
  client: Pick<LokiClient, 'volume'>,
  ask: { query: string; targetLabels: string[]; limit: number },
  by: string,
  start: Nanos,
  end: Nanos,
  stepSeconds: number,
): Promise<Map<string, number>[]> {
  const stepNs = BigInt(stepSeconds) * NS_PER_SECOND
  const steps: { start: Nanos; end: Nanos }[] = []
  for (let at = start; at < end; at += stepNs) steps.push({ start: at, end: at + stepNs < end ? at + stepNs : end })
  const trends: Map<string, number>[] = new Array(steps.length)
  for (let i = 0; i < steps.length; i += TREND_CONCURRENCY) {
    await Promise.all(
      steps.slice(i, i + TREND_CONCURRENCY).map(async (step, j) => {
        trends[i + j] = bytesBy(await client.volume({ ...ask, ...step }), by)
      }),
    )
  }
  return trends
}

function sum(values: Iterable<number>): number {
  let total = 0
  for (const v of values) total += v
  return total
}

/** The report as table cells: a row per value; the earlier range's bytes and the change when compared; a sparkline when asked. */
export function volumeTable(report: VolumeReport, options: { sparklines: boolean }): { head: string[]; rows: string[][] } {
  const head = [report.by, 'bytes', 'share']
  if (report.compared) head.push('before', 'change')
  if (options.sparklines) head.push('trend')
  const rows = report.rows.map((row) => {
    const cells = [row.value === '' ? '(none)' : neutralize(row.value), formatBytes(row.bytes), `${(row.share * 100).toFixed(1)}%`]
    if (report.compared)
      cells.push(formatBytes(row.previousBytes ?? 0), row.change === null || row.change === undefined ? 'new' : `${row.change >= 0 ? '+' : ''}${(row.change * 100).toFixed(0)}%`)
    if (options.sparklines) cells.push(sparkline(row.trend ?? []))
    return cells
  })
  return { head, rows }
}
