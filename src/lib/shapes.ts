/**
 * Shapes of JSON answers (Loki's, Alloy's), checked before anything reads
 * them. A proxy, another server on the port, or another version can answer
 * 200 (and Loki `status: success`) with any JSON: a field of the wrong type
 * must end the command with one line naming the field, and exit 3, not a
 * TypeError deep in a renderer.
 *
 * A shape is a function that names what is wrong with a value, or returns
 * undefined. Shapes recurse only as deep as their own definition (and a
 * recursive shape at most MAX_NESTING levels), so hostile nesting cannot
 * exhaust the stack.
 */
import { UnreachableError } from './errors.ts'

export type Shape = (value: unknown, at: string) => string | undefined

/** Deeper nesting of a recursive shape (Alloy's blocks and values) is refused: real configs nest a few levels. */
export const MAX_NESTING = 64

function typeName(value: unknown): string {
  if (value === undefined) return 'missing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** What a shape says when a value is not what it wants. */
export const wrong = (at: string, value: unknown, want: string) => `${at} is ${typeName(value)}, not ${want}`

export const string: Shape = (value, at) => (typeof value === 'string' ? undefined : wrong(at, value, 'a string'))

export const number: Shape = (value, at) => (typeof value === 'number' && Number.isFinite(value) ? undefined : wrong(at, value, 'a number'))

/** Anything: a part obs does not read. */
export const any: Shape = () => undefined

export function optional(shape: Shape): Shape {
  return (value, at) => (value === undefined || value === null ? undefined : shape(value, at))
}

export function list(item: Shape): Shape {
  return (value, at) => {
    if (!Array.isArray(value)) return wrong(at, value, 'a list')
    for (let i = 0; i < value.length; i++) {
      const problem = item(value[i], `${at}[${i}]`)
      if (problem) return problem
    }
    return undefined
  }
}

/** A list of exactly these elements, then optionally `rest`. */
export function tuple(elements: Shape[], rest?: Shape): Shape {
  const want = `a list of ${elements.length}${rest ? ` or ${elements.length + 1}` : ''}`
  return (value, at) => {
    if (!Array.isArray(value) || value.length < elements.length || value.length > elements.length + (rest ? 1 : 0)) return wrong(at, value, want)
    for (let i = 0; i < value.length; i++) {
      const problem = (elements[i] ?? rest!)(value[i], `${at}[${i}]`)
      if (problem) return problem
    }
    return undefined
  }
}

/** An object with these fields; others are ignored. */
export function object(fields: Record<string, Shape>): Shape {
  const entries = Object.entries(fields)
  return (value, at) => {
    if (!isObject(value)) return wrong(at, value, 'an object')
    for (const [key, shape] of entries) {
      const problem = shape(Object.hasOwn(value, key) ? value[key] : undefined, `${at}.${key}`)
      if (problem) return problem
    }
    return undefined
  }
}

/** An object whose every value has one shape (label sets). */
export function dictionary(values: Shape): Shape {
  return (value, at) => {
    if (!isObject(value)) return wrong(at, value, 'an object')
    for (const key of Object.keys(value)) {
      const problem = values(value[key], `${at}[${JSON.stringify(key).slice(0, 40)}]`)
      if (problem) return problem
    }
    return undefined
  }
}

/** A shape that contains itself, refused past MAX_NESTING levels. */
export function recursive(define: (self: Shape) => Shape): Shape {
  let depth = 0
  const self: Shape = (value, at) => {
    if (depth >= MAX_NESTING) return `${at} is nested more than ${MAX_NESTING} levels deep`
    depth++
    try {
      return shape(value, at)
    } finally {
      depth--
    }
  }
  const shape = define(self)
  return self
}

/**
 * An object tagged by one of its fields: `tag` names which shape the rest has
 * (Loki's query results by `resultType`, Alloy's values by `type`). A tag
 * with no variant is refused, or has the shape `otherwise` when given.
 */
export function tagged(tag: string, variants: Record<string, Shape>, otherwise?: Shape): Shape {
  const names = Object.keys(variants)
  return (value, at) => {
    if (!isObject(value)) return wrong(at, value, 'an object')
    const kind = value[tag]
    if (typeof kind !== 'string') return wrong(`${at}.${tag}`, kind, 'a string')
    if (Object.hasOwn(variants, kind)) return variants[kind](value, at)
    return otherwise ? otherwise(value, at) : `${at}.${tag} is not one of ${names.join(', ')}`
  }
}

export interface Answer {
  server: 'Loki' | 'Alloy'
  /** The request path, for the message. */
  path: string
  hint: string
}

/** The one check: the value as T, or one line naming the field that is wrong, exit 3. */
export function checkShape<T>(answer: Answer, shape: Shape, value: unknown, at = 'the answer'): T {
  const problem = shape(value, at)
  if (problem) throw new UnreachableError(`${answer.server}'s answer to ${answer.path} has the wrong shape: ${problem}`, answer.hint)
  return value as T
}
