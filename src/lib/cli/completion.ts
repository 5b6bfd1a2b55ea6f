/**
 * Shell completion: `obs completion bash|zsh` prints a script whose function
 * hands the command line so far to `obs __complete`, which answers here.
 * Commands, flags, flag values (output modes, profiles), and inside a stream
 * selector the label names and values live from Loki, asked with a short
 * timeout and no retries so that a slow Loki never holds up the shell.
 */
import { quoteLogQL } from '../loki/logql.ts'

export interface CompletableCommand {
  id: string
  flags: { name: string; char?: string; options?: readonly string[] }[]
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

/** Flags whose value is LogQL. */
const LOGQL_FLAGS = new Set(['--query'])

/** The characters at which bash (COMP_WORDBREAKS) starts a new word it will replace. */
const BASH_WORDBREAKS = `"'><=;|&(: `

/** The line split as a shell would, quotes kept in the text: the words before the cursor and the one being typed. */
export function splitLine(line: string): { words: string[]; current: string } {
  const words: string[] = []
  let word = ''
  let quote: string | undefined
  for (const char of line) {
    if (quote) {
      word += char
      if (char === quote) quote = undefined
    } else if (char === "'" || char === '"') {
      quote = char
      word += char
    } else if (char === ' ' || char === '\t') {
      if (word !== '') words.push(word)
      word = ''
    } else word += char
  }
  return { words, current: word }
}

/** The text LogQL sees in a word: its quotes taken off. */
function unquoted(word: string): { prefix: string; text: string } {
  const prefix = word.startsWith("'") || word.startsWith('"') ? word[0] : ''
  return { prefix, text: word.slice(prefix.length) }
}

const VALUE_AT_END = /^(.*[{,]\s*)([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"\\]*)$/
const NAME_AT_END = /^(.*[{,]\s*)([a-zA-Z_][a-zA-Z0-9_]*)?$/

async function selectorCompletions(word: string, sources: CompletionSources): Promise<string[]> {
  const { prefix, text } = unquoted(word)
  if (!text.startsWith('{') || text.includes('}')) return []
  const value = VALUE_AT_END.exec(text)
  if (value) {
    const [, before, name, op, typed] = value
    return (await sources.labelValues(name)).filter((v) => v.startsWith(typed)).map((v) => `${prefix}${before}${name}${op}${quoteLogQL(v)}`)
  }
  const name = NAME_AT_END.exec(text)
  if (name) {
    const [, before, typed = ''] = name
    return (await sources.labelNames()).filter((n) => n.startsWith(typed)).map((n) => `${prefix}${before}${n}=`)
  }
  return []
}

/** Full words that complete `current` after `words` (words[0] is obs itself). */
export async function completeWords(words: string[], current: string, sources: CompletionSources): Promise<string[]> {
  const startsWith = (candidates: readonly string[]) => candidates.filter((c) => c.startsWith(current))
  if (words.length <= 1) return startsWith(sources.commands.map((c) => c.id).sort())
  const command = sources.commands.find((c) => c.id === words[1])
  if (!command) return []
  const previous = words.at(-1) ?? ''
  if (previous.startsWith('-') && words.length > 2) {
    const flag = command.flags.find((f) => previous === `--${f.name}` || (f.char !== undefined && previous === `-${f.char}`))
    if (flag?.name === 'profile') return startsWith(await sources.profiles())
    if (flag?.options) return startsWith(flag.options)
    if (LOGQL_FLAGS.has(previous)) return selectorCompletions(current, sources)
  }
  if (current.startsWith('-')) return startsWith(command.flags.map((f) => `--${f.name}`).sort())
  const positional = words.slice(2).filter((w, i, all) => !w.startsWith('-') && !(all[i - 1]?.startsWith('--') && !all[i - 1].includes('=')))
  if (positional.length === 0 && command.logqlArgument) return selectorCompletions(current, sources)
  if (positional.length === 0 && command.labelArgument) return startsWith(await sources.labelNames())
  return []
}

/**
 * What bash puts back in place of its own current word. A word that opens a
 * quote is one word to bash (measured: '{app="co stays whole); elsewhere bash
 * splits at COMP_WORDBREAKS (=, :, …), so a completion is cut to what follows
 * the last such break.
 */
export function forBash(current: string, candidates: string[]): string[] {
  if (current.startsWith("'") || current.startsWith('"')) return candidates
  let cut = -1
  for (let i = 0; i < current.length; i++) if (BASH_WORDBREAKS.includes(current[i])) cut = i
  return candidates.map((c) => c.slice(cut + 1))
}

export function completionScript(shell: 'bash' | 'zsh', bin: string): string {
  const body = `_${bin}_complete() {
  local IFS=$'\\n'
  local line="\${COMP_LINE:0:COMP_POINT}"
  # Inside a selector a completion is not the end of the word: no space after it.
  [[ "$line" == *'{'* && "$line" != *'}'* ]] && compopt -o nospace 2>/dev/null
  COMPREPLY=( $(${bin} __complete "$line" 2>/dev/null) )
}
complete -o default -F _${bin}_complete ${bin}
`
  const header =
    shell === 'zsh'
      ? `# obs completion for zsh: add  source <(obs completion zsh)  to ~/.zshrc\nautoload -U +X bashcompinit && bashcompinit\n`
      : `# obs completion for bash: add  source <(obs completion bash)  to ~/.bashrc\n`
  return header + body
}
