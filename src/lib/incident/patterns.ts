/**
 * The log patterns Loki's pattern ingester found (`obs patterns`, and the
 * deploy verdict's new-patterns): each with its count, share, level, samples,
 * and whether it was absent before a given time.
 *
 * Precision, as measured on Loki 3.6.2: the pattern ingester clusters lines
 * as they arrive (Drain) and counts them in 10-second buckets, kept about 3h
 * (pattern_ingester.retain_for). Of a JSON line it reads the message field
 * alone (msg, message, log, …), and drops messages of fewer than four tokens;
 * Loki's querier leaves out patterns with fewer than 30 lines in the range
 * asked, and keeps at most 300. Counts are exact but for the 10-second bucket
 * at the start of the range, which is left out. A pattern's template may grow
 * more general over time; its samples stay with it, so "absent before T" is
 * read from its samples, not from its text. Its level is Loki's detected_level
 * where Loki detects levels (discover_log_levels); elsewhere obs reads it
 * from one of the pattern's lines.
 */
import type { ChalkInstance } from 'chalk'
import { ObsError, UsageError } from '../errors.ts'
import type { LokiClient, PatternSeries, QueryData } from '../loki/client.ts'
import { quoteLogQL } from '../loki/logql.ts'
import { parseMetrics } from '../metrics.ts'
import { isErrorLevel, levelName, lineLevel } from '../pino.ts'
import { colorLevel } from '../render/output.ts'
import { sparkline } from '../render/terminal.ts'
import { neutralize } from '../text.ts'
import { type Nanos, NS_PER_SECOND } from '../time.ts'
import { groupTemplates } from './templates.ts'

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

/** Patterns whose level neither Loki nor their text says are given the level of their newest line in the range. */
export async function resolveLevels(client: Pick<LokiClient, 'queryRange'>, selector: string, range: { start: Nanos; end: Nanos }, rows: PatternRow[]): Promise<void> {
  const unknown = rows.filter((row) => row.level === undefined)
  // A few at a time: each is one small query Loki answers from the newest chunk holding a match.
  for (let i = 0; i < unknown.length; i += 4) {
    await Promise.all(
      unknown.slice(i, i + 4).map(async (row) => {
        let data: QueryData
        try {
          data = await client.queryRange({ query: `${selector} |> ${quoteLogQL(row.pattern)}`, ...range, limit: 1, direction: 'backward' })
        } catch (error) {
          // Loki refuses some of its own patterns as filters (one with no literal text); the level stays unknown.
          if (error instanceof UsageError) return
          throw error
        }
        const line = data.resultType === 'streams' ? data.result.find((s) => s.values.length > 0)?.values[0][1] : undefined
        row.level = line === undefined ? undefined : lineLevel(line)
      }),
    )
  }
}

export function isErrorPattern(row: Pick<PatternRow, 'level'>): boolean {
  return isErrorLevel(row.level)
}

/** Patterns as table cells: count, share, level; whether new when there is a time to compare with; a sparkline when asked; the pattern. */
export function patternsTable(rows: PatternRow[], options: { markNew: boolean; sparklines: boolean; chalk: ChalkInstance }): { head: string[]; rows: string[][] } {
  const { chalk } = options
  const head = ['count', 'share', 'level']
  if (options.markNew) head.push('new')
  if (options.sparklines) head.push('trend')
  head.push('pattern')
  const cells = rows.map((row) => {
    const line = [String(row.count), `${(row.share * 100).toFixed(1)}%`, row.level ? colorLevel(chalk, neutralize(row.level)) : '']
    if (options.markNew) line.push(row.isNew ? chalk.yellow('new') : '')
    if (options.sparklines) line.push(sparkline(row.trend))
    line.push(neutralize(row.pattern))
    return line
  })
  return { head, rows: cells }
}

/**
 * Why the pattern ingester may have answered nothing, from its own counters
 * (Loki's /metrics, since it started): lines it dropped as too short (pino's
 * two- and three-word messages) and patterns it formed. Undefined when
 * /metrics cannot be read (a proxy may keep it from obs).
 */
export async function ingesterCounters(client: Pick<LokiClient, 'metrics'>): Promise<{ tooFewTokens: number; detected: number } | undefined> {
  let text: string
  try {
    text = await client.metrics()
  } catch (error) {
    if (error instanceof ObsError) return undefined
    throw error
  }
  const samples = parseMetrics(text, ['loki_pattern_ingester_patterns_dropped_total', 'loki_pattern_ingester_patterns_detected_total'])
  const sum = (name: string, keep: (labels: Record<string, string>) => boolean = () => true) =>
    samples.filter((s) => s.name === name && keep(s.labels)).reduce((n, s) => n + s.value, 0)
  return {
    tooFewTokens: sum('loki_pattern_ingester_patterns_dropped_total', (labels) => labels.reason === 'too_few_tokens'),
    detected: sum('loki_pattern_ingester_patterns_detected_total'),
  }
}

/** Lines read for message templates where the ingester has no patterns: the newest this many of the range. */
export const TEMPLATE_SAMPLE_LINES = 1000

/**
 * Message templates of a bounded sample (the newest `limit` lines of the
 * range), as pattern rows: obs's own reading (incident/templates.ts) where
 * the ingester formed none. Counts and shares are of the sample, said by
 * `sampled`.
 */
export async function sampleTemplates(
  client: Pick<LokiClient, 'queryRange'>,
  selector: string,
  range: { start: Nanos; end: Nanos },
  limit = TEMPLATE_SAMPLE_LINES,
): Promise<{ sampled: number; rows: PatternRow[] }> {
  const data = await client.queryRange({ query: selector, ...range, limit, direction: 'backward' })
  const lines = data.resultType === 'streams' ? data.result.flatMap((s) => s.values.map(([, line]) => ({ key: '', line }))) : []
  const rows = groupTemplates(lines).map(
    (group): PatternRow => ({ pattern: group.text, level: lineLevel(group.example), count: group.count, share: lines.length > 0 ? group.count / lines.length : 0, trend: [] }),
  )
  return { sampled: lines.length, rows }
}
