import { UsageError } from './errors.ts'
import { shown } from './text.ts'

/**
 * Times are nanoseconds since the Unix epoch as bigint: Loki speaks nanoseconds
 * and a double cannot hold them exactly.
 */
export type Nanos = bigint

export const NS_PER_SECOND = 1_000_000_000n

const NS_PER_UNIT: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: NS_PER_SECOND,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
  w: 604_800_000_000_000n,
}

/** Loki's timestamps are signed 64-bit nanoseconds: up to 2262. */
const MAX_NANOS = 2n ** 63n - 1n

/**
 * The earliest time Loki 3.6 answers about correctly. Loki reads an integer
 * of up to 10 digits as seconds, and its query frontend passes times on to
 * the querier as bare nanoseconds: any time before 10^10 ns comes out
 * 10^9 times later, whatever form obs sent it in (checked on Loki 3.6.2).
 */
export const EARLIEST_NANOS: Nanos = 10_000_000_000n
const EARLIEST_SHOWN = new Date(Number(EARLIEST_NANOS / 1_000_000n)).toISOString().replace('.000Z', 'Z')

function checkRange(ns: Nanos, text: string, flag: string): Nanos {
  if (ns < EARLIEST_NANOS) {
    throw new UsageError(`invalid ${flag} "${shown(text)}": before ${EARLIEST_SHOWN}, the earliest time Loki reads correctly`, `use ${EARLIEST_SHOWN} or later`)
  }
  if (ns > MAX_NANOS) throw new UsageError(`invalid ${flag} "${shown(text)}": after 2262, the last time Loki can store`, 'give a time before 2262')
  return ns
}

const DURATION_PART = /(\d+)(?:\.(\d+))?(ns|us|µs|ms|s|m|h|d|w)/y
const DURATION_HINT = 'use a number with a unit, like 30s, 5m, 1h30m or 2d'

/** Parses `30s`, `5m`, `1h30m`, `2d`, `1.5h`, `250ms` into nanoseconds. */
export function parseDuration(text: string, flag = 'duration'): Nanos {
  const input = text.trim()
  let total = 0n
  let pos = 0
  while (pos < input.length) {
    DURATION_PART.lastIndex = pos
    const match = DURATION_PART.exec(input)
    if (!match) throw new UsageError(`invalid ${flag} "${shown(text)}"`, DURATION_HINT)
    const [, whole, fraction = '', unit] = match
    const perUnit = NS_PER_UNIT[unit]
    total += BigInt(whole) * perUnit
    if (fraction) total += (BigInt(fraction) * perUnit) / 10n ** BigInt(fraction.length)
    pos = DURATION_PART.lastIndex
  }
  if (input.length === 0) throw new UsageError(`invalid ${flag} "${shown(text)}"`, DURATION_HINT)
  if (total === 0n) throw new UsageError(`invalid ${flag} "${shown(text)}": it must be longer than zero`, DURATION_HINT)
  return total
}

export function durationToMs(ns: Nanos): number {
  return Number(ns / 1_000_000n)
}

/** The shortest and longest a duration may be, as durations, so that messages show them as written. */
export interface DurationBounds {
  min: string
  max: string
}

/**
 * The bounds of every duration obs waits on. Node's timers hold at most
 * 2^31-1 ms (24.8 days) and fire at once past that, and a pause shorter than
 * a request takes only loads the server: both turned a poll into a flood.
 */
export const TIMER_BOUNDS = {
  /** A pause between polls: ready --interval, tail --poll --interval. */
  interval: { min: '100ms', max: '1h' },
  /** How long to keep polling until something is ready: ready --wait, smoke --wait. */
  wait: { min: '100ms', max: '24h' },
  /** One HTTP request: --timeout. */
  timeout: { min: '1ms', max: '24h' },
} as const satisfies Record<string, DurationBounds>

/** Parses a duration, refusing one outside its bounds. */
export function parseBoundedDuration(text: string, flag: string, bounds: DurationBounds): Nanos {
  const ns = parseDuration(text, flag)
  if (ns < parseDuration(bounds.min) || ns > parseDuration(bounds.max)) {
    throw new UsageError(`invalid ${flag} "${shown(text)}": it must be between ${bounds.min} and ${bounds.max}`, 'give a duration in that range')
  }
  return ns
}

/** Parses a duration obs will wait on, in milliseconds, refusing one outside its bounds. */
export function parseDurationMs(text: string, flag: string, bounds: DurationBounds): number {
  return durationToMs(parseBoundedDuration(text, flag, bounds))
}

/** `end` minus a `--since` duration, refused when it would reach back before the times Loki reads correctly. */
export function startBefore(end: Nanos, since: string, flag = '--since'): Nanos {
  const start = end - parseDuration(since, flag)
  if (start < EARLIEST_NANOS) throw new UsageError(`${flag} ${shown(since)} reaches back before ${EARLIEST_SHOWN}`, `use a shorter ${flag}`)
  return start
}

/**
 * A shift back in time for a range (volume --compare: the same range that
 * much earlier), refused when the earlier range would begin before the times
 * Loki reads correctly; the message gives the longest shift this range allows.
 */
export function shiftBack(range: TimeRange, text: string, flag: string): Nanos {
  const by = parseDuration(text, flag)
  if (range.start - by < EARLIEST_NANOS) {
    const most = (range.start - EARLIEST_NANOS) / NS_PER_UNIT.d
    throw new UsageError(
      `invalid ${flag} "${shown(text)}": the range that much earlier would begin before ${EARLIEST_SHOWN}, the earliest time Loki reads correctly`,
      most > 0n ? `give a ${flag} of at most ${most}d for this range` : `give a shorter ${flag}`,
    )
  }
  return by
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/
const RELATIVE = /^now(?:([+-])(.+))?$/
const TIME_HINT = 'use RFC 3339 (2026-01-02T15:04:05Z), Unix seconds, ms or ns, or now-1h'

/**
 * Parses a time flag: RFC 3339 with `Z` or an offset, Unix seconds (up to 10
 * digits, optionally with a fraction), milliseconds (13), microseconds (16) or
 * nanoseconds (19), `now`, or `now-1h`.
 */
export function parseTime(text: string, now: Nanos, flag = 'time'): Nanos {
  const input = text.trim()
  const relative = RELATIVE.exec(input)
  if (relative) {
    if (!relative[1]) return now
    let offset: Nanos
    try {
      offset = parseDuration(relative[2], flag)
    } catch {
      throw new UsageError(`invalid ${flag} "${shown(text)}"`, TIME_HINT)
    }
    return checkRange(relative[1] === '-' ? now - offset : now + offset, text, flag)
  }
  if (/^\d+(\.\d+)?$/.test(input)) return checkRange(parseUnix(input, text, flag), text, flag)
  const m = RFC3339.exec(input)
  if (!m) throw new UsageError(`invalid ${flag} "${shown(text)}"`, TIME_HINT)
  const [, , month, day, hour, minute, second, fraction = '', zone] = m
  if (+month < 1 || +month > 12 || +day < 1 || +day > 31 || +hour > 23 || +minute > 59 || +second > 60) {
    throw new UsageError(`invalid ${flag} "${shown(text)}": no such date or time`, TIME_HINT)
  }
  const [year, monthNumber, dayNumber] = [Number(m[1]), Number(month), Number(day)]
  const calendar = new Date(Date.UTC(year, monthNumber - 1, dayNumber))
  if (calendar.getUTCMonth() !== monthNumber - 1 || calendar.getUTCDate() !== dayNumber || +second > 59) {
    throw new UsageError(`invalid ${flag} "${shown(text)}": no such date or time`, TIME_HINT)
  }
  const ms = Date.parse(`${input.slice(0, 19).replace(/[t ]/, 'T')}${zone.toUpperCase()}`)
  if (Number.isNaN(ms)) throw new UsageError(`invalid ${flag} "${shown(text)}": no such date or time`, TIME_HINT)
  return checkRange(BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, '0')), text, flag)
}

function parseUnix(input: string, original: string, flag: string): Nanos {
  const [whole, fraction] = input.split('.')
  if (fraction !== undefined) {
    if (whole.length > 10) throw new UsageError(`invalid ${flag} "${shown(original)}": a fraction is only allowed on Unix seconds`, TIME_HINT)
    return BigInt(whole) * 1_000_000_000n + BigInt(fraction.slice(0, 9).padEnd(9, '0'))
  }
  const digits = whole.replace(/^0+(?=\d)/, '').length
  if (digits <= 10) return BigInt(whole) * 1_000_000_000n
  if (digits === 13) return BigInt(whole) * 1_000_000n
  if (digits === 16) return BigInt(whole) * 1_000n
  if (digits === 19) return BigInt(whole)
  throw new UsageError(`invalid ${flag} "${shown(original)}": ${digits} digits is not Unix seconds (≤10), milliseconds (13), microseconds (16) or nanoseconds (19)`, TIME_HINT)
}

export function nowNanos(): Nanos {
  return BigInt(Date.now()) * 1_000_000n
}

export interface TimeRangeInput {
  since?: string
  from?: string
  to?: string
}

export interface TimeRange {
  /** Inclusive. */
  start: Nanos
  /** Exclusive. */
  end: Nanos
}

/**
 * Resolves the time flags into a range: `--from` is inclusive, `--to`
 * exclusive; `--since` counts back from `--to` (or now).
 */
export function resolveTimeRange(input: TimeRangeInput, defaultSince: string, now = nowNanos()): TimeRange {
  if (input.since !== undefined && input.from !== undefined) {
    throw new UsageError('--since and --from cannot be used together', 'give a duration with --since, or a start time with --from')
  }
  const end = input.to === undefined ? now : parseTime(input.to, now, '--to')
  const start = input.from === undefined ? startBefore(end, input.since ?? defaultSince) : parseTime(input.from, now, '--from')
  if (start >= end) {
    throw new UsageError(`--from (${formatNanos(start)}) must be before --to (${formatNanos(end)})`, 'swap them or widen the range')
  }
  return { start, end }
}

const NS_DIGITS = 19

/**
 * Formats a Loki nanosecond timestamp (decimal string) as RFC 3339 in UTC with
 * all nine fraction digits. Hot path: called once per printed entry.
 */
export function formatNanos(ns: string | Nanos): string {
  let text = typeof ns === 'bigint' ? ns.toString() : ns
  if (text.length < NS_DIGITS) text = text.padStart(NS_DIGITS, '0')
  const seconds = Number(text.slice(0, -9))
  const iso = new Date(seconds * 1000).toISOString()
  return `${iso.slice(0, 19)}.${text.slice(-9)}Z`
}

/** Compares two non-negative nanosecond strings numerically without BigInt. */
export function compareNanos(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}

/** Formats a nanosecond span for people: `850ms`, `12.4s`, `3m05s`, `2h10m`. */
export function humanDuration(ns: Nanos): string {
  const ms = Number(ns / 1_000_000n)
  if (ms < 1000) return `${ms}ms`
  const exact = ms / 1000
  const shown = exact.toFixed(exact < 10 && exact.toFixed(2) !== '10.00' ? 2 : 1)
  if (Number(shown) < 60) return `${shown}s`
  const totalSeconds = Math.round(ms / 1000)
  const hours = Math.floor(totalSeconds / 3600)
  const minutes = Math.floor((totalSeconds % 3600) / 60)
  const seconds = totalSeconds % 60
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`
  return `${minutes}m${String(seconds).padStart(2, '0')}s`
}

/** How long before `now` a moment was, for people: `12m05s ago` (or `in 2.00s`, for a clock ahead of this one). */
export function humanAge(at: Nanos, now: Nanos): string {
  return at <= now ? `${humanDuration(now - at)} ago` : `in ${humanDuration(at - now)}`
}

/** Waits ms, or less when the signal aborts (resolving, not rejecting: an abort here means "stop waiting"). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}
