/**
 * The one place that knows which characters are unsafe in text obs did not
 * write (log lines, server answers, user input echoed in a message), and the
 * three ways obs shows such text: escaped visibly, as one line, as a short echo.
 */

/** C0 and C1 controls (escape sequences start with ESC or CSI) and DEL. */
const CONTROLS = '\\u0000-\\u001f\\u007f-\\u009f'
/** The bidi marks, overrides and isolates: they reorder what a reader sees. */
const BIDI = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069'

/**
 * For a terminal: every control but tab, the bidi characters, the
 * noncharacters U+FFFE and U+FFFF, and lone surrogates. Newlines are escaped
 * too, so an entry stays one line.
 */
const UNSAFE = new RegExp(
  `[\\u0000-\\u0008\\u000a-\\u001f\\u007f-\\u009f${BIDI}\\ufffe\\uffff]|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]`,
  'g',
)
const HAS_UNSAFE = new RegExp(UNSAFE.source)
const CONTROL_RUNS = new RegExp(`[${CONTROLS}${BIDI}]+`, 'g')
const CONTROL_CHAR = new RegExp(`[${CONTROLS}${BIDI}]`, 'g')

/** Makes untrusted text safe to print on a terminal: unsafe characters become visible escapes. */
export function neutralize(text: string): string {
  return HAS_UNSAFE.test(text) ? text.replace(UNSAFE, escapeChar) : text
}

function escapeChar(char: string): string {
  const code = char.charCodeAt(0)
  if (char === '\n') return '\\n'
  if (char === '\r') return '\\r'
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`
  return `\\u${code.toString(16).padStart(4, '0')}`
}

/** A server's reason in one of obs's messages: at most this long. */
const MAX_REASON_CHARS = 400

/** Collapses whitespace and strips control characters so a message stays one safe line. */
export function oneLine(text: string): string {
  const clean = text.replace(CONTROL_RUNS, ' ').replace(/\s+/g, ' ').trim()
  return clean.length > MAX_REASON_CHARS ? `${clean.slice(0, MAX_REASON_CHARS)}…` : clean
}

/** Echoes user input in a message without letting control characters through. */
export function shown(text: string): string {
  const clean = text.replace(CONTROL_CHAR, '?')
  return clean.length > 60 ? `${clean.slice(0, 60)}…` : clean
}

/** A word for a POSIX shell: single-quoted, so a hint's command can be pasted as it is. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`
}
