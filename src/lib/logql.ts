import type { SyntaxNode } from '@lezer/common'
import { parser } from '@grafana/lezer-logql'
import { UsageError } from './errors.ts'

export type QueryKind = 'log' | 'metric'

/**
 * A LogQL syntax error found before anything is sent. Its message is the query
 * with a caret under the offending column and a one-line reason.
 */
export class LogQLSyntaxError extends UsageError {
  readonly line: number
  readonly column: number

  constructor(query: string, offset: number, reason: string) {
    const { line, column, text } = locate(query, offset)
    const caret = `${' '.repeat(column - 1)}^`
    super(`invalid LogQL at line ${line}, col ${column}: ${reason}\n  ${text}\n  ${caret}`)
    this.name = 'LogQLSyntaxError'
    this.line = line
    this.column = column
  }
}

function locate(query: string, offset: number): { line: number; column: number; text: string } {
  const before = query.slice(0, offset)
  const line = before.split('\n').length
  const lineStart = before.lastIndexOf('\n') + 1
  const lineEnd = query.indexOf('\n', offset)
  const text = query.slice(lineStart, lineEnd === -1 ? undefined : lineEnd)
  // Tabs would shift the caret; show them as one space so the column lines up.
  return { line, column: offset - lineStart + 1, text: text.replace(/\t/g, ' ') }
}

/**
 * Checks a query's syntax with Grafana's LogQL grammar and returns its kind.
 * Semantic checks stay with Loki; what is caught here never leaves the machine.
 */
export function checkLogQL(query: string): QueryKind {
  if (query.trim() === '') throw new UsageError('the query is empty', 'give a LogQL query such as \'{app="cogni-template"}\'')
  const tree = parser.parse(parsable(query))
  let error: SyntaxNode | undefined
  const selectors: SyntaxNode[] = []
  tree.iterate({
    enter(ref) {
      if (error) return false
      if (ref.type.isError) {
        error = ref.node
        return false
      }
      if (ref.name === 'Selector') selectors.push(ref.node)
      return undefined
    },
  })
  if (error) throw new LogQLSyntaxError(query, error.from, describeError(query, error.from))
  for (const selector of selectors) checkSelectorHasMatcher(query, selector)
  const expr = tree.topNode.getChild('Expr')
  return expr?.getChild('LogExpr') ? 'log' : 'metric'
}

/**
 * The grammar looks identifiers up as keywords on a plain object, so label
 * names like `constructor` or `__proto__` read as syntax errors. Same-length
 * stand-ins keep every column where it was.
 */
function parsable(query: string): string {
  return query.replace(/\b(constructor|__proto__|toString|valueOf|hasOwnProperty)\b/g, (name) => 'x'.repeat(name.length))
}

function describeError(query: string, offset: number): string {
  if (offset >= query.trimEnd().length) {
    const open = unbalanced(query)
    return open ? `unexpected end of query: "${open}" is never closed` : 'unexpected end of query'
  }
  const token = query.slice(offset).match(/^\S{1,20}/)?.[0] ?? query[offset]
  if (token.startsWith('}') && query.slice(0, offset).trimEnd().endsWith('{')) {
    return 'a stream selector needs at least one label matcher, like {app="cogni-template"}'
  }
  return `unexpected "${token}"`
}

function unbalanced(query: string): string | undefined {
  const stack: string[] = []
  const closers: Record<string, string> = { ')': '(', ']': '[', '}': '{' }
  let quote: string | undefined
  for (let i = 0; i < query.length; i++) {
    const c = query[i]
    if (quote) {
      if (c === '\\' && quote !== '`') i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === '"' || c === '`') quote = c
    else if (c === '(' || c === '[' || c === '{') stack.push(c)
    else if (c in closers && stack.at(-1) === closers[c]) stack.pop()
  }
  return quote ?? stack.at(-1)
}

/**
 * Loki refuses a selector whose matchers can all match the empty string; say
 * so before sending, as a syntax error would be.
 */
function checkSelectorHasMatcher(query: string, selector: SyntaxNode): void {
  const matchers = matchersOf(selector)
  const selective = matchers.some((matcher) => {
    const value = matcher.getChild('String')
    if (!value) return false
    const pattern = unquote(query.slice(value.from, value.to))
    if (pattern === undefined) return true
    if (matcher.getChild('Eq')) return pattern !== ''
    if (matcher.getChild('Re')) return !regexMatchesEmpty(pattern)
    return false
  })
  if (!selective) {
    throw new LogQLSyntaxError(
      query,
      selector.from,
      'the selector needs a label matcher that cannot match an empty value, like {app="cogni-template"}',
    )
  }
}

/** The matchers of a selector; the grammar nests them as Matchers(Matchers(Matcher), Matcher). */
function matchersOf(node: SyntaxNode): SyntaxNode[] {
  const matchers: SyntaxNode[] = []
  for (let child = node.firstChild; child; child = child.nextSibling) {
    if (child.name === 'Matcher') matchers.push(child)
    else if (child.name === 'Matchers') matchers.push(...matchersOf(child))
  }
  return matchers
}

function unquote(literal: string): string | undefined {
  if (literal.startsWith('`')) return literal.slice(1, -1)
  try {
    return JSON.parse(literal) as string
  } catch {
    return undefined
  }
}

function regexMatchesEmpty(pattern: string): boolean {
  try {
    return new RegExp(`^(?:${pattern})$`).test('')
  } catch {
    // RE2 syntax JavaScript cannot read: leave the verdict to Loki.
    return false
  }
}

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

export function checkLabelName(name: string): string {
  if (!LABEL_NAME.test(name)) throw new UsageError(`invalid label name "${name}"`, 'label names are letters, digits and _, not starting with a digit')
  return name
}

/**
 * Labels a log query pins with `=` in its only stream selector: every entry
 * carries them, so a terminal view need not repeat them.
 */
export function pinnedLabels(query: string): Record<string, string> {
  const pinned: Record<string, string> = {}
  const selectors = parser.parse(parsable(query)).topNode.getChild('Expr')?.getChild('LogExpr')?.getChildren('Selector') ?? []
  if (selectors.length !== 1) return pinned
  for (const matcher of matchersOf(selectors[0])) {
    const name = matcher.getChild('Identifier')
    const value = matcher.getChild('String')
    if (!matcher.getChild('Eq') || !name || !value) continue
    const text = unquote(query.slice(value.from, value.to))
    if (text !== undefined) pinned[query.slice(name.from, name.to)] = text
  }
  return pinned
}
