/**
 * The log patterns Loki's pattern ingester found (`obs patterns`, and the
 * deploy verdict's new-patterns): each with its count, share, level, samples,
 * and whether it was absent before a given time.
 *
 * Precision: the pattern ingester clusters lines as they arrive (Drain) and
 * counts them in 10-second buckets; counts are the ingester's, which sees
 * every pushed line but may fold a rare message into a broader pattern, and
 * keeps about 3h of them (pattern_ingester.retain_for). A pattern's template
 * may grow more general over time; its samples stay with it, so "absent
 * before T" is read from its samples, not from its text.
 */
import type { LokiClient, PatternSeries } from '../loki/client.ts'
import { isErrorLevel, levelName, lineLevel } from '../pino.ts'
import { type Nanos, NS_PER_SECOND } from '../time.ts'

/** What every printed pattern count says about its precision. */
export const PATTERNS_CAVEAT = "the pattern ingester's: every line it was sent, clustered as they arrived and counted in 10-second buckets, kept about 3h"

export interface PatternRow {
  pattern: string
  /** Loki's level for it, else the level its text carries (pino JSON); undefined when neither says. */
  level?: string
  count: number
  /** Of every line the patterns cover, 0–1. */
  share: number
  /** Counts per step over the range, for a sparkline. */
  trend: number[]
  /** With a time to compare with: lines before it (whole steps only) and from it on. */
  before?: number
  after?: number
  /** Absent before that time, present after. */
  isNew?: boolean
}

export interface PatternReport {
  selector: string
  start: Nanos
  end: Nanos
  stepSeconds: number
  newSince?: Nanos
  totalCount: number
  rows: PatternRow[]
}

/** The ingester's own bucket: no step finer than this says more. */
const SAMPLE_SECONDS = 10
const TREND_POINTS = 40

/** A step for the range: about 40 points, a whole number of the ingester's 10-second buckets. */
export function patternStepSeconds(start: Nanos, end: Nanos, points = TREND_POINTS): number {
  const seconds = Number((end - start) / NS_PER_SECOND)
  return Math.max(1, Math.ceil(seconds / points / SAMPLE_SECONDS)) * SAMPLE_SECONDS
}

export async function fetchPatterns(
  client: Pick<LokiClient, 'patterns'>,
  options: { selector: string; start: Nanos; end: Nanos; newSince?: Nanos; stepSeconds?: number },
): Promise<PatternReport> {
  const stepSeconds = options.stepSeconds ?? patternStepSeconds(options.start, options.end)
  const series = await client.patterns({ query: options.selector, start: options.start, end: options.end, step: `${stepSeconds}s` })
  const rows = summarizePatterns(series, { start: options.start, end: options.end, stepSeconds, newSince: options.newSince })
  return { selector: options.selector, start: options.start, end: options.end, stepSeconds, newSince: options.newSince, totalCount: rows.reduce((n, r) => n + r.count, 0), rows }
}

/**
 * Counts, shares and trends of Loki's pattern series, largest first. With
 * `newSince`, a sample counts as before it only when its whole step is
 * (a sample's time is the start of its step): a step that straddles the
 * time holds lines of both sides and is counted after.
 */
export function summarizePatterns(series: PatternSeries[], options: { start: Nanos; end: Nanos; stepSeconds: number; newSince?: Nanos }): PatternRow[] {
  const startSeconds = Number(options.start / NS_PER_SECOND)
  const points = Math.max(1, Math.ceil(Number((options.end - options.start) / NS_PER_SECOND) / options.stepSeconds))
  const since = options.newSince === undefined ? undefined : Number(options.newSince) / 1e9
  const rows = series.map((s): PatternRow => {
    const trend = new Array<number>(points).fill(0)
    let count = 0
    let before = 0
    for (const [t, n] of s.samples) {
      count += n
      trend[Math.min(points - 1, Math.max(0, Math.floor((t - startSeconds) / options.stepSeconds)))] += n
      if (since !== undefined && t + options.stepSeconds <= since) before += n
    }
    const row: PatternRow = { pattern: s.pattern, level: patternLevel(s), count, share: 0, trend }
    if (since !== undefined) {
      row.before = before
      row.after = count - before
      row.isNew = before === 0 && row.after > 0
    }
    return row
  })
  const total = rows.reduce((n, r) => n + r.count, 0)
  for (const row of rows) row.share = total > 0 ? row.count / total : 0
  return rows.sort((a, b) => b.count - a.count || (a.pattern < b.pattern ? -1 : 1))
}

/** Loki's level where it knows one; else the level written in the pattern (a pino line's "level":"error" or 50). */
export function patternLevel(series: Pick<PatternSeries, 'pattern' | 'level'>): string | undefined {
  const given = levelName(series.level)
  if (given !== undefined && given !== 'unknown') return given
  return lineLevel(series.pattern)
}

export function isErrorPattern(row: Pick<PatternRow, 'level'>): boolean {
  return isErrorLevel(row.level)
}
