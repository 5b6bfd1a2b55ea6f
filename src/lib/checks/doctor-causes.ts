/**
 * What doctor says is the cause, once a check found the symptom: the log
 * driver a container logs with, the reason Loki gives for the lines it
 * refuses, and the container whose clock put its lines out of Loki's range.
 * Kept apart from the checks so that a hint follows what the servers say
 * rather than the first guess a symptom suggests.
 */
import type { DockerTarget } from '../alloy/client.ts'
import type { DockerClient } from '../docker/client.ts'
import type { LokiClient } from '../loki/client.ts'
import { parseMetrics, sumBy } from '../metrics.ts'
import { neutralize, oneLine, shown } from '../text.ts'

/** The Docker Engine next to Alloy, or why doctor cannot ask it. */
export type DockerAccess = { client: DockerClient } | { unavailable: string }

/** What each reason of loki_discarded_samples_total means and how to fix it, naming Loki's setting. */
export const DISCARD_FIXES: Record<string, string> = {
  rate_limited: 'raise limits_config.ingestion_rate_mb / ingestion_burst_size_mb, or log less',
  per_stream_rate_limit: 'raise limits_config.per_stream_rate_limit (and per_stream_rate_limit_burst), or spread lines over more streams',
  stream_limit: 'too many streams (limits_config.max_global_streams_per_user): a label has too many values; remove high-cardinality labels',
  line_too_long: 'lines above limits_config.max_line_size (256KB): shorten them, or set limits_config.max_line_size_truncate',
  greater_than_max_sample_age: 'lines older than limits_config.reject_old_samples_max_age (7d): fix the clock or the timestamp stage',
  too_far_in_future: "timestamps more than limits_config.creation_grace_period (10m) ahead of Loki's clock: fix the clock or the timestamp stage (pino time is UnixMs)",
  out_of_order: 'entries out of order for a stream (limits_config.unordered_writes is off): check the timestamp stage',
  too_far_behind: "entries older than the stream's newest by more than half of ingester.max_chunk_age: a container's clock went back, or the timestamp stage is wrong",
  invalid_labels: 'label names or values Loki refuses (limits_config.max_label_name_length, max_label_value_length): check the relabel rules',
  missing_labels: 'streams with no labels: check the relabel rules',
  max_label_names_per_series: 'more than limits_config.max_label_names_per_series (15) labels on a stream: keep to app, env, service, stream',
  label_value_too_long:
    'a label value above limits_config.max_label_value_length (2048 bytes): it belongs in the line, not in a label (Loki 3.6 counts such a line under invalid_labels too)',
  request_body_too_large: "pushes above Loki's server.grpc_server_max_recv_msg_size / distributor limit: lower loki.write's batch_size",
}

export function discardFix(reason: string): string {
  return `${shown(reason)}: ${DISCARD_FIXES[reason] ?? "see Loki's limits_config"}`
}

/** The reasons whose lines carry a timestamp Loki will not take: a clock is the usual cause. */
const CLOCK_REASONS = new Set(['greater_than_max_sample_age', 'too_far_in_future', 'too_far_behind'])

export const isClockReason = (reason: string) => CLOCK_REASONS.has(reason)

const DISCARDED = 'loki_discarded_samples_total'

/** Loki's discards by reason since it started, from its /metrics. */
export async function lokiDiscards(loki: LokiClient): Promise<Record<string, number>> {
  return Object.fromEntries(sumBy(parseMetrics(await loki.metrics(), [DISCARDED]), DISCARDED, 'reason'))
}

// ---- the log driver -------------------------------------------------------

/** What Alloy's loki.source.docker reports for a container whose log Docker cannot read back. */
const UNREADABLE_DRIVER = /logging driver does not support reading/i

export function unreadableLogDriver(target: Pick<DockerTarget, 'lastError'>): boolean {
  return UNREADABLE_DRIVER.test(target.lastError)
}

/**
 * The fix for containers whose log driver Docker cannot read back: the driver
 * (asked of Docker when it can be), and the compose setting that fixes it,
 * naming the container and its service.
 */
export async function logDriverHint(targets: DockerTarget[], docker?: DockerAccess): Promise<string> {
  const fixes: string[] = []
  for (const target of targets) {
    let driver: string | undefined
    if (docker && 'client' in docker)
      driver = await docker.client.inspect(target.id).then(
        (state) => state.logDriver,
        () => undefined,
      )
    const container = shown(target.name || target.id)
    const logsWith = driver
      ? `logs with the log driver "${shown(driver)}", which Docker cannot read back`
      : "logs with a log driver Docker cannot read back (none, or a remote driver with Docker's log cache off)"
    const fix = target.service
      ? `set services.${shown(target.service)}.logging.driver to json-file or local in the compose file (or remove its logging override), then docker compose up -d ${shown(target.service)}`
      : 'run it with --log-driver json-file or local (or without --log-driver)'
    fixes.push(`${container}${target.service ? ` (compose service ${shown(target.service)})` : ''} ${logsWith}, so Alloy reads none of its lines: ${fix}`)
  }
  return fixes.join('; ')
}

// ---- the clock of a container ------------------------------------------------

/** How far a line's own time may be from Docker's before doctor calls it a wrong clock: more than any delivery delay. */
export const CLOCK_SKEW_MS = 60_000
/** At most this many containers are read: one request each. */
const MAX_CONTAINERS = 100

export interface ClockSkew {
  container: string
  service?: string
  /** The line's pino time minus Docker's timestamp of it: negative is behind. */
  offsetMs: number
  pinoTime: number
  dockerMs: number
}

/** pino's `time` of a JSON line, epoch milliseconds (pino's default) or an ISO string (pino's isoTime). */
export function pinoTimeMs(line: string): number | undefined {
  if (!line.startsWith('{')) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return undefined
  }
  const time = (parsed as { time?: unknown } | null)?.time
  if (typeof time === 'number' && Number.isFinite(time)) return time
  if (typeof time === 'string') {
    const ms = Date.parse(time)
    return Number.isNaN(ms) ? undefined : ms
  }
  return undefined
}

/** Docker's RFC 3339 nanosecond timestamp, as epoch milliseconds. */
function dockerMs(text: string): number {
  return Date.parse(text.replace(/(\.\d{3})\d+/, '$1'))
}

/**
 * Each running container's newest line against Docker's timestamp of it:
 * the containers whose pino `time` is off by more than CLOCK_SKEW_MS, most
 * off first, and how many containers had a line to compare.
 */
export async function clockSkews(docker: DockerClient): Promise<{ skews: ClockSkew[]; compared: number; containers: number }> {
  const running = (await docker.running()).slice(0, MAX_CONTAINERS)
  const skews: ClockSkew[] = []
  let compared = 0
  for (const container of running) {
    // A container Docker cannot read back (its log driver) or that ended meanwhile has no line to compare.
    const newest = await docker.newestLogLine(container.id).catch(() => undefined)
    const pinoTime = newest && pinoTimeMs(newest.line)
    if (!newest || pinoTime === undefined) continue
    const received = dockerMs(newest.dockerTime)
    if (Number.isNaN(received)) continue
    compared += 1
    const offsetMs = pinoTime - received
    if (Math.abs(offsetMs) > CLOCK_SKEW_MS) {
      skews.push({ container: container.name || container.id.slice(0, 12), service: container.labels['com.docker.compose.service'], offsetMs, pinoTime, dockerMs: received })
    }
  }
  skews.sort((a, b) => Math.abs(b.offsetMs) - Math.abs(a.offsetMs))
  return { skews, compared, containers: running.length }
}

/** A long offset in days, hours and minutes: "10d 0h", "3h 12m", "4m 30s". */
export function offsetText(ms: number): string {
  const seconds = Math.round(Math.abs(ms) / 1000)
  const [d, h, m, s] = [Math.floor(seconds / 86400), Math.floor((seconds % 86400) / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${m}m`
  return `${m}m ${s}s`
}

const iso = (ms: number) => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z') : String(ms))

/** Which container's clock is off, and by how much, as a hint's sentence; or why doctor cannot tell. */
export async function clockFinding(docker: DockerAccess | undefined): Promise<string> {
  if (!docker) return "which container's clock is off is not known: obs doctor was given no Docker Engine"
  if ('unavailable' in docker) return `could not ask Docker which container's clock is off (${docker.unavailable}): set DOCKER_HOST to the engine Alloy reads`
  let found: Awaited<ReturnType<typeof clockSkews>>
  try {
    found = await clockSkews(docker.client)
  } catch (error) {
    return `could not ask Docker at ${docker.client.host} which container's clock is off (${oneLine((error as Error).message)}): set DOCKER_HOST to the engine Alloy reads`
  }
  if (found.skews.length === 0) {
    return `no running container's newest line has a pino time more than ${CLOCK_SKEW_MS / 60_000} min off Docker's timestamp (${found.compared} of ${found.containers} containers compared): look at the timestamp stage, or a container that logged such lines earlier`
  }
  const named = found.skews.slice(0, 10).map((skew) => {
    const who = `${neutralize(shown(skew.container))}${skew.service ? ` (service ${neutralize(shown(skew.service))})` : ''}`
    return `${who}: its newest line's pino time is ${offsetText(skew.offsetMs)} ${skew.offsetMs < 0 ? 'behind' : 'ahead of'} Docker's timestamp (time ${iso(skew.pinoTime)}, Docker ${iso(skew.dockerMs)})`
  })
  const more = found.skews.length > 10 ? `; and ${found.skews.length - 10} more` : ''
  return `the clock is wrong in ${named.join('; ')}${more} — fix that container's clock or how its app sets time`
}

/**
 * The hint for pushes Loki refused (HTTP 4xx): not a reachability problem.
 * Loki's discard reasons name what it refused; each gets its fix, and a clock
 * reason names the container whose clock is off.
 */
export async function pushRefusalHint(
  refused: [code: string, count: number][],
  discards: { reasons: Record<string, number>; covers: string } | { unavailable: string },
  docker: DockerAccess | undefined,
): Promise<string> {
  const codes = refused.map(([code, n]) => `${n}× HTTP ${code}`).join(', ')
  const head = `Loki answered (${codes}), so it is reachable: it refuses the lines themselves`
  if ('unavailable' in discards)
    return `${head}; its reason is in loki_discarded_samples_total, which obs could not read (${discards.unavailable}): see obs doctor's loki-ingestion`
  const reasons = Object.entries(discards.reasons).filter(([, n]) => n > 0)
  if (reasons.length === 0) return `${head}; Loki counted no discarded lines ${discards.covers}: read Alloy's log for the push error`
  const listed = reasons.map(([reason, n]) => `${n} for ${shown(reason)}`).join(', ')
  const fixes = reasons.map(([reason]) => discardFix(reason)).join('; ')
  const clock = reasons.some(([reason]) => isClockReason(reason)) ? `; ${await clockFinding(docker)}` : ''
  return `${head} — loki_discarded_samples_total ${discards.covers}: ${listed}; ${fixes}${clock}`
}
