import * as Args from '@oclif/core/args'
import { Command } from '@oclif/core/command'
import { type CompletableCommand, completeWords, forBash, splitLine } from '../lib/cli/completion.ts'
import { findConfigFile, readConfigFile, resolveSettings } from '../lib/config/settings.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { nowNanos, startBefore } from '../lib/time.ts'

/** Commands whose first argument is LogQL. */
const LOGQL_COMMANDS = new Set(['query', 'query-range', 'tail', 'series', 'stats', 'fields'])

/** How long completion may wait for Loki: a shell that hangs on Tab is worse than no suggestion. */
const LOKI_TIMEOUT_MS = 800

/** The shell function's helper (obs completion): prints the completions of the line so far, one per line. */
export default class Complete extends Command {
  static override hidden = true
  static override strict = false
  static override args = { line: Args.string({ description: 'the command line up to the cursor' }) }

  async run(): Promise<void> {
    const { args } = await this.parse(Complete)
    const { words, current } = splitLine(args.line ?? '')
    const commands: CompletableCommand[] = this.config.commands
      .filter((c) => !c.hidden)
      .map((c) => ({
        id: c.id,
        flags: Object.entries(c.flags ?? {}).map(([name, flag]) => ({ name, char: flag.char, options: flag.type === 'option' ? flag.options : undefined })),
        logqlArgument: LOGQL_COMMANDS.has(c.id),
        labelArgument: c.id === 'labels',
      }))
    let client: LokiClient | undefined
    const loki = async () => {
      const settings = await resolveSettings({ flags: {}, env: process.env, cwd: process.cwd(), version: this.config.version })
      client ??= new LokiClient({ ...settings.loki, timeoutMs: LOKI_TIMEOUT_MS, retries: 0 })
      return client
    }
    const range = () => ({ start: startBefore(nowNanos(), '6h'), end: nowNanos() })
    // Completion never fails the shell: whatever goes wrong, it suggests nothing.
    const quietly = async (list: () => Promise<string[]>) => list().catch(() => [])
    try {
      const candidates = await completeWords(words, current, {
        commands,
        profiles: () =>
          quietly(async () => {
            const found = findConfigFile(process.cwd(), process.env).found
            return found ? Object.keys((await readConfigFile(found)).profiles) : []
          }),
        labelNames: () => quietly(async () => (await loki()).labels(range())),
        labelValues: (name) => quietly(async () => (await loki()).labelValues(name, range())),
      })
      process.stdout.write(
        forBash(current, candidates)
          .map((c) => `${c}\n`)
          .join(''),
      )
    } finally {
      await client?.close()
    }
  }
}
