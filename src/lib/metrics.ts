import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** One sample of Prometheus's text exposition format. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Parses the samples of the named metrics (all when no names are given). */
export function parseMetrics(text: string, names?: string[]): Sample[] {
  const wanted = names ? new Set(names) : undefined
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = SAMPLE.exec(line)
    if (!match || (wanted && !wanted.has(match[1]))) continue
    const labels: Record<string, string> = {}
    for (const [, name, value] of (match[2] ?? '').matchAll(LABEL)) labels[name] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    const value = sampleValue(match[3])
    if (value === undefined) continue
    samples.push({ name: match[1], labels, value })
  }
  return samples
}

/** A sample's value: a float, or NaN, +Inf, -Inf as Prometheus writes them (Number() reads no "Inf"); undefined for anything else. */
function sampleValue(text: string): number | undefined {
  if (/^[+-]?Inf$/.test(text)) return text.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY
  const value = Number(text)
  return Number.isNaN(value) && text !== 'NaN' ? undefined : value
}

/** Sums samples of one metric, grouped by one label. */
export function sumBy(samples: Sample[], name: string, label: string): Map<string, number> {
  const sums = new Map<string, number>()
  for (const sample of samples) {
    if (sample.name !== name) continue
    const key = sample.labels[label] ?? ''
    sums.set(key, (sums.get(key) ?? 0) + sample.value)
  }
  return sums
}

/** The value of a gauge with no labels (process_start_time_seconds), if the server exposes it. */
export function gaugeValue(samples: Sample[], name: string): number | undefined {
  return samples.find((sample) => sample.name === name)?.value
}

/**
 * A reading of one server's counters, kept between runs: a counter adds up
 * since the process started, so the increase over a window needs a reading
 * taken at its start.
 */
export interface CounterReading {
  /** The server's base URL (never carries credentials) and tenant. */
  addr: string
  orgId?: string
  atMs: number
  /** The server's process_start_time_seconds: a reading is comparable only within one process. */
  processStart?: number
  counts: Record<string, number>
}

/** Readings older than this serve no --since anyone types. */
const READING_MAX_AGE_MS = 32 * 86_400_000
/** Older readings are kept sparser: a reading is kept when its newer neighbour is at least this share of its age away. */
const READING_SPACING = 0.1

/** The readings in the file; a missing or unreadable file is no history. */
export function loadReadings(file: string): CounterReading[] {
  try {
    const document = JSON.parse(readFileSync(file, 'utf8')) as { readings?: unknown }
    return Array.isArray(document.readings) ? document.readings.filter(isReading) : []
  } catch {
    return []
  }
}

function isReading(value: unknown): value is CounterReading {
  const reading = value as CounterReading
  return (
    typeof reading === 'object' &&
    reading !== null &&
    typeof reading.addr === 'string' &&
    Number.isFinite(reading.atMs) &&
    typeof reading.counts === 'object' &&
    reading.counts !== null
  )
}

/**
 * Drops readings too old to matter, and thins the rest so that they grow
 * sparser with age (any window start has a reading within a tenth of its age)
 * and the file stays small however often doctor runs.
 */
export function pruneReadings(readings: CounterReading[], nowMs: number): CounterReading[] {
  const kept: CounterReading[] = []
  const newestKept = new Map<string, number>()
  for (const reading of [...readings].sort((a, b) => b.atMs - a.atMs)) {
    const age = nowMs - reading.atMs
    if (age > READING_MAX_AGE_MS || age < 0) continue
    const series = JSON.stringify([reading.addr, reading.orgId ?? '', reading.processStart ?? null])
    const newer = newestKept.get(series)
    if (newer !== undefined && newer - reading.atMs < age * READING_SPACING) continue
    newestKept.set(series, reading.atMs)
    kept.push(reading)
  }
  return kept.reverse()
}

/** Adds a reading to the file, pruned, replacing it atomically so that a concurrent reader never sees half a file. */
export function keepReading(file: string, reading: CounterReading): void {
  const readings = pruneReadings([...loadReadings(file), reading], reading.atMs)
  mkdirSync(dirname(file), { recursive: true })
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, `${JSON.stringify({ readings })}\n`, { mode: 0o600 })
  renameSync(temporary, file)
}
