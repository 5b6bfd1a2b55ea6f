import * as Flags from '@oclif/core/flags'
import { AlloyClient } from '../lib/alloy/client.ts'
import { doctorChecks, readAlloyConfigFile, readComposeFile, readingsFile } from '../lib/checks/doctor.ts'
import type { DockerAccess } from '../lib/checks/doctor-causes.ts'
import { runChecks } from '../lib/checks/runner.ts'
import { ObsCommand } from '../lib/cli/command.ts'
import { alloyAddrFlag, jsonFlag } from '../lib/cli/flags.ts'
import { DEFAULT_DOCKER_HOST, DockerClient } from '../lib/docker/client.ts'
import { LokiClient } from '../lib/loki/client.ts'
import { nowNanos, startBefore } from '../lib/time.ts'

export default class Doctor extends ObsCommand {
  static override usage = '<%= command.id %> [FLAGS]'
  static override summary = "Inspect Loki, Alloy and the stack's files; say what is wrong and how to fix it"
  static override description =
    "Loki: readiness, version against the stack's pin, labels against the policy (values and streams per label; labels Loki adds itself, such as service_name and __stream_shard__, explained and not counted), streams without env, lines Loki discarded in the --since window (by reason, each with its fix; exact when Loki started inside the window, else counted from the oldest reading of Loki's counter that obs keeps inside the window in its cache directory, OBS_CACHE_DIR or ~/.cache/obs, else over 3 s watched; the finding says which). Alloy: readiness and config load, every component's health, Docker discovery, each Docker target's state and last error, what loki.write sent, dropped and retried. Each hint follows the cause: a container whose log driver Docker cannot read back is named with the compose fix; pushes Loki refuses (HTTP 4xx) are tied to Loki's discard reason; for lines too old or too new, the Docker Engine at DOCKER_HOST (default unix:///var/run/docker.sock) is asked which container's newest line has a pino time off from Docker's timestamp, and by how much. Files (--compose, --alloy-config): Docker socket read-only, ports on 127.0.0.1, pinned images, APP_ENV, relabel rules that would create high-cardinality labels. Each finding comes with why it matters, the fix, and a pointer into runbooks/TROUBLESHOOTING.md. Exit 0 when nothing fails, 1 when a check fails, 2 when a --compose or --alloy-config file cannot be read or understood (one line naming the place in the file; nothing is sent), 3 when Loki or Alloy cannot be reached."
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --compose stack/docker-compose.yml --alloy-config stack/alloy-config.alloy',
    '<%= config.bin %> doctor --no-alloy --since 24h --json',
  ]

  static override flags = {
    compose: Flags.string({ description: 'the compose file to inspect' }),
    'alloy-config': Flags.string({ description: 'the Alloy config file to inspect' }),
    since: Flags.string({ description: 'window of the label, stream and discarded-lines checks (default: 1h)' }),
    alloy: Flags.boolean({ description: 'inspect Alloy (--no-alloy skips it)', default: true, allowNo: true }),
    'alloy-addr': alloyAddrFlag,
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Doctor)
    const window = flags.since ?? '1h'
    const now = nowNanos()
    const sinceNs = now - startBefore(now, window)
    // The files are the user's input: one that cannot be understood is refused (exit 2) before anything is sent.
    const compose = flags.compose === undefined ? undefined : readComposeFile(flags.compose)
    const alloyConfig = flags['alloy-config'] === undefined ? undefined : readAlloyConfigFile(flags['alloy-config'])
    const settings = await this.resolveSettings(flags)
    const loki = this.track(new LokiClient(settings.loki))
    const alloy = flags.alloy ? this.track(new AlloyClient(settings.alloy)) : undefined
    // Docker is asked only to name a cause (a log driver, a container's clock); a DOCKER_HOST it cannot use is said there, not refused.
    let docker: DockerAccess
    try {
      docker = { client: this.track(new DockerClient(process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST)) }
    } catch (error) {
      docker = { unavailable: (error as Error).message }
    }
    const checks = doctorChecks({
      loki,
      alloy,
      policy: settings.policy,
      range: () => ({ start: nowNanos() - sinceNs, end: nowNanos() }),
      window,
      readings: { file: readingsFile(process.env), addr: loki.address, orgId: settings.loki.headers['x-scope-orgid'] },
      compose,
      alloyConfig,
      docker,
    })
    const results = await runChecks(checks, { waitMs: 0, intervalMs: 0 })
    await this.reportChecks(results, flags.json)
  }
}
