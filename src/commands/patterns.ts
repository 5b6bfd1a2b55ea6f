import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag, timeFlags } from '../lib/cli/flags.ts'
import { UsageError } from '../lib/errors.ts'
import { fetchPatterns, ingesterCounters, PATTERNS_CAVEAT, patternsTable, resolveLevels, sampleTemplates, TEMPLATE_SAMPLE_LINES } from '../lib/incident/patterns.ts'
import { selectorArgument } from '../lib/loki/logql.ts'
import { renderTable } from '../lib/render/output.ts'
import { neutralize } from '../lib/text.ts'
import { formatNanos, nowNanos, parseTime, resolveTimeRange } from '../lib/time.ts'

export default class Patterns extends ObsCommand {
  static override usage = '<%= command.id %> SELECTOR [FLAGS]'
  static override summary = "Show the log patterns Loki's pattern ingester found, with counts, level and trend"
  static override description =
    `Loki's /loki/api/v1/patterns for the selector over the range: each pattern (<_> where lines differ) with its count, share, level and, on a terminal, a sparkline. --new-since T marks the patterns with no line between the start of the range and T. Counts are ${PATTERNS_CAVEAT}. Where the ingester has no pattern for the range (it drops messages of fewer than four tokens, such as pino's "request received"), obs says why from the ingester's own counters (Loki's /metrics) and shows message templates of the newest ${TEMPLATE_SAMPLE_LINES} lines instead (numbers, ids and quoted values masked), counted in that sample. A Loki without the pattern ingester (pattern_ingester.enabled is off by default) gets a message naming the setting, exit 1.`
  static override examples = [
    '<%= config.bin %> patterns \'{app="cogni-template", service="app"}\' --since 1h',
    '<%= config.bin %> patterns \'{app="cogni-template"}\' --since 2h --new-since now-10m',
    "<%= config.bin %> patterns '{service=\"worker\"}' --since 30m --json | jq '.patterns[] | select(.isNew)'",
  ]

  static override args = {
    selector: Args.string({ description: 'a stream selector, or a log query (its selector is used)', required: true }),
  }

  static override flags = {
    ...timeFlags('1h'),
    'new-since': Flags.string({ description: 'mark patterns with no line before this time (within the range): RFC 3339, Unix s/ms/ns, or now-10m' }),
    limit: Flags.integer({ description: 'most patterns shown, most frequent first (0: all)', default: 50, min: 0 }),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Patterns)
    const selector = selectorArgument(args.selector, 'patterns')
    const now = nowNanos()
    const range = resolveTimeRange(flags, '1h', now)
    const newSince = flags['new-since'] === undefined ? undefined : parseTime(flags['new-since'], now, '--new-since')
    if (newSince !== undefined && (newSince <= range.start || newSince >= range.end)) {
      throw new UsageError(
        `--new-since ${formatNanos(newSince)} is not inside the range ${formatNanos(range.start)} – ${formatNanos(range.end)}`,
        'start the range earlier (--since, --from) so that there is a "before" to compare with',
      )
    }
    const client = await this.lokiClient(flags)
    const report = await fetchPatterns(client, { selector, ...range, newSince })
    if (report.rows.length === 0) {
      await this.fallback(client, selector, range, flags.limit, flags.json)
      return
    }
    const shown = flags.limit === 0 ? report.rows : report.rows.slice(0, flags.limit)
    await resolveLevels(client, selector, range, shown)
    if (flags.json) {
      await this.writeJson({
        selector,
        from: formatNanos(report.start),
        to: formatNanos(report.end),
        ...(newSince === undefined ? {} : { newSince: formatNanos(newSince) }),
        stepSeconds: report.stepSeconds,
        totalCount: report.totalCount,
        patterns: shown,
        note: PATTERNS_CAVEAT,
      })
      return
    }
    const chalk = this.stdoutChalk
    const { head, rows } = patternsTable(shown, { markNew: newSince !== undefined, sparklines: Boolean(process.stdout.isTTY), chalk })
    const newCount = report.rows.filter((r) => r.isNew).length
    const summary = `${report.rows.length} patterns, ${report.totalCount} lines in ${neutralize(selector)}${newSince === undefined ? '' : `; ${newCount} new since ${formatNanos(newSince)}`}`
    process.stdout.write(`${await renderTable(head, rows, chalk)}\n${summary}\n`)
    if (shown.length < report.rows.length) this.note(`${report.rows.length - shown.length} less frequent patterns not shown; --limit 0 shows all`)
  }

  /**
   * No pattern from the ingester: why, from its counters, and the message
   * templates of a bounded sample of the lines instead (the sample said).
   */
  private async fallback(
    client: Awaited<ReturnType<Patterns['lokiClient']>>,
    selector: string,
    range: { start: bigint; end: bigint },
    limit: number,
    json: boolean,
  ): Promise<void> {
    const counters = await ingesterCounters(client)
    const why =
      counters === undefined
        ? "Loki's /metrics could not be read to say why"
        : `since Loki started, its pattern ingester dropped ${counters.tooFewTokens} lines as too short (fewer than 4 tokens in the message, such as "request received") and formed ${counters.detected} patterns`
    const sample = await sampleTemplates(client, selector, range)
    const shown = limit === 0 ? sample.rows : sample.rows.slice(0, limit)
    const sampled = `message templates of the newest ${sample.sampled} lines${sample.sampled >= TEMPLATE_SAMPLE_LINES ? ` (a sample: at most ${TEMPLATE_SAMPLE_LINES})` : ' (every line of the range)'}, counted in them`
    if (json) {
      await this.writeJson({
        selector,
        from: formatNanos(range.start),
        to: formatNanos(range.end),
        totalCount: 0,
        patterns: [],
        ingester: { empty: true, ...(counters ?? {}), why },
        templates: { sampleLines: sample.sampled, sampleLimit: TEMPLATE_SAMPLE_LINES, rows: shown.map(({ trend: _, ...row }) => row) },
        note: PATTERNS_CAVEAT,
      })
      return
    }
    this.note(`no patterns from Loki's pattern ingester for ${neutralize(selector)} in the range: ${why}`)
    if (sample.sampled === 0) {
      this.note('no lines in the range either (the pattern ingester keeps about 3h); widen it with --since or --from/--to')
      return
    }
    this.note(`instead: ${sampled}`)
    const chalk = this.stdoutChalk
    const { head, rows } = patternsTable(shown, { markNew: false, sparklines: false, chalk })
    head[head.length - 1] = 'template'
    process.stdout.write(`${await renderTable(head, rows, chalk)}\n${sample.rows.length} templates, ${sampled}\n`)
    if (shown.length < sample.rows.length) this.note(`${sample.rows.length - shown.length} less frequent templates not shown; --limit 0 shows all`)
  }
}
