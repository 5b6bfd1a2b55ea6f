import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag } from '../lib/cli/flags.ts'
import { ExitCode, UsageError } from '../lib/errors.ts'
import { errorContext, findTrace, GAP_BOUNDS, REQUEST_GAP, WIDENING } from '../lib/incident/trace.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { EntryPrinter } from '../lib/render/output.ts'
import { renderTimeline } from '../lib/render/timeline.ts'
import { neutralize } from '../lib/text.ts'
import { formatNanos, nowNanos, parseBoundedDuration, startBefore } from '../lib/time.ts'

export default class Trace extends ObsCommand {
  static override usage = '<%= command.id %> REQID [FLAGS]'
  static override summary = 'Show every log line of one request, across services, as a timeline'
  static override description =
    `Finds the request's lines in all services of the app (a line filter on the id, then an exact match on the JSON field reqId), oldest first: time, offset from the first line, service, level, message and the notable fields, then a summary. It searches newest first (the last minute, then the two before, then four, and so on) and reads the first stretch holding a line of the request whole, so that every later line is found however long the pauses (an error minutes after the first line is part of the request); earlier lines are added while they lie within --gap of the window's start. When nothing is found in --since, the search widens step by step up to ${WIDENING.at(-1)}, saying so on stderr. Exit 1 when the request is not found.`
  static override examples = [
    '<%= config.bin %> trace req-7f3a9c',
    '<%= config.bin %> trace req-7f3a9c --since 24h --app cogni-template',
    "<%= config.bin %> trace req-7f3a9c --json | jq '.entries[].fields.msg'",
    '<%= config.bin %> trace req-7f3a9c --context 10',
  ]

  static override args = {
    reqId: Args.string({ description: 'the request id, as logged in the JSON field reqId', required: true }),
  }

  static override flags = {
    since: Flags.string({ description: `where to start looking, widened automatically up to ${WIDENING.at(-1)} (default: 1h)` }),
    app: Flags.string({ description: 'the app label to search (default: from the profile, else cogni-template)' }),
    gap: Flags.string({ description: `longest pause between two lines of one request before the oldest line found (default: ${REQUEST_GAP})` }),
    context: Flags.integer({ char: 'C', description: 'N lines of its stream before and after each error line of the request', min: 0 }),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Trace)
    if (args.reqId.trim() === '') throw new UsageError('the request id is empty', 'give the reqId to trace')
    const since = flags.since ?? '1h'
    startBefore(nowNanos(), since)
    if (flags.gap !== undefined) parseBoundedDuration(flags.gap, '--gap', GAP_BOUNDS)
    const settings = await this.resolveSettings(flags, { app: flags.app })
    const client = this.track(new LokiClient(settings.loki))
    const trace = await findTrace(client, {
      reqId: args.reqId,
      app: settings.identity.app,
      since,
      end: nowNanos(),
      gap: flags.gap,
      onWiden: (wider, searched) => this.note(`nothing in the last ${searched}; widening to ${wider}`),
    })
    const context = flags.context ? await errorContext(client, trace, flags.context) : undefined
    if (flags.json) {
      await this.writeJson({
        reqId: trace.reqId,
        from: formatNanos(trace.start),
        to: formatNanos(trace.end),
        entries: trace.entries.map(({ entry, fields }) => ({
          timestamp: formatNanos(entry.ts),
          labels: entry.stream.labels,
          line: entry.line,
          fields,
        })),
        ...(context && {
          errorContext: context.map((group) =>
            group.map(({ entry, role }) => ({ timestamp: formatNanos(entry.ts), labels: entry.stream.labels, line: entry.line, context: role })),
          ),
        }),
      })
    } else if (trace.entries.length > 0) {
      process.stdout.write(renderTimeline(trace, this.stdoutChalk))
      if (context) {
        process.stdout.write(`\n${this.stdoutChalk.bold(`context of the error lines (${flags.context} line${flags.context === 1 ? '' : 's'} each side, in their streams):`)}\n`)
        const printer = new EntryPrinter('pretty', process.stdout, { chalk: this.stdoutChalk })
        for (const group of context) await printer.group(group)
        if (context.length === 0) process.stdout.write('no error lines in this request\n')
      }
    }
    if (trace.entries.length === 0) {
      this.note(
        `no lines for reqId ${neutralize(JSON.stringify(trace.reqId))} in app ${neutralize(JSON.stringify(settings.identity.app))} in the last ${trace.widenedTo ?? since}; ` +
          'check the id (it is matched exactly), the app (--app), or look further back with --since',
      )
      this.exit(ExitCode.failed)
    }
  }
}
