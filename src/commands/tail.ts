import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { outputFlag } from '../lib/cli/flags.ts'
import { UsageError } from '../lib/errors.ts'
import { checkLogQL, pinnedLabels } from '../lib/loki/logql.ts'
import { DEFAULT_LOOK_BACK, tailPoll, tailWebSocket } from '../lib/loki/tail.ts'
import { defaultOutputMode, EntryPrinter, type OutputMode } from '../lib/render/output.ts'
import { formatNanos, humanDuration, nowNanos, parseDuration, parseDurationMs, startBefore, TIMER_BOUNDS } from '../lib/time.ts'

export default class Tail extends ObsCommand {
  static override usage = '<%= command.id %> LOGQL [FLAGS]'
  static override summary = 'Follow a log query live, until Ctrl-C'
  static override description =
    "Streams new lines over Loki's WebSocket tail. When the connection drops (network loss, a Loki restart, Loki's one-hour tail limit, or 5 s without a frame from Loki, which pings every second), obs reconnects with backoff and resumes from the last line it printed: nothing is skipped, nothing repeats. Lines that reach Loki late (a shipper's backlog, clock skew) are caught up to --look-back after their own timestamp; obs warns when it sees lines that late. Loki's dropped_entries are reported on stderr. Ctrl-C ends with exit 0 and a summary. Where a proxy blocks WebSockets, --poll follows with range queries instead, with the same guarantee."
  static override examples = [
    '<%= config.bin %> tail \'{app="cogni-template"}\'',
    '<%= config.bin %> tail \'{service="app"} | json | level="error"\' --since 10m --limit 50',
    '<%= config.bin %> tail \'{app="cogni-template"}\' -o jsonl > live.jsonl',
    '<%= config.bin %> tail \'{app="cogni-template"}\' --poll --interval 2s',
  ]

  static override args = {
    logql: Args.string({ description: 'LogQL log query', required: true }),
  }

  static override flags = {
    since: Flags.string({ description: 'start with the lines of this last stretch (default: 1h, at most --limit lines)' }),
    'delay-for': Flags.integer({ description: 'seconds Loki waits for late lines before sending, 0 to 5 (default: 0)', min: 0, max: 5 }),
    limit: Flags.integer({ description: 'lines of history shown on start (default: 100)', min: 1, max: 5000 }),
    poll: Flags.boolean({ description: 'follow with range queries instead of a WebSocket' }),
    interval: Flags.string({ description: 'pause between polls with --poll (default: 1s)' }),
    'look-back': Flags.string({ description: `how late after its timestamp a line may reach Loki and still be printed (default: ${DEFAULT_LOOK_BACK})` }),
    output: outputFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Tail)
    if (checkLogQL(args.logql) !== 'log') throw new UsageError('tail follows log queries only', 'drop the metric function, or use obs query-range')
    const start = startBefore(nowNanos(), flags.since ?? '1h')
    const intervalMs = parseDurationMs(flags.interval ?? '1s', '--interval', TIMER_BOUNDS.interval)
    const lookBack = flags['look-back'] ?? DEFAULT_LOOK_BACK
    const lookBackNs = parseDuration(lookBack, '--look-back')
    // The look-back is asked again every round and kept in memory: an hour is plenty for a backlog.
    if (lookBackNs > parseDuration('1h')) throw new UsageError(`invalid --look-back "${lookBack}": at most 1h`, 'use obs query-range for older lines')
    const mode = (flags.output ?? defaultOutputMode(process.stdout)) as OutputMode
    const client = await this.lokiClient(flags)
    const printer = new EntryPrinter(mode, process.stdout, { chalk: this.stdoutChalk, pinnedLabels: pinnedLabels(args.logql) })
    const controller = new AbortController()
    const stop = () => controller.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    const chalk = this.stderrChalk
    // Said once, and again only when lines arrive twice as late as before.
    let latestWarned = 0n
    const onLate = (latenessNs: bigint) => {
      if (latenessNs < latestWarned * 2n) return
      latestWarned = latenessNs
      this.warn(
        `lines reach Loki ${humanDuration(latenessNs)} after their own timestamp, ${flags.poll ? 'near' : 'past'} the look-back of ${lookBack}: ` +
          `${flags.poll ? 'later ones are missed' : 'across a reconnect such lines are missed'}; raise --look-back`,
      )
    }
    const onMissed = (count: number, fromNs: bigint, toNs: bigint) =>
      this.warn(
        `${count} lines between ${formatNanos(fromNs)} and ${formatNanos(toNs)} reached Loki more than the look-back of ${lookBack} after their timestamp and were not printed; ` +
          `raise --look-back, or fetch them: obs query-range '<query>' --from ${fromNs} --to ${toNs}`,
      )
    const options = {
      query: args.logql,
      start,
      limit: flags.limit ?? 100,
      delayForSeconds: flags['delay-for'] ?? 0,
      lookBackNs,
      onLate,
      onMissed,
      signal: controller.signal,
      onEntries: (entries: Parameters<EntryPrinter['page']>[0]) => printer.page(entries),
      onDropped: (count: number) => this.warn(`Loki dropped ${count} entries: the tail could not keep up (narrow the query, or raise --delay-for)`),
      onReconnect: (reason: string, attempt: number, delayMs: number) => this.note(chalk.yellow(`tail ${reason}; reconnecting in ${delayMs}ms (reconnect ${attempt})`)),
    }
    const stats = flags.poll ? await tailPoll(client, { ...options, intervalMs }) : await tailWebSocket(client, options)
    await printer.end()
    this.note(chalk.dim(`tail stopped: ${stats.lines} lines, ${stats.reconnects} reconnects, ${stats.dropped} dropped (look-back ${lookBack})`))
  }
}
