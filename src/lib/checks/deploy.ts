/**
 * The deploy verdict (`obs smoke --deployed-at T`): the window after T
 * against an equal window before it, per service of the app.
 *
 * - error-rate: error lines a minute (pino's `level` from the JSON, names or
 *   numbers), exact, from two metric queries.
 * - new-patterns: error messages new since the deploy, read from the error
 *   lines themselves (incident/templates.ts): the templates of the first
 *   1000 error lines after T, each new when Loki counts no line of it in the
 *   window before. Needs no pattern ingester, which drops pino's short
 *   messages. A service with no history before T is "could not compare"
 *   (warn), never a pass.
 * - volume-shift: bytes per service from Loki's volume API, outside a band.
 *   Prorated by chunk, as Loki computes volumes (incident/volume.ts).
 *
 * A service that starts inside a window is measured over the time it existed
 * there (from its first line); with less than a minute before the deploy it
 * is not compared (warn): a start, a restart or a new service is no failure.
 *
 * Where volumes are off, volume-shift is skipped with
 * the setting that turns them on: a verdict on what Loki can say beats none.
 */

import type { DeployThresholds } from '../config/deploy-thresholds.ts'
import type { AppIdentity } from '../config/settings.ts'
import { UnavailableError, UsageError } from '../errors.ts'
import { groupTemplates, templatePipeline } from '../incident/templates.ts'
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
  loki: Pick<LokiClient, 'queryInstant' | 'queryRange' | 'volume'> & LengthClient
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

/** Error lines after the deploy whose message templates are checked: the first this many (stated where reached). */
const NEW_ERRORS_SAMPLE = 1000
/** The most frequent templates counted before the deploy, one small query each. */
const MAX_TEMPLATES = 20

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
  /** Less than a minute of lines before the deploy (a new or just started service): not compared. */
  noHistory?: boolean
  /** The part of each window the service existed in, 0–1, where less than the whole. */
  covered?: { before: number; after: number }
}

/**
 * The part of each window a service existed in, from its first line on
 * (found looking back a window's length before the first window): a service
 * that starts inside a window is measured over the time it existed, not
 * divided by the whole window.
 */
export interface Coverage {
  before: number
  after: number
}

/**
 * A first line this close to a window's start (15 s, or a twentieth of a
 * short window) is a service there all along whose lines are spaced out:
 * scaling by it would only add noise.
 */
function startTolerance(w: Window): Nanos {
  const twentieth = (w.end - w.start) / 20n
  return twentieth < 15n * NS_PER_SECOND ? twentieth : 15n * NS_PER_SECOND
}

function coverageOf(first: Nanos | undefined, windows: { before: Window; after: Window }): Coverage {
  const part = (w: Window) => (first === undefined || first <= w.start + startTolerance(w) ? 1 : first >= w.end ? 0 : Number(w.end - first) / Number(w.end - w.start))
  return { before: part(windows.before), after: part(windows.after) }
}

/** Less than this of a service's lines before the deploy is too little history to compare with. */
const MIN_HISTORY_NS = 60n * NS_PER_SECOND

/**
 * Error lines a minute per service, before against after: a service fails
 * when its rate after is at least the floor and more than `ratio` times the
 * rate before (any rate at or over the floor, where there were none). Rates
 * are per minute of the time the service existed in each window
 * (`coverage`); a service with less than a minute before is not compared.
 */
export function errorRateChanges(
  before: Map<string, number>,
  after: Map<string, number>,
  minutes: number,
  t: DeployThresholds,
  coverage: Map<string, Coverage> = new Map(),
): ServiceChange[] {
  return services(before, after).map((service) => {
    const covered = coverage.get(service) ?? { before: 1, after: 1 }
    const noHistory = covered.before * minutes < 1
    const [b, a] = [noHistory ? 0 : (before.get(service) ?? 0) / (minutes * covered.before), (after.get(service) ?? 0) / (minutes * Math.max(covered.after, 1e-9))]
    const change: ServiceChange = { service, before: b, after: a, failed: !noHistory && a >= t.errorRateFloor && a > b * t.errorRateRatio }
    if (noHistory) change.noHistory = true
    if (covered.before < 1 || covered.after < 1) change.covered = covered
    return change
  })
}

/**
 * Bytes per service, before against after: a service fails outside the band
 * [volumeMinRatio, volumeMaxRatio] of its bytes before, unless both windows
 * hold less than the floor (a trickle doubling is not a shift). Where a
 * service existed in part of a window only, its bytes there are scaled to the
 * whole window (the same rate); less than a minute before is not compared.
 */
export function volumeChanges(
  before: Map<string, number>,
  after: Map<string, number>,
  t: DeployThresholds,
  coverage: Map<string, Coverage> = new Map(),
  windowNs: Nanos = 0n,
): ServiceChange[] {
  return services(before, after).map((service) => {
    const covered = coverage.get(service) ?? { before: 1, after: 1 }
    const noHistory = covered.before * Number(windowNs) < Number(MIN_HISTORY_NS) && covered.before < 1
    const [b, a] = [noHistory ? 0 : (before.get(service) ?? 0) / covered.before, (after.get(service) ?? 0) / Math.max(covered.after, 1e-9)]
    const ratio = b > 0 ? a / b : Number.POSITIVE_INFINITY
    const change: ServiceChange = {
      service,
      before: b,
      after: a,
      failed: !noHistory && Math.max(a, b) >= t.volumeFloorBytes && (ratio < t.volumeMinRatio || ratio > t.volumeMaxRatio),
    }
    if (noHistory) change.noHistory = true
    if (covered.before < 1 || covered.after < 1) change.covered = covered
    return change
  })
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

  /**
   * Each service's part of each window, from its first line (looked for from
   * a window's length before the first). Asked for the services each check
   * sees, once each for every check and every --wait round; a service with
   * no line found yet is asked again next time.
   */
  const firsts = new Map<string, Promise<Coverage | undefined>>()
  const lookFrom = before.start - windowNs > EARLIEST_NANOS ? before.start - windowNs : EARLIEST_NANOS
  const coverageFor = (service: string) => {
    let found = firsts.get(service)
    if (found === undefined) {
      found = (async () => {
        // Past max_query_length, the earliest part: a first line found there is the first; none found counts the service as there all along.
        const ask = (range: Window) => loki.queryRange({ query: serviceSelector(service), ...range, limit: 1, direction: 'forward' })
        const { value: data } = await withinQueryLength(loki, { start: lookFrom, end: after.end }, ask, () => {}, 'earliest')
        const first = data.resultType === 'streams' ? data.result.flatMap((s) => s.values.map(([ts]) => BigInt(ts))).sort((x, y) => (x < y ? -1 : 1))[0] : undefined
        if (first === undefined) firsts.delete(service)
        return first === undefined ? undefined : coverageOf(first, { before, after })
      })()
      firsts.set(service, found)
    }
    return found
  }
  const coverage = async (...maps: Map<string, unknown>[]) => {
    const names = [...new Set(maps.flatMap((m) => [...m.keys()]))]
    const found = await inBatches(names, 4, async (service) => [service, await coverageFor(service)] as const)
    return new Map(found.filter((f): f is readonly [string, Coverage] => f[1] !== undefined))
  }
  /** "(over the 1m 40s it existed)" for a service measured over part of a window. */
  const existed = (c: ServiceChange) => {
    if (c.covered === undefined || c.noHistory) return ''
    const parts = [
      c.covered.before < 1 ? `${humanDuration(BigInt(Math.round(c.covered.before * windowSeconds)) * NS_PER_SECOND)} before` : '',
      c.covered.after < 1 ? `${humanDuration(BigInt(Math.round(c.covered.after * windowSeconds)) * NS_PER_SECOND)} after` : '',
    ].filter(Boolean)
    return ` (over the ${parts.join(' and ')} it existed)`
  }
  const historyNote = (changes: ServiceChange[]) => {
    const short = changes.filter((c) => c.noHistory)
    return short.length > 0 ? `not enough history for ${short.map((c) => c.service).join(', ')}: less than a minute of lines before the deploy (started or new), not compared` : ''
  }

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
        const [countsBefore, countsAfter] = [await counts(before), await counts(after)]
        const changes = errorRateChanges(countsBefore, countsAfter, windowSeconds / 60, t, await coverage(countsBefore, countsAfter))
        const line = (c: ServiceChange) => `${c.service}: ${perMinute(c.before)} → ${perMinute(c.after)} a minute (${times(c.before, c.after)})${existed(c)}`
        const failed = changes.filter((c) => c.failed)
        if (failed.length === 0) {
          const listed = changes.filter((c) => !c.noHistory && (c.before > 0 || c.after > 0))
          const measured = listed.length > 0 ? `error lines ${listed.map(line).join('; ')}` : 'no error lines in either window'
          const short = historyNote(changes.filter((c) => c.after > 0))
          if (short !== '') return { status: 'warn', detail: `${short}; ${measured}`, thresholds }
          return { status: 'pass', detail: measured, thresholds }
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
      title: `error messages new since the deploy: ${shown}`,
      async run(): Promise<CheckOutcome> {
        const thresholds = { newPatternMinCount: t.newPatternMinCount, sampleLines: NEW_ERRORS_SAMPLE }
        const ask = (range: Window) => loki.queryRange({ query: `${appSelector} ${errorFilter}`, ...range, limit: NEW_ERRORS_SAMPLE, direction: 'forward' })
        const { value: data, cut } = await withinQueryLength(loki, after, ask, () => {}, 'earliest')
        const within = cut === undefined ? '' : ` (after: ${cut})`
        const lines = data.resultType === 'streams' ? data.result.flatMap((s) => s.values.map(([, line]) => ({ key: s.stream.service ?? '', line }))) : []
        const sample = `${lines.length >= NEW_ERRORS_SAMPLE ? ` (templates of the first ${NEW_ERRORS_SAMPLE} error lines after the deploy)` : ''}${within}`
        if (lines.length === 0) return { status: 'pass', detail: `no error lines after the deploy${within}`, thresholds }
        const all = groupTemplates(lines).filter((g) => g.count >= Math.max(1, t.newPatternMinCount))
        const groups = all.slice(0, MAX_TEMPLATES)
        const covered = await coverage(new Map(groups.map((g) => [g.key, 0])))
        const unchecked = all.length > groups.length ? `; ${all.length - groups.length} rarer templates not checked` : ''
        // A service with less than a minute of lines before the deploy has no history its messages could be found in.
        const noHistory = [...new Set(groups.filter((g) => (covered.get(g.key)?.before ?? 1) * windowSeconds < 60).map((g) => g.key))].sort()
        const comparable = groups.filter((g) => !noHistory.includes(g.key))
        const failures: string[] = []
        const counted = await inBatches(comparable, 4, async (group) => {
          const query = `sum(count_over_time(${serviceSelector(group.key)} ${templatePipeline(group.template, group.json)} [${windowSeconds}s]))`
          try {
            const found = await loki.queryInstant({ query, time: before.end })
            return { group, before: found.resultType === 'vector' ? found.result.reduce((n, s) => n + Number(s.value?.[1] ?? 0), 0) : 0 }
          } catch (error) {
            if (!(error instanceof UsageError)) throw error
            failures.push(`${group.key}: ${clip(group.text)} (${error.message})`)
            return { group, before: undefined }
          }
        })
        const fresh = counted.filter((c) => c.before === 0).map((c) => c.group)
        const reasons = [
          ...(noHistory.length > 0 ? [`no lines before the deploy to compare with for ${noHistory.join(', ')}`] : []),
          ...(failures.length > 0 ? [`Loki could not count ${failures.join('; ')}`] : []),
        ]
        const note = reasons.length > 0 ? `; could not compare: ${reasons.join('; ')}` : ''
        if (fresh.length > 0) {
          const first = fresh[0]
          return {
            status: 'fail',
            detail: `new error messages: ${fresh.map((g) => `${g.key}: ${clip(g.text)} (${g.count} lines)`).join('; ')}${sample}${unchecked}${note}`,
            hint: `look at them: obs query-range ${shellQuote(`${serviceSelector(first.key)} ${templatePipeline(first.template, first.json)}`)} ${afterFlags}`,
            thresholds,
          }
        }
        const compared = counted.length - failures.length
        const checked = `${compared} error messages after the deploy, each seen before it`
        if (reasons.length > 0) {
          return { status: 'warn', detail: `could not compare: ${reasons.join('; ')}${compared > 0 ? `; ${checked}` : ''}${sample}${unchecked}`, thresholds }
        }
        return { status: 'pass', detail: `no new error messages: ${checked}${sample}${unchecked}`, thresholds }
      },
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
          const [bytesBefore, bytesAfter] = [await bytes(before, 'recent'), await bytes(after, 'earliest')]
          const changes = volumeChanges(bytesBefore, bytesAfter, t, await coverage(bytesBefore, bytesAfter), windowNs)
          const within = cuts.length > 0 ? ` (${cuts.join('; ')})` : ''
          // Bytes of a service that existed in part of a window are scaled to the whole window: said in the line.
          const line = (c: ServiceChange) =>
            `${c.service}: ${formatBytes(c.before)} → ${formatBytes(c.after)} (${times(c.before, c.after)})${existed(c) === '' ? '' : `${existed(c).slice(0, -1)}, scaled to the window)`}`
          const failed = changes.filter((c) => c.failed)
          if (failed.length === 0) {
            const compared = changes.filter((c) => !c.noHistory)
            const measured = `${compared.length > 0 ? compared.map(line).join('; ') : 'no bytes in either window'}${within}`
            const short = historyNote(changes)
            if (short !== '') return { status: 'warn', detail: `${short}; ${measured}`, thresholds }
            return { status: 'pass', detail: measured, thresholds }
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

/** At most `size` at a time, in order: each is a small query, and Loki's queriers are shared. */
async function inBatches<T, R>(items: readonly T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = []
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(run))))
  return results
}

/** A template in a one-line message: the start, enough to recognise it. */
function clip(pattern: string): string {
  return pattern.length > 120 ? `${pattern.slice(0, 119)}…` : pattern
}
