/**
 * The shell side of completion: reading the command line a shell hands over
 * (its words, what each one is worth once the shell has taken the quotes off,
 * and the quoting open at the cursor), and writing text for bash to insert
 * that stays one literal word whatever characters it carries.
 *
 * Everything here assumes the worst of the text it writes: a label value
 * comes from whoever can push a log line, so a completion must never be able
 * to start a command substitution, close the user's quote, trigger history
 * expansion, or put a control character into the line editor.
 */

/** The quoting open at the end of a word: none, '…', "…" or $'…'. */
export type Quote = '' | "'" | '"' | "$'"

export interface ShellWord {
  /** The text the command will get, quotes taken off. */
  value: string
  /** False when it holds an expansion obs cannot evaluate (an unset $VAR, $?, ~user). */
  known: boolean
}

export interface CurrentWord extends ShellWord {
  /** The quoting open at the cursor. */
  quote: Quote
  /**
   * The word ends in a character whose meaning depends on what follows it (a
   * backslash, a bare $ or !): anything appended would change it, so nothing is.
   */
  pending: boolean
}

export interface LexedLine {
  /** The words before the one at the cursor. */
  words: ShellWord[]
  current: CurrentWord
}

/**
 * Characters that must never be inserted raw into a line editor: C0 controls
 * (tab included: it is the completion key), DEL, C1 controls, the line and
 * paragraph separators, the bidi marks that reorder what the user reads, and
 * the noncharacters and lone surrogates. Stricter than a terminal's list (text.ts) on purpose.
 */
export const EDITOR_UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

const NAME_START = /[A-Za-z_]/
const NAME_CHAR = /[A-Za-z0-9_]/
/** Expansions that run something or read input: obs never guesses at a line holding one. */
const BAIL_AFTER_DOLLAR = new Set(['(', '['])
const ANSI_C: Record<string, string> = { a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' }

/**
 * Splits a command line as bash or zsh would, up to the cursor (the end of
 * `text`). Quotes ('…', "…", $'…') and backslashes are taken off; $NAME,
 * ${NAME} and a leading ~ are read from `env` (the shell's exported
 * variables), anything else they cannot know makes the word unknown.
 * Undefined when the line holds what obs will not reason about: a command
 * substitution, process substitution, arithmetic, an operator (; | & < >) or
 * a comment; completion then offers nothing.
 */
export function lexLine(text: string, env: Record<string, string | undefined>): LexedLine | undefined {
  const words: ShellWord[] = []
  let value = ''
  let known = true
  let started = false
  let quote: Quote = ''
  let pending = false
  const end = () => {
    if (started) words.push({ value, known })
    value = ''
    known = true
    started = false
  }
  /** Reads $… at i (text[i] === '$'), returning the index after it, or -1 to give up. */
  const dollar = (i: number): number => {
    const next = text[i + 1]
    if (next === undefined) {
      pending = true
      value += '$'
      return i + 1
    }
    if (BAIL_AFTER_DOLLAR.has(next)) return -1
    if (next === '{') {
      const close = text.indexOf('}', i + 2)
      const name = close === -1 ? undefined : text.slice(i + 2, close)
      if (name === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return -1
      const found = env[name]
      if (found === undefined) known = false
      else value += found
      return close + 1
    }
    if (NAME_START.test(next)) {
      let j = i + 1
      while (j < text.length && NAME_CHAR.test(text[j])) j++
      const found = env[text.slice(i + 1, j)]
      if (found === undefined) known = false
      else value += found
      return j
    }
    if (/[0-9?!#*@$-]/.test(next)) {
      known = false
      return i + 2
    }
    value += '$'
    return i + 1
  }
  let i = 0
  while (i < text.length) {
    const char = text[i]
    pending = false
    if (quote === "'") {
      if (char === "'") quote = ''
      else value += char
      i++
      continue
    }
    if (quote === "$'") {
      if (char === "'") {
        quote = ''
        i++
      } else if (char === '\\') {
        const next = text[i + 1]
        if (next === undefined) {
          pending = true
          i++
        } else if (Object.hasOwn(ANSI_C, next)) {
          value += ANSI_C[next]
          i += 2
        } else if (next === 'x' && /^[0-9a-fA-F]/.test(text[i + 2] ?? '')) {
          // A run of \xHH is bytes: read together, as UTF-8.
          const run = /^(?:\\x[0-9a-fA-F]{1,2})+/.exec(text.slice(i))?.[0] ?? ''
          const bytes = [...run.matchAll(/\\x([0-9a-fA-F]{1,2})/g)].map((hex) => Number.parseInt(hex[1], 16))
          value += Buffer.from(bytes).toString('utf8')
          i += run.length
        } else {
          // An escape obs does not decode (octal, \u, \c…): the word's value is not known for sure.
          known = false
          value += next
          i += 2
        }
      } else {
        value += char
        i++
      }
      continue
    }
    if (quote === '"') {
      if (char === '"') {
        quote = ''
        i++
      } else if (char === '\\') {
        const next = text[i + 1]
        if (next === undefined) {
          pending = true
          i++
        } else if (next === '\n') i += 2
        else {
          value += '$`"\\'.includes(next) ? next : `\\${next}`
          i += 2
        }
      } else if (char === '`') return undefined
      else if (char === '$') {
        i = dollar(i)
        if (i < 0) return undefined
      } else {
        // History expansion happens inside double quotes too: a trailing ! would join what follows.
        if (char === '!' && i === text.length - 1) pending = true
        value += char
        i++
      }
      continue
    }
    // Outside quotes.
    if (char === ' ' || char === '\t' || char === '\n') {
      end()
      i++
      continue
    }
    if (';&|<>()`'.includes(char)) return undefined
    if (char === '#' && !started) return undefined
    started = true
    if (char === "'") {
      quote = "'"
      i++
    } else if (char === '"') {
      quote = '"'
      i++
    } else if (char === '$' && text[i + 1] === "'") {
      quote = "$'"
      i += 2
    } else if (char === '$' && text[i + 1] === '"') {
      // $"…" is a translated string: taken as "…".
      quote = '"'
      i += 2
    } else if (char === '\\') {
      const next = text[i + 1]
      if (next === undefined) {
        pending = true
        i++
      } else if (next === '\n') i += 2
      else {
        value += next
        i += 2
      }
    } else if (char === '$') {
      i = dollar(i)
      if (i < 0) return undefined
    } else if (char === '~' && value === '' && text[i - 1] !== '~' && /^~(?:\/|$|[ \t\n])/.test(text.slice(i))) {
      if (env.HOME === undefined) known = false
      else value += env.HOME
      // A lone ~ at the cursor: ~ and what follows would be read as ~user.
      if (i === text.length - 1) pending = true
      i++
    } else if (char === '~' && value === '' && (i === 0 || /[ \t\n]/.test(text[i - 1]))) {
      // ~user: another user's home, not worth resolving.
      known = false
      value += char
      i++
    } else {
      if (char === '!' && i === text.length - 1) pending = true
      value += char
      i++
    }
  }
  return { words, current: { value, known, quote, pending } }
}

/**
 * Where readline's completion word starts in `line` (bash's COMP_WORDBREAKS
 * as `breaks`): what bash replaces with a COMPREPLY entry is line.slice(start).
 * Mirrors readline's _rl_find_completion_word (complete.c) with bash's
 * char_is_quoted: an unclosed quote starts the word just after it; otherwise
 * the word starts after the last break character that is not quoted or
 * backslash-escaped (but includes a $ or @ there, bash's special prefixes).
 */
export function readlineWordStart(line: string, breaks: string): number {
  const end = line.length
  let start = end
  let quoteChar = ''
  let foundQuote = false
  let passNext = false
  for (let i = 0; i < end; i++) {
    const char = line[i]
    if (passNext) {
      passNext = false
      continue
    }
    if (quoteChar !== "'" && char === '\\') {
      passNext = true
      foundQuote = true
      continue
    }
    if (quoteChar !== '') {
      if (char === quoteChar) {
        quoteChar = ''
        start = end
      }
    } else if (char === "'" || char === '"') {
      quoteChar = char
      start = i + 1
      foundQuote = true
    }
  }
  if (start !== end || quoteChar !== '') return start
  const isBreak = (i: number) => breaks.includes(line[i]) && !(foundQuote && charIsQuoted(line, i))
  let point = end
  while (point > 0) {
    point--
    if (isBreak(point)) break
  }
  if (point < end && isBreak(point) && !'$@'.includes(line[point])) point++
  return point
}

/** Bash's char_is_quoted: the character at `index` is inside quotes (its own quote marks included) or escaped. */
function charIsQuoted(line: string, index: number): boolean {
  let i = 0
  while (i <= index) {
    const char = line[i]
    if (char === '\\') {
      if (i + 1 >= index) return i + 1 === index
      i += 2
    } else if (char === '$' && line[i + 1] === "'" && i + 2 < line.length) {
      i += 2
      while (i < line.length && line[i] !== "'") i += line[i] === '\\' && line[i + 1] === "'" && i + 2 < line.length ? 2 : 1
      i++
      if (i > index) return true
    } else if (char === "'") {
      i = line.indexOf("'", i + 1)
      i = i === -1 ? line.length + 1 : i + 1
      if (i > index) return true
    } else if (char === '"') {
      i++
      while (i < line.length && line[i] !== '"') i += line[i] === '\\' ? 2 : 1
      i++
      if (i > index) return true
    } else i++
  }
  return false
}

/** Characters that stand for themselves outside quotes in bash and zsh, wherever they go in a word. */
const PLAIN = /^[A-Za-z0-9_@%+=:./-]$/

/** $'…' escapes for each UTF-8 byte of `char`: how a control character is written without being inserted. */
function ansiBytes(char: string): string {
  return [...Buffer.from(char, 'utf8')].map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`).join('')
}

/**
 * `text` written to be appended inside the quoting `quote` that is open at
 * the cursor, ending in that same quoting (so that readline's closing quote,
 * if it adds one, closes it): the shell reads back exactly `text`, runs
 * nothing, expands nothing (history included) and the line editor gets no
 * control character.
 */
export function quoteContinuation(text: string, quote: Quote): string {
  let out = ''
  /** Outside quotes: a run of characters to single-quote together. */
  let run = ''
  const flush = () => {
    if (run !== '') out += `'${run}'`
    run = ''
  }
  for (const char of text) {
    const unsafe = EDITOR_UNSAFE.test(char)
    switch (quote) {
      case "'":
        // Close, write the character another way, reopen.
        out += char === "'" ? `'\\''` : unsafe ? `'$'${ansiBytes(char)}''` : char
        break
      case '"':
        if ('$`"\\'.includes(char)) out += `\\${char}`
        // In double quotes \! keeps its backslash; single quotes stop history expansion.
        else if (char === '!') out += `"'!'"`
        else out += unsafe ? `"$'${ansiBytes(char)}'"` : char
        break
      case "$'":
        // \x escapes keep ' and ! out of the text, where readline and history expansion
        // (which do not know $'…') would take them for quote marks or an event.
        out += char === '\\' ? '\\\\' : char === "'" || char === '!' || unsafe ? ansiBytes(char) : char
        break
      default:
        if (PLAIN.test(char)) {
          flush()
          out += char
        } else if (char === "'" || unsafe) {
          flush()
          out += char === "'" ? `\\'` : `$'${ansiBytes(char)}'`
        } else run += char
    }
  }
  flush()
  return out
}
