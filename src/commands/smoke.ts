import * as Flags from '@oclif/core/flags'
import { AlloyClient } from '../lib/alloy/client.ts'
import { deployChecks, deployWindow } from '../lib/checks/deploy.ts'
import { pipelineProbeCheck } from '../lib/checks/probe.ts'
import { writeJUnit } from '../lib/checks/report.ts'
import { runChecks } from '../lib/checks/runner.ts'
import { smokeChecks } from '../lib/checks/smoke.ts'
import { ObsCommand } from '../lib/cli/command.ts'
import { alloyAddrFlag, jsonFlag } from '../lib/cli/flags.ts'
import { DEFAULT_DOCKER_HOST, DockerClient } from '../lib/docker/client.ts'
import { UsageError } from '../lib/errors.ts'
import { deadlineIn } from '../lib/http.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { shown } from '../lib/text.ts'
import { nowNanos, parseDurationMs, startBefore, TIMER_BOUNDS } from '../lib/time.ts'

export default class Smoke extends ObsCommand {
  static override usage = '<%= command.id %> [FLAGS]'
  static override summary = 'Run the post-deploy smoke checks against Loki and Alloy'
  static override description =
    "The design doc's validation checklist, automated: loki-ready, logs-ingested (Query 1), service-logs-json (Query 2), error-filter (Query 3), reqid-trace (Query 4), label-policy (labels Loki adds itself, such as service_name and __stream_shard__, are explained, not failed) and alloy-targets. --probe adds pipeline-probe: obs starts a throwaway container with the app's compose labels (on the Docker Engine DOCKER_HOST names, default unix:///var/run/docker.sock), it writes one unique marker line, and obs reports how long the line took to reach Loki, or the hop where it stopped (the container, Alloy's target, Alloy's pushes, Loki). --deployed-at T adds the deploy verdict, the window after T against an equal window before it, per service of the app: error-rate (error lines a minute, pino's level from the JSON), new-patterns (error messages new since T: the message templates of the first 1000 error lines after T, pino's msg and err.type/err.message with numbers, ids and quoted values masked, each new when Loki counts no line of it in the window before; no pattern ingester needed) and volume-shift (bytes per service from Loki's volume API, outside a band). A service that started inside a window is measured over the time it existed there; with less than a minute of lines before T, or none, it is not compared and the check warns. The thresholds come from the profile's deploy: settings; a Loki without volumes skips volume-shift with the setting that turns them on. Independent checks run concurrently. Logs take seconds to arrive after a deploy: --wait retries failing checks until they pass or the time is up. Exit 0 when every check passes, 1 when one fails, 3 when Loki or Alloy cannot be reached."
  static override examples = [
    '<%= config.bin %> smoke',
    '<%= config.bin %> smoke --wait 60s --junit smoke.xml',
    '<%= config.bin %> smoke --app cogni-template --service app --env prod --since 1h --json',
    '<%= config.bin %> smoke --no-alloy',
    '<%= config.bin %> smoke --probe --probe-image busybox:1.36',
    '<%= config.bin %> smoke --deployed-at now-10m --junit smoke.xml',
    '<%= config.bin %> smoke --deployed-at 2026-11-24T10:00:00Z --window 30m --json',
  ]

  static override flags = {
    app: Flags.string({ description: 'app label (default: profile, else cogni-template)' }),
    service: Flags.string({ description: 'service label of the app (default: profile, else app)' }),
    env: Flags.string({ description: 'env label (default: profile; any env when unset)' }),
    since: Flags.string({ description: 'window of the queries (default: 15m)' }),
    wait: Flags.string({ description: 'retry failing checks this long, e.g. 60s; it bounds the whole run (--probe excepted), a request Loki never answers included' }),
    junit: Flags.string({ description: 'also write the results as JUnit XML to this file' }),
    alloy: Flags.boolean({ description: "check Alloy's targets (--no-alloy skips it)", default: true, allowNo: true }),
    probe: Flags.boolean({ description: 'send a marker line through the live pipeline and time it (needs the Docker socket) [env: DOCKER_HOST]' }),
    'probe-image': Flags.string({ description: 'image of the probe container; needs sh, echo, date, sleep', default: 'busybox' }),
    'probe-timeout': Flags.string({ description: 'how long the probe waits for its marker in Loki', default: '60s' }),
    'deployed-at': Flags.string({ description: 'compare the window after this deploy time with the one before: now-10m, RFC 3339, Unix s/ms/ns' }),
    window: Flags.string({ description: 'length of each window with --deployed-at (default: from the deploy to now)' }),
    'alloy-addr': alloyAddrFlag,
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Smoke)
    const since = flags.since ?? '15m'
    const now = nowNanos()
    const sinceNs = now - startBefore(now, since)
    if (!/^\d+[smhdw]$/.test(since)) throw new UsageError(`--since for smoke must be one number and unit (got "${shown(since)}")`, 'give it like 15m or 1h')
    const waitMs = flags.wait ? parseDurationMs(flags.wait, '--wait', TIMER_BOUNDS.wait) : 0
    const window = flags['deployed-at'] === undefined ? undefined : deployWindow(flags['deployed-at'], flags.window, now)
    if (flags.window !== undefined && !window) throw new UsageError('--window needs --deployed-at', 'add --deployed-at with the time of the deploy')
    if (window?.cut) this.note(this.stderrChalk.dim(`--window ${shown(flags.window!)} reaches past now: comparing ${window.cut} on each side`))
    const settings = await this.resolveSettings(flags, { app: flags.app, service: flags.service, env: flags.env })
    // --wait bounds the whole run: requests still unanswered when it is up are cut, whatever --timeout says.
    const deadline = waitMs ? deadlineIn(waitMs, flags.wait!, '--wait') : undefined
    const loki = this.track(new LokiClient({ ...settings.loki, deadline }))
    const alloy = flags.alloy ? this.track(new AlloyClient({ ...settings.alloy, deadline })) : undefined
    const checks = smokeChecks({ loki, alloy, identity: settings.identity, policy: settings.policy, since, sinceNs, now: nowNanos })
    if (window) {
      checks.push(...deployChecks({ loki, identity: settings.identity, thresholds: settings.deploy, deployedAt: window.deployedAt, windowNs: window.windowNs, now: nowNanos }))
    }
    if (flags.probe) {
      const timeoutMs = parseDurationMs(flags['probe-timeout'], '--probe-timeout', TIMER_BOUNDS.wait)
      const docker = this.track(new DockerClient(process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST))
      // The probe has a bound of its own, --probe-timeout, which may be longer than --wait.
      const probeLoki = deadline ? this.track(new LokiClient(settings.loki)) : loki
      const probeAlloy = deadline && flags.alloy ? this.track(new AlloyClient(settings.alloy)) : alloy
      checks.push(pipelineProbeCheck({ loki: probeLoki, alloy: probeAlloy, docker, image: flags['probe-image'], identity: settings.identity, timeoutMs }))
    }
    const results = await runChecks(checks, {
      waitMs,
      intervalMs: 2000,
      onRetry: (failing, elapsedMs) => this.note(this.stderrChalk.dim(`waiting (${Math.round(elapsedMs / 1000)}s of ${flags.wait}): ${failing.join(', ')} not passing yet`)),
    })
    await this.reportChecks(results, flags.json, flags.junit ? writeJUnit(flags.junit, 'obs smoke', results, settings.redactor) : undefined)
  }
}
