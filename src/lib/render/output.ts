import type { Writable } from 'node:stream'
import type { ChalkInstance } from 'chalk'
import type { Labels, QueryData, SampleSeries } from '../loki/client.ts'
import type { LogEntry } from '../loki/paging.ts'
import { lineLevel } from '../pino.ts'
import { neutralize } from '../text.ts'
import { formatNanos } from '../time.ts'
import { sparkline, writeChunk } from './terminal.ts'

export const OUTPUT_MODES = ['pretty', 'raw', 'jsonl', 'json'] as const
export type OutputMode = (typeof OUTPUT_MODES)[number]

/** Where a line stands in a match's context (query-range -A/-B/-C). */
export type ContextRole = 'before' | 'match' | 'after'

export interface ContextLine {
  entry: LogEntry
  role: ContextRole
}

/** One run of lines, oldest first: matches and their context, merged where their contexts overlap. */
export type ContextGroup = ContextLine[]

export function defaultOutputMode(stdout: { isTTY?: boolean }): OutputMode {
  return stdout.isTTY ? 'pretty' : 'raw'
}

export interface PrinterOptions {
  chalk: ChalkInstance
  /** Labels every entry shares because the query pins them; pretty leaves them out. */
  pinnedLabels?: Labels
}

/**
 * One entry as a jsonl object. `labels` is the entry's stream, every label of
 * it, as in logcli's jsonl; structured metadata and labels parsed by the query
 * (`| json`) stay apart under their own keys, present only when the entry has
 * them, as Loki categorizes them. Merged into `labels` (as logcli does), they
 * would make every line of a `| json` query look like a stream of its own.
 */
export function entryToJsonl(entry: LogEntry, trailing = ''): string {
  const { structuredMetadata, parsed } = entry.meta ?? {}
  const extra = (hasKeys(structuredMetadata) ? `,"structuredMetadata":${JSON.stringify(structuredMetadata)}` : '') + (hasKeys(parsed) ? `,"parsed":${JSON.stringify(parsed)}` : '')
  return `{"labels":${entry.stream.json}${extra},"line":${JSON.stringify(entry.line)},"timestamp":"${formatNanos(entry.ts)}"${trailing}}`
}

function hasKeys(labels: Labels | undefined): labels is Labels {
  if (!labels) return false
  for (const _ in labels) return true
  return false
}

/** Characters per write to stdout. */
const WRITE_CHUNK = 64 * 1024

/**
 * Prints pages of log entries as they arrive, in writes of about WRITE_CHUNK
 * characters; each waits for stdout to drain, so memory does not grow with the
 * number of lines.
 */
export class EntryPrinter {
  private readonly mode: OutputMode
  private readonly out: Writable
  private readonly options: PrinterOptions
  private count = 0
  private groups = 0

  constructor(mode: OutputMode, out: Writable, options: PrinterOptions) {
    this.mode = mode
    this.out = out
    this.options = options
  }

  get printed(): number {
    return this.count
  }

  async page(entries: LogEntry[]): Promise<void> {
    // Not the whole page as one string (and one buffer): megabytes that only
    // a full GC frees.
    let chunk = ''
    for (const entry of entries) {
      chunk += this.format(entry)
      if (chunk.length >= WRITE_CHUNK) {
        await writeChunk(this.out, chunk)
        chunk = ''
      }
    }
    await writeChunk(this.out, chunk)
  }

  /**
   * A match and its context, as grep prints it: `--` between groups (raw,
   * pretty), the matching lines marked (pretty: `>` and bold), and in
   * jsonl/json the line's `context` (before, match, after) and its group's number.
   */
  async group(lines: ContextLine[]): Promise<void> {
    let chunk =
      this.groups > 0 && (this.mode === 'raw' || this.mode === 'pretty')
        ? `${this.options.chalk.dim('--')}
`
        : ''
    for (const { entry, role } of lines) {
      chunk += this.format(entry, { role, group: this.groups })
      if (chunk.length >= WRITE_CHUNK) {
        await writeChunk(this.out, chunk)
        chunk = ''
      }
    }
    this.groups++
    await writeChunk(this.out, chunk)
  }

  private format(entry: LogEntry, context?: { role: ContextRole; group: number }): string {
    const first = this.count++ === 0
    const contextKeys = context ? `,"context":"${context.role}","group":${context.group}` : ''
    switch (this.mode) {
      case 'raw':
        return `${entry.line}\n`
      case 'jsonl':
        return `${entryToJsonl(entry, contextKeys)}\n`
      case 'json':
        return `${first ? '[\n' : ',\n'}${entryToJsonl(entry, contextKeys)}`
      case 'pretty': {
        const line = this.pretty(entry)
        if (!context) return `${line}\n`
        return context.role === 'match' ? `${this.options.chalk.bold(`> ${line}`)}\n` : `  ${line}\n`
      }
    }
  }

  async end(): Promise<void> {
    if (this.mode === 'json') await writeChunk(this.out, this.count === 0 ? '[]\n' : '\n]\n')
  }

  private pretty(entry: LogEntry): string {
    const { chalk, pinnedLabels } = this.options
    const labels = Object.entries(entry.stream.labels)
      .filter(([name, value]) => pinnedLabels?.[name] !== value)
      .map(([name, value]) => `${name}=${neutralize(value)}`)
      .join(' ')
    const level = lineLevel(entry.line)
    const tag = level ? `${colorLevel(chalk, level)} ` : ''
    return `${chalk.dim(formatNanos(entry.ts))} ${chalk.cyan(labels)} ${tag}${neutralize(entry.line)}`
  }
}

export function colorLevel(chalk: ChalkInstance, level: string): string {
  const label = level.toUpperCase().padEnd(5)
  switch (level) {
    case 'fatal':
    case 'critical':
      return chalk.magenta.bold(label)
    case 'error':
    case 'err':
      return chalk.red.bold(label)
    case 'warn':
    case 'warning':
      return chalk.yellow(label)
    case 'info':
      return chalk.green(label)
    default:
      return chalk.gray(label)
  }
}

export function formatLabels(labels: Labels): string {
  return `{${Object.entries(labels)
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
    .join(', ')}}`
}

/**
 * How wide a table may be: the terminal's width when stdout is one, else a
 * cap that a value cannot push past (a 2,000-character label value made the
 * volume table 2,000 columns wide). Data that must stay whole goes out as
 * raw, jsonl or json, which no table touches.
 */
export const PIPED_TABLE_WIDTH = 200

/** The narrowest a column is cut to, however many columns there are: enough to recognise a value. */
const MIN_COLUMN = 12

export function tableWidth(stdout: { isTTY?: boolean; columns?: number } = process.stdout): number {
  return stdout.isTTY && stdout.columns && stdout.columns > 0 ? stdout.columns : PIPED_TABLE_WIDTH
}

/**
 * The width each column's content may take so that the table fits `width`
 * (borders and padding included): the widest columns are cut first, to one
 * common width, and no column below MIN_COLUMN. Undefined for a column that
 * keeps its natural width.
 */
export function fitColumns(natural: number[], width: number): (number | undefined)[] {
  // Each column has a space either side and a border on its left; the table one more border.
  const budget = width - natural.length * 3 - 1
  const total = (cap: number) => natural.reduce((sum, w) => sum + Math.min(w, cap), 0)
  if (total(Number.POSITIVE_INFINITY) <= budget) return natural.map(() => undefined)
  let low = MIN_COLUMN
  let high = Math.max(...natural)
  while (low < high) {
    const cap = Math.ceil((low + high) / 2)
    if (total(cap) <= budget) low = cap
    else high = cap - 1
  }
  return natural.map((w) => (w > low ? low : undefined))
}

/**
 * A table in obs's style: a cyan head and grey borders on a terminal, no
 * colour otherwise. Every table obs prints is built here, and fitted to
 * tableWidth(): a cell too wide is cut with "…".
 */
export async function renderTable(head: string[], rows: string[][], chalk: ChalkInstance, width = tableWidth()): Promise<string> {
  // CommonJS modules: their exports are the default export, in Node as in the bundle.
  const [{ default: Table }, { default: utils }] = await Promise.all([import('cli-table3'), import('cli-table3/src/utils.js')])
  const { strlen } = utils
  const natural = head.map((cell, column) => Math.max(strlen(cell), ...rows.map((row) => strlen(row[column] ?? ''))))
  // cli-table3's widths count the padding; it cuts what is longer, escape sequences kept whole.
  const colWidths = fitColumns(natural, width).map((content) => (content === undefined ? null : content + 2))
  const table = new Table({ head, colWidths, truncate: '…', style: chalk.level > 0 ? { head: ['cyan'] } : { head: [], border: [] } })
  for (const row of rows) table.push(row)
  return table.toString()
}

/** Renders a metric result (vector, matrix or scalar) as a table, with a sparkline per series on a terminal. */
export async function renderMetricTable(data: QueryData, options: { chalk: ChalkInstance; sparklines: boolean }): Promise<string> {
  if (data.resultType === 'scalar') return renderTable(['time', 'value'], [[formatSeconds(data.result[0]), data.result[1]]], options.chalk)
  if (data.resultType === 'vector') {
    return renderTable(
      ['series', 'value'],
      sortSeries(data.result).map((series) => [neutralize(formatLabels(series.metric)), series.value?.[1] ?? '']),
      options.chalk,
    )
  }
  if (data.resultType === 'matrix') {
    const head = ['series', 'points', 'min', 'max', 'last']
    if (options.sparklines) head.push('trend')
    const rows = sortSeries(data.result).map((series) => {
      const numbers = (series.values ?? []).map(([, v]) => Number(v))
      const row = [
        neutralize(formatLabels(series.metric)),
        String(numbers.length),
        formatNumber(Math.min(...numbers)),
        formatNumber(Math.max(...numbers)),
        series.values?.at(-1)?.[1] ?? '',
      ]
      if (options.sparklines) row.push(sparkline(numbers))
      return row
    })
    return renderTable(head, rows, options.chalk)
  }
  throw new Error('renderMetricTable called with a log result')
}

/** A metric result in an output mode: tables for people, JSON for programs. */
export async function renderMetric(data: QueryData, mode: OutputMode, chalk: ChalkInstance, terminal: boolean): Promise<string> {
  if (mode === 'json') return `${JSON.stringify(data)}\n`
  if (mode === 'jsonl') return metricToJsonl(data)
  return `${await renderMetricTable(data, { chalk, sparklines: terminal })}\n`
}

/** Metric samples as jsonl: one object per sample, labels always included. */
export function metricToJsonl(data: QueryData): string {
  const lines: string[] = []
  if (data.resultType === 'scalar') {
    lines.push(JSON.stringify({ metric: {}, timestamp: formatSeconds(data.result[0]), value: data.result[1] }))
  } else if (data.resultType === 'vector' || data.resultType === 'matrix') {
    for (const series of data.result) {
      for (const [time, value] of series.values ?? (series.value ? [series.value] : [])) {
        lines.push(JSON.stringify({ metric: series.metric, timestamp: formatSeconds(time), value }))
      }
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : ''
}

function sortSeries(series: SampleSeries[]): SampleSeries[] {
  return [...series].sort((a, b) => formatLabels(a.metric).localeCompare(formatLabels(b.metric)))
}

function formatSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString()
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return ''
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)))
}
