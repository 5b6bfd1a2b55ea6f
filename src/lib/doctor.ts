import { readFileSync } from 'node:fs'
import { componentField, dockerTargets, type AlloyClient, type AlloyComponent } from './alloy-client.ts'
import { analyzeLabels } from './cardinality.ts'
import { lokiReadyCheck, type Check, type CheckOutcome } from './checks.ts'
import type { LabelPolicy } from './config.ts'
import { UsageError } from './errors.ts'
import type { LokiClient } from './loki-client.ts'
import { parseMetrics, sumBy, type Sample } from './metrics.ts'
import type { Nanos } from './time.ts'

/** The versions the stack pins. */
export const PINNED = { loki: '3.6.2', alloy: 'v1.9.2' }

const GUIDE = 'runbooks/TROUBLESHOOTING.md'
const see = (anchor: string) => `(${GUIDE}#${anchor})`

export interface DoctorContext {
  loki: LokiClient
  alloy?: AlloyClient
  policy: LabelPolicy
  range: () => { start: Nanos; end: Nanos }
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
  label_value_too_long: 'a label value above 2048 bytes: it belongs in the line, not in a label',
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

function lokiChecks({ loki, policy, range }: DoctorContext): Check[] {
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
        const problems: string[] = []
        const notes: string[] = []
        for (const { label, uniqueValues, streams } of report.labels) {
          const counts = `${uniqueValues} values in ${streams} streams`
          if (policy.forbiddenLabels.includes(label)) problems.push(`${label} is a label (${counts}); it must stay a JSON field`)
          else if (label === 'service_name') notes.push(`service_name (${counts}) is added by Loki 3 itself (discover_service_name)`)
          else if (!policy.allowedLabels.includes(label)) problems.push(`${label} is not an allowed label (${counts})`)
          else if (uniqueValues > policy.maxValuesPerLabel) problems.push(`${label} has ${counts}, above ${policy.maxValuesPerLabel}`)
        }
        const summary = report.labels.map((l) => `${l.label} ${l.uniqueValues}/${l.streams}`).join(', ')
        if (problems.length > 0) {
          return {
            status: 'fail',
            detail: `${problems.join('; ')} — every value makes a new stream, which bloats Loki's index and memory and slows every query`,
            hint: `remove the relabel rule or stage that creates it; query the field with | json ${see('high-cardinality-labels')}`,
          }
        }
        return { status: 'pass', detail: `${report.totalStreams} streams; label values/streams: ${summary}${notes.length ? `; ${notes.join('; ')}` : ''}` }
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
    {
      id: 'loki-ingestion',
      title: 'Loki accepts every pushed line',
      async run(): Promise<CheckOutcome> {
        const samples = parseMetrics(await loki.metrics(), ['loki_discarded_samples_total'])
        const byReason = [...sumBy(samples, 'loki_discarded_samples_total', 'reason')].filter(([, n]) => n > 0)
        if (byReason.length === 0) return { status: 'pass', detail: 'no discarded samples since Loki started' }
        const detail = byReason.map(([reason, n]) => `${n} lines discarded for ${reason}`).join('; ')
        const fixes = byReason.map(([reason]) => `${reason}: ${DISCARD_FIXES[reason] ?? 'see Loki\'s limits_config'}`).join('; ')
        return { status: 'fail', detail: `${detail} since Loki started — those lines are lost`, hint: `${fixes} ${see('rejected-lines')}` }
      },
    },
  ]
}

function components(list: AlloyComponent[], name: string): AlloyComponent[] {
  return list.filter((component) => component.name === name)
}

/**
 * Alloy's counters add up since it started, so a failure an hour ago looks
 * like one now. Two readings this far apart tell what is happening now.
 */
export const LIVE_WINDOW_MS = 3000

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
      const problems: string[] = []
      for (const match of code.matchAll(/target_label\s*=\s*"([^"]+)"/g)) {
        if (policy.forbiddenLabels.includes(match[1]) || !policy.allowedLabels.includes(match[1])) problems.push(`a relabel rule sets the label ${match[1]}`)
      }
      for (const block of code.matchAll(/stage\.labels\s*\{([^}]*)\}/g)) {
        for (const field of block[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*=/g)) {
          if (field[1] !== 'values') problems.push(`stage.labels turns ${field[1]} into a label`)
        }
      }
      if (/__meta_docker_container_(id|name)"[^}]*target_label/s.test(code)) problems.push('container ids or names become labels (new values at every deploy)')
      const notes: string[] = []
      if (/stage\.docker\s*\{/.test(code)) notes.push('stage.docker after loki.source.docker rewrites lines: remove it')
      if (problems.length > 0) {
        return {
          status: 'fail',
          detail: `${problems.join('; ')} — per-request values as labels create a stream per value`,
          hint: `remove those rules; keep ${policy.forbiddenLabels.join(', ')} in the JSON line ${see('high-cardinality-labels')}`,
        }
      }
      return notes.length > 0
        ? { status: 'warn', detail: notes.join('; '), hint: `see the comments in stack/alloy-config.alloy ${see('alloy-config')}` }
        : { status: 'pass', detail: `only ${policy.allowedLabels.join(', ')} are set` }
    },
  }
}
