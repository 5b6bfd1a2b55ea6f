/**
 * Every message obs can print on stderr, collected from its source: the
 * errors (ObsError and its kinds, whose message names what happened and whose
 * hint says what to do), the few lines the launcher and the command base write
 * themselves, and the warnings. `npm run messages` writes them to
 * runbooks/TROUBLESHOOTING.md; test/unit/messages.test.ts holds the source and that
 * file together and checks each message against the rules users rely on.
 *
 * The source is read as text: a call's arguments are split at its top-level
 * commas, string and template literals are kept with each `${…}` shown as
 * `…`, a constant of the same file is looked up, and what is computed at run
 * time (a hint passed in by the caller) is named as such. The list lives in
 * runbooks/TROUBLESHOOTING.md between two markers, beside the fixes it points to.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

export interface Message {
  kind: 'error' | 'warning'
  /** The exit code the message ends obs with (errors only). */
  exitCode?: number
  text: string
  /** What to do, as written after the message; undefined when the call gives none. */
  hint?: string
  /** Where it is raised: files relative to the repository. */
  places: string[]
}

const ROOT = join(import.meta.dirname, '../..')

/** Error classes and the exit code each one carries (ObsError names its own). */
const ERROR_CLASSES: Record<string, { exitCode?: number; messageArg: number; hintArg?: number }> = {
  UsageError: { exitCode: 2, messageArg: 0, hintArg: 1 },
  UnreachableError: { exitCode: 3, messageArg: 0, hintArg: 1 },
  ObsError: { messageArg: 0, hintArg: 2 },
  LogQLSyntaxError: { exitCode: 2, messageArg: 2 },
  UnavailableError: { exitCode: 1, messageArg: 1, hintArg: 2 },
}

/** A hint computed where the error is raised, from values its caller passed in. */
export const CALLER_HINT = '(given by the caller for the server and setting involved)'
/** A message composed at run time, such as the LogQL grammar's description of a syntax error. */
const COMPUTED_MESSAGE = '(composed where it is found, such as what the LogQL grammar expected at the caret)'

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return /\.(ts|js)$/.test(entry.name) ? [path] : []
  })
}

/** The index just past the literal or bracketed group that starts at `start`. */
function skip(source: string, start: number): number {
  const open = source[start]
  if (open === "'" || open === '"') {
    let i = start + 1
    while (source[i] !== open) i += source[i] === '\\' ? 2 : 1
    return i + 1
  }
  if (open === '`') {
    let i = start + 1
    while (source[i] !== '`') {
      if (source[i] === '\\') i += 2
      else if (source[i] === '$' && source[i + 1] === '{') i = skip(source, i + 1)
      else i++
    }
    return i + 1
  }
  const close = { '(': ')', '[': ']', '{': '}' }[open as '(' | '[' | '{']
  let i = start + 1
  while (source[i] !== close) i = /['"`([{]/.test(source[i]) ? skip(source, i) : i + 1
  return i + 1
}

/** The top-level arguments of the call whose `(` is at `open`, as source text. */
function callArguments(source: string, open: number): string[] {
  const args: string[] = []
  let from = open + 1
  let i = from
  const end = skip(source, open) - 1
  while (i < end) {
    if (source[i] === ',') {
      args.push(source.slice(from, i).trim())
      from = i + 1
      i++
    } else i = /['"`([{]/.test(source[i]) ? skip(source, i) : i + 1
  }
  const last = source.slice(from, end).trim()
  if (last !== '') args.push(last)
  return args
}

/** A literal's text, each interpolation shown as …. */
function literalText(literal: string): string {
  const body = literal.slice(1, -1)
  if (literal[0] !== '`') return body.replace(/\\(.)/g, (_, char: string) => escaped(char))
  let text = ''
  for (let i = 0; i < body.length; ) {
    if (body[i] === '$' && body[i + 1] === '{') {
      const after = skip(body, i + 1)
      const inner = body.slice(i + 2, after - 1)
      // A part that is there only sometimes (`${x ? '; y' : ''}`) reads better as its text.
      const optional = /\?\s*'((?:[^'\\]|\\.)+)'\s*:\s*''\s*$/.exec(inner)
      // One of two texts (`${x ? 'a' : 'b'}`) reads as both.
      const either = /^[^?]*\?\s*'((?:[^'\\]|\\.)+)'\s*:\s*'((?:[^'\\]|\\.)+)'\s*$/.exec(inner)
      text += optional ? `[${optional[1]}]` : either ? `${either[1]} | ${either[2]}` : '…'
      i = after
    } else if (body[i] === '\\') {
      text += escaped(body[i + 1])
      i += 2
    } else text += body[i++]
  }
  return text
}

function escaped(char: string): string {
  return { n: '\n', t: '\t' }[char] ?? char
}

/**
 * What an argument says: its literal, its literals joined (the branches of a
 * condition as alternatives, the parts of a sum as one text), a constant's
 * value, or `computed` when nothing of it is written here.
 */
function argumentText(arg: string | undefined, source: string, computed = CALLER_HINT): string | undefined {
  if (arg === undefined) return undefined
  const expr = arg.trim()
  if (/^['"`]/.test(expr) && skip(expr, 0) === expr.length) return literalText(expr)
  const constant = /^[A-Z][A-Z0-9_]*$/.exec(expr)
  if (constant) {
    const definition = new RegExp(`const ${expr}\\s*=\\s*`).exec(source)
    if (definition) {
      const at = definition.index + definition[0].length
      if (/['"`]/.test(source[at])) return literalText(source.slice(at, skip(source, at)))
    }
  }
  const literals: string[] = []
  for (let i = 0; i < expr.length; ) {
    if (/['"`]/.test(expr[i])) {
      const end = skip(expr, i)
      const text = literalText(expr.slice(i, end))
      if (text.trim() !== '') literals.push(text)
      i = end
    } else i++
  }
  if (literals.length > 0) return literals.join(expr.includes('?') ? ' | ' : '')
  return computed
}

function lineOf(source: string, index: number): number {
  return source.slice(0, index).split('\n').length
}

/** Every message in the source, those with the same kind, text and hint merged into one with all their places. */
export function collectMessages(): Message[] {
  const found = new Map<string, Message>()
  const add = (message: Omit<Message, 'places'>, place: string) => {
    const key = JSON.stringify([message.kind, message.exitCode, message.text, message.hint])
    const known = found.get(key)
    if (known) known.places.push(place)
    else found.set(key, { ...message, places: [place] })
  }
  const files = [...sourceFiles(join(ROOT, 'src')), join(ROOT, 'bin/run.js')]
  for (const file of files) {
    const source = readFileSync(file, 'utf8')
    const name = relative(ROOT, file)
    for (const match of source.matchAll(/new (UsageError|UnreachableError|UnavailableError|ObsError|LogQLSyntaxError)\(/g)) {
      if (/class \w+ extends $/.test(source.slice(Math.max(0, match.index - 40), match.index))) continue
      const spec = ERROR_CLASSES[match[1]]
      const args = callArguments(source, match.index + match[0].length - 1)
      const exitCode = spec.exitCode ?? exitCodeOf(args[1])
      const argument = argumentText(args[spec.messageArg], source, COMPUTED_MESSAGE)
      // As printed: a LogQL syntax error leads with where it is.
      const text = match[1] === 'LogQLSyntaxError' && argument ? `invalid LogQL at line …, col …: ${argument}` : argument
      if (text === undefined) throw new Error(`${name}:${lineOf(source, match.index)}: a ${match[1]} without a message`)
      add({ kind: 'error', exitCode, text, hint: spec.hintArg === undefined ? undefined : argumentText(args[spec.hintArg], source) }, name)
    }
    // Lines written straight to stderr: the launcher's, and the command base's last resort.
    for (const match of source.matchAll(/stderr\.write\(/g)) {
      const [arg] = callArguments(source, match.index + match[0].length - 1)
      const text = argumentText(arg, source)
      const error = text?.match(/^(?:…\s*|error: )(.*)$/s)
      if (!text || !/error[:'")]/.test(arg ?? '') || !error) continue
      // The hint follows the first "; " that is not inside an optional [part].
      const [message, ...hint] = error[1].replace(/\n$/, '').split(/; (?![^[]*\])/)
      // `…` alone is an ObsError's render(), listed where it is raised.
      if (message === '…' && hint.length === 0) continue
      add({ kind: 'error', exitCode: undefined, text: message, hint: hint.join('; ') || undefined }, name)
    }
    for (const match of source.matchAll(/(?:this\.warn|warnings\.push|onWarning)\(/g)) {
      const args = callArguments(source, match.index + match[0].length - 1)
      const text = argumentText(args[0], source)
      if (text !== undefined && text !== CALLER_HINT) add({ kind: 'warning', text }, name)
    }
  }
  return [...found.values()].sort((a, b) => a.places[0].localeCompare(b.places[0]) || a.text.localeCompare(b.text))
}

function exitCodeOf(arg: string | undefined): number | undefined {
  const code = /ExitCode\.(\w+)/.exec(arg ?? '')?.[1]
  return code === undefined ? undefined : { ok: 0, failed: 1, usage: 2, unreachable: 3 }[code]
}

export const SECTION_START = '<!-- messages: written by npm run messages, do not edit by hand -->'
export const SECTION_END = '<!-- messages: end -->'

/** The section of runbooks/TROUBLESHOOTING.md that lists them, markers included. */
export function messagesSection(messages: Message[]): string {
  const lines = [
    SECTION_START,
    '## Every message obs prints',
    '',
    'Each error and warning `obs` can write on stderr, once, with the exit code it',
    'ends with and what to do about it. `…` stands for what is filled in at run',
    "time (a flag, a path, a server, Loki's own reason); `[text]` for a part that",
    'is there only sometimes. An error is one line on stderr: `error: MESSAGE; WHAT TO DO`.',
    'Exit codes: 1 the command ran and found a failure (or could not write its',
    'output), 2 bad input (nothing was sent), 3 Loki, Alloy or Docker unreachable',
    'or answering what obs cannot use; a line without a code ends obs as its',
    'place says (the launcher: 128 + the signal).',
    '',
  ]
  for (const kind of ['error', 'warning'] as const) {
    lines.push(kind === 'error' ? '### Errors' : '### Warnings', '')
    let file = ''
    for (const message of messages.filter((m) => m.kind === kind)) {
      if (message.places[0] !== file) {
        if (file !== '') lines.push('')
        file = message.places[0]
        lines.push(`#### ${file}`, '')
      }
      const code = message.exitCode === undefined ? '' : `exit ${message.exitCode}: `
      const others = [...new Set(message.places.slice(1))]
      const elsewhere = others.length > 0 ? ` (also raised in ${others.join(', ')})` : ''
      lines.push(`- ${code}${inline(message.text)}${elsewhere}`)
      if (message.hint) lines.push(`  - what to do: ${inline(message.hint)}`)
    }
    lines.push('')
  }
  lines.push(SECTION_END)
  return lines.join('\n')
}

/** The text of `document` with its section replaced by `section` (appended when it has none). */
export function withSection(document: string, section: string): string {
  const start = document.indexOf(SECTION_START)
  const end = document.indexOf(SECTION_END)
  if (start === -1 || end === -1) return `${document.trimEnd()}\n\n${section}\n`
  return document.slice(0, start) + section + document.slice(end + SECTION_END.length)
}

/** Markdown inline code that holds any backticks of the text. */
function inline(text: string): string {
  const oneLine = text.replace(/\n/g, '⏎')
  const fence = oneLine.includes('`') ? '``' : '`'
  const pad = oneLine.startsWith('`') || oneLine.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${oneLine}${pad}${fence}`
}
