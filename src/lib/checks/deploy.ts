/**
 * The deploy verdict (`obs smoke --deployed-at T`): the window after T
 * against an equal window before it, per service of the app.
 *
 * - error-rate: error lines a minute (pino's `level` from the JSON, names or
 *   numbers), exact, from two metric queries.
 * - new-patterns: error-level patterns of Loki's pattern ingester with no
 *   line before T. As the ingester sees them (incident/patterns.ts): a new
 *   message needs 30 lines in the two windows before Loki returns it.
 * - volume-shift: bytes per service from Loki's volume API, outside a band.
 *   Prorated by chunk, as Loki computes volumes (incident/volume.ts).
 *
 * Where the pattern ingester or volumes are off, their check is skipped with
 * the setting that turns them on: a verdict on what Loki can say beats none.
 */

import type { DeployThresholds } from '../config/deploy-thresholds.ts'
import type { AppIdentity } from '../config/settings.ts'
import { UnavailableError, UsageError } from '../errors.ts'
import { fetchPatterns, isErrorPattern, type PatternRow, patternStepSeconds, resolveLevels } from '../incident/patterns.ts'
import { bytesBy } from '../incident/volume.ts'
import { type LokiClient, VOLUME_ALL } from '../loki/client.ts'
import { quoteLogQL, streamSelector } from '../loki/logql.ts'
import { type LengthClient, withinQueryLength } from '../loki/query-length.ts'
import { ERROR_LEVEL_REGEX } from '../pino.ts'
import { shellQuote } from '../text.ts'
import { EARLIEST_NANOS, formatNanos, humanDuration, type Nanos, NS_PER_SECOND, parseDuration, parseTime } from '../time.ts'
import { formatBytes } from '../units.ts'
import type { Check, CheckOutcome } from './runner.ts'

export interface DeployContext {
  loki: Pick<LokiClient, 'queryInstant' | 'queryRange' | 'labelValues' | 'patterns' | 'volume'> & LengthClient
  identity: AppIdentity
  thresholds: DeployThresholds
  deployedAt: Nanos
  /** The length of each window. */
  windowNs: Nanos
  now: () => Nanos
}

interface Window {
  start: Nanos
  end: Nanos
}

/** The pattern ingester keeps this long by default (pattern_ingester.retain_for). */
const PATTERN_RETENTION_NS = 3n * 3600n * NS_PER_SECOND

/** Less than this after the deploy says nothing yet: a minute holds too few lines to compare rates. */
const MIN_WINDOW_NS = 60n * NS_PER_SECOND

/**
 * --deployed-at and --window as the two windows' edge and length: the
 * length is from the deploy to now unless given, cut to now when it reaches
 * past it (`cut` says to what), in whole seconds for LogQL's range.
 */
export function deployWindow(deployedAtText: string, windowText: string | undefined, now: Nanos): { deployedAt: Nanos; windowNs: Nanos; cut?: string } {
  const deployedAt = parseTime(deployedAtText, now, '--deployed-at')
  const sinceDeploy = now - deployedAt
  if (sinceDeploy < MIN_WINDOW_NS) {
    throw new UsageError(
      `--deployed-at ${formatNanos(deployedAt)} is ${sinceDeploy < 0n ? 'in the future' : 'less than a minute ago'}: there is no window after it to compare yet`,
      'run the gate a few minutes after the deploy (obs smoke --deployed-at now-10m)',
    )
  }
  let windowNs = windowText === undefined ? sinceDeploy : parseDuration(windowText, '--window')
  if (windowNs < MIN_WINDOW_NS) throw new UsageError(`--window ${windowText} is shorter than a minute: too few lines to compare rates`, 'use --window 5m or more')
  let cut: string | undefined
  if (windowNs > sinceDeploy) {
    windowNs = sinceDeploy
    cut = humanDuration(windowNs)
  }
  windowNs = (windowNs / NS_PER_SECOND) * NS_PER_SECOND
  if (deployedAt - windowNs < EARLIEST_NANOS) throw new UsageError('--deployed-at minus the window reaches back before 1970', 'use a later --deployed-at or a shorter --window')
  return { deployedAt, windowNs, cut }
}

/** One service's measure before and after, and whether it broke the thresholds. */
export interface ServiceChange {
  service: string
  before: number
  after: number
  failed: boolean
}

/**
 * Error lines a minute per service, before against after: a service fails
 * when its rate after is at least the floor and more than `ratio` times the
 * rate before (any rate at or over the floor, where there were none).
 */
export function errorRateChanges(before: Map<string, number>, after: Map<string, number>, minutes: number, t: DeployThresholds): ServiceChange[] {
  return services(before, after).map((service) => {
    const [b, a] = [(before.get(service) ?? 0) / minutes, (after.get(service) ?? 0) / minutes]
    return { service, before: b, after: a, failed: a >= t.errorRateFloor && a > b * t.errorRateRatio }
  })
}

/**
 * Bytes per service, before against after: a service fails outside the band
 * [volumeMinRatio, volumeMaxRatio] of its bytes before, unless both windows
 * hold less than the floor (a trickle doubling is not a shift).
 */
export function volumeChanges(before: Map<string, number>, after: Map<string, number>, t: DeployThresholds): ServiceChange[] {
  return services(before, after).map((service) => {
    const [b, a] = [before.get(service) ?? 0, after.get(service) ?? 0]
    const ratio = b > 0 ? a / b : Number.POSITIVE_INFINITY
    return { service, before: b, after: a, failed: Math.max(a, b) >= t.volumeFloorBytes && (ratio < t.volumeMinRatio || ratio > t.volumeMaxRatio) }
  })
}

/** Error-level patterns with no line before the deploy and at least the minimum after it. */
export function newErrorPatterns(rows: PatternRow[], t: DeployThresholds): PatternRow[] {
  return rows.filter((row) => row.isNew && isErrorPattern(row) && (row.after ?? 0) >= Math.max(1, t.newPatternMinCount))
}

function services(...maps: Map<string, number>[]): string[] {
  return [...new Set(maps.flatMap((m) => [...m.keys()]))].sort()
}

/** ×2.3, or "new" where there was nothing before. */
function times(before: number, after: number): string {
  return before > 0 ? `×${(after / before).toFixed(after / before < 10 ? 2 : 0)}` : 'from none'
}

const perMinute = (n: number) => (n === 0 ? '0' : n < 10 ? n.toFixed(2) : n.toFixed(0))

/** The checks --deployed-at adds to smoke, with the contract's ids. */
export function deployChecks(context: DeployContext): Check[] {
  const { loki, identity, thresholds: t, deployedAt, windowNs } = context
  const before: Window = { start: deployedAt - windowNs, end: deployedAt }
  const after: Window = { start: deployedAt, end: deployedAt + windowNs }
  const appSelector = streamSelector({ app: identity.app, env: identity.env })
  const serviceSelector = (service: string) => streamSelector({ app: identity.app, env: identity.env, service })
  const shown = `the ${humanDuration(windowNs)} after ${formatNanos(deployedAt)} against the ${humanDuration(windowNs)} before`
  const afterFlags = `--from ${formatNanos(after.start)} --to ${formatNanos(after.end)}`
  const errorFilter = `| json level | __error__="" | level=~${quoteLogQL(ERROR_LEVEL_REGEX)}`
  const windowSeconds = Number(windowNs / NS_PER_SECOND)

  /** A check that Loki cannot serve here (volumes, patterns off) is skipped with the setting that turns it on. */
  const unlessUnavailable = async (run: () => Promise<CheckOutcome>): Promise<CheckOutcome> => {
    try {
      return await run()
    } catch (error) {
      if (!(error instanceof UnavailableError)) throw error
      return { status: 'skip', detail: `skipped: ${error.message}`, hint: error.hint }
    }
  }

  return [
    {
      id: 'error-rate',
      title: `error lines a minute per service: ${shown}`,
      async run(): Promise<CheckOutcome> {
        const thresholds = { errorRateRatio: t.errorRateRatio, errorRateFloor: t.errorRateFloor, windowSeconds }
        const query = `sum by (service) (count_over_time(${appSelector} ${errorFilter} [${windowSeconds}s]))`
        const counts = async (window: Window) => {
          const data = await loki.queryInstant({ query, time: window.end })
          const found = new Map<string, number>()
          if (data.resultType === 'vector') for (const s of data.result) found.set(s.metric.service ?? '', Number(s.value?.[1] ?? 0))
          return found
        }
        const changes = errorRateChanges(await counts(before), await counts(after), windowSeconds / 60, t)
        const line = (c: ServiceChange) => `${c.service}: ${perMinute(c.before)} → ${perMinute(c.after)} a minute (${times(c.before, c.after)})`
        const failed = changes.filter((c) => c.failed)
        if (failed.length === 0) {
          const listed = changes.filter((c) => c.before > 0 || c.after > 0)
          return { status: 'pass', detail: listed.length > 0 ? `error lines ${listed.map(line).join('; ')}` : 'no error lines in either window', thresholds }
        }
        const worst = failed.sort((a, b) => b.after - b.before - (a.after - a.before))[0]
        return {
          status: 'fail',
          detail: `error lines up: ${failed.map(line).join('; ')} (fails above ×${t.errorRateRatio} and ${t.errorRateFloor} a minute)`,
          hint: `look at them: obs query-range ${shellQuote(`${serviceSelector(worst.service)} ${errorFilter}`)} ${afterFlags}`,
          thresholds,
        }
      },
    },
    {
      id: 'new-patterns',
      title: `error patterns new since the deploy: ${shown}`,
      run: () =>
        unlessUnavailable(async (): Promise<CheckOutcome> => {
          const thresholds = { newPatternMinCount: t.newPatternMinCount }
          if (before.start < context.now() - PATTERN_RETENTION_NS) {
            return {
              status: 'skip',
              detail: `skipped: the window before the deploy starts more than 3h ago, beyond what the pattern ingester keeps`,
              hint: 'use a shorter --window, or raise pattern_ingester.retain_for in Loki',
              thresholds,
            }
          }
          const names = (await loki.labelValues('service', { start: before.start, end: after.end, query: appSelector })).sort()
          const stepSeconds = patternStepSeconds(before.start, after.end, 240)
          const found = await Promise.all(
            names.map(async (service) => {
              const report = await fetchPatterns(loki, { selector: serviceSelector(service), start: before.start, end: after.end, newSince: deployedAt, stepSeconds })
              // No pattern before the deploy at all: the ingester has no history of this service to compare with.
              const history = report.rows.some((row) => (row.before ?? 0) > 0)
              if (!history) return { service, history, fresh: [] }
              // Levels Loki did not detect are read from a line of each new pattern: the few that matter.
              const candidates = report.rows.filter((row) => row.isNew && (row.after ?? 0) >= Math.max(1, t.newPatternMinCount))
              await resolveLevels(loki, serviceSelector(service), after, candidates)
              return { service, history, fresh: newErrorPatterns(candidates, t) }
            }),
          )
          const noHistory = found.filter((f) => !f.history).map((f) => f.service)
          const note = noHistory.length > 0 ? `; no patterns before the deploy to compare with for ${noHistory.join(', ')}` : ''
          const failed = found.filter((f) => f.fresh.length > 0)
          if (failed.length === 0) {
            return { status: 'pass', detail: `no new error patterns in ${found.length - noHistory.length} services${note}`, thresholds }
          }
          const first = failed[0]
          return {
            status: 'fail',
            detail: `new error patterns: ${failed
              .map(({ service, fresh }) => `${service}: ${fresh.map((row) => `${clip(row.pattern)} (${row.after} lines)`).join(', ')}`)
              .join('; ')}${note}`,
            hint: `look at them: obs query-range ${shellQuote(`${serviceSelector(first.service)} |> ${quoteLogQL(first.fresh[0].pattern)}`)} ${afterFlags}`,
            thresholds,
          }
        }),
    },
    {
      id: 'volume-shift',
      title: `bytes per service: ${shown}`,
      run: () =>
        unlessUnavailable(async (): Promise<CheckOutcome> => {
          const thresholds = { volumeMinRatio: t.volumeMinRatio, volumeMaxRatio: t.volumeMaxRatio, volumeFloorBytes: t.volumeFloorBytes }
          // Every service (Loki answers its top 100 by default); windows longer than max_query_length: the parts next to the deploy, equally long, said in the detail.
          const cuts: string[] = []
          const bytes = async (window: Window, keep: 'recent' | 'earliest') => {
            const ask = (within: Window) => loki.volume({ query: appSelector, ...within, targetLabels: ['service'], limit: VOLUME_ALL })
            const { value, cut } = await withinQueryLength(loki, window, ask, () => {}, keep)
            if (cut) cuts.push(`${keep === 'recent' ? 'before' : 'after'}: ${cut}`)
            return bytesBy(value, 'service')
          }
          const changes = volumeChanges(await bytes(before, 'recent'), await bytes(after, 'earliest'), t)
          const within = cuts.length > 0 ? ` (${cuts.join('; ')})` : ''
          const line = (c: ServiceChange) => `${c.service}: ${formatBytes(c.before)} → ${formatBytes(c.after)} (${times(c.before, c.after)})`
          const failed = changes.filter((c) => c.failed)
          if (failed.length === 0) {
            return { status: 'pass', detail: `${changes.length > 0 ? changes.map(line).join('; ') : 'no bytes in either window'}${within}`, thresholds }
          }
          return {
            status: 'fail',
            detail: `volume outside ×${t.volumeMinRatio}–×${t.volumeMaxRatio}: ${failed.map(line).join('; ')}${within}`,
            hint: `look at it: obs volume ${shellQuote(appSelector)} --by service ${afterFlags} --compare ${windowSeconds}s`,
            thresholds,
          }
        }),
    },
  ]
}

/** A pattern in a one-line message: the start, enough to recognise it. */
function clip(pattern: string): string {
  return pattern.length > 120 ? `${pattern.slice(0, 119)}…` : pattern
}
