/**
 * The fields a stream's lines really carry (`obs fields`): each field's type,
 * cardinality, the parser that finds it, its most common values and a LogQL
 * filter ready to paste; the label policy's verdict on fields that must stay
 * fields and on labels that look like fields.
 *
 * Loki's detected_fields API samples lines per shard and gives no values, so
 * obs reads a sample of its own (the newest lines of the range) and puts the
 * two side by side: a cardinality Loki reports from a few lines is shown next
 * to the one obs counted.
 */
import type { LabelPolicy } from '../config/settings.ts'
import { ObsError } from '../errors.ts'
import { analyzeLabels } from '../loki/cardinality.ts'
import type { DetectedField, Labels, LokiClient } from '../loki/client.ts'
import { quoteLogQL } from '../loki/logql.ts'
import { fetchLogPages } from '../loki/paging.ts'
import type { Nanos } from '../time.ts'

export type Parser = 'json' | 'logfmt'

export interface FieldReport {
  /** The name LogQL gives it after the parser (nested JSON joined with _, as Loki does). */
  name: string
  type: string
  parsers: Parser[]
  /** Distinct values Loki's detected_fields reported, where it served. */
  lokiCardinality?: number
  /** Distinct values in obs's sample, and the sampled lines that carry the field. */
  sampleCardinality: number
  lines: number
  top: { value: string; count: number }[]
  /** A LogQL filter for the field's most common value, when LogQL can express one (not for a key no JSON path expression can name). */
  filter?: string
  /** The policy lists it among the fields that must never be labels. */
  neverALabel: boolean
}

export interface SuspectLabel {
  name: string
  values: number
  reason: string
}

export interface FieldsReport {
  selector: string
  sampled: number
  fields: FieldReport[]
  suspectLabels: SuspectLabel[]
  /** Why Loki's detected fields are missing, when they are. */
  lokiUnavailable?: string
  /**
   * A JSON key LogQL cannot name (empty, or only spaces) was seen: Loki's
   * `| json` without parameters fails on such a line ("err while creating
   * labelset"), so the filters extract their one field by its JSON path.
   */
  emptyJsonKey: boolean
}

const TOP_VALUES = 5

interface Tally {
  types: Map<string, number>
  parsers: Set<Parser>
  values: Map<string, number>
  lines: number
  /** The JSON key path of the first line that had it (json fields). */
  path?: string[]
}

/**
 * Loki's label name for a parsed key path (v3.6's json parser; a logfmt key
 * is a path of one): each part trimmed, its characters other than letters,
 * digits and _ made _, empty parts skipped, the rest joined with _, a leading
 * digit given a _ before it. '' when every part is empty: not a label name.
 */
export function lokiJsonName(path: string[]): string {
  let name = ''
  for (const part of path) {
    const key = part.trim()
    if (key === '') continue
    const clean = key.replace(/[^a-zA-Z0-9_]/gu, '_')
    name = name === '' ? (/^[0-9]/.test(clean) ? `_${clean}` : clean) : `${name}_${clean}`
  }
  return name
}

/** Loki's label name for a parsed key: invalid characters become _, a leading digit gets one before it. */
export function lokiFieldName(key: string): string {
  return lokiJsonName([key])
}

function typeOf(value: unknown): string {
  if (typeof value === 'boolean') return 'boolean'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  return 'string'
}

/** A JSON object's leaves as Loki's json parser names them (lokiJsonName; arrays and nulls left out), with their key paths. */
function jsonLeaves(value: Record<string, unknown>, out: { fields: [string, unknown][]; paths: string[][] }, prefix: string[] = []): void {
  for (const [key, child] of Object.entries(value)) {
    const path = [...prefix, key]
    if (child === null || Array.isArray(child)) continue
    if (typeof child === 'object') {
      if (path.length <= 8) jsonLeaves(child as Record<string, unknown>, out, path)
    } else {
      out.fields.push([lokiJsonName(path), child])
      out.paths.push(path)
    }
  }
}

const LOGFMT_PAIR = /(?:^|\s)([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)/g

/**
 * The fields of one line and the parser that finds them: JSON objects first
 * (with each field's key path), then logfmt pairs.
 */
export function lineFields(line: string): { parser: Parser; fields: [string, unknown][]; paths?: string[][] } | undefined {
  if (line.startsWith('{')) {
    try {
      const value = JSON.parse(line) as unknown
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const leaves = { fields: [] as [string, unknown][], paths: [] as string[][] }
        jsonLeaves(value as Record<string, unknown>, leaves)
        return { parser: 'json', ...leaves }
      }
    } catch {
      // not JSON: maybe logfmt
    }
  }
  const pairs = [...line.matchAll(LOGFMT_PAIR)].map(([, key, raw]): [string, unknown] => {
    const text = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw
    return [key, /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text]
  })
  return pairs.length >= 2 ? { parser: 'logfmt', fields: pairs } : undefined
}

/** The label a filter extracts a field without a name into (a JSON key that is empty or only spaces). */
const UNNAMED_FIELD = 'empty_key'

/**
 * A filter for the field's most common value: `| json | name="value"`, or,
 * where the plain `| json` cannot be used (the field has no label name, or
 * the lines hold a key without one, on which `| json` fails), the field
 * extracted alone by its JSON path: `| json name="[\"key\"]" | name="value"`.
 * Loki's path expressions have no escapes: a key holding `"`, `]`, `\` or a
 * control character cannot be named, and gets no filter.
 */
function filterFor(field: { name: string; parser: Parser; type: string; top?: string; path?: string[] }, byPath: boolean): string | undefined {
  let stage = `| ${field.parser}`
  let name = field.name
  if (field.parser === 'json' && (byPath || name === '')) {
    if (!field.path || field.path.some((part) => /["\\\]\p{Cc}]/u.test(part))) return undefined
    if (name === '') name = UNNAMED_FIELD
    const identifiers = field.path.every((part) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(part))
    stage = `| json ${name}=${quoteLogQL(identifiers ? field.path.join('.') : field.path.map((part) => `["${part}"]`).join(''))}`
  }
  if (name === '') return undefined
  if (field.top === undefined) return `${stage} | ${name}!=""`
  if (field.type === 'int' || field.type === 'float') return `${stage} | ${name}>=${field.top}`
  return `${stage} | ${name}=${quoteLogQL(field.top)}`
}

const ID_LIKE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|\d{6,}|[A-Za-z]+[-_][0-9a-z]{6,})$/i

/** Index labels that behave like fields: listed as never-labels, too many values, or values that look like ids. */
export function suspectLabels(series: Labels[], policy: LabelPolicy): SuspectLabel[] {
  const suspects: SuspectLabel[] = []
  for (const { label, uniqueValues, sampleValues } of analyzeLabels(series).labels) {
    if (label.startsWith('__')) continue
    const reasons: string[] = []
    if (policy.forbiddenLabels.includes(label)) reasons.push('the label policy says it must stay a JSON field')
    if (uniqueValues > policy.maxValuesPerLabel) reasons.push(`${uniqueValues} values, above the policy's ${policy.maxValuesPerLabel}`)
    const idLike = sampleValues.filter((value) => ID_LIKE.test(value)).length
    if (uniqueValues > 1 && idLike > 0 && idLike >= sampleValues.length / 2) reasons.push('its values look like ids')
    if (reasons.length > 0) suspects.push({ name: label, values: uniqueValues, reason: reasons.join('; ') })
  }
  return suspects
}

/** The fields of the selector's lines over the range, from a sample of `sample` lines and Loki's detected fields. */
export async function fieldsOf(client: LokiClient, selector: string, range: { start: Nanos; end: Nanos }, options: { policy: LabelPolicy; sample: number }): Promise<FieldsReport> {
  const tallies = new Map<string, Tally>()
  let sampled = 0
  const streamLabels = new Set<string>()
  for await (const page of fetchLogPages(client, { query: selector, ...range, direction: 'backward', limit: options.sample, batch: options.sample })) {
    for (const entry of page) {
      sampled++
      for (const name of Object.keys(entry.stream.labels)) streamLabels.add(name)
      const found = lineFields(entry.line)
      if (!found) continue
      // Keys Loki names alike ("a" and {"a": {"": …}}): the first is the field, as in Loki.
      const named = new Set<string>()
      for (const [index, [key, value]] of found.fields.entries()) {
        // A parsed key that is also a stream label comes out as <key>_extracted.
        const base = lokiFieldName(key)
        const name = Object.hasOwn(entry.stream.labels, base) ? `${base}_extracted` : base
        if (named.has(name)) continue
        named.add(name)
        const tally: Tally = tallies.get(name) ?? { types: new Map(), parsers: new Set(), values: new Map(), lines: 0 }
        tallies.set(name, tally)
        tally.lines++
        tally.parsers.add(found.parser)
        tally.path ??= found.paths?.[index]
        const type = typeOf(value)
        tally.types.set(type, (tally.types.get(type) ?? 0) + 1)
        const text = String(value)
        tally.values.set(text, (tally.values.get(text) ?? 0) + 1)
      }
    }
  }

  let detected: DetectedField[] = []
  let lokiUnavailable: string | undefined
  try {
    detected = await client.detectedFields(selector, range, { lineLimit: options.sample, limit: 1000 })
  } catch (error) {
    if (!(error instanceof ObsError)) throw error
    lokiUnavailable = error.message
  }
  const byName = new Map(detected.map((field) => [field.label, field]))
  const emptyJsonKey = [...tallies.keys(), ...byName.keys()].includes('')

  const names = new Set([...tallies.keys(), ...byName.keys()])
  const fields = [...names].map((name): FieldReport => {
    const tally = tallies.get(name)
    const lokiField = byName.get(name)
    const sampleType = tally ? [...tally.types].sort((a, b) => b[1] - a[1])[0][0] : undefined
    const type = sampleType ?? lokiField?.type ?? 'string'
    const parsers: Parser[] = tally ? [...tally.parsers] : ((lokiField?.parsers ?? []).filter((p) => p === 'json' || p === 'logfmt') as Parser[])
    const top = tally
      ? [...tally.values]
          .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
          .slice(0, TOP_VALUES)
          .map(([value, count]) => ({ value, count }))
      : []
    return {
      name,
      type,
      parsers,
      lokiCardinality: lokiField?.cardinality,
      sampleCardinality: tally?.values.size ?? 0,
      lines: tally?.lines ?? 0,
      top,
      filter: filterFor({ name, parser: parsers[0] ?? 'json', type, top: top[0]?.value, path: tally?.path ?? lokiField?.jsonPath }, emptyJsonKey),
      neverALabel: options.policy.forbiddenLabels.includes(name),
    }
  })
  fields.sort((a, b) => b.lines - a.lines || a.name.localeCompare(b.name))
  const series = await client.series([selector], range)
  return { selector, sampled, fields, suspectLabels: suspectLabels(series, options.policy), lokiUnavailable, emptyJsonKey }
}
