import * as Flags from '@oclif/core/flags'
import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag } from '../lib/cli/flags.ts'
import { ExitCode } from '../lib/errors.ts'
import { deadlineIn } from '../lib/http.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { waitForReady } from '../lib/loki/ready.ts'
import { parseDurationMs, TIMER_BOUNDS } from '../lib/time.ts'

export default class Ready extends ObsCommand {
  static override usage = '<%= command.id %> [FLAGS]'
  static override summary = 'Check that Loki is ready to serve (GET /ready)'
  static override description =
    'Prints "ready", or Loki\'s own reason when it is not. Exit 0 when ready, 1 when Loki answers but is not ready, 3 when it cannot be reached. With --wait, polls until Loki is ready or the time is up, which is what a deploy script wants right after starting Loki; the time bounds the whole wait, a request Loki never answers included.'
  static override examples = ['<%= config.bin %> ready', '<%= config.bin %> ready --wait 60s', '<%= config.bin %> ready --addr http://loki.internal:3100 --json']

  static override flags = {
    wait: Flags.string({ description: `keep polling this long until ready, ${TIMER_BOUNDS.wait.min} to ${TIMER_BOUNDS.wait.max}, e.g. 30s, 2m` }),
    interval: Flags.string({ description: `pause between polls with --wait, ${TIMER_BOUNDS.interval.min} to ${TIMER_BOUNDS.interval.max} (default: 1s)` }),
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Ready)
    const waitMs = flags.wait ? parseDurationMs(flags.wait, '--wait', TIMER_BOUNDS.wait) : 0
    const intervalMs = parseDurationMs(flags.interval ?? '1s', '--interval', TIMER_BOUNDS.interval)
    const settings = await this.resolveSettings(flags)
    // --wait bounds the whole wait: a request still unanswered when it is up is cut, whatever --timeout says.
    const client = this.track(new LokiClient({ ...settings.loki, deadline: waitMs ? deadlineIn(waitMs, flags.wait!, '--wait') : undefined }))
    const chalk = this.stderrChalk
    const outcome = await waitForReady(client, {
      waitMs,
      intervalMs,
      onWaiting: (reason, elapsedMs) => this.note(chalk.dim(`waiting for Loki at ${client.address} (${Math.round(elapsedMs / 1000)}s of ${flags.wait}): ${reason}`)),
    })
    if (flags.json) {
      await this.writeJson({ ready: outcome.ready, address: outcome.address, status: outcome.status, message: outcome.message, waitedMs: outcome.waitedMs })
    } else {
      process.stdout.write(`${outcome.ready ? 'ready' : outcome.message}\n`)
    }
    if (!outcome.ready) {
      if (!flags.json) this.note(`Loki at ${outcome.address} is not ready (HTTP ${outcome.status})${waitMs ? ` after waiting ${flags.wait}` : ''}`)
      this.exit(ExitCode.failed)
    }
  }
}
