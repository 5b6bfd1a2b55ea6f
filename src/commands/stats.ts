import * as Args from '@oclif/core/args'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag, timeFlags } from '../lib/cli/flags.ts'
import { selectorArgument } from '../lib/loki/logql.ts'
import { describeEstimate, estimateQuery, INDEX_CAVEAT } from '../lib/loki/query-cost.ts'
import { formatNanos, resolveTimeRange } from '../lib/time.ts'

export default class Stats extends ObsCommand {
  static override usage = '<%= command.id %> SELECTOR [FLAGS]'
  static override summary = "Estimate what a query would read, from Loki's index"
  static override description =
    `Loki's index statistics for the selector over the range: streams, chunks, entries and bytes, without reading a line. The estimate is ${INDEX_CAVEAT}, so a range that ends now reads low. A query's line filters and parsers do not change it: only its selector is looked up. query-range asks for it before wide queries and refuses above maxQueryBytes (default 10 GB) without --yes.`
  static override examples = [
    '<%= config.bin %> stats \'{app="cogni-template"}\' --since 24h',
    '<%= config.bin %> stats \'{app="cogni-template", service="worker"}\' --from now-7d --to now-1d --json',
  ]

  static override args = {
    selector: Args.string({ description: 'a stream selector, or a log query (its selector is used)', required: true }),
  }

  static override flags = {
    ...timeFlags('1h'),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Stats)
    const selector = selectorArgument(args.selector, 'stats')
    const client = await this.lokiClient(flags)
    const { range, value: estimate } = await this.withinQueryLength(client, resolveTimeRange(flags, '1h'), (within) => estimateQuery(client, selector, within))
    if (flags.json) {
      await this.writeJson({ ...estimate, from: formatNanos(range.start), to: formatNanos(range.end), note: INDEX_CAVEAT })
      return
    }
    process.stdout.write(`${describeEstimate(estimate)}\n`)
  }
}
