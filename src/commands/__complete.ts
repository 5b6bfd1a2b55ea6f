import { Command } from '@oclif/core/command'
import { type CompletableCommand, completeWords, completionRequest, connectionFlagsOnLine, formatCompletions } from '../lib/cli/completion.ts'
import { lexLine } from '../lib/cli/shell-words.ts'
import { findConfigFile, readConfigFile, resolveSettings } from '../lib/config/settings.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { nowNanos, startBefore } from '../lib/time.ts'

/** Commands whose first argument is LogQL. */
const LOGQL_COMMANDS = new Set(['query', 'query-range', 'tail', 'series', 'stats', 'fields'])

/** How long completion may wait for Loki: a shell that hangs on Tab is worse than no suggestion. */
const LOKI_TIMEOUT_MS = 800

/** The shell function's helper (obs completion): prints the completions of the line so far (lib/cli/completion.ts says how). */
export default class Complete extends Command {
  static override hidden = true
  static override strict = false
  // The arguments are the user's words, read by completionRequest: none of them is a flag of __complete.
  static override flags = {}

  async run(): Promise<void> {
    const request = completionRequest(this.argv)
    const lexed = lexLine(request.line, process.env)
    // A line with a substitution, an operator or a half-typed escape at the cursor: nothing is offered.
    if (!lexed || lexed.current.pending || !lexed.current.known) return
    const commands: CompletableCommand[] = this.config.commands
      .filter((c) => !c.hidden)
      .map((c) => ({
        id: c.id,
        flags: Object.entries(c.flags ?? {}).map(([name, flag]) => ({
          name,
          char: flag.char,
          options: flag.type === 'option' ? flag.options : undefined,
          boolean: flag.type === 'boolean',
        })),
        logqlArgument: LOGQL_COMMANDS.has(c.id),
        labelArgument: c.id === 'labels',
      }))
    const flags = connectionFlagsOnLine(lexed.words)
    let client: LokiClient | undefined
    const loki = async () => {
      // A connection flag whose value obs cannot know: better no suggestion than another tenant's.
      if (!flags) throw new Error('connection flags not known')
      const settings = await resolveSettings({ flags, env: process.env, cwd: process.cwd(), version: this.config.version })
      client ??= new LokiClient({ ...settings.loki, timeoutMs: LOKI_TIMEOUT_MS, retries: 0 })
      return client
    }
    const range = () => ({ start: startBefore(nowNanos(), '6h'), end: nowNanos() })
    // Completion never fails the shell: whatever goes wrong, it suggests nothing.
    const quietly = async (list: () => Promise<string[]>) => list().catch(() => [])
    try {
      const completions = await completeWords(
        lexed.words.map((w) => w.value),
        lexed.current.value,
        {
          commands,
          profiles: () =>
            quietly(async () => {
              const found = findConfigFile(process.cwd(), process.env).found
              return found ? Object.keys((await readConfigFile(found)).profiles) : []
            }),
          labelNames: () => quietly(async () => (await loki()).labels(range())),
          labelValues: (name) => quietly(async () => (await loki()).labelValues(name, range())),
        },
      )
      process.stdout.write(formatCompletions(request, lexed, completions))
    } finally {
      await client?.close()
    }
  }
}
