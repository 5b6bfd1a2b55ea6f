import { parser } from '@grafana/lezer-logql'
import type { SyntaxNode, Tree } from '@lezer/common'
import { UsageError } from '../errors.ts'
import { shown } from '../text.ts'

// Building LogQL text needs no parser: its helpers live apart, so that what
// only builds queries (trace) does not load the parser.
export { checkLabelName, LOGQL_KEYWORDS, quoteLogQL, streamSelector } from './logql-text.ts'

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
  // Loki counts columns in characters (Go runes), not UTF-16 units: an emoji is one column.
  const column = [...query.slice(lineStart, offset)].length + 1
  // Tabs would shift the caret; show them as one space so the column lines up.
  return { line, column, text: text.replace(/\t/g, ' ') }
}

/** Loki refuses a query this long or longer before parsing it ("input size too long"), counting bytes. */
export const MAX_QUERY_BYTES = 131_072

/**
 * Lezer keeps its trees shallow enough to walk recursively with two guards
 * that turn long valid queries into syntax errors: it forces the parse out of
 * a left-associative chain after 300 reductions spanning 2000 characters each
 * (hundreds of `and`, `+` or chained stages), and cuts any parse stack deeper
 * than 8400 entries (about 1400 `or` terms or 2800 nested parentheses). Loki
 * parses all of these. The first guard is reset before every step: the tree of
 * such a chain stays shallow anyway, as lezer balances long node sequences.
 * The second cannot be switched off, so the parse reports where it first came
 * near it: the grammar's verdict holds only before that offset.
 */
const CUT_DEPTH = 8400
/** A step of the parse grows a stack by a few entries; stop trusting it well before the cut. */
const CUT_MARGIN = 300

/** The part of @lezer/lr's Parse object the guards above live in; pinned by test/unit/logql.test.ts. */
interface LezerParse {
  bigReductionCount: number
  stacks: { pos: number; stack: unknown[] }[]
  advance(): Tree | null
}

function parseQuery(text: string): { tree: Tree; trustedUntil: number } {
  const parse = parser.startParse(text) as unknown as LezerParse
  let trustedUntil = Infinity
  for (;;) {
    parse.bigReductionCount = 0
    for (const stack of parse.stacks) if (stack.stack.length >= CUT_DEPTH - CUT_MARGIN) trustedUntil = Math.min(trustedUntil, stack.pos)
    const tree = parse.advance()
    if (tree) return { tree, trustedUntil }
  }
}

/**
 * Checks a query's syntax with Grafana's LogQL grammar and returns its kind.
 * Semantic checks stay with Loki; what is caught here never leaves the machine.
 */
export function checkLogQL(query: string): QueryKind {
  if (query.trim() === '') throw new UsageError('the query is empty', 'give a LogQL query such as \'{app="cogni-template"}\'')
  const bytes = Buffer.byteLength(query)
  if (bytes >= MAX_QUERY_BYTES)
    throw new UsageError(
      `the query is ${bytes} bytes; Loki refuses queries of ${MAX_QUERY_BYTES} bytes or more`,
      'shorten it, for example with one regular expression instead of many `or` terms',
    )
  let text = parsable(query)
  for (let repairs = 0; ; repairs++) {
    const { tree, trustedUntil } = parseQuery(text)
    const { error, selectors } = firstError(tree)
    // Past the depth the grammar can follow, Loki is the judge; it names the column itself.
    if (!error || error.from >= trustedUntil) {
      for (const selector of selectors) checkSelectorHasMatcher(query, selector)
      break
    }
    const separator = juxtaposedLabelFilter(tree, text, error.from)
    if (separator === undefined) throw syntaxError(query, error)
    // Each repair is a parse of its own; a query with more than a few is left to Loki.
    if (repairs === MAX_REPAIRS) break
    text = `${text.slice(0, separator)},${text.slice(separator + 1)}`
  }
  return kindOf(query)
}

function firstError(tree: Tree): { error?: SyntaxNode; selectors: SyntaxNode[] } {
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
  return { error, selectors }
}

const MAX_REPAIRS = 16

/**
 * Loki reads label filters side by side (`level="error" status="500"`) as
 * joined by `and`; the grammar wants `and` or a comma. Where an error follows
 * a label filter and whitespace, the offset of that whitespace: a comma there
 * means the same to both and keeps every column.
 */
function juxtaposedLabelFilter(tree: Tree, text: string, offset: number): number | undefined {
  const previous = text.slice(0, offset).trimEnd().length
  if (previous === offset) return undefined
  for (let node: SyntaxNode | null = tree.resolveInner(previous, -1); node; node = node.parent) {
    if (node.name === 'LabelFilter' && node.to === previous) return previous
  }
  return undefined
}

/**
 * A log query is a stream selector, perhaps in parentheses; nothing else
 * starts with `{`. Read from the text, not the tree: the tree of a query
 * deeper than the grammar follows is a guess past the cut.
 */
function kindOf(query: string): QueryKind {
  return /^(?:\s|#[^\n]*|\()*\{/.test(query) ? 'log' : 'metric'
}

/**
 * The grammar looks identifiers up as keywords on a plain object, so label
 * names like `constructor` or `__proto__` read as syntax errors. Same-length
 * stand-ins keep every column where it was.
 */
function parsable(query: string): string {
  return query.replace(/\b(constructor|__proto__|toString|valueOf|hasOwnProperty)\b/g, (name) => 'x'.repeat(name.length))
}

function syntaxError(query: string, error: SyntaxNode): LogQLSyntaxError {
  // Loki reads `[5x]` as one token and names the column of its bracket.
  const range = error.parent?.name === 'Range' ? error.parent : undefined
  if (range) return new LogQLSyntaxError(query, range.from, `invalid range ${oneLineSlice(query, range.from, range.to)}: a range is a duration such as [5m]`)
  return new LogQLSyntaxError(query, error.from, describeError(query, error.from))
}

function oneLineSlice(query: string, from: number, to: number): string {
  return query.slice(from, Math.min(to, from + 20)).replace(/\s+/g, ' ')
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
    throw new LogQLSyntaxError(query, selector.from, 'the selector needs a label matcher that cannot match an empty value, like {app="cogni-template"}')
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
 * Labels a log query pins with `=` in its only stream selector: every entry
 * carries them, so a terminal view need not repeat them.
 */
export function pinnedLabels(query: string): Record<string, string> {
  const pinned: Record<string, string> = {}
  const selectors = parseQuery(parsable(query)).tree.topNode.getChild('Expr')?.getChild('LogExpr')?.getChildren('Selector') ?? []
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

/**
 * The stream selector of a log query, as written, without its line filters
 * and parsers (`{app="a"} |= "x" | json` gives `{app="a"}`); undefined for a
 * query with other than one selector (a metric query).
 */
export function querySelector(query: string): string | undefined {
  const selectors = parseQuery(parsable(query)).tree.topNode.getChild('Expr')?.getChild('LogExpr')?.getChildren('Selector') ?? []
  return selectors.length === 1 ? query.slice(selectors[0].from, selectors[0].to) : undefined
}

/**
 * The stream selector of a command's SELECTOR argument, checked before
 * anything is sent: a selector, or a log query whose selector is taken; a
 * metric query is refused (volume and patterns look streams up by selector).
 */
export function selectorArgument(query: string, command: string): string {
  checkLogQL(query)
  const selector = querySelector(query)
  if (selector === undefined) {
    // A metric query over one stream selector says which streams were meant: that selector is the fix.
    const inner: string[] = []
    parseQuery(parsable(query)).tree.iterate({
      enter(ref) {
        if (ref.name !== 'Selector') return undefined
        inner.push(query.slice(ref.from, ref.to))
        return false
      },
    })
    const distinct = [...new Set(inner)]
    throw new UsageError(
      `${command} takes a stream selector or a log query (a selector with optional filters), not the metric query "${shown(query)}"`,
      distinct.length === 1 ? `give its selector alone: ${shown(distinct[0])}` : 'give a selector such as {app="cogni-template"}',
    )
  }
  return selector
}
