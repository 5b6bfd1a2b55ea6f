/**
 * What obs knows of pino's log lines (the app's logger): its level names and
 * numbers, and which of them are errors. Rendering colours by it, trace
 * counts a request's errors by it.
 */

const PINO_LEVELS: Record<string, string> = { '10': 'trace', '20': 'debug', '30': 'info', '40': 'warn', '50': 'error', '60': 'fatal' }
const LEVEL_FIELD = /"level"\s*:\s*(?:"([A-Za-z]{1,10})"|(\d{2}))/

/** A level field's value as a name: pino's numbers (50) mapped to theirs (error), names lower-cased. */
export function levelName(value: unknown): string | undefined {
  if (typeof value === 'number') return PINO_LEVELS[String(value)] ?? String(value)
  if (typeof value !== 'string' || value === '') return undefined
  return PINO_LEVELS[value] ?? value.toLowerCase()
}

/** The level of a JSON log line, string or pino number, without parsing the whole line. */
export function lineLevel(line: string): string | undefined {
  if (line.charCodeAt(0) !== 123 /* { */) return undefined
  const match = LEVEL_FIELD.exec(line)
  if (!match) return undefined
  return match[1]?.toLowerCase() ?? PINO_LEVELS[match[2]]
}

const ERROR_LEVELS = new Set(['error', 'err', 'fatal', 'critical'])

/** Whether a level name (levelName's) marks an error. */
export function isErrorLevel(name: string | undefined): boolean {
  return name !== undefined && ERROR_LEVELS.has(name)
}

/**
 * The error levels as one LogQL regex for a `level` field extracted with
 * `| json`: the names in any case and pino's numbers for error and fatal
 * (Loki anchors label regexes, so "50" does not match "500").
 */
export const ERROR_LEVEL_REGEX = `(?i)${[...ERROR_LEVELS, ...Object.keys(PINO_LEVELS).filter((n) => isErrorLevel(PINO_LEVELS[n]))].join('|')}`
