import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag, timeFlags } from '../lib/cli/flags.ts'
import { fieldsOf } from '../lib/incident/fields.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { selectorArgument } from '../lib/loki/logql.ts'
import { renderTable } from '../lib/render/output.ts'
import { neutralize } from '../lib/text.ts'
import { formatNanos, resolveTimeRange } from '../lib/time.ts'

export default class Fields extends ObsCommand {
  static override usage = '<%= command.id %> SELECTOR [FLAGS]'
  static override summary = 'Show the fields the lines carry: type, values, the parser, a ready filter'
  static override description =
    "Reads the newest lines of the range (--sample) and parses them as Loki's json and logfmt parsers do (nested JSON keys joined with _), next to Loki's detected_fields where it serves: each field's type, its distinct values in the sample and by Loki, its most common values with counts, and a LogQL filter to paste. Fields the label policy says must never be labels are marked, and so are index labels that look like fields (too many values, id-like values)."
  static override examples = [
    '<%= config.bin %> fields \'{app="cogni-template", service="app"}\' --since 1h',
    "<%= config.bin %> fields '{app=\"cogni-template\"}' --sample 5000 --json | jq '.fields[] | select(.sampleCardinality > 100) | .name'",
  ]

  static override args = {
    selector: Args.string({ description: 'a stream selector, or a log query (its selector is used)', required: true }),
  }

  static override flags = {
    ...timeFlags('1h'),
    sample: Flags.integer({ description: 'lines to read, newest first', default: 1000, min: 1, max: 50_000 }),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Fields)
    const selector = selectorArgument(args.selector, 'fields')
    const asked = resolveTimeRange(flags, '1h')
    const settings = await this.resolveSettings(flags)
    const client = this.track(new LokiClient(settings.loki))
    const { range, value: report } = await this.withinQueryLength(client, asked, (within) => fieldsOf(client, selector, within, { policy: settings.policy, sample: flags.sample }))
    if (report.lokiUnavailable) this.note(`Loki's detected fields are unavailable (${report.lokiUnavailable}); from obs's sample alone`)
    if (flags.json) {
      await this.writeJson({ ...report, from: formatNanos(range.start), to: formatNanos(range.end) })
      return
    }
    if (report.sampled === 0) {
      this.note(`no lines match ${neutralize(selector)} in the range; widen it with --since or --from/--to`)
      return
    }
    const rows = report.fields.map((field) => [
      (field.name === '' ? '"" (empty key)' : neutralize(field.name)) + (field.neverALabel ? ' *' : ''),
      field.type,
      field.parsers.join(', '),
      `${field.sampleCardinality}${field.lokiCardinality === undefined ? '' : ` / ${field.lokiCardinality}`}`,
      `${field.lines}`,
      field.top.map(({ value, count }) => `${neutralize(value.length > 40 ? `${value.slice(0, 39)}…` : value)} (${count})`).join(', '),
      neutralize(field.filter ?? ''),
    ])
    process.stdout.write(
      `${await renderTable(['field', 'type', 'parser', 'values (sample / Loki)', 'lines', 'most common', 'filter'], rows, this.stdoutChalk)}\n` +
        `${report.sampled} lines sampled from ${neutralize(selector)}.` +
        (report.fields.some((f) => f.neverALabel) ? ' * the label policy says this field must never be a label.' : '') +
        '\n',
    )
    for (const label of report.suspectLabels) {
      process.stdout.write(`label ${neutralize(label.name)} (${label.values} values) looks like a field: ${label.reason}; query it with | json instead\n`)
    }
  }
}
