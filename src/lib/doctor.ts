import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { componentField, dockerTargets, type AlloyClient, type AlloyComponent } from './alloy-client.ts'
import { analyzeLabels } from './cardinality.ts'
import { lokiReadyCheck, type Check, type CheckOutcome } from './checks.ts'
import type { LabelPolicy } from './config.ts'
import { UsageError } from './errors.ts'
import { judgeLabels, labelPolicyOutcome, pipelineStreams, policyViolation, RESERVED_PREFIX, violationHint } from './label-policy.ts'
import type { LokiClient } from './loki-client.ts'
import { gaugeValue, keepReading, loadReadings, parseMetrics, sumBy, type CounterReading, type Sample } from './metrics.ts'
import { humanDuration, type Nanos } from './time.ts'

/** Where doctor keeps its readings of Loki's counters: obs's cache directory, found as scripts/build-servers.sh finds it. */
export function readingsFile(env: NodeJS.ProcessEnv): string {
  const cache = env.OBS_CACHE_DIR || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'obs')
  return join(cache, 'doctor-readings.json')
}

/** The versions the stack pins. */
export const PINNED = { loki: '3.6.2', alloy: 'v1.9.2' }

const GUIDE = 'runbooks/TROUBLESHOOTING.md'
const see = (anchor: string) => `(${GUIDE}#${anchor})`

export interface DoctorContext {
  loki: LokiClient
  alloy?: AlloyClient
  policy: LabelPolicy
  range: () => { start: Nanos; end: Nanos }
  /** The --since window as the user typed it, for the findings' text. */
  window: string
  /** Where readings of Loki's counters are kept between runs, and whose they are; none keeps no history. */
  readings?: { file: string; addr: string; orgId?: string }
  /** How long to watch Loki's counters when no earlier reading covers the window. */
  liveWindowMs?: number
  composeFile?: string
  alloyConfigFile?: string
}

/** What each reason of loki_discarded_samples_total means and how to fix it. */
const DISCARD_FIXES: Record<string, string> = {
  rate_limited: 'raise limits_config.ingestion_rate_mb / ingestion_burst_size_mb, or log less',
  per_stream_rate_limit: 'raise limits_config.per_stream_rate_limit, or spread lines over more streams',
  stream_limit: 'too many streams: a label has too many values; remove high-cardinality labels',
  line_too_long: 'lines above limits_config.max_line_size (256KB): shorten them, or set max_line_size_truncate',
  greater_than_max_sample_age: 'lines older than reject_old_samples_max_age (7d): fix the clock or the timestamp stage',
  too_far_in_future: 'timestamps ahead of Loki\'s clock: fix the host clock or the timestamp stage (pino time is UnixMs)',
  out_of_order: 'entries out of order for a stream: check the timestamp stage',
  too_far_behind: 'entries too far behind the stream\'s newest: check the timestamp stage',
  invalid_labels: 'label names or values Loki refuses: check the relabel rules',
  missing_labels: 'streams with no labels: check the relabel rules',
  max_label_names_per_series: 'more than 15 labels on a stream: keep to app, env, service, stream',
  label_value_too_long: 'a label value above 2048 bytes: it belongs in the line, not in a label (Loki 3.6 counts such a line under invalid_labels too)',
  request_body_too_large: 'pushes above the size limit: lower loki.write batch_size',
}

/** Everything obs doctor inspects, as checks: Loki, then Alloy, then the stack's files. */
export function doctorChecks(context: DoctorContext): Check[] {
  const checks: Check[] = [...lokiChecks(context)]
  if (context.alloy) checks.push(...alloyChecks(context.alloy))
  if (context.composeFile) checks.push(...composeChecks(context.composeFile))
  if (context.alloyConfigFile) checks.push(alloyConfigCheck(context.alloyConfigFile, context.policy))
  return checks
}

function lokiChecks(context: DoctorContext): Check[] {
  const { loki, policy, range } = context
  return [
    lokiReadyCheck(loki),
    {
      id: 'loki-version',
      title: `Loki runs the pinned ${PINNED.loki}`,
      async run(): Promise<CheckOutcome> {
        const { version } = await loki.buildInfo()
        if (version === PINNED.loki) return { status: 'pass', detail: `Loki ${version}` }
        if (!version) return { status: 'warn', detail: 'Loki reports no version (a build without version stamping)', hint: `use the grafana/loki:${PINNED.loki} image ${see('versions')}` }
        return { status: 'warn', detail: `Loki ${version} runs, the stack pins ${PINNED.loki} — configs and runbooks are tested against the pin`, hint: `deploy grafana/loki:${PINNED.loki}, or update the pin after testing ${see('versions')}` }
      },
    },
    {
      id: 'loki-labels',
      title: 'labels follow the policy',
      async run(): Promise<CheckOutcome> {
        const series = await loki.series(['{app=~".+"}'], range())
        if (series.length === 0) return { status: 'skip', detail: 'no streams with an app label in the window' }
        const report = analyzeLabels(series)
        const verdict = judgeLabels(report.labels.map(({ label, uniqueValues, streams }) => ({ name: label, values: uniqueValues, streams })), policy)
        const created = pipelineStreams(series)
        return labelPolicyOutcome(verdict, created === series.length ? `${series.length} streams` : `${series.length} streams, ${created} before Loki split them`)
      },
    },
    {
      id: 'loki-env-label',
      title: 'every stream has an env label',
      async run(): Promise<CheckOutcome> {
        const series = await loki.series(['{app=~".+"}'], range())
        if (series.length === 0) return { status: 'skip', detail: 'no streams with an app label in the window' }
        const without = series.filter((labels) => !labels.env)
        if (without.length === 0) return { status: 'pass', detail: `all ${series.length} streams carry env` }
        return {
          status: 'fail',
          detail: `${without.length} of ${series.length} streams have no env label — dev, test and prod logs cannot be told apart`,
          hint: `set APP_ENV in Alloy's environment (the compose file requires it) ${see('labels-missing')}`,
        }
      },
    },
    lokiIngestionCheck(context),
  ]
}

/**
 * Counters add up since the process started, so a failure an hour ago looks
 * like one now. Two readings this far apart tell what is happening now.
 */
export const LIVE_WINDOW_MS = 3000

const DISCARDED = 'loki_discarded_samples_total'
const PROCESS_START = 'process_start_time_seconds'

const sumOf = (counts: Record<string, number>) => Object.values(counts).reduce((sum, n) => sum + n, 0)
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')

/** What Loki discarded over a stretch of time, and what that stretch is, for the detail. */
interface DiscardCount {
  counts: Record<string, number>
  covers: string
  /** Discards Loki counted before the stretch, reported as information only. */
  before?: string
}

/**
 * Lines Loki discarded within the --since window. Loki's counter adds up
 * since Loki started, so: if Loki started inside the window, the counter is
 * the window's count; else the increase since obs's oldest reading of the
 * counter inside the window (kept between runs in the cache); else the
 * increase over a few seconds watched now, saying so.
 */
function lokiIngestionCheck({ loki, range, window, readings, liveWindowMs = LIVE_WINDOW_MS }: DoctorContext): Check {
  const read = async (): Promise<Omit<CounterReading, 'addr' | 'orgId'>> => {
    const samples = parseMetrics(await loki.metrics(), [DISCARDED, PROCESS_START])
    return { atMs: Number(range().end / 1_000_000n), processStart: gaugeValue(samples, PROCESS_START), counts: Object.fromEntries(sumBy(samples, DISCARDED, 'reason')) }
  }
  const increase = (now: Record<string, number>, then: Record<string, number>): Record<string, number> | undefined => {
    const counts = Object.fromEntries(Object.entries(now).map(([reason, n]) => [reason, n - (then[reason] ?? 0)]))
    // A counter that went down was reset: that earlier reading is from another life of the process.
    return Object.values(counts).some((n) => n < 0) ? undefined : counts
  }
  const countWindow = async (): Promise<{ count: DiscardCount; latest: Omit<CounterReading, 'addr' | 'orgId'> }> => {
    const first = await read()
    const windowStartMs = Number(range().start / 1_000_000n)
    const startedMs = first.processStart === undefined ? undefined : first.processStart * 1000
    if (startedMs !== undefined && startedMs >= windowStartMs) {
      return { count: { counts: first.counts, covers: `in the last ${window} (exact: Loki started inside it, at ${isoSeconds(startedMs)})` }, latest: first }
    }
    const sinceStart = startedMs === undefined ? 'since Loki started (when is unknown: it exposes no process_start_time_seconds)' : `since Loki started at ${isoSeconds(startedMs)}, before the window began`
    const baseline = (readings ? loadReadings(readings.file) : [])
      .filter((r) => r.addr === readings?.addr && r.orgId === readings?.orgId && r.processStart === first.processStart && r.atMs >= windowStartMs && r.atMs <= first.atMs)
      .sort((a, b) => a.atMs - b.atMs)
      .map((r) => ({ reading: r, counts: increase(first.counts, r.counts) }))
      .find((candidate) => candidate.counts !== undefined)
    if (baseline?.counts) {
      const span = humanDuration(BigInt(first.atMs - baseline.reading.atMs) * 1_000_000n)
      const earlier = sumOf(baseline.reading.counts)
      return {
        count: {
          counts: baseline.counts,
          covers: `since ${isoSeconds(baseline.reading.atMs)}, obs's oldest reading inside the last ${window} (${span} of it)`,
          before: earlier > 0 ? `${earlier} discarded ${sinceStart}, up to that reading, not counted` : undefined,
        },
        latest: first,
      }
    }
    await new Promise((resolve) => setTimeout(resolve, liveWindowMs))
    const second = await read()
    const lifetime = sumOf(first.counts)
    return {
      count: {
        // Counts that went down mean Loki restarted while watched: it started inside the window, so its counts are the window's.
        counts: increase(second.counts, first.counts) ?? second.counts,
        covers: `in the ${liveWindowMs / 1000} s watched (obs has no earlier reading of this Loki inside the last ${window}; the next run looks back to this one)`,
        before:
          lifetime > 0
            ? `${lifetime} discarded ${sinceStart}, not counted: without an earlier reading obs cannot tell how many of them fall inside it`
            : undefined,
      },
      latest: second,
    }
  }
  return {
    id: 'loki-ingestion',
    title: `Loki accepted every pushed line in the last ${window}`,
    async run(): Promise<CheckOutcome> {
      const { count, latest } = await countWindow()
      let unkept = ''
      if (readings) {
        try {
          keepReading(readings.file, { addr: readings.addr, orgId: readings.orgId, ...latest })
        } catch (error) {
          unkept = `; could not keep this reading in ${readings.file} (${(error as NodeJS.ErrnoException).code ?? 'unwritable'}), so the next run cannot look back to it: set OBS_CACHE_DIR to a writable directory`
        }
      }
      const byReason = Object.entries(count.counts).filter(([, n]) => n > 0)
      const before = count.before ? `; ${count.before}` : ''
      if (byReason.length === 0) return { status: 'pass', detail: `no lines discarded ${count.covers}${before}${unkept}` }
      const detail = byReason.map(([reason, n]) => `${n} lines discarded for ${reason}`).join('; ')
      const fixes = byReason.map(([reason]) => `${reason}: ${DISCARD_FIXES[reason] ?? 'see Loki\'s limits_config'}`).join('; ')
      return { status: 'fail', detail: `${detail} ${count.covers} — those lines are lost${before}${unkept}`, hint: `${fixes} ${see('rejected-lines')}` }
    },
  }
}

function components(list: AlloyComponent[], name: string): AlloyComponent[] {
  return list.filter((component) => component.name === name)
}

function total(samples: Sample[], name: string, keep: (labels: Record<string, string>) => boolean = () => true): number {
  return samples.filter((s) => s.name === name && keep(s.labels)).reduce((sum, s) => sum + s.value, 0)
}

function describeStatus(code: string): string {
  return code === '-1' ? 'connection failed' : `HTTP ${code}`
}

export function alloyChecks(alloy: AlloyClient, liveWindowMs = LIVE_WINDOW_MS): Check[] {
  let listing: Promise<AlloyComponent[]> | undefined
  let firstReading: Promise<Sample[]> | undefined
  const list = () => (listing ??= alloy.components())
  const metrics = () => (firstReading ??= alloy.metrics().then((text) => parseMetrics(text)))
  return [
    {
      id: 'alloy-ready',
      title: 'Alloy is ready and its config loaded',
      async run(): Promise<CheckOutcome> {
        if (!(await alloy.ready())) {
          return { status: 'fail', detail: 'Alloy answers but is not ready — it has not loaded its config', hint: `read docker logs alloy for the config error ${see('alloy-not-ready')}` }
        }
        const lastLoad = (await metrics()).find((s) => s.name === 'alloy_config_last_load_successful')
        if (lastLoad && lastLoad.value !== 1) {
          return { status: 'fail', detail: 'the last config reload failed — Alloy runs an older config', hint: `fix the config and reload ${see('alloy-not-ready')}` }
        }
        const version = (await metrics()).find((s) => s.name === 'alloy_build_info')?.labels.version ?? ''
        if (version && version.replace(/-.*$/, '') !== PINNED.alloy) {
          return { status: 'warn', detail: `Alloy ${version} runs, the stack pins ${PINNED.alloy}`, hint: `deploy grafana/alloy:${PINNED.alloy} ${see('versions')}` }
        }
        return { status: 'pass', detail: `ready at ${alloy.address}${version ? `, ${version}` : ''}` }
      },
    },
    {
      id: 'alloy-components',
      title: 'every Alloy component is healthy',
      async run(): Promise<CheckOutcome> {
        const all = await list()
        const unhealthy = all.filter((c) => c.health && c.health.state !== 'healthy')
        if (unhealthy.length === 0) return { status: 'pass', detail: `${all.length} components healthy: ${all.map((c) => c.localID).join(', ')}` }
        return {
          status: 'fail',
          detail: unhealthy.map((c) => `${c.localID} ${c.health?.state}: ${c.health?.message ?? ''}`).join('; '),
          hint: `fix what the message names ${see('alloy-components')}`,
        }
      },
    },
    {
      id: 'alloy-docker-discovery',
      title: 'discovery.docker finds the containers',
      async run(): Promise<CheckOutcome> {
        const discovery = components(await list(), 'discovery.docker')
        if (discovery.length === 0) return { status: 'fail', detail: 'no discovery.docker component in the config', hint: `use stack/alloy-config.alloy ${see('no-logs-ingested')}` }
        let targets = 0
        for (const component of discovery) {
          const exported = componentField((await alloy.component(component.localID)).exports, 'targets')
          targets += Array.isArray(exported) ? exported.length : 0
        }
        const failures = total(await metrics(), 'prometheus_sd_refresh_failures_total', (labels) => labels.mechanism === 'docker')
        const history = failures > 0 ? `; ${failures} refreshes failed since Alloy started` : ''
        if (targets === 0) {
          return {
            status: 'fail',
            detail: `discovery.docker lists no containers${history} — no logs are collected`,
            hint: `check that the app containers run and that /var/run/docker.sock is mounted into alloy (read-only) ${see('docker-socket')}`,
          }
        }
        return { status: 'pass', detail: `${targets} Docker targets discovered${history}` }
      },
    },
    {
      id: 'alloy-docker-targets',
      title: 'loki.source.docker reads every target',
      async run(): Promise<CheckOutcome> {
        const all = await list()
        if (components(all, 'loki.source.docker').length === 0) {
          return { status: 'fail', detail: 'no loki.source.docker component in the config', hint: `use stack/alloy-config.alloy ${see('no-logs-ingested')}` }
        }
        const targets = await dockerTargets(alloy, all)
        if (targets.length === 0) return { status: 'fail', detail: 'loki.source.docker has no targets — nothing is read', hint: `check discovery.docker and the relabel rules ${see('docker-socket')}` }
        const broken = targets.filter((t) => !t.running || t.lastError)
        if (broken.length > 0) {
          return {
            status: 'fail',
            detail: `${broken.map((t) => `${t.id}: ${t.running ? 'running' : 'not running'}${t.lastError ? `, last error: ${t.lastError}` : ''}`).join('; ')} — their logs are not read (Alloy keeps listing targets it can no longer reach)`,
            hint: `check that Docker runs and its socket is mounted into alloy, and the containers are up ${see('docker-socket')}`,
          }
        }
        return { status: 'pass', detail: `${targets.length} targets read: ${targets.map((t) => t.id).join(', ')}` }
      },
    },
    {
      id: 'alloy-loki-write',
      title: 'loki.write delivers to Loki',
      async run(): Promise<CheckOutcome> {
        const before = await metrics()
        await new Promise((resolve) => setTimeout(resolve, liveWindowMs))
        const after = parseMetrics(await alloy.metrics())
        const requests = (samples: Sample[], ok: boolean) =>
          total(samples, 'loki_write_request_duration_seconds_count', (labels) => (labels.status_code ?? '').startsWith('2') === ok)
        const failedCodes = [...sumBy(after, 'loki_write_request_duration_seconds_count', 'status_code')].filter(([code, n]) => n > 0 && !code.startsWith('2'))
        const sent = total(after, 'loki_write_sent_entries_total')
        const dropped = total(after, 'loki_write_dropped_entries_total')
        const droppedNow = dropped - total(before, 'loki_write_dropped_entries_total')
        const failingNow = requests(after, false) - requests(before, false)
        const succeedingNow = requests(after, true) - requests(before, true)
        const history = `${sent} entries sent, ${dropped} dropped${failedCodes.length ? `, failed pushes: ${failedCodes.map(([code, n]) => `${n}× ${describeStatus(code)}`).join(', ')}` : ''} since Alloy started`
        if (droppedNow > 0 || (failingNow > 0 && succeedingNow === 0)) {
          return {
            status: 'fail',
            detail: `pushes are failing now (${failingNow} failed, ${droppedNow} entries dropped in ${liveWindowMs / 1000}s); ${history} — dropped lines never reach Loki`,
            hint: `check that Loki is up and reachable from Alloy (the url of loki.write), and Loki's limits ${see('pushes-failing')}`,
          }
        }
        if (dropped > 0 || failedCodes.length > 0) {
          return { status: 'warn', detail: `pushes work now; ${history}`, hint: `look back at what failed then ${see('pushes-failing')}` }
        }
        if (sent === 0) return { status: 'warn', detail: 'nothing sent to Loki yet', hint: `check the targets above ${see('no-logs-ingested')}` }
        return { status: 'pass', detail: `${history}, every push accepted` }
      },
    },
  ]
}

interface ComposeService {
  image?: string
  ports?: (string | { host_ip?: string; published?: string | number; target?: number })[]
  volumes?: (string | { type?: string; source?: string; target?: string; read_only?: boolean })[]
  environment?: string[] | Record<string, string | null>
}

function composeChecks(path: string): Check[] {
  const load = async (): Promise<Record<string, ComposeService>> => {
    const { parse } = await import('yaml')
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch {
      throw new UsageError(`cannot read the compose file ${path}`, 'check the path given to --compose')
    }
    let doc: { services?: Record<string, ComposeService> }
    try {
      doc = parse(text) as typeof doc
    } catch (error) {
      throw new UsageError(`malformed compose file ${path}: ${(error as Error).message.split('\n')[0]}`)
    }
    return doc?.services ?? {}
  }
  const check = (id: string, title: string, inspect: (services: Record<string, ComposeService>) => CheckOutcome): Check => ({
    id,
    title,
    run: async () => inspect(await load()),
  })
  return [
    check('compose-docker-socket', 'the Docker socket is mounted read-only', (services) => {
      const writable: string[] = []
      for (const [name, service] of Object.entries(services)) {
        for (const volume of service.volumes ?? []) {
          const mount = typeof volume === 'string' ? volume : `${volume.source}:${volume.target}${volume.read_only ? ':ro' : ''}`
          if (!mount.includes('docker.sock')) continue
          const options = mount.split(':').slice(2).join(':')
          if (!options.split(',').includes('ro')) writable.push(`${name}: ${mount}`)
        }
      }
      return writable.length === 0
        ? { status: 'pass', detail: 'no writable Docker socket mount' }
        : { status: 'fail', detail: `writable Docker socket (${writable.join('; ')}) — a writable socket is root on the host`, hint: `mount it as /var/run/docker.sock:/var/run/docker.sock:ro ${see('docker-socket')}` }
    }),
    check('compose-ports', 'Loki and Alloy are bound to 127.0.0.1', (services) => {
      const exposed: string[] = []
      for (const [name, service] of Object.entries(services)) {
        for (const port of service.ports ?? []) {
          const text = typeof port === 'string' ? port : `${port.host_ip ?? ''}:${port.published ?? ''}:${port.target ?? ''}`
          const parts = String(text).split(':')
          const hostIp = parts.length >= 3 ? parts.slice(0, -2).join(':') : ''
          if (hostIp !== '127.0.0.1' && hostIp !== '[::1]' && hostIp !== '::1') exposed.push(`${name}: ${text}`)
        }
      }
      return exposed.length === 0
        ? { status: 'pass', detail: 'every published port is bound to 127.0.0.1' }
        : { status: 'fail', detail: `published on every interface: ${exposed.join('; ')} — Loki has no auth and Alloy's UI shows its config`, hint: `publish as "127.0.0.1:PORT:PORT" ${see('exposed-ports')}` }
    }),
    check('compose-images', 'images are pinned', (services) => {
      const floating: string[] = []
      for (const [name, service] of Object.entries(services)) {
        const image = service.image
        if (!image) continue
        const tag = /:([^/:@]+)$/.exec(image)?.[1]
        if (!image.includes('@sha256:') && (!tag || tag === 'latest')) floating.push(`${name}: ${image}`)
      }
      return floating.length === 0
        ? { status: 'pass', detail: 'every image has a version tag' }
        : { status: 'fail', detail: `unpinned images: ${floating.join('; ')} — :latest changes under you at the next pull`, hint: `pin grafana/loki:${PINNED.loki} and grafana/alloy:${PINNED.alloy} ${see('versions')}` }
    }),
    check('compose-app-env', 'Alloy gets APP_ENV', (services) => {
      const alloy = Object.entries(services).find(([name, service]) => name === 'alloy' || /grafana\/alloy/.test(service.image ?? ''))
      if (!alloy) return { status: 'skip', detail: 'no alloy service in the compose file' }
      const environment = alloy[1].environment
      const names = Array.isArray(environment) ? environment.map((e) => e.split('=')[0]) : Object.keys(environment ?? {})
      return names.includes('APP_ENV')
        ? { status: 'pass', detail: 'APP_ENV is passed to Alloy' }
        : { status: 'fail', detail: 'the alloy service has no APP_ENV — sys.env("APP_ENV") is empty and the env label disappears', hint: `add APP_ENV=\${APP_ENV:?} to its environment ${see('labels-missing')}` }
    }),
  ]
}

function alloyConfigCheck(path: string, policy: LabelPolicy): Check {
  return {
    id: 'alloy-config-labels',
    title: 'the Alloy config creates no high-cardinality labels',
    async run(): Promise<CheckOutcome> {
      let text: string
      try {
        text = readFileSync(path, 'utf8')
      } catch {
        throw new UsageError(`cannot read the Alloy config ${path}`, 'check the path given to --alloy-config')
      }
      const code = text.replace(/\/\/.*$/gm, '')
      const created = [
        ...[...code.matchAll(/target_label\s*=\s*"([^"]+)"/g)].map((match) => ({ name: match[1], problem: `a relabel rule sets the label ${match[1]}` })),
        ...[...code.matchAll(/stage\.labels\s*\{([^}]*)\}/g)].flatMap((block) =>
          [...block[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*=/g)].filter((field) => field[1] !== 'values').map((field) => ({ name: field[1], problem: `stage.labels turns ${field[1]} into a label` })),
        ),
      ]
      // Alloy drops __ labels (its temporary ones) before it pushes: they never become Loki labels.
      const violations = created.filter(({ name }) => !name.startsWith(RESERVED_PREFIX)).flatMap(({ name, problem }) => {
        const violation = policyViolation({ name }, policy)
        return violation ? [{ violation, problem }] : []
      })
      const problems = violations.map((v) => v.problem)
      const hints = violations.length > 0 ? [violationHint(violations.map((v) => v.violation))] : []
      if (/__meta_docker_container_(id|name)"[^}]*target_label/s.test(code)) {
        problems.push('container ids or names become labels (new values at every deploy)')
        hints.push(`take service from __meta_docker_container_label_com_docker_compose_service instead ${see('high-cardinality-labels')}`)
      }
      const notes: string[] = []
      if (/stage\.docker\s*\{/.test(code)) notes.push('stage.docker after loki.source.docker rewrites lines: remove it')
      if (problems.length > 0) {
        return { status: 'fail', detail: `${problems.join('; ')} — per-request values as labels create a stream per value`, hint: hints.join('; ') }
      }
      return notes.length > 0
        ? { status: 'warn', detail: notes.join('; '), hint: `see the comments in stack/alloy-config.alloy ${see('alloy-config')}` }
        : { status: 'pass', detail: `only ${policy.allowedLabels.join(', ')} are set` }
    },
  }
}
