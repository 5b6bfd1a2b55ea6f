import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { outputFlag } from '../lib/cli/flags.ts'
import { UsageError } from '../lib/errors.ts'
import { checkLogQL } from '../lib/loki/logql.ts'
import { defaultOutputMode, type OutputMode, renderMetric } from '../lib/render/output.ts'
import { nowNanos, parseTime } from '../lib/time.ts'

export default class Query extends ObsCommand {
  static override usage = '<%= command.id %> LOGQL [FLAGS]'
  static override summary = 'Run an instant metric query'
  static override description =
    'Evaluates a LogQL metric query at one point in time and prints the result as a table (JSON with -o json or jsonl). Log queries need a range: use query-range.'
  static override examples = [
    '<%= config.bin %> query \'sum by (level) (count_over_time({app="cogni-template"} | json [5m]))\'',
    '<%= config.bin %> query \'count_over_time({app="cogni-template"}[5m])\' --time now-1h',
    '<%= config.bin %> query \'rate({service="app"} |= "error" [1m])\' -o jsonl',
  ]

  static override args = {
    logql: Args.string({ description: 'LogQL metric query', required: true }),
  }

  static override flags = {
    time: Flags.string({ description: 'evaluation time: RFC 3339, Unix s/ms/ns, or now-1h (default: now)' }),
    limit: Flags.integer({ description: 'most series to return (default: 100)', min: 1 }),
    output: outputFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Query)
    if (checkLogQL(args.logql) === 'log') {
      throw new UsageError('a log query cannot run as an instant query', `use obs query-range for log lines, or wrap it in a metric such as count_over_time(... [5m])`)
    }
    const time = flags.time === undefined ? nowNanos() : parseTime(flags.time, nowNanos(), '--time')
    const mode = (flags.output ?? defaultOutputMode(process.stdout)) as OutputMode
    const client = await this.lokiClient(flags)
    const data = await client.queryInstant({ query: args.logql, time, limit: flags.limit })
    process.stdout.write(await renderMetric(data, mode, this.stdoutChalk, Boolean(process.stdout.isTTY)))
  }
}
