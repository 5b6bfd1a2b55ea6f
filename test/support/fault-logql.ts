/**
 * Independent readers of LogQL for the injection properties: the structure
 * of a query as Grafana's grammar parses it, and string literals unquoted the
 * way Loki does (Go's strconv.Unquote), written here from the Go
 * specification rather than taken from src/.
 */

import { parser } from '@grafana/lezer-logql'
import type { SyntaxNode } from '@lezer/common'

export interface ParsedMatcher {
  name: string
  op: string
  /** The literal as written, quotes included. */
  literal: string
}

export interface QueryShape {
  errors: number
  selectors: number
  /** Matchers of the first selector. */
  selector: ParsedMatcher[]
  /** The pipeline stages in order: `|= literal`, `json`, `label op literal`, … */
  stages: { kind: 'line' | 'parser' | 'label' | 'other'; op: string; literal?: string; name?: string; text: string }[]
}

function matchersOf(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = []
  for (let child = node.firstChild; child; child = child.nextSibling) {
    if (child.name === 'Matcher') out.push(child)
    else if (child.name === 'Matchers') out.push(...matchersOf(child))
  }
  return out
}

function matcher(query: string, node: SyntaxNode): ParsedMatcher {
  const name = node.getChild('Identifier')
  const value = node.getChild('String')
  const op = node.firstChild?.nextSibling
  return {
    name: name ? query.slice(name.from, name.to) : '',
    op: op ? query.slice(op.from, op.to) : '',
    literal: value ? query.slice(value.from, value.to) : '',
  }
}

/** Walks a query: error nodes, selectors, and the pipeline stages in order. */
export function shapeOf(query: string): QueryShape {
  const tree = parser.parse(query)
  const shape: QueryShape = { errors: 0, selectors: 0, selector: [], stages: [] }
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) shape.errors++
      if (ref.name === 'Selector') {
        shape.selectors++
        if (shape.selectors === 1) shape.selector = matchersOf(ref.node).map((m) => matcher(query, m))
      }
      if (ref.name === 'PipelineStage') {
        const node = ref.node
        const text = query.slice(node.from, node.to)
        const lineFilters = node.getChild('LineFilters')
        const labelParser = node.getChild('LabelParser')
        const labelFilter = node.getChild('LabelFilter')
        if (lineFilters) {
          for (const filter of lineFilters.getChildren('LineFilter')) {
            const op = filter.getChild('Filter')
            const literal = filter.getChild('String')
            shape.stages.push({ kind: 'line', op: op ? query.slice(op.from, op.to) : '', literal: literal ? query.slice(literal.from, literal.to) : undefined, text })
          }
          // Nested LineFilters (several filters in one stage) are not expected here.
          if (lineFilters.getChild('LineFilters')) shape.stages.push({ kind: 'other', op: 'nested line filters', text })
        } else if (labelParser) {
          shape.stages.push({ kind: 'parser', op: query.slice(labelParser.from, labelParser.to), text })
        } else if (labelFilter) {
          const m = labelFilter.getChild('Matcher')
          if (m && m.from === labelFilter.from && m.to === labelFilter.to) {
            const parsed = matcher(query, m)
            shape.stages.push({ kind: 'label', op: parsed.op, name: parsed.name, literal: parsed.literal, text })
          } else {
            shape.stages.push({ kind: 'other', op: 'complex label filter', text })
          }
        } else {
          shape.stages.push({ kind: 'other', op: '?', text })
        }
        return false
      }
      return undefined
    },
  })
  return shape
}

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 }

/**
 * Go's strconv.Unquote for a double-quoted or back-quoted literal, as Loki
 * reads LogQL strings; the result as UTF-8 bytes (\x and octal escapes are
 * bytes). Throws where Go returns an error.
 */
export function goUnquote(literal: string): Buffer {
  if (literal.length >= 2 && literal.startsWith('`') && literal.endsWith('`')) {
    const inner = literal.slice(1, -1)
    if (inner.includes('`')) throw new Error('backquote inside a raw string')
    return Buffer.from(inner.replace(/\r/g, ''), 'utf8')
  }
  if (literal.length < 2 || !literal.startsWith('"') || !literal.endsWith('"')) throw new Error('not a quoted string')
  const inner = literal.slice(1, -1)
  if (inner.includes('\n')) throw new Error('newline in a quoted string')
  const out: number[] = []
  const chars = [...inner]
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]
    if (c === '"') throw new Error('unescaped quote')
    if (c !== '\\') {
      const code = c.codePointAt(0)!
      if (code >= 0xd800 && code <= 0xdfff) throw new Error('lone surrogate')
      out.push(...Buffer.from(c, 'utf8'))
      continue
    }
    const e = chars[++i]
    if (e === undefined) throw new Error('trailing backslash')
    if (e in SIMPLE_ESCAPES) {
      out.push(SIMPLE_ESCAPES[e])
    } else if (e >= '0' && e <= '7') {
      const digits = chars.slice(i, i + 3).join('')
      if (!/^[0-7]{3}$/.test(digits) || parseInt(digits, 8) > 255) throw new Error('bad octal escape')
      out.push(parseInt(digits, 8))
      i += 2
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const size = e === 'x' ? 2 : e === 'u' ? 4 : 8
      const digits = chars.slice(i + 1, i + 1 + size).join('')
      if (!new RegExp(`^[0-9a-fA-F]{${size}}$`).test(digits)) throw new Error(`bad \\${e} escape`)
      const value = parseInt(digits, 16)
      i += size
      if (e === 'x') out.push(value)
      else {
        if (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) throw new Error('invalid code point')
        out.push(...Buffer.from(String.fromCodePoint(value), 'utf8'))
      }
    } else {
      throw new Error(`unknown escape \\${e}`)
    }
  }
  return Buffer.from(out)
}

/** goUnquote as text; throws if the bytes are not UTF-8. */
export function goUnquoteText(literal: string): string {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(goUnquote(literal))
}
