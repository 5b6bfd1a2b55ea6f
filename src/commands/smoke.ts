import { Flags } from '@oclif/core'
import { AlloyClient } from '../lib/alloy-client.ts'
import { writeJUnit, runChecks } from '../lib/checks.ts'
import { ObsCommand } from '../lib/command.ts'
import { UsageError } from '../lib/errors.ts'
import { alloyAddrFlag, jsonFlag } from '../lib/flags.ts'
import { LokiClient } from '../lib/loki-client.ts'
import { smokeChecks } from '../lib/smoke.ts'
import { nowNanos, parseDurationMs, shown, startBefore, TIMER_BOUNDS } from '../lib/time.ts'

export default class Smoke extends ObsCommand {
  static override usage = '<%= command.id %> [FLAGS]'
  static override summary = 'Run the post-deploy smoke checks against Loki and Alloy'
  static override description =
    "The design doc's validation checklist, automated: loki-ready, logs-ingested (Query 1), service-logs-json (Query 2), error-filter (Query 3), reqid-trace (Query 4), label-policy (labels Loki adds itself, such as service_name and __stream_shard__, are explained, not failed) and alloy-targets. Independent checks run concurrently. Logs take seconds to arrive after a deploy: --wait retries failing checks until they pass or the time is up. Exit 0 when every check passes, 1 when one fails, 3 when Loki or Alloy cannot be reached."
  static override examples = [
    '<%= config.bin %> smoke',
    '<%= config.bin %> smoke --wait 60s --junit smoke.xml',
    '<%= config.bin %> smoke --app cogni-template --service app --env prod --since 1h --json',
    '<%= config.bin %> smoke --no-alloy',
  ]

  static override flags = {
    app: Flags.string({ description: 'app label (default: profile, else cogni-template)' }),
    service: Flags.string({ description: 'service label of the app (default: profile, else app)' }),
    env: Flags.string({ description: 'env label (default: profile; any env when unset)' }),
    since: Flags.string({ description: 'window of the queries (default: 15m)' }),
    wait: Flags.string({ description: 'retry failing checks this long, e.g. 60s' }),
    junit: Flags.string({ description: 'also write the results as JUnit XML to this file' }),
    alloy: Flags.boolean({ description: 'check Alloy\'s targets (--no-alloy skips it)', default: true, allowNo: true }),
    'alloy-addr': alloyAddrFlag,
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Smoke)
    const since = flags.since ?? '15m'
    const now = nowNanos()
    const sinceNs = now - startBefore(now, since)
    if (!/^\d+[smhdw]$/.test(since)) throw new UsageError(`--since for smoke must be one number and unit, like 15m or 1h (got "${shown(since)}")`)
    const waitMs = flags.wait ? parseDurationMs(flags.wait, '--wait', TIMER_BOUNDS.wait) : 0
    const settings = await this.resolveSettings(flags, { app: flags.app, service: flags.service, env: flags.env })
    const loki = this.track(new LokiClient(settings.loki))
    const alloy = flags.alloy ? this.track(new AlloyClient(settings.alloy)) : undefined
    const checks = smokeChecks({ loki, alloy, identity: settings.identity, policy: settings.policy, since, sinceNs, now: nowNanos })
    const results = await runChecks(checks, {
      waitMs,
      intervalMs: 2000,
      onRetry: (failing, elapsedMs) => this.note(this.stderrChalk.dim(`waiting (${Math.round(elapsedMs / 1000)}s of ${flags.wait}): ${failing.join(', ')} not passing yet`)),
    })
    await this.reportChecks(results, flags.json, flags.junit ? writeJUnit(flags.junit, 'obs smoke', results) : undefined)
  }
}
