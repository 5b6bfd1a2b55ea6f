/**
 * Building LogQL text: literals, selectors, label names. No parser here
 * (logql.ts has it), so that commands that only build queries start without
 * loading it.
 */
import { UsageError } from '../errors.ts'
import { shown } from '../text.ts'

/**
 * Quotes a value as a LogQL string literal. JSON string syntax is a subset of
 * the Go string literals Loki unquotes, so no value can end the string early.
 */
export function quoteLogQL(value: string): string {
  // A lone surrogate would become an escape Loki refuses; it cannot be in a log line anyway.
  return JSON.stringify(value.toWellFormed())
}

/** Builds a stream selector from label/value pairs, skipping empty values. */
export function streamSelector(labels: Record<string, string | undefined>): string {
  const matchers = Object.entries(labels)
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '')
    .map(([name, value]) => `${checkLabelName(name)}=${quoteLogQL(value)}`)
  return `{${matchers.join(', ')}}`
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * Words Loki's lexer always reads as keywords, in any case: a label with one
 * of these names cannot be written in a selector (`{on="x"}` is a syntax
 * error), so no query of obs's may name one.
 */
export const LOGQL_KEYWORDS = new Set([
  'and',
  'bool',
  'by',
  'decolorize',
  'drop',
  'group_left',
  'group_right',
  'ignoring',
  'json',
  'keep',
  'label_format',
  'line_format',
  'logfmt',
  'of',
  'offset',
  'on',
  'or',
  'pattern',
  'regexp',
  'unless',
  'unpack',
  'unwrap',
  'variants',
  'without',
])

export function checkLabelName(name: string): string {
  if (!LABEL_NAME.test(name)) throw new UsageError(`invalid label name "${shown(name)}"`, 'label names are letters, digits and _, not starting with a digit')
  if (LOGQL_KEYWORDS.has(name.toLowerCase())) {
    throw new UsageError(`label name "${name}" is a LogQL keyword: Loki cannot match it in a selector`, "rename the label where it is set (Alloy's relabel rules)")
  }
  return name
}
