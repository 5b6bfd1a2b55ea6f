import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag, timeFlags } from '../lib/cli/flags.ts'
import { VOLUME_CAVEAT, volumeBy, volumeTable } from '../lib/incident/volume.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { checkLabelName, selectorArgument, streamSelector } from '../lib/loki/logql.ts'
import { renderTable } from '../lib/render/output.ts'
import { neutralize } from '../lib/text.ts'
import { formatNanos, resolveTimeRange, shiftBack } from '../lib/time.ts'
import { formatBytes } from '../lib/units.ts'

export default class Volume extends ObsCommand {
  static override usage = '<%= command.id %> [SELECTOR] [FLAGS]'
  static override summary = 'Show bytes per service (or any label) over the range, with share, trend and change'
  static override description =
    `Loki's volume API (/loki/api/v1/index/volume) for the selector (default: the profile's app): bytes per value of --by, each row's share, a sparkline per row on a terminal, and with --compare DUR the change against the same range DUR earlier, rows that grew most first: who got noisy. The total and each share are over every value Loki has (up to its volume_max_series, 1000 by default), shown or not: --limit cuts the rows only, and says "top N of M". The volume is ${VOLUME_CAVEAT}. A Loki with volumes disabled (limits_config.volume_enabled: false) gets a message naming the setting, exit 1.`
  static override examples = [
    '<%= config.bin %> volume --since 1h',
    '<%= config.bin %> volume \'{app="cogni-template"}\' --by service --since 1h --compare 1h',
    '<%= config.bin %> volume \'{app="cogni-template", service="app"}\' --by stream --from now-1d --to now --json',
  ]

  static override args = {
    selector: Args.string({ description: "a stream selector (default: the profile's app)" }),
  }

  static override flags = {
    ...timeFlags('1h'),
    by: Flags.string({ description: 'the label to group by', default: 'service' }),
    compare: Flags.string({ description: 'also the same range this much earlier, and the change: 1h, 1d, 7d' }),
    limit: Flags.integer({ description: 'most rows shown (largest first); the total and the shares are over every value', default: 100, min: 1, max: 1000 }),
    app: Flags.string({ description: 'app label of the default selector (default: profile, else cogni-template)' }),
    env: Flags.string({ description: 'env label of the default selector (default: profile)' }),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Volume)
    const given = args.selector === undefined ? undefined : selectorArgument(args.selector, 'volume')
    const by = checkLabelName(flags.by)
    const range = resolveTimeRange(flags, '1h')
    const compareNs = flags.compare === undefined ? undefined : shiftBack(range, flags.compare, '--compare')
    const settings = await this.resolveSettings(flags, { app: flags.app, env: flags.env })
    const selector = given ?? streamSelector({ app: settings.identity.app, env: settings.identity.env })
    const client = this.track(new LokiClient(settings.loki))
    const terminal = Boolean(process.stdout.isTTY)
    const { value: report } = await this.withinQueryLength(client, range, (within) =>
      volumeBy(client, { selector, by, ...within, compareNs, trend: terminal || flags.json, limit: flags.limit }),
    )
    if (flags.json) {
      const { start, end, compared, ...rest } = report
      await this.writeJson({
        ...rest,
        from: formatNanos(start),
        to: formatNanos(end),
        ...(compared ? { compared: { from: formatNanos(compared.start), to: formatNanos(compared.end), totalBytes: compared.totalBytes } } : {}),
        note: VOLUME_CAVEAT,
      })
      return
    }
    if (report.rows.length === 0) {
      this.note(`no volume for ${neutralize(selector)} in the range; widen it with --since or --from/--to`)
      return
    }
    const { head, rows } = volumeTable(report, { sparklines: terminal })
    const before = report.compared ? `, ${formatBytes(report.compared.totalBytes)} the range ${flags.compare} earlier` : ''
    process.stdout.write(`${await renderTable(head, rows, this.stdoutChalk)}\n${formatBytes(report.totalBytes)} in ${neutralize(selector)}${before}\n`)
    if (report.rows.length < report.values) this.note(`top ${report.rows.length} of ${report.values} values of ${report.by}; --limit shows more`)
    if (report.valuesCut) this.note(`Loki answered with ${report.values} values of ${report.by}, as many as obs asks for; it may have more, which the total does not count`)
  }
}
