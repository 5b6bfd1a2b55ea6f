import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag, timeFlags } from '../lib/cli/flags.ts'
import { UsageError } from '../lib/errors.ts'
import { analyzeLabels } from '../lib/loki/cardinality.ts'
import { checkLogQL } from '../lib/loki/logql.ts'
import { formatLabels, renderTable } from '../lib/render/output.ts'
import { neutralize } from '../lib/text.ts'
import { resolveTimeRange } from '../lib/time.ts'

export default class Series extends ObsCommand {
  static override usage = '<%= command.id %> SELECTOR [FLAGS]'
  static override summary = 'List the streams matching a selector, or analyze their labels'
  static override description =
    'With --analyze-labels, prints a table of each label with its number of distinct values and the streams it appears in, highest cardinality first: the quickest way to spot a label that should have stayed inside the log line.'
  static override examples = [
    '<%= config.bin %> series \'{app="cogni-template"}\'',
    '<%= config.bin %> series \'{app="cogni-template"}\' --analyze-labels --since 24h',
    '<%= config.bin %> series \'{env="prod"}\' --json',
  ]

  static override args = {
    selector: Args.string({ description: 'stream selector, e.g. {app="cogni-template"}', required: true }),
  }

  static override flags = {
    ...timeFlags('1h'),
    'analyze-labels': Flags.boolean({ description: 'table of labels: distinct values and streams' }),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Series)
    const selector = args.selector.trim()
    if (checkLogQL(selector) !== 'log' || !/^\{[\s\S]*\}$/.test(selector)) {
      throw new UsageError('series takes a stream selector only', 'drop the pipeline, e.g. {app="cogni-template"}')
    }
    const range = resolveTimeRange(flags, '1h')
    const client = await this.lokiClient(flags)
    const { value: series } = await this.withinQueryLength(client, range, (within) => client.series([selector], within))
    const show = process.stdout.isTTY ? neutralize : (value: string) => value

    if (flags['analyze-labels']) {
      const report = analyzeLabels(series)
      if (flags.json) {
        await this.writeJson({
          totalStreams: report.totalStreams,
          labels: report.labels.map(({ label, uniqueValues, streams }) => ({ label, uniqueValues, streams })),
        })
        return
      }
      const rows = report.labels.map((stats) => [show(stats.label), String(stats.uniqueValues), String(stats.streams)])
      const table = await renderTable(['label', 'unique values', 'streams'], rows, this.stdoutChalk)
      process.stdout.write(`Total streams: ${report.totalStreams}\nUnique labels: ${report.labels.length}\n${table}\n`)
      return
    }
    series.sort((a, b) => formatLabels(a).localeCompare(formatLabels(b)))
    if (flags.json) {
      await this.writeJson({ series })
      return
    }
    const lines = series.map(formatLabels)
    process.stdout.write(lines.map((line) => `${show(line)}\n`).join(''))
  }
}
