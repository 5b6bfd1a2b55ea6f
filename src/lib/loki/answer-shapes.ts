/** The shapes of Loki 3.6's answers (docs/LOKI_FACTS.md), as obs reads them: the decoders in ../shapes.ts applied to Loki's API. */
import { checkShape, dictionary, list, number, object, optional, type Shape, string, tagged, tuple, wrong } from '../shapes.ts'

export type Labels = Record<string, string>

/** Per-entry metadata Loki sends when asked to categorize labels. */
export interface EntryMetadata {
  structuredMetadata?: Labels
  parsed?: Labels
}

export type StreamValue = [string, string] | [string, string, EntryMetadata]

export interface StreamResult {
  stream: Labels
  values: StreamValue[]
}

export interface SampleSeries {
  metric: Labels
  values?: [number, string][]
  value?: [number, string]
}

/** What Loki says it did for one query (`data.stats.summary` of a query answer); obs reads these fields only. */
export interface ExecSummary {
  /** Seconds. */
  execTime: number
  queueTime: number
  totalBytesProcessed: number
  totalLinesProcessed: number
  totalEntriesReturned: number
}

/** Loki's estimate from its index (/loki/api/v1/index/stats). */
export interface IndexStats {
  streams: number
  chunks: number
  entries: number
  bytes: number
}

export type QueryData = (
  | { resultType: 'streams'; result: StreamResult[] }
  | { resultType: 'matrix'; result: SampleSeries[] }
  | { resultType: 'vector'; result: SampleSeries[] }
  | { resultType: 'scalar'; result: [number, string] }
) & { stats?: unknown }

const LOKI_HINT = 'check that --addr points at Loki, not a proxy that rewrites answers'

const labels = dictionary(string)
const nanos: Shape = (value, at) => (typeof value === 'string' && /^\d+$/.test(value) ? undefined : wrong(at, value, 'a timestamp in nanoseconds'))
/** Seconds within what a Date holds (±8.64e15 ms): every renderer turns them into one. */
const unixSeconds: Shape = (value, at) => (typeof value === 'number' && Math.abs(value) <= 8.64e12 ? undefined : wrong(at, value, 'a time in Unix seconds'))
/** [unix seconds, "value"]: Loki sends the value as a string, "NaN" and "+Inf" included. */
const sample = tuple([unixSeconds, string])
const entryMetadata = object({ structuredMetadata: optional(labels), parsed: optional(labels) })

const queryResult = tagged('resultType', {
  streams: object({ result: list(object({ stream: labels, values: list(tuple([nanos, string], entryMetadata)) })) }),
  matrix: object({ result: list(object({ metric: labels, values: list(sample) })) }),
  vector: object({ result: list(object({ metric: labels, value: sample })) }),
  scalar: object({ result: sample }),
})

function lokiData<T>(path: string, shape: Shape, data: unknown): T {
  return checkShape<T>({ server: 'Loki', path, hint: LOKI_HINT }, shape, data, 'data')
}

const labelNames = list(string)
const seriesList = list(labels)

/**
 * `data` of /loki/api/v1/labels and /loki/api/v1/label/<name>/values. Loki
 * leaves `data` out when there are none.
 */
export function labelsAnswer(path: string, data: unknown): string[] {
  return lokiData(path, labelNames, data ?? [])
}

/** `data` of /loki/api/v1/series: one label set per stream; left out when there are none. */
export function seriesAnswer(path: string, data: unknown): Labels[] {
  return lokiData(path, seriesList, data ?? [])
}

/** `data` of /loki/api/v1/query and /loki/api/v1/query_range: a result of any type, each entry or sample checked. */
export function queryAnswer(path: string, data: unknown): QueryData {
  return lokiData(path, queryResult, data)
}

const indexStats = object({ streams: number, chunks: number, entries: number, bytes: number })

/** /loki/api/v1/index/stats answers bare, without the success envelope. */
export function indexStatsAnswer(path: string, answer: unknown): IndexStats {
  return checkShape<IndexStats>({ server: 'Loki', path, hint: LOKI_HINT }, indexStats, answer, 'the answer')
}

/**
 * The execution summary of a query answer, where Loki sent one. Informational:
 * a field that is missing or not a number counts as 0 rather than failing a
 * query whose entries are fine.
 */
export function execSummary(data: QueryData): ExecSummary | undefined {
  const summary = (data.stats as { summary?: Record<string, unknown> } | undefined)?.summary
  if (typeof summary !== 'object' || summary === null) return undefined
  const read = (name: keyof ExecSummary) => (typeof summary[name] === 'number' && Number.isFinite(summary[name]) ? (summary[name] as number) : 0)
  return {
    execTime: read('execTime'),
    queueTime: read('queueTime'),
    totalBytesProcessed: read('totalBytesProcessed'),
    totalLinesProcessed: read('totalLinesProcessed'),
    totalEntriesReturned: read('totalEntriesReturned'),
  }
}

/** A field of Loki's detected_fields answer: what its sample of lines held. */
export interface DetectedField {
  label: string
  type: string
  cardinality: number
  parsers: string[] | null
  jsonPath?: string[]
}

// Loki encodes a field with its protobuf's JSON tags: label, type and
// cardinality are left out when empty or 0 (a JSON key "" comes without a label).
const detectedFields = object({
  fields: optional(
    list(object({ label: optional(string), type: optional(string), cardinality: optional(number), parsers: optional(list(string)), jsonPath: optional(list(string)) })),
  ),
})

/** /loki/api/v1/detected_fields answers bare: `{fields, limit}`; no fields is an empty list; what Loki left out is filled in. */
export function detectedFieldsAnswer(path: string, answer: unknown): DetectedField[] {
  const fields = checkShape<{ fields?: Partial<DetectedField>[] | null }>({ server: 'Loki', path, hint: LOKI_HINT }, detectedFields, answer, 'the answer').fields ?? []
  return fields.map((field) => ({ ...field, label: field.label ?? '', type: field.type || 'string', cardinality: field.cardinality ?? 0, parsers: field.parsers ?? null }))
}

/** One pattern of Loki's pattern ingester: its template, the level Loki gave it, and [unix seconds, count] samples. */
export interface PatternSeries {
  pattern: string
  level?: string
  samples: [number, number][]
}

const patternSeries = list(object({ pattern: string, level: optional(string), samples: list(tuple([unixSeconds, number])) }))

/** `data` of /loki/api/v1/patterns: a list, empty when the ingester found none. */
export function patternsAnswer(path: string, data: unknown): PatternSeries[] {
  return lokiData(path, patternSeries, data ?? [])
}

const volumeResult = tagged('resultType', { vector: object({ result: list(object({ metric: labels, value: sample })) }) })

/** `data` of /loki/api/v1/index/volume: a vector of bytes per label set, as strings. */
export function volumeAnswer(path: string, data: unknown): SampleSeries[] {
  return lokiData<{ result: SampleSeries[] }>(path, volumeResult, data).result
}

/** What /loki/api/v1/drilldown-limits (Loki 3.6) says is switched on; undefined where it does not say. */
export interface LokiFeatures {
  patternIngester?: boolean
  volume?: boolean
}

export function drilldownLimitsAnswer(answer: unknown): LokiFeatures {
  const doc = (answer ?? {}) as { pattern_ingester_enabled?: unknown; limits?: { volume_enabled?: unknown } }
  const flag = (value: unknown) => (typeof value === 'boolean' ? value : undefined)
  return { patternIngester: flag(doc.pattern_ingester_enabled), volume: flag(doc.limits?.volume_enabled) }
}
