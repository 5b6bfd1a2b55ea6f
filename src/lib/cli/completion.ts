/**
 * Shell completion: `obs completion bash|zsh` prints a script whose function
 * hands the command line so far to `obs __complete`, which answers here.
 * Commands, flags, flag values (output modes, profiles), and inside a stream
 * selector the label names and values live from Loki, asked with a short
 * timeout and no retries so that a slow Loki never holds up the shell, of the
 * Loki and tenant the connection flags on the line name.
 *
 * What Loki returns is data written by whoever can push a log line: a label
 * value is written as a LogQL literal with every control character escaped,
 * a label name that is not one is dropped, and the result is quoted for the
 * shell and the quoting open at the cursor (shell-words.ts for bash; zsh's
 * compadd quotes for itself), so that a completion inserts one literal word.
 */
import { type ConnectionFlags, SETTINGS, type SettingRow } from '../config/table.ts'
import { LOGQL_KEYWORDS, quoteLogQL } from '../loki/logql-text.ts'
import { EDITOR_UNSAFE, type LexedLine, quoteContinuation, readlineWordStart, type ShellWord } from './shell-words.ts'

export interface CompletableCommand {
  id: string
  flags: { name: string; char?: string; options?: readonly string[]; boolean?: boolean }[]
  /** Its first argument is LogQL (a selector or a query). */
  logqlArgument: boolean
  /** Its first argument is a label name (obs labels NAME). */
  labelArgument?: boolean
}

export interface CompletionSources {
  commands: CompletableCommand[]
  profiles(): Promise<string[]>
  labelNames(): Promise<string[]>
  labelValues(name: string): Promise<string[]>
}

/** Full words that complete the one at the cursor; `partial` when more of the same word is to follow (no space after). */
export interface Completions {
  words: string[]
  partial: boolean
}

/** Flags whose value is LogQL. */
const LOGQL_FLAGS = new Set(['--query'])

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** A name Loki sent that a selector can hold: a label name, and not a LogQL keyword (checkLabelName's rule). */
const selectable = (name: string) => LABEL_NAME.test(name) && !LOGQL_KEYWORDS.has(name.toLowerCase())
/** A name then an operator then the start of a "…" literal (escapes included), at the end of the word. */
const VALUE_AT_END = /^(.*[{,]\s*)([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*("(?:[^"\\]|\\.)*\\?)$/s
const NAME_AT_END = /^(.*[{,]\s*)([a-zA-Z_][a-zA-Z0-9_]*)?$/s
/** Characters JSON.stringify leaves raw that no line editor should get: DEL, C1, separators, bidi. */
const LOGQL_RAW_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffe\uffff]/g

/**
 * A label value as a LogQL literal that holds no control character at all:
 * quoteLogQL escapes C0 controls, quotes and backslashes; the rest are written
 * \uXXXX too, which Loki reads back as the same character.
 */
export function logqlLiteral(value: string): string {
  return quoteLogQL(value).replace(LOGQL_RAW_UNSAFE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

async function selectorCompletions(text: string, sources: CompletionSources): Promise<string[]> {
  if (!text.startsWith('{') || text.includes('}')) return []
  const value = VALUE_AT_END.exec(text)
  if (value) {
    const [, before, name, op, typed] = value
    return (await sources.labelValues(name))
      .map(logqlLiteral)
      .filter((literal) => literal.startsWith(typed))
      .map((literal) => `${before}${name}${op}${literal}`)
  }
  const name = NAME_AT_END.exec(text)
  if (name) {
    const [, before, typed = ''] = name
    return (await sources.labelNames()).filter((n) => selectable(n) && n.startsWith(typed)).map((n) => `${before}${n}=`)
  }
  return []
}

/** Full words that complete `current` after `words` (words[0] is obs itself), all quotes taken off. */
export async function completeWords(words: string[], current: string, sources: CompletionSources): Promise<Completions> {
  const whole = (candidates: readonly string[]): Completions => ({ words: candidates.filter((c) => c.startsWith(current)), partial: false })
  if (words.length <= 1) return whole(sources.commands.map((c) => c.id).sort())
  const command = sources.commands.find((c) => c.id === words[1])
  if (!command) return whole([])
  const findFlag = (word: string) => command.flags.find((f) => word === `--${f.name}` || (f.char !== undefined && word === `-${f.char}`))
  const flagValues = async (flag: CompletableCommand['flags'][number] | undefined): Promise<readonly string[] | undefined> =>
    flag?.name === 'profile' ? sources.profiles() : flag?.options
  const previous = words.at(-1) ?? ''
  if (previous.startsWith('-') && words.length > 2) {
    const flag = findFlag(previous)
    const values = await flagValues(flag)
    if (values) return whole(values)
    if (LOGQL_FLAGS.has(previous)) return { words: await selectorCompletions(current, sources), partial: true }
  }
  const inline = /^(--[^=]+)=/.exec(current)
  if (inline) {
    const values = await flagValues(findFlag(inline[1]))
    return whole((values ?? []).map((v) => `${inline[1]}=${v}`))
  }
  if (current.startsWith('-')) return whole(command.flags.map((f) => `--${f.name}`).sort())
  const positional = words.slice(2).filter((w, i, all) => {
    if (w.startsWith('-')) return false
    const before = all[i - 1]
    return !(before?.startsWith('-') && !before.includes('=') && findFlag(before)?.boolean !== true)
  })
  if (positional.length === 0 && command.logqlArgument) return { words: await selectorCompletions(current, sources), partial: true }
  if (positional.length === 0 && command.labelArgument) return whole((await sources.labelNames()).filter((n) => LABEL_NAME.test(n)))
  return whole([])
}

/** The connection settings' rows by flag name (--alloy-addr is not Loki's). */
const CONNECTION_ROWS = new Map(
  Object.values(SETTINGS as Record<string, SettingRow>)
    .filter((row) => !row.alloyOnly)
    .map((row) => [row.flag, row]),
)

/**
 * The connection flags typed on the line (--addr, --org-id, --profile, the
 * credentials, --header…), as resolveSettings takes them, so that completion
 * asks the Loki and tenant the command will. Undefined when one of their
 * values is an expansion obs cannot know: then it asks no one.
 */
export function connectionFlagsOnLine(words: ShellWord[]): ConnectionFlags | undefined {
  const flags: Record<string, unknown> = {}
  for (let i = 2; i < words.length; i++) {
    const word = words[i].value
    if (word === '--') break
    const match = /^--(no-)?([^=]+)(?:=(.*))?$/s.exec(word)
    const row = match ? CONNECTION_ROWS.get(match[2]) : undefined
    if (!match || !row) continue
    if (row.type === 'boolean') {
      flags[row.flag] = match[1] === undefined
      continue
    }
    if (match[1] !== undefined) continue
    let value: ShellWord | undefined
    if (match[3] !== undefined) value = { value: match[3], known: words[i].known }
    else value = words[++i]
    if (value === undefined) break
    if (!value.known) return undefined
    if (row.type === 'headers') flags[row.flag] = [...((flags[row.flag] as string[] | undefined) ?? []), value.value]
    else if (row.type === 'number') flags[row.flag] = Number(value.value)
    else flags[row.flag] = value.value
  }
  return flags as ConnectionFlags
}

export type Shell = 'bash' | 'zsh'

/** What `obs __complete` was asked: the line so far, and how the shell wants the answer. */
export interface CompletionRequest {
  shell: Shell
  /** The command line up to the cursor, as typed. */
  line: string
  /** bash's COMP_WORDBREAKS. */
  wordbreaks: string
  /** Whether the script wants the space/nospace line first (the scripts obs prints since it quotes). */
  directive: boolean
}

/** bash's default COMP_WORDBREAKS. */
const DEFAULT_WORDBREAKS = ` \t\n"'@><=;|&(:`

/**
 * Reads `obs __complete`'s arguments. The words after -- are the user's,
 * never flags of __complete:
 *   obs __complete --shell bash --wordbreaks "$COMP_WORDBREAKS" -- "$line"
 *   obs __complete --shell zsh -- WORD… CURRENT   (the words as typed, the last one up to the cursor)
 *   obs __complete "$line"                         (the bash script obs printed before: candidates only)
 */
export function completionRequest(argv: string[]): CompletionRequest {
  let shell: Shell = 'bash'
  let wordbreaks = DEFAULT_WORDBREAKS
  let directive = false
  let i = 0
  for (; i < argv.length; i++) {
    if (argv[i] === '--') {
      i++
      break
    }
    if (argv[i] === '--shell' && (argv[i + 1] === 'bash' || argv[i + 1] === 'zsh')) {
      shell = argv[++i] as Shell
      directive = true
    } else if (argv[i] === '--wordbreaks' && argv[i + 1] !== undefined) wordbreaks = argv[++i]
    else break
  }
  const rest = argv.slice(i)
  return { shell, wordbreaks, directive, line: shell === 'zsh' ? rest.join(' ') : (rest[0] ?? '') }
}

/**
 * The answer `obs __complete` prints for `completions` of the word at the
 * cursor. bash: one line per candidate, each the text bash puts in place of
 * readline's completion word, quoted for the quoting open at the cursor and
 * beginning with what the user typed; zsh: the candidates as plain words,
 * NUL-separated, for compadd to quote. With `directive`, a first line says
 * whether a space may follow. Candidates with a character no line editor
 * should get are dropped (label values never have one: logqlLiteral).
 */
export function formatCompletions(request: CompletionRequest, lexed: LexedLine, completions: Completions): string {
  const { current } = lexed
  const safe = completions.words.filter((word) => word.startsWith(current.value) && !EDITOR_UNSAFE.test(word))
  if (safe.length === 0) return ''
  const head = request.directive ? [completions.partial ? 'nospace' : 'space'] : []
  if (request.shell === 'zsh') return [...head, ...safe].map((word) => `${word}\0`).join('')
  const typed = request.line.slice(readlineWordStart(request.line, request.wordbreaks))
  const texts = [...new Set(safe.map((word) => typed + quoteContinuation(word.slice(current.value.length), current.quote)))]
  return [...head, ...texts].map((text) => `${text}\n`).join('')
}

export function completionScript(shell: Shell, bin: string): string {
  if (shell === 'zsh') {
    return `#compdef ${bin}
# ${bin} completion for zsh: add  source <(${bin} completion zsh)  to ~/.zshrc
# ${bin} answers with plain words, NUL-separated, the first saying whether a space may follow;
# compadd quotes each for the quoting open at the cursor.
_${bin}() {
  local -a reply
  reply=( \${(0)"$(${bin} __complete --shell zsh -- "\${(@)words[1,CURRENT-1]}" "$QIPREFIX$PREFIX" 2>/dev/null)"} )
  if (( \${#reply} < 2 )); then
    _default
  elif [[ $reply[1] == nospace ]]; then
    compadd -S '' -- "\${(@)reply[2,-1]}"
  else
    compadd -- "\${(@)reply[2,-1]}"
  fi
}
# compdef needs compinit, which a ~/.zshrc usually runs first; -i skips directories others can write.
(( $+functions[compdef] )) || { autoload -Uz compinit && compinit -i }
compdef _${bin} ${bin}
`
  }
  return `# ${bin} completion for bash: add  source <(${bin} completion bash)  to ~/.bashrc
# ${bin} answers one candidate a line, each already quoted for the quoting open at the cursor,
# after a first line saying whether a space may follow.
_${bin}_complete() {
  local line="\${COMP_LINE:0:COMP_POINT}" mode reply
  COMPREPLY=()
  {
    IFS= read -r mode
    while IFS= read -r reply; do COMPREPLY+=("$reply"); done
  } < <(${bin} __complete --shell bash --wordbreaks "$COMP_WORDBREAKS" -- "$line" 2>/dev/null)
  [[ $mode == nospace ]] && compopt -o nospace 2>/dev/null
  return 0
}
complete -o default -F _${bin}_complete ${bin}
`
}
