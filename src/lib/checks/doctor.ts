import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Range, type Scalar } from 'yaml'
import { type AlloyClient, type AlloyComponent, discoveredTargets, dockerTargets } from '../alloy/client.ts'
import type { LabelPolicy } from '../config/settings.ts'
import { ObsError, UsageError } from '../errors.ts'
import { maskUrl } from '../http.ts'
import type { LokiClient } from '../loki/client.ts'
import { withinQueryLength } from '../loki/query-length.ts'
import { type CounterReading, gaugeValue, keepReading, loadReadings, parseMetrics, type Sample, sumBy } from '../metrics.ts'
import { neutralize, shown } from '../text.ts'
import { humanDuration, type Nanos, sleep } from '../time.ts'
import { clockFinding, type DockerAccess, discardFix, isClockReason, logDriverHint, lokiDiscards, pushRefusalHint, unreadableLogDriver } from './doctor-causes.ts'
import { policyViolation, RESERVED_PREFIX, streamLabelsOutcome, violationHint } from './label-policy.ts'
import { type Check, type CheckOutcome, lokiReadyCheck } from './runner.ts'

/** Where doctor keeps its readings of Loki's counters: obs's cache directory, found as scripts/build-servers.sh finds it. */
export function readingsFile(env: NodeJS.ProcessEnv): string {
  const cache = env.OBS_CACHE_DIR || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'obs')
  return join(cache, 'doctor-readings.json')
}

/** The versions the stack pins. */
const PINNED = { loki: '3.6.2', alloy: 'v1.9.2' }

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
  /** The --compose file, already read and understood: a file doctor cannot read is refused before anything is sent. */
  compose?: ComposeFile
  /** The --alloy-config file, likewise. */
  alloyConfig?: AlloyConfig
  /** The Docker Engine next to Alloy, asked only to name a cause (a container's log driver or clock). */
  docker?: DockerAccess
}

/** Everything obs doctor inspects, as checks: Loki, then Alloy, then the stack's files. */
export function doctorChecks(context: DoctorContext): Check[] {
  const checks: Check[] = [...lokiChecks(context)]
  if (context.alloy) checks.push(...alloyChecks(context.alloy, context.liveWindowMs, { loki: context.loki, docker: context.docker }))
  if (context.compose) checks.push(...composeChecks(context.compose))
  if (context.alloyConfig) checks.push(alloyConfigCheck(context.alloyConfig, context.policy))
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
        if (!version)
          return { status: 'warn', detail: 'Loki reports no version (a build without version stamping)', hint: `use the grafana/loki:${PINNED.loki} image ${see('versions')}` }
        return {
          status: 'warn',
          detail: `Loki ${version} runs, the stack pins ${PINNED.loki} — configs and runbooks are tested against the pin`,
          hint: `deploy grafana/loki:${PINNED.loki}, or update the pin after testing ${see('versions')}`,
        }
      },
    },
    {
      id: 'loki-labels',
      title: 'labels follow the policy',
      async run(): Promise<CheckOutcome> {
        const found = await streamLabelsOutcome(loki, policy, '{app=~".+"}', range())
        return found?.outcome ?? { status: 'skip', detail: 'no streams with an app label in the window' }
      },
    },
    {
      id: 'loki-env-label',
      title: 'every stream has an env label',
      async run(): Promise<CheckOutcome> {
        const { value: series, cut } = await withinQueryLength(
          loki,
          range(),
          (within) => loki.series(['{app=~".+"}'], within),
          () => {},
        )
        if (series.length === 0) return { status: 'skip', detail: 'no streams with an app label in the window' }
        const within = cut ? ` (${cut})` : ''
        const without = series.filter((labels) => !labels.env)
        if (without.length === 0) return { status: 'pass', detail: `all ${series.length} streams carry env${within}` }
        return {
          status: 'fail',
          detail: `${without.length} of ${series.length} streams have no env label — dev, test and prod logs cannot be told apart${within}`,
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
const LIVE_WINDOW_MS = 3000

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
function lokiIngestionCheck({ loki, range, window, readings, liveWindowMs = LIVE_WINDOW_MS, docker }: DoctorContext): Check {
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
    const sinceStart =
      startedMs === undefined
        ? 'since Loki started (when is unknown: it exposes no process_start_time_seconds)'
        : `since Loki started at ${isoSeconds(startedMs)}, before the window began`
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
    await sleep(liveWindowMs)
    const second = await read()
    const lifetime = sumOf(first.counts)
    return {
      count: {
        // Counts that went down mean Loki restarted while watched: it started inside the window, so its counts are the window's.
        counts: increase(second.counts, first.counts) ?? second.counts,
        covers: `in the ${liveWindowMs / 1000} s watched (obs has no earlier reading of this Loki inside the last ${window}; the next run looks back to this one)`,
        before: lifetime > 0 ? `${lifetime} discarded ${sinceStart}, not counted: without an earlier reading obs cannot tell how many of them fall inside it` : undefined,
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
      const fixes = byReason.map(([reason]) => discardFix(reason)).join('; ')
      const clock = byReason.some(([reason]) => isClockReason(reason)) ? `; ${await clockFinding(docker)}` : ''
      return { status: 'fail', detail: `${detail} ${count.covers} — those lines are lost${before}${unkept}`, hint: `${fixes}${clock} ${see('rejected-lines')}` }
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

/** Where Alloy's checks look for a cause: Loki's discard reasons, and the Docker Engine Alloy reads. */
export interface AlloyCauses {
  loki?: LokiClient
  docker?: DockerAccess
}

export function alloyChecks(alloy: AlloyClient, liveWindowMs = LIVE_WINDOW_MS, causes: AlloyCauses = {}): Check[] {
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
          return {
            status: 'fail',
            detail: 'Alloy answers but is not ready — it has not loaded its config',
            hint: `read docker logs alloy for the config error ${see('alloy-not-ready')}`,
          }
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
      // Alloy unreachable or not ready: one failure says so, not five.
      dependsOn: ['alloy-ready'],
      async run(): Promise<CheckOutcome> {
        const all = await list()
        const unhealthy = all.filter((c) => c.health && c.health.state !== 'healthy')
        if (unhealthy.length === 0) return { status: 'pass', detail: `${all.length} components healthy: ${all.map((c) => c.localID).join(', ')}` }
        return {
          status: 'fail',
          // Alloy's messages can quote the loki.write URL, credentials included.
          detail: unhealthy.map((c) => `${c.localID} ${c.health?.state}: ${maskUrl(c.health?.message ?? '')}`).join('; '),
          hint: `fix what the message names ${see('alloy-components')}`,
        }
      },
    },
    {
      id: 'alloy-docker-discovery',
      title: 'discovery.docker finds the containers',
      dependsOn: ['alloy-ready'],
      async run(): Promise<CheckOutcome> {
        const discovery = components(await list(), 'discovery.docker')
        if (discovery.length === 0)
          return { status: 'fail', detail: 'no discovery.docker component in the config', hint: `use stack/alloy-config.alloy ${see('no-logs-ingested')}` }
        const { containers: targets, oneOff } = await discoveredTargets(alloy, discovery)
        const failures = total(await metrics(), 'prometheus_sd_refresh_failures_total', (labels) => labels.mechanism === 'docker')
        const history = failures > 0 ? `; ${failures} refreshes failed since Alloy started` : ''
        if (targets === 0) {
          return {
            status: 'fail',
            detail: `discovery.docker lists no containers${history} — no logs are collected`,
            hint: `check that the app containers run and that /var/run/docker.sock is mounted into alloy (read-only) ${see('docker-socket')}`,
          }
        }
        const oneOffs = oneOff > 0 ? ` (and ${oneOff} one-off container${oneOff > 1 ? 's' : ''})` : ''
        return { status: 'pass', detail: `${targets} Docker targets discovered${oneOffs}${history}` }
      },
    },
    {
      id: 'alloy-docker-targets',
      title: 'loki.source.docker reads every target',
      dependsOn: ['alloy-ready'],
      async run(): Promise<CheckOutcome> {
        const all = await list()
        if (components(all, 'loki.source.docker').length === 0) {
          return { status: 'fail', detail: 'no loki.source.docker component in the config', hint: `use stack/alloy-config.alloy ${see('no-logs-ingested')}` }
        }
        const listed = await dockerTargets(alloy, all)
        // A one-off container that ended (docker compose run, obs's probe) stays listed until discovery's next refresh.
        const finished = listed.filter((t) => t.oneOff && !t.running)
        const targets = listed.filter((t) => !finished.includes(t))
        if (targets.length === 0)
          return { status: 'fail', detail: 'loki.source.docker has no targets — nothing is read', hint: `check discovery.docker and the relabel rules ${see('docker-socket')}` }
        const broken = targets.filter((t) => !t.running || t.lastError)
        if (broken.length > 0) {
          // A log driver Docker cannot read back is no socket problem: Docker answered, with nothing to read. Alloy's
          // reader of that container then stops (not running) and tries again at its next tick, with the same error.
          const unreadable = broken.filter((t) => unreadableLogDriver(t))
          const unreached = broken.filter((t) => !unreadable.includes(t))
          const hints = [
            ...(unreadable.length > 0 ? [`${await logDriverHint(unreadable, causes.docker)} ${see('no-logs-ingested')}`] : []),
            ...(unreached.length > 0 ? [`check that Docker runs and its socket is mounted into alloy, and the containers are up ${see('docker-socket')}`] : []),
          ]
          return {
            status: 'fail',
            detail: `${broken.map((t) => `${t.id}${t.name ? ` (${shown(t.name)})` : ''}: ${t.running ? 'running' : 'not running'}${t.lastError ? `, last error: ${maskUrl(t.lastError)}` : ''}`).join('; ')} — their logs are not read${unreached.length > 0 ? ' (Alloy keeps listing targets it can no longer reach)' : ''}`,
            hint: hints.join('; '),
          }
        }
        const ended =
          finished.length > 0
            ? ` (${finished.length} finished one-off container${finished.length > 1 ? 's' : ''} still listed: ${finished.map((t) => t.name || t.id).join(', ')})`
            : ''
        return { status: 'pass', detail: `${targets.length} targets read: ${targets.map((t) => t.id).join(', ')}${ended}` }
      },
    },
    {
      id: 'alloy-loki-write',
      title: 'loki.write delivers to Loki',
      dependsOn: ['alloy-ready'],
      async run(): Promise<CheckOutcome> {
        const before = await metrics()
        const discardsBefore = causes.loki ? await lokiDiscards(causes.loki).catch((error: Error) => error) : undefined
        await sleep(liveWindowMs)
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
          const codesBefore = sumBy(before, 'loki_write_request_duration_seconds_count', 'status_code')
          const refusedNow = [...sumBy(after, 'loki_write_request_duration_seconds_count', 'status_code')]
            .map(([code, n]): [string, number] => [code, n - (codesBefore.get(code) ?? 0)])
            .filter(([code, n]) => n > 0 && code.startsWith('4'))
          const unreachedNow = failingNow - refusedNow.reduce((sum, [, n]) => sum + n, 0)
          const hints: string[] = []
          // Loki answered a 4xx: it is reachable, and refuses the lines; its discard reason says why.
          if (refusedNow.length > 0) hints.push(await pushRefusalHint(refusedNow, await refusalReasons(discardsBefore), causes.docker))
          if (unreachedNow > 0 || refusedNow.length === 0) hints.push("check that Loki is up and reachable from Alloy (the url of loki.write), and Loki's limits")
          return {
            status: 'fail',
            detail: `pushes are failing now (${failingNow} failed, ${droppedNow} entries dropped in ${liveWindowMs / 1000}s); ${history} — dropped lines never reach Loki`,
            hint: `${hints.join('; ')} ${see('pushes-failing')}`,
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

  /** Loki's discards while the pushes were watched; since Loki started when none grew meanwhile. */
  async function refusalReasons(before: Record<string, number> | Error | undefined) {
    if (!causes.loki) return { unavailable: 'obs doctor was not given Loki' }
    if (before instanceof Error) return { unavailable: before.message }
    let now: Record<string, number>
    try {
      now = await lokiDiscards(causes.loki)
    } catch (error) {
      return { unavailable: (error as Error).message }
    }
    const grew = Object.fromEntries(Object.entries(now).map(([reason, n]): [string, number] => [reason, n - (before?.[reason] ?? 0)]))
    return Object.values(grew).some((n) => n > 0) ? { reasons: grew, covers: `in the ${liveWindowMs / 1000} s watched` } : { reasons: now, covers: 'since Loki started' }
  }
}

/**
 * A check of a file the user gave: its text was read and understood before
 * any check ran, so what is left to say is a verdict. The details quote the
 * file, so they are made safe to print here, once, for the checklist and the
 * JSON document alike.
 */
function fileCheck(id: string, title: string, inspect: () => CheckOutcome): Check {
  return {
    id,
    title,
    async run(): Promise<CheckOutcome> {
      const { status, detail, hint } = inspect()
      return { status, detail: neutralize(detail), hint: hint === undefined ? undefined : neutralize(hint) }
    },
  }
}

/** Findings name at most this many places; a file with 100,000 services would print a line of megabytes. */
const LISTED = 10

function listed(items: string[], separator = '; '): string {
  return items.length <= LISTED ? items.join(separator) : `${items.slice(0, LISTED).join(separator)}${separator}and ${items.length - LISTED} more`
}

const atLines = (lines: number[]) => `line${lines.length === 1 ? '' : 's'} ${listed(lines.map(String), ', ')}`

/**
 * The largest --compose or --alloy-config read: far above any real file, and
 * a bound on memory when the path is a device such as /dev/zero.
 */
const MAX_INPUT_BYTES = 64 * 1024 * 1024

/**
 * The text of a file the user named, or one line saying why not (exit 2,
 * before anything is sent). Read in chunks rather than by its size, so that a
 * pipe works too: `--compose <(docker compose config)`.
 */
function readInputFile(path: string, what: string, flag: string): string {
  const named = `${what} ${neutralize(path)}`
  const cannot = (error: unknown) => {
    const { code } = error as NodeJS.ErrnoException
    if (code === 'ENOENT') return new UsageError(`${named} does not exist`, `check the path given to ${flag}`)
    if (code === 'EISDIR') return new UsageError(`${named} is a directory`, `give ${flag} the file itself`)
    const reason = String((error as Error).message)
      .replace(/^[A-Z]+: /, '')
      .replace(/, (?:open|read) .*$/, '')
    return new UsageError(`cannot read the ${named}: ${reason}${code ? ` (${code})` : ''}`, `check the path given to ${flag} and its permissions`)
  }
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (error) {
    throw cannot(error)
  }
  try {
    if (fstatSync(fd).isDirectory()) throw cannot({ code: 'EISDIR' })
    const chunks: Buffer[] = []
    let size = 0
    const buffer = Buffer.allocUnsafe(1 << 20)
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      size += read
      if (size > MAX_INPUT_BYTES) throw new UsageError(`the ${named} is larger than ${MAX_INPUT_BYTES >> 20} MB, which no ${what} is`, `check the path given to ${flag}`)
      // A copy: a pipe hands over 64 KB at a time, and a view would keep the whole buffer for each.
      chunks.push(Buffer.from(buffer.subarray(0, read)))
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, size))
    } catch {
      throw new UsageError(`the ${named} is not UTF-8 text`, `give ${flag} the ${what} itself`)
    }
  } catch (error) {
    throw error instanceof ObsError ? error : cannot(error)
  } finally {
    closeSync(fd)
  }
}

/** A compose file's services, as far as doctor reads them. */
export interface ComposeFile {
  services: ComposeService[]
}

export interface ComposeService {
  name: string
  image?: string
  /** Each published port as written, and the host address it binds to ('' for every interface). */
  ports: { text: string; hostIp: string }[]
  /** Each mount as written (source:target:options), and whether it is read-only. */
  volumes: { text: string; readOnly: boolean }[]
  /** The names of the variables set in the service's environment. */
  environment: string[]
}

/** Plain data as YAML or JSON holds it. Mappings have no prototype, so a key named __proto__ is just a key. */
type Plain = string | number | boolean | null | Plain[] | PlainMap
interface PlainMap {
  [key: string]: Plain
}

const isMapping = (value: Plain | undefined): value is PlainMap => typeof value === 'object' && value !== null && !Array.isArray(value)

/** What a value is, for "… is X; expected Y". */
function kindOf(value: Plain): string {
  if (value === null) return 'empty'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return `a string ("${shown(value)}")`
  return `a ${typeof value} (${value})`
}

/** A place inside a document, as a chain to its parent: only rendered when something there is wrong. */
interface Place {
  parent?: Place
  key: string | number
}

function render(place: Place | undefined): string {
  const parts: string[] = []
  for (let p = place; p; p = p.parent) {
    parts.push(typeof p.key === 'number' ? `[${p.key}]` : /^(?:[\w-]+|<<)$/.test(p.key) ? `.${p.key}` : `["${shown(p.key)}"]`)
  }
  return parts.reverse().join('').replace(/^\./, '') || 'the top level'
}

/**
 * How many nodes YAML aliases may add per character of the file. An alias is
 * a reference, cheap to make; walking what it points to is not: a "billion
 * laughs" of a few hundred bytes expands to 10^9 nodes. A legitimate file
 * reuses an anchor a few times per service, far below this.
 */
const ALIAS_EXPANSION_PER_CHAR = 10
/** Compose files and Alloy configs nest a handful of levels; this bounds the parsers' recursion, whose overflow would be no message. */
const MAX_NESTING = 200

const YAML_HINT = 'check that it is YAML (docker compose config says where)'

/**
 * A compose file's text as doctor understands it: YAML 1.2 with merge keys
 * (`<<: *defaults`), aliases and Compose's own tags (`!reset`, `!override`)
 * allowed, each service's image, ports, volumes and environment in any of
 * Compose's forms. Anything else is refused with a UsageError of one line
 * naming the place in the file and what was expected.
 */
export function parseCompose(text: string, name = 'compose file'): ComposeFile {
  const lines = new LineCounter()
  // uniqueKeys: false because the library's check of duplicate keys is quadratic (20,000 services took 32 s); toPlain checks them.
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter: lines })
  const [error] = doc.errors
  if (error) {
    const reason = error.message
      .split('\n')[0]
      .replace(/ at line \d+, column \d+:?$/, '')
      .replace(/^Maximum call stack size exceeded$/, `nested deeper than the parser can follow`)
    throw new UsageError(`malformed ${name}${error.linePos ? ` at line ${error.linePos[0].line}` : ''}: ${neutralize(reason)}`, YAML_HINT)
  }
  return composeServices(
    toPlain(doc.contents, text.length, (node, problem) => {
      const line = node?.range ? ` at line ${lines.linePos(node.range[0]).line}` : ''
      return new UsageError(`malformed ${name}${line}: ${problem}`, YAML_HINT)
    }),
    name,
  )
}

/**
 * The document as plain data, in one pass over its nodes: an alias becomes a
 * reference to what its anchor made (the library resolves each alias by
 * scanning the document again, quadratic in their number), merge keys are
 * applied as YAML 1.1 defines them, duplicate keys are refused.
 */
function toPlain(root: unknown, size: number, malformed: (node: { range?: Range | null } | undefined, problem: string) => UsageError): Plain {
  const anchors = new Map<string, { value: Plain; nodes: number }>()
  const budget = ALIAS_EXPANSION_PER_CHAR * size
  let expanded = 0
  const walk = (node: unknown, place: Place | undefined, depth: number): { value: Plain; nodes: number } => {
    if (depth > MAX_NESTING) throw malformed(node as Scalar, `${render(place)} is nested deeper than ${MAX_NESTING} levels`)
    if (node === null || node === undefined) return { value: null, nodes: 1 }
    if (isAlias(node)) {
      const anchor = anchors.get(node.source)
      if (!anchor) throw malformed(node, `${render(place)} refers to *${shown(node.source)}, which no anchor before it defines`)
      expanded += anchor.nodes
      if (expanded > budget) throw malformed(node, `its aliases expand to more than ${ALIAS_EXPANSION_PER_CHAR} times its size (an alias bomb?)`)
      return anchor
    }
    let made: { value: Plain; nodes: number }
    if (isScalar(node)) {
      const { value } = node
      made = { value: value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : String(value), nodes: 1 }
    } else if (isSeq(node)) {
      const items: Plain[] = []
      let nodes = 1
      node.items.forEach((item, index) => {
        const child = walk(item, { parent: place, key: index }, depth + 1)
        items.push(child.value)
        nodes += child.nodes
      })
      made = { value: items, nodes }
    } else if (isMap(node)) {
      const map: PlainMap = Object.create(null)
      const merged: Plain[] = []
      let nodes = 1
      for (const pair of node.items) {
        const key = pair.key
        if (!isScalar(key)) throw malformed((key ?? node) as Scalar, `${render(place)} has a key that is not a plain value`)
        const value = walk(pair.value, { parent: place, key: String(key.value) }, depth + 1)
        nodes += value.nodes
        if (key.type === 'PLAIN' && key.value === '<<') {
          merged.push(value.value)
          continue
        }
        const keyText = String(key.value)
        if (keyText in map) throw malformed(key, `${render({ parent: place, key: keyText })} is defined twice`)
        map[keyText] = value.value
      }
      for (const source of merged.flatMap((value) => (Array.isArray(value) ? value : [value]))) {
        if (!isMapping(source)) throw malformed(node, `${render({ parent: place, key: '<<' })} merges ${kindOf(source)}; expected a mapping or a list of mappings`)
        // Keys written in the mapping win over merged ones, and earlier sources over later ones.
        for (const [key, value] of Object.entries(source)) if (!(key in map)) map[key] = value
      }
      made = { value: map, nodes }
    } else {
      throw malformed(undefined, `${render(place)} is not YAML data`)
    }
    const anchor = (node as Scalar).anchor
    if (anchor) anchors.set(anchor, made)
    return made
  }
  return walk(root, undefined, 0).value
}

/** The services of a compose file's plain data, each field in the forms Compose accepts. */
function composeServices(root: Plain, name: string): ComposeFile {
  const refuse = (place: Place | undefined, value: Plain, expected: string): never => {
    throw new UsageError(`${name}: ${render(place)} is ${kindOf(value)}; expected ${expected}`, 'see the Compose file reference (docker compose config checks the whole file)')
  }
  if (root === null) throw new UsageError(`${name} is empty; expected a compose file with services`, 'check the path given to --compose')
  if (!isMapping(root)) return refuse(undefined, root, 'a mapping with services')
  const servicesPlace: Place = { key: 'services' }
  if (root.services === undefined || root.services === null) throw new UsageError(`${name} defines no services`, 'give --compose the file that defines loki and alloy')
  if (!isMapping(root.services)) return refuse(servicesPlace, root.services, 'a mapping of service names to services')
  const services = Object.entries(root.services).map(([service, body]): ComposeService => {
    const here: Place = { parent: servicesPlace, key: service }
    const at = (key: string | number, parent = here): Place => ({ parent, key })
    if (!isMapping(body)) return refuse(here, body, 'a mapping (image, ports, volumes, environment, …)')
    const list = (key: string, expected: string): Plain[] => {
      const value = body[key]
      if (value === undefined || value === null) return []
      return Array.isArray(value) ? value : refuse(at(key), value, expected)
    }
    const field = <T extends Plain>(item: PlainMap, place: Place, key: string, types: string[], expected: string): T | undefined => {
      const value = item[key]
      if (value === undefined || value === null) return undefined
      return types.includes(typeof value) ? (value as T) : refuse(at(key, place), value, expected)
    }
    const image = field<string>(body, here, 'image', ['string'], 'a string such as grafana/loki:3.6.2')
    const ports = list('ports', 'a list of ports such as "127.0.0.1:3100:3100"').map((port, index) => {
      const place = at(index, at('ports'))
      if (typeof port === 'number') return { text: String(port), hostIp: '' }
      if (typeof port === 'string') {
        const parts = port.split(':')
        return { text: port, hostIp: parts.length >= 3 ? parts.slice(0, -2).join(':') : '' }
      }
      if (!isMapping(port)) return refuse(place, port, 'a string such as "127.0.0.1:3100:3100" or a mapping with target, published, host_ip')
      const hostIp = field<string>(port, place, 'host_ip', ['string'], 'a string such as 127.0.0.1') ?? ''
      const published = field<string | number>(port, place, 'published', ['string', 'number'], 'a port number') ?? ''
      const target = field<string | number>(port, place, 'target', ['string', 'number'], 'a port number') ?? ''
      return { text: `${hostIp}:${published}:${target}`, hostIp }
    })
    const volumes = list('volumes', 'a list of mounts such as "./config.yaml:/etc/config.yaml:ro"').map((volume, index) => {
      const place = at(index, at('volumes'))
      if (typeof volume === 'string') return { text: volume, readOnly: volume.split(':').slice(2).join(':').split(',').includes('ro') }
      if (!isMapping(volume)) return refuse(place, volume, 'a string such as "./config.yaml:/etc/config.yaml:ro" or a mapping with source, target, read_only')
      const source = field<string>(volume, place, 'source', ['string'], 'a path or volume name') ?? ''
      const target = field<string>(volume, place, 'target', ['string'], 'a path in the container') ?? ''
      const readOnly = field<boolean>(volume, place, 'read_only', ['boolean'], 'true or false') ?? false
      return { text: `${source}:${target}${readOnly ? ':ro' : ''}`, readOnly }
    })
    const environment = body.environment
    let names: string[] = []
    if (Array.isArray(environment)) {
      names = environment.map((entry, index) => (typeof entry === 'string' ? entry.split('=')[0] : refuse(at(index, at('environment')), entry, 'a string such as APP_ENV=dev')))
    } else if (isMapping(environment)) {
      names = Object.keys(environment)
      for (const variable of names) field(environment, at('environment'), variable, ['string', 'number', 'boolean'], 'a string, a number or true/false')
    } else if (environment !== undefined && environment !== null) {
      refuse(at('environment'), environment, 'a list such as ["APP_ENV=dev"] or a mapping such as { APP_ENV: dev }')
    }
    return { name: service, image, ports, volumes, environment: names }
  })
  return { services }
}

/** Reads and understands the --compose file, or refuses it in one line (exit 2). */
export function readComposeFile(path: string): ComposeFile {
  return parseCompose(readInputFile(path, 'compose file', '--compose'), `compose file ${neutralize(path)}`)
}

function composeChecks({ services }: ComposeFile): Check[] {
  return [
    fileCheck('compose-docker-socket', 'the Docker socket is mounted read-only', () => {
      const writable = services.flatMap(({ name, volumes }) => volumes.filter((v) => v.text.includes('docker.sock') && !v.readOnly).map((v) => `${name}: ${v.text}`))
      return writable.length === 0
        ? { status: 'pass', detail: 'no writable Docker socket mount' }
        : {
            status: 'fail',
            detail: `writable Docker socket (${listed(writable)}) — a writable socket is root on the host`,
            hint: `mount it as /var/run/docker.sock:/var/run/docker.sock:ro ${see('docker-socket')}`,
          }
    }),
    fileCheck('compose-ports', 'Loki and Alloy are bound to 127.0.0.1', () => {
      const local = new Set(['127.0.0.1', '[::1]', '::1'])
      const exposed = services.flatMap(({ name, ports }) => ports.filter((p) => !local.has(p.hostIp)).map((p) => `${name}: ${p.text}`))
      return exposed.length === 0
        ? { status: 'pass', detail: 'every published port is bound to 127.0.0.1' }
        : {
            status: 'fail',
            detail: `published on every interface: ${listed(exposed)} — Loki has no auth and Alloy's UI shows its config`,
            hint: `publish as "127.0.0.1:PORT:PORT" ${see('exposed-ports')}`,
          }
    }),
    fileCheck('compose-images', 'images are pinned', () => {
      const floating = services.flatMap(({ name, image }) => {
        if (!image || image.includes('@sha256:')) return []
        const tag = /:([^/:@]+)$/.exec(image)?.[1]
        return !tag || tag === 'latest' ? [`${name}: ${image}`] : []
      })
      return floating.length === 0
        ? { status: 'pass', detail: 'every image has a version tag' }
        : {
            status: 'fail',
            detail: `unpinned images: ${listed(floating)} — :latest changes under you at the next pull`,
            hint: `pin grafana/loki:${PINNED.loki} and grafana/alloy:${PINNED.alloy} ${see('versions')}`,
          }
    }),
    fileCheck('compose-app-env', 'Alloy gets APP_ENV', () => {
      const alloy = services.find((service) => service.name === 'alloy' || /grafana\/alloy/.test(service.image ?? ''))
      if (!alloy) return { status: 'skip', detail: 'no alloy service in the compose file' }
      return alloy.environment.includes('APP_ENV')
        ? { status: 'pass', detail: 'APP_ENV is passed to Alloy' }
        : {
            status: 'fail',
            detail: 'the alloy service has no APP_ENV — sys.env("APP_ENV") is empty and the env label disappears',
            hint: `add APP_ENV=\${APP_ENV:?} to its environment ${see('labels-missing')}`,
          }
    }),
  ]
}

/** What doctor reads of an Alloy config: the labels it sets, and the stages it warns about. */
export interface AlloyConfig {
  labels: AlloyLabel[]
  /** Lines of stage.docker blocks. */
  stageDocker: number[]
}

export interface AlloyLabel {
  name: string
  line: number
  /** A relabel rule's target_label, or a key of stage.labels' values. */
  setBy: 'relabel' | 'stage.labels'
  /** The rule takes the value from a container's id or name: a new value at every deploy. */
  fromContainer: boolean
}

/** A value in an Alloy config, as far as it can be known without evaluating it. */
type AlloyValue =
  | { kind: 'string'; value: string }
  | { kind: 'list'; items: AlloyValue[] }
  | { kind: 'object'; fields: { key: string; value: AlloyValue }[] }
  /** A literal doctor only needs to tell apart from the others. */
  | { kind: 'number' | 'bool' | 'null' }
  /** A reference, a call or an operation: known only when Alloy evaluates it. */
  | { kind: 'expression' }

interface AlloyAttribute {
  name: string
  line: number
  value: AlloyValue
}

interface AlloyBlock {
  /** The name and label as written, `discovery.relabel "docker_logs"`, for messages. */
  title: string
  name: string
  line: number
  attributes: AlloyAttribute[]
  blocks: AlloyBlock[]
}

interface Token {
  kind: 'name' | 'string' | 'number' | 'punct' | 'end'
  text: string
  /** A string's value, its escapes decoded. */
  value?: string
  line: number
  /** The token starts a line: it ends the statement before it. */
  first: boolean
}

/**
 * Alloy's lexical syntax, each token matched where the last one ended (sticky
 * regexes: no backtracking over the rest of the file). Strings are Go's: one
 * line, backslash escapes; raw strings in backquotes may span lines.
 */
const SPACE = /[ \t\r]+/y
const NAME = /[\p{L}_][\p{L}\p{Nd}_]*/uy
const NUMBER = /[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
const STRING = /"(?:[^"\\\n]|\\[^\n])*"/y
const PUNCT = /==|!=|<=|>=|&&|\|\||[{}[\]()=,.+\-*/%^<>!]/y
const ESCAPE = /\\(?:([abfnrtv\\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3})|.?)/g
const ESCAPED: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"' }

function tokenize(text: string, fail: (line: number, problem: string) => never): Token[] {
  const tokens: Token[] = []
  let at = 0
  let line = 1
  let first = true
  const match = (pattern: RegExp): string | undefined => {
    pattern.lastIndex = at
    return pattern.exec(text)?.[0]
  }
  const countLines = (from: number, to: number) => {
    for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) line++
  }
  while (at < text.length) {
    const char = text[at]
    if (char === '\n') {
      line++
      at++
      first = true
      continue
    }
    const space = match(SPACE)
    if (space) {
      at += space.length
      continue
    }
    if (text.startsWith('//', at)) {
      const end = text.indexOf('\n', at)
      at = end === -1 ? text.length : end
      continue
    }
    if (text.startsWith('/*', at)) {
      const end = text.indexOf('*/', at + 2)
      if (end === -1) fail(line, 'a /* comment is never closed')
      countLines(at, end)
      at = end + 2
      continue
    }
    const start = line
    let token: Omit<Token, 'line' | 'first'>
    if (char === '"') {
      const quoted = match(STRING)
      if (!quoted) fail(line, 'a string is not closed on its line')
      token = { kind: 'string', text: quoted, value: unescapeString(quoted.slice(1, -1), line, fail) }
    } else if (char === '`') {
      const end = text.indexOf('`', at + 1)
      if (end === -1) fail(line, 'a `raw string` is never closed')
      countLines(at, end)
      token = { kind: 'string', text: text.slice(at, end + 1), value: text.slice(at + 1, end) }
    } else {
      const name = match(NAME)
      const number = name ? undefined : match(NUMBER)
      const punct = name || number ? undefined : match(PUNCT)
      if (name) token = { kind: 'name', text: name }
      else if (number) token = { kind: 'number', text: number }
      else if (punct) token = { kind: 'punct', text: punct }
      else fail(line, `unexpected character "${shown(String.fromCodePoint(text.codePointAt(at)!))}"`)
    }
    tokens.push({ ...token, line: start, first })
    at += token.text.length
    first = false
  }
  tokens.push({ kind: 'end', text: '', line, first: true })
  return tokens
}

function unescapeString(body: string, line: number, fail: (line: number, problem: string) => never): string {
  if (!body.includes('\\')) return body
  return body.replace(ESCAPE, (sequence, simple?: string, ...hex: (string | undefined)[]) => {
    if (simple) return ESCAPED[simple]
    const [x, u, U, octal] = hex
    const code = x ?? u ?? U
    if (code) return String.fromCodePoint(Math.min(Number.parseInt(code, 16), 0x10ffff))
    if (octal) return String.fromCharCode(Number.parseInt(octal, 8))
    return fail(line, `a string has an unknown escape "${shown(sequence)}"`)
  })
}

const BINARY = new Set(['==', '!=', '<', '<=', '>', '>=', '&&', '||', '+', '-', '*', '/', '%', '^'])
const OPEN: Record<string, string> = { '{': '}', '[': ']', '(': ')' }

/**
 * Alloy's syntax, recursive descent over the tokens: a body is blocks
 * (`name.part "label" { … }`) and attributes (`name = expression`), one per
 * line. It is no more than doctor needs to trust what it reads: expressions
 * are checked for their form, not evaluated.
 */
class AlloyParser {
  private index = 0
  /** Open brackets of the expression being read: inside them a new line does not end it. */
  private brackets = 0
  private readonly tokens: Token[]
  private readonly fail: (line: number, problem: string) => never

  constructor(tokens: Token[], fail: (line: number, problem: string) => never) {
    this.tokens = tokens
    this.fail = fail
  }

  private get token(): Token {
    return this.tokens[this.index]
  }

  private atEnd(): boolean {
    return this.token.kind === 'end'
  }

  private is(text: string): boolean {
    return this.token.kind === 'punct' && this.token.text === text
  }

  private describe(token: Token): string {
    if (token.kind === 'end') return 'the end of the file'
    return token.kind === 'string' ? 'a string' : `"${shown(token.text)}"`
  }

  private unexpected(expected: string): never {
    return this.fail(this.token.line, `expected ${expected}, found ${this.describe(this.token)}`)
  }

  private nested(depth: number, opened: Token): void {
    if (depth > MAX_NESTING) this.fail(opened.line, `nested deeper than ${MAX_NESTING} levels`)
  }

  /** Statements up to the closing brace of `block`, or the end of the file at the top. */
  body(block?: { opened: Token; title: string }, depth = 0): Pick<AlloyBlock, 'attributes' | 'blocks'> {
    const body: Pick<AlloyBlock, 'attributes' | 'blocks'> = { attributes: [], blocks: [] }
    for (let first = true; ; first = false) {
      if (this.atEnd()) {
        if (block) this.fail(block.opened.line, `the "{" of ${block.title} is never closed`)
        return body
      }
      if (this.is('}')) {
        if (!block) this.fail(this.token.line, 'a "}" closes no block')
        this.index++
        return body
      }
      if (!first && !this.token.first) this.unexpected('a new line')
      this.statement(body, depth)
    }
  }

  private statement(body: Pick<AlloyBlock, 'attributes' | 'blocks'>, depth: number): void {
    const start = this.token
    if (start.kind !== 'name') this.unexpected('a block or an attribute name')
    this.index++
    if (this.is('=')) {
      this.index++
      body.attributes.push({ name: start.text, line: start.line, value: this.expression(depth) })
      return
    }
    let name = start.text
    while (this.is('.')) {
      this.index++
      if (this.token.kind !== 'name') this.unexpected(`a name after "${shown(name)}."`)
      name += `.${this.token.text}`
      this.index++
    }
    let title = name
    if (this.token.kind === 'string') {
      title += ` ${this.token.text}`
      this.index++
    }
    if (!this.is('{')) this.unexpected(name === start.text ? `"=" or "{" after ${shown(name)}` : `"{" after ${shown(title)}`)
    const opened = this.token
    this.nested(depth + 1, opened)
    this.index++
    body.blocks.push({ title: shown(title), name, line: start.line, ...this.body({ opened, title: shown(title) }, depth + 1) })
  }

  /** Whether the expression goes on with this token: not across a new line outside brackets. */
  private continues(): boolean {
    return this.brackets > 0 || !this.token.first
  }

  private expression(depth: number): AlloyValue {
    let value = this.unary(depth)
    while (this.token.kind === 'punct' && BINARY.has(this.token.text) && this.continues()) {
      this.index++
      this.unary(depth)
      value = { kind: 'expression' }
    }
    return value
  }

  private unary(depth: number): AlloyValue {
    this.nested(depth, this.token)
    if (this.is('!') || this.is('-')) {
      this.index++
      this.unary(depth + 1)
      return { kind: 'expression' }
    }
    let value = this.primary(depth)
    while ((this.is('.') || this.is('[') || this.is('(')) && this.continues()) {
      const opened = this.token
      this.index++
      if (opened.text === '.') {
        if (this.token.kind !== 'name') this.unexpected('a name after "."')
        this.index++
      } else {
        this.sequence(opened, depth, () => this.expression(depth + 1))
      }
      value = { kind: 'expression' }
    }
    return value
  }

  private primary(depth: number): AlloyValue {
    const token = this.token
    if (token.kind === 'string') {
      this.index++
      return { kind: 'string', value: token.value! }
    }
    if (token.kind === 'number') {
      this.index++
      return { kind: 'number' }
    }
    if (token.kind === 'name') {
      this.index++
      if (token.text === 'true' || token.text === 'false') return { kind: 'bool' }
      return token.text === 'null' ? { kind: 'null' } : { kind: 'expression' }
    }
    if (this.is('[')) {
      this.index++
      return { kind: 'list', items: this.sequence(token, depth, () => this.expression(depth + 1)) }
    }
    if (this.is('{')) {
      this.index++
      return {
        kind: 'object',
        fields: this.sequence(token, depth, () => {
          const key = this.token
          if (key.kind !== 'name' && key.kind !== 'string') this.unexpected('a field name')
          this.index++
          if (!this.is('=')) this.unexpected(`"=" after the field ${shown(key.value ?? key.text)}`)
          this.index++
          return { key: key.value ?? key.text, value: this.expression(depth + 1) }
        }),
      }
    }
    if (this.is('(')) {
      this.index++
      const [inner] = this.sequence(token, depth, () => this.expression(depth + 1))
      return inner ?? this.fail(token.line, '"()" holds no expression')
    }
    return this.unexpected('a value')
  }

  /** Items separated by commas, a trailing one allowed, up to the bracket that closes `opened` (already read). */
  private sequence<T>(opened: Token, depth: number, item: () => T): T[] {
    const close = OPEN[opened.text]
    const items: T[] = []
    this.nested(depth + 1, opened)
    this.brackets++
    while (!this.is(close)) {
      if (this.atEnd()) this.fail(opened.line, `the "${opened.text}" is never closed`)
      items.push(item())
      if (this.is(',')) this.index++
      else if (!this.is(close) && this.token.kind !== 'end') this.unexpected(`"," or "${close}"`)
    }
    this.brackets--
    this.index++
    return items
  }
}

const KIND_NAMES: Record<AlloyValue['kind'], string> = {
  string: 'a string',
  list: 'a list',
  object: 'an object',
  number: 'a number',
  bool: 'true or false',
  null: 'null',
  expression: 'an expression',
}

/** The source labels whose values are a container's own: a new one at every deploy. */
const CONTAINER_IDENTITY = new Set(['__meta_docker_container_id', '__meta_docker_container_name'])

/**
 * An Alloy config's text as doctor understands it, in time linear in its
 * size: the labels its relabel rules and stage.labels set, and its
 * stage.docker blocks. A config that is not Alloy syntax, or whose
 * target_label, source_labels or stage.labels values have the wrong type, is
 * refused with a UsageError of one line naming the line, the place and what
 * was expected.
 */
export function parseAlloyConfig(text: string, name = 'Alloy config'): AlloyConfig {
  const fail = (line: number, problem: string): never => {
    throw new UsageError(`${name} line ${line}: ${problem}`, 'check it with alloy fmt')
  }
  const parser = new AlloyParser(tokenize(text, fail), fail)
  const config: AlloyConfig = { labels: [], stageDocker: [] }
  /** The attribute's value if it is a literal of the kind doctor needs; undefined if Alloy must evaluate it to tell. */
  const literal = <K extends AlloyValue['kind']>(attribute: AlloyAttribute, path: string, kind: K, expected: string) => {
    if (attribute.value.kind === 'expression') return undefined
    if (attribute.value.kind !== kind) fail(attribute.line, `${path}.${attribute.name} is ${KIND_NAMES[attribute.value.kind]}; expected ${expected}`)
    return attribute.value as Extract<AlloyValue, { kind: K }>
  }
  const visit = (block: AlloyBlock, path: string) => {
    const here = `${path}${path ? '.' : ''}${block.title}`
    const attribute = (wanted: string) => block.attributes.find((a) => a.name === wanted)
    if (block.name === 'stage.docker') config.stageDocker.push(block.line)
    const sourceLabels = attribute('source_labels')
    const sources = (sourceLabels && literal(sourceLabels, here, 'list', 'a list of label names')?.items) ?? []
    const notAName = sources.find((item) => item.kind !== 'string' && item.kind !== 'expression')
    if (sourceLabels && notAName) fail(sourceLabels.line, `${here}.source_labels holds ${KIND_NAMES[notAName.kind]}; expected label names`)
    const target = attribute('target_label')
    const label = target && literal(target, here, 'string', 'a string, the label to set')
    if (target && label) {
      const fromContainer = sources.some((item) => item.kind === 'string' && CONTAINER_IDENTITY.has(item.value))
      config.labels.push({ name: label.value, line: target.line, setBy: 'relabel', fromContainer })
    }
    const values = block.name === 'stage.labels' ? attribute('values') : undefined
    if (values) {
      for (const field of literal(values, here, 'object', 'an object such as { level = "" }')?.fields ?? []) {
        config.labels.push({ name: field.key, line: values.line, setBy: 'stage.labels', fromContainer: false })
      }
    }
    for (const child of block.blocks) visit(child, here)
  }
  for (const block of parser.body().blocks) visit(block, '')
  return config
}

/** Reads and understands the --alloy-config file, or refuses it in one line (exit 2). */
export function readAlloyConfigFile(path: string): AlloyConfig {
  return parseAlloyConfig(readInputFile(path, 'Alloy config', '--alloy-config'), `Alloy config ${neutralize(path)}`)
}

function alloyConfigCheck(config: AlloyConfig, policy: LabelPolicy): Check {
  return fileCheck('alloy-config-labels', 'the Alloy config creates no high-cardinality labels', () => {
    // Alloy drops __ labels (its temporary ones) before it pushes: they never become Loki labels.
    const pushed = config.labels.filter(({ name }) => !name.startsWith(RESERVED_PREFIX))
    const violations = pushed.flatMap((label) => {
      const violation = policyViolation({ name: label.name }, policy)
      const problem = label.setBy === 'relabel' ? `a relabel rule sets the label ${label.name}` : `stage.labels turns ${label.name} into a label`
      return violation ? [{ violation, problem: `${problem} (line ${label.line})` }] : []
    })
    const problems = violations.map((v) => v.problem)
    const hints = violations.length > 0 ? [violationHint(violations.map((v) => v.violation))] : []
    const fromContainer = pushed.filter((label) => label.fromContainer)
    if (fromContainer.length > 0) {
      problems.push(`container ids or names become labels (${atLines(fromContainer.map((label) => label.line))}; new values at every deploy)`)
      hints.push(`take service from __meta_docker_container_label_com_docker_compose_service instead ${see('high-cardinality-labels')}`)
    }
    if (problems.length > 0) {
      return { status: 'fail', detail: `${listed(problems)} — per-request values as labels create a stream per value`, hint: hints.join('; ') }
    }
    return config.stageDocker.length > 0
      ? {
          status: 'warn',
          detail: `stage.docker after loki.source.docker rewrites lines (${atLines(config.stageDocker)}): remove it`,
          hint: `see the comments in stack/alloy-config.alloy ${see('alloy-config')}`,
        }
      : { status: 'pass', detail: `only ${policy.allowedLabels.join(', ')} are set` }
  })
}
