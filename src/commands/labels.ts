import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag, timeFlags } from '../lib/cli/flags.ts'
import { checkLabelName, checkLogQL } from '../lib/loki/logql.ts'
import { neutralize } from '../lib/text.ts'
import { resolveTimeRange } from '../lib/time.ts'

export default class Labels extends ObsCommand {
  static override usage = '<%= command.id %> [NAME] [FLAGS]'
  static override summary = 'List label names, or the values of one label'
  static override description = 'One per line, sorted. The default window is the last hour, as in Loki.'
  static override examples = ['<%= config.bin %> labels', '<%= config.bin %> labels service --since 24h', '<%= config.bin %> labels env --query \'{app="cogni-template"}\' --json']

  static override args = {
    name: Args.string({ description: 'label whose values to list' }),
  }

  static override flags = {
    ...timeFlags('1h'),
    query: Flags.string({ description: 'only streams matching this selector, e.g. {app="cogni-template"}' }),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Labels)
    if (args.name !== undefined) checkLabelName(args.name)
    if (flags.query !== undefined) checkLogQL(flags.query)
    const range = resolveTimeRange(flags, '1h')
    const client = await this.lokiClient(flags)
    const { value: values } = await this.withinQueryLength(client, range, (within) => {
      const query = { ...within, query: flags.query }
      return args.name === undefined ? client.labels(query) : client.labelValues(args.name, query)
    })
    values.sort()
    if (flags.json) {
      await this.writeJson(args.name === undefined ? { labels: values } : { label: args.name, values })
      return
    }
    const show = process.stdout.isTTY ? neutralize : (value: string) => value
    process.stdout.write(values.map((value) => `${show(value)}\n`).join(''))
  }
}
