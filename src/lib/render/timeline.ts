import type { ChalkInstance } from 'chalk'
import type { LogEntry } from '../loki/paging.ts'
import { isErrorLevel, levelName } from '../pino.ts'
import { neutralize } from '../text.ts'
import { formatNanos, humanAge, humanDuration, type Nanos, nowNanos } from '../time.ts'
import { colorLevel } from './output.ts'

/** One request's lines, oldest first, each with its JSON fields (empty for a line that is not JSON). */
export interface Timeline {
  reqId: string
  entries: { entry: LogEntry; fields: Record<string, unknown> }[]
}

interface TimelineSummary {
  spanNs: Nanos
  services: Record<string, number>
  errors: number
}

function summarize(timeline: Timeline): TimelineSummary {
  const services: Record<string, number> = {}
  let errors = 0
  for (const { entry, fields } of timeline.entries) {
    const service = entry.stream.labels.service ?? '?'
    services[service] = (services[service] ?? 0) + 1
    if (isErrorLevel(levelName(fields.level))) errors++
  }
  const first = timeline.entries[0]?.entry.ts
  const last = timeline.entries.at(-1)?.entry.ts
  return { spanNs: first && last ? BigInt(last) - BigInt(first) : 0n, services, errors }
}

/** Fields every pino line has; the timeline shows them in columns or not at all. */
const ROUTINE_FIELDS = new Set(['level', 'msg', 'time', 'reqId', 'pid', 'hostname', 'v'])

/** The service column's most: one long service label value must not push every line's message off the screen. */
const SERVICE_COLUMN_MAX = 24

function cut(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text
}

/** The request as a timeline: time, offset from the first line, service, level, message, notable fields; then a summary. */
export function renderTimeline(timeline: Timeline, chalk: ChalkInstance): string {
  const first = timeline.entries[0] ? BigInt(timeline.entries[0].entry.ts) : 0n
  const serviceWidth = Math.min(SERVICE_COLUMN_MAX, Math.max(7, ...timeline.entries.map(({ entry }) => (entry.stream.labels.service ?? '?').length)))
  const lines = timeline.entries.map(({ entry, fields }) => {
    const clock = formatNanos(entry.ts).slice(11, 23)
    const offset = `+${humanDuration(BigInt(entry.ts) - first)}`.padStart(9)
    const service = cut(neutralize(entry.stream.labels.service ?? '?'), serviceWidth).padEnd(serviceWidth)
    const level = colorLevel(chalk, levelName(fields.level) ?? '-')
    const message = neutralize(typeof fields.msg === 'string' ? fields.msg : entry.line)
    const notable = Object.entries(fields)
      .filter(([name]) => !ROUTINE_FIELDS.has(name))
      .map(([name, value]) => `${neutralize(name)}=${neutralize(typeof value === 'string' ? value : JSON.stringify(value))}`)
      .join(' ')
    return `${chalk.dim(clock)} ${chalk.dim(offset)}  ${chalk.cyan(service)} ${level} ${message}${notable ? `  ${chalk.dim(notable)}` : ''}`
  })
  const summary = summarize(timeline)
  const services = Object.entries(summary.services)
    .map(([name, count]) => `${neutralize(name)} (${count})`)
    .join(', ')
  const errors = summary.errors > 0 ? chalk.red.bold(`${summary.errors} error${summary.errors === 1 ? '' : 's'}`) : 'no errors'
  lines.push(
    '',
    `${chalk.bold(neutralize(timeline.reqId))}: ${timeline.entries.length} lines over ${humanDuration(summary.spanNs)}, ` +
      `started ${humanAge(first, nowNanos())} (${formatNanos(first).slice(0, 19)}Z); ` +
      `services: ${services}; ${errors}`,
  )
  return `${lines.join('\n')}\n`
}
