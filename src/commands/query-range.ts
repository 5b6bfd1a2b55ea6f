import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import type * as Interfaces from '@oclif/core/interfaces'
import { ObsCommand } from '../lib/cli/command.ts'
import { outputFlag, timeFlags } from '../lib/cli/flags.ts'
import { UsageError } from '../lib/errors.ts'
import { tuneHeapForStreaming } from '../lib/heap.ts'
import { type ContextPlan, contextPlanFromEnv, withContext } from '../lib/incident/context.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { checkLogQL, pinnedLabels, type QueryKind } from '../lib/loki/logql.ts'
import { fetchMetricRange, metricStep } from '../lib/loki/metric-query.ts'
import { fetchLogPages, type LogEntry, MAX_PAGE } from '../lib/loki/paging.ts'
import { ExecTotals, guardQueryCost } from '../lib/loki/query-cost.ts'
import { defaultOutputMode, EntryPrinter, type OutputMode, renderMetric } from '../lib/render/output.ts'
import { Progress } from '../lib/render/terminal.ts'
import { neutralize } from '../lib/text.ts'
import { formatNanos, type Nanos, parseDuration, resolveTimeRange } from '../lib/time.ts'
import { groupDigits } from '../lib/units.ts'

/**
 * Windows in flight for a full export. Two keep a small Loki's cores busy:
 * on the 2-core benchmark machine four were no faster and held twice the
 * pages in memory (150 MB peak against 127 MB).
 */
const EXPORT_PARALLEL = 2

/** Ranges longer than this are estimated before they run, whatever their limit (a metric query reads all of its range). */
const WIDE_RANGE = parseDuration('24h')

export default class QueryRange extends ObsCommand {
  static override hiddenAliases = ['query_range']
  static override usage = '<%= command.id %> LOGQL [FLAGS]'
  static override summary = 'Run a LogQL query over a time range'
  static override description =
    'Log queries print entries as they arrive, paging past Loki\'s per-query cap (--batch) without losing or repeating a line at a page boundary, even when several streams share a timestamp. --limit 0 returns every entry in the range. Metric queries print a table with a sparkline per series on a terminal.\n\nWith -A/-B/-C, each matching line comes with the lines around it in its stream (the labels of the match, without the query\'s filters and parsers; with --all-streams every stream of its app), exact to the nanosecond: lines sharing the match\'s timestamp are neither lost nor repeated. Groups that overlap are merged and printed oldest line first, `--` between them; matches are marked with `>` (pretty) or "context":"match" (jsonl).'
  static override examples = [
    '<%= config.bin %> query-range \'{app="cogni-template"}\' --since 1h --limit 0 -o jsonl > export.jsonl',
    '<%= config.bin %> query-range \'{app="cogni-template"}\' --since 24h --limit 0 --parallel 4 -o raw > day.log',
    '<%= config.bin %> query-range \'{service="app"} | json | level="error"\' --since 30m',
    '<%= config.bin %> query-range \'{app="cogni-template"}\' --from 2026-11-24T10:00:00Z --to 2026-11-24T11:00:00Z --forward -o raw',
    '<%= config.bin %> query-range \'{app="cogni-template"} | json | level="error"\' --since 1h -C 5',
    '<%= config.bin %> query-range \'{service="worker"} |= "timeout"\' --since 30m -B 20 --all-streams',
    '<%= config.bin %> query-range \'sum by (service) (rate({app="cogni-template"}[1m]))\' --since 3h --step 5m',
  ]

  static override args = {
    logql: Args.string({ description: 'LogQL log or metric query', required: true }),
  }

  static override flags = {
    ...timeFlags('1h'),
    limit: Flags.integer({ description: 'most entries to print; 0 for all in the range', default: 100, min: 0 }),
    batch: Flags.integer({ description: `entries per request to Loki (default: Loki's max_entries_limit_per_query, ${MAX_PAGE} unless set)`, min: 1 }),
    forward: Flags.boolean({ description: 'oldest entries first (default: newest first)' }),
    step: Flags.string({ description: 'resolution of metric queries, e.g. 1m (default: chosen by Loki)' }),
    parallel: Flags.integer({ description: 'time windows fetched concurrently; the output is the same, in the same order (default: 2 with --limit 0, else 1)', min: 1, max: 16 }),
    output: outputFlag,
    'after-context': Flags.integer({ char: 'A', description: 'N lines after each match, from its stream', min: 0, helpGroup: 'CONTEXT' }),
    'before-context': Flags.integer({ char: 'B', description: 'N lines before each match, from its stream', min: 0, helpGroup: 'CONTEXT' }),
    context: Flags.integer({ char: 'C', description: 'N lines before and after each match (-A and -B override it)', min: 0, helpGroup: 'CONTEXT' }),
    yes: Flags.boolean({ description: "run a wide query even when Loki's index estimates it above maxQueryBytes (default 10 GB)" }),
    stats: Flags.boolean({ description: "print Loki's execution summary (bytes and lines processed, time) on stderr at the end" }),
    'all-streams': Flags.boolean({ description: "context from every stream of the match's app (all its services and containers), interleaved", helpGroup: 'CONTEXT' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(QueryRange)
    const kind = checkLogQL(args.logql)
    const range = resolveTimeRange(flags, '1h')
    const step = flags.step === undefined ? undefined : metricStep(flags.step, range)
    const mode = (flags.output ?? defaultOutputMode(process.stdout)) as OutputMode
    const before = flags['before-context'] ?? flags.context ?? 0
    const after = flags['after-context'] ?? flags.context ?? 0
    const wantsContext = flags['after-context'] !== undefined || flags['before-context'] !== undefined || flags.context !== undefined
    if (flags['all-streams'] && !wantsContext) throw new UsageError('--all-streams widens the context of -A, -B or -C', 'add -C N (or -A N / -B N)')
    if (wantsContext && kind === 'metric') throw new UsageError('-A, -B and -C show the lines around log lines; a metric query has none', 'drop them, or query the log lines')
    const plan = wantsContext ? contextPlanFromEnv(process.env.OBS_CONTEXT_PLAN) : 'auto'
    const settings = await this.resolveSettings(flags)
    const lokiClient = this.track(new LokiClient(settings.loki))
    if ((kind === 'log' && flags.limit === 0) || range.end - range.start > WIDE_RANGE) {
      await guardQueryCost(lokiClient, args.logql, range, {
        maxBytes: settings.maxQueryBytes,
        yes: flags.yes,
        show: process.stderr.isTTY ? (line) => this.note(line) : undefined,
      })
    }
    const totals = new ExecTotals()
    const client = flags.stats ? totals.counting(lokiClient) : lokiClient
    try {
      await this.print(args.logql, kind, flags, { client, range, step, mode, before, after, wantsContext, plan })
    } finally {
      if (flags.stats) this.note(totals.describe())
    }
  }

  private async print(
    query: string,
    kind: QueryKind,
    flags: Interfaces.InferredFlags<typeof QueryRange.flags>,
    run: { client: LokiClient; range: { start: Nanos; end: Nanos }; step?: string; mode: OutputMode; before: number; after: number; wantsContext: boolean; plan: ContextPlan },
  ): Promise<void> {
    const { client, range, step, mode, before, after, wantsContext, plan } = run
    if (kind === 'metric') {
      const data = await fetchMetricRange(client, { query, ...range, step })
      process.stdout.write(await renderMetric(data, mode, this.stdoutChalk, Boolean(process.stdout.isTTY)))
      return
    }

    // Loki refuses a limit above its cap: paging lowers the batch to it. Said
    // only when the user asked for more, not about a default. A short query
    // does not wait for the limits: paging reads them only if its first page
    // does not finish the job.
    const exporting = flags.limit === 0 || flags.limit > MAX_PAGE
    const maxEntriesPerQuery = flags.batch !== undefined || exporting ? (await client.queryLimits()).maxEntriesPerQuery : MAX_PAGE
    if (flags.batch !== undefined && maxEntriesPerQuery > 0 && flags.batch > maxEntriesPerQuery) {
      this.warn(`--batch ${flags.batch} is above this Loki's max_entries_limit_per_query (${maxEntriesPerQuery}): asking ${maxEntriesPerQuery} entries per request`)
    }
    if (exporting) tuneHeapForStreaming()
    // With context, a line of another stream is no longer pinned away: every line shows its labels.
    const printer = new EntryPrinter(mode, process.stdout, { chalk: this.stdoutChalk, pinnedLabels: flags['all-streams'] ? undefined : pinnedLabels(query) })
    const progress = new Progress()
    const pages = fetchLogPages(client, {
      query,
      ...range,
      direction: flags.forward ? 'forward' : 'backward',
      limit: flags.limit,
      batch: flags.batch ?? (maxEntriesPerQuery || MAX_PAGE),
      // A full export wants every window anyway: fetch ahead. A limited query
      // usually ends with its first window, so it does not ask for more.
      parallel: flags.parallel ?? (flags.limit === 0 ? EXPORT_PARALLEL : 1),
    })
    if (wantsContext) {
      const matches: LogEntry[] = []
      for await (const page of pages) matches.push(...page)
      progress.update(`${groupDigits(matches.length)} matches; fetching their context`)
      const groups = await withContext(client, matches, { before, after, allStreams: flags['all-streams'], plan }).finally(() => progress.done())
      for (const group of groups) await printer.group(group)
      await printer.end()
      if (matches.length === 0) this.nothingFound(query, range)
      return
    }
    try {
      for await (const page of pages) {
        await printer.page(page)
        progress.update(`${groupDigits(printer.printed)} lines`)
      }
    } finally {
      progress.done()
    }
    await printer.end()
    if (printer.printed === 0) this.nothingFound(query, range)
  }

  /** Silence on a terminal looks like a hang or a bug: say what was searched. */
  private nothingFound(query: string, range: { start: Nanos; end: Nanos }): void {
    if (!process.stderr.isTTY) return
    this.note(
      `no entries match ${neutralize(query)} from ${formatNanos(range.start)} to ${formatNanos(range.end)}; widen the range (--since, --from/--to) or check the selector with obs series`,
    )
  }
}
