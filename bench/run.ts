/**
 * The obs benchmark: one real Loki 3.6.2, one reproducible million-line
 * dataset, and obs measured against logcli, `node -e 0` and a raw-HTTP
 * baseline in the same run on the same machine. Writes bench/RESULTS.md and
 * bench/results.json; progress goes to stderr.
 *
 *   node_modules/.bin/node bench/run.ts        (npm run bench)
 *
 * Environment (for quick trial runs; the defaults are the benchmark):
 *   BENCH_LINES=1000000  BENCH_EXPORT_ROUNDS=3  BENCH_FAST_ROUNDS=7
 *   BENCH_STARTUP_ROUNDS=10  BENCH_PROFILE=1  BENCH_OBS_PARALLEL=4
 *   BENCH_RESULTS=bench/RESULTS.md  (bench/results.json is always written)
 *   BENCH_ONLY=bursty  only the bursty export (obs against logcli on uneven
 *                      density); prints its table, writes bench/results-bursty.json
 *   BENCH_ONLY=scalable  only the export from a scalable Loki (2, then 1 read
 *                      process); writes bench/results-scalable.json
 *   BENCH_ONLY=trace|startup|context  load the million lines, run that section, print
 *                      its ratios; writes nothing (development runs)
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BURSTY_APP, generateBurstyDataset } from '../test/support/bursty-dataset.ts'
import { toPushBatches } from '../test/support/dataset.ts'
import { lokiBinary, pushAll, REPO, startLoki } from '../test/support/loki.ts'
import { type QueryRecord, startPageCounter } from '../test/support/page-counter.ts'
import { APP } from './dataset.ts'
import {
  type BenchLoki,
  HAVE_TIME,
  interleaved,
  type LoadResult,
  loadDataset,
  log,
  procMemory,
  type Run,
  removeScratch,
  runMeasured,
  type Stats,
  scratchDir,
  startBenchLoki,
  stats,
} from './lib.ts'

const BENCH = import.meta.dirname
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback)
const SETTINGS = {
  seed: 20261124,
  lines: env('BENCH_LINES', 1_000_000),
  spanMin: 50,
  subSpanMin: 5,
  perBatch: 10_000,
  pushConcurrency: 4,
  startupRounds: env('BENCH_STARTUP_ROUNDS', 10),
  fastRounds: env('BENCH_FAST_ROUNDS', 7),
  exportRounds: env('BENCH_EXPORT_ROUNDS', 3),
  /** obs query-range --parallel N, measured as well when the build has the flag. */
  obsParallel: env('BENCH_OBS_PARALLEL', 4),
  profile: env('BENCH_PROFILE', 1) === 1,
  /** Base-rate lines of the bursty dataset; its spikes add three times as many. */
  burstyBaseLines: env('BENCH_BURSTY_BASE', 60_000),
  /** Same-nanosecond groups of the bursty dataset: above small batches, one near Loki's page. */
  burstyGroups: [40, 300, 12, 60, 4000, 40, 40, 40, 40, 40],
  /** logcli's parallel modes tried once each; the fastest is measured with the others. */
  logcliParallel: [
    ['10m', '2'],
    ['5m', '4'],
    ['2m', '8'],
  ] as [string, string][],
}
const RESULTS_FILE = process.env.BENCH_RESULTS ?? join(BENCH, 'RESULTS.md')
const NODE = process.execPath
/** The CLI under test: a snapshot of the build, taken at the start (see snapshotObs). */
let OBS = join(REPO, 'bin/run.js')
let OBS_ROOT = REPO
const LOGCLI = join(dirname(lokiBinary()), 'logcli')
const SELECTOR = `{app="${APP}"}`
const NOTES_MARKER = '<!-- notes: everything below this line is kept when bench/run.ts rewrites this file -->'

// ------------------------------------------------------------ bookkeeping

interface Measurement {
  id: string
  label: string
  /** The command as a user types it. */
  display: string
  runs: Run[]
  wall: Stats
  rss: Stats
  /** Lines the command outputs (for throughput). */
  lines?: number
  note?: string
}

interface Ratio {
  name: string
  value: number
  /** Per-round ratios of the interleaved runs: the spread. */
  range?: [number, number]
  target?: string
  pass?: boolean
  how: string
  /** Absent: a ratio, printed as 1.23×. */
  unit?: 'MB'
  /** What the verdict does not say. */
  caveat?: string
}

const measurements = new Map<string, Measurement>()
const ratios: Ratio[] = []
const correctness: { what: string; expected: string; got: string; ok: boolean }[] = []
const analysis: string[] = []
const traceAnalysis: string[] = []
const timings: Record<string, number> = {}

function record(id: string, label: string, display: string, runs: Run[], extra: Partial<Measurement> = {}): Measurement {
  const m: Measurement = {
    id,
    label,
    display,
    runs,
    wall: stats(runs.map((r) => r.wallMs)),
    rss: stats(runs.map((r) => r.maxRssKb)),
    ...extra,
  }
  measurements.set(id, m)
  return m
}

function ratio(name: string, numerator: string, denominator: string, how: string, target?: { op: '>=' | '<='; value: number }): Ratio {
  const a = measurements.get(numerator)!
  const b = measurements.get(denominator)!
  const value = a.wall.median / b.wall.median
  const perRound = a.runs.length === b.runs.length ? a.runs.map((run, i) => run.wallMs / b.runs[i].wallMs) : []
  const r: Ratio = {
    name,
    value,
    range: perRound.length ? [Math.min(...perRound), Math.max(...perRound)] : undefined,
    how,
  }
  if (target) {
    r.target = `${target.op} ${target.value}`
    r.pass = target.op === '>=' ? value >= target.value : value <= target.value
  }
  ratios.push(r)
  return r
}

const q = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)
const shell = (args: string[]) => args.map(q).join(' ')

function obsArgs(args: string[]): [string, string[]] {
  return [NODE, [OBS, ...args]]
}

let runEnv: Record<string, string> = {}

async function obs(args: string[], options: Parameters<typeof runMeasured>[2] = {}): Promise<Run & { stdoutText?: string }> {
  const [command, argv] = obsArgs(args)
  return runMeasured(command, argv, { ...options, env: { ...runEnv, ...options.env } })
}

async function logcli(args: string[], options: Parameters<typeof runMeasured>[2] = {}): Promise<Run & { stdoutText?: string }> {
  return runMeasured(LOGCLI, args, { ...options, env: { ...runEnv, ...options.env } })
}

function checkExit(name: string, run: Run): void {
  if (run.code !== 0) throw new Error(`${name} exited with ${run.code}: ${run.stderr.trim().split('\n').slice(-5).join(' | ')}`)
}

const fmtS = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`)
const fmtMB = (kb: number) => `${((kb * 1024) / 1e6).toFixed(0)} MB`
const fmtN = (n: number) => Math.round(n).toLocaleString('en-US')
const fmtX = (x: number) => `${x.toFixed(2)}×`
const spread = (s: Stats, f: (n: number) => string) => `${f(s.median)} (${f(s.min)}–${f(s.max)})`

// ------------------------------------------------------------ machine and versions

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown'
  const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : ''
  const os = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(osRelease)?.[1] ?? process.platform
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()
  return {
    cpu: model,
    cores: cpus().length,
    ramGB: +(totalmem() / 1e9).toFixed(1),
    os: `${os}, Linux ${kernel}`,
  }
}

function gitRevision(): string {
  try {
    const head = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src', 'bin', 'package.json'], { encoding: 'utf8' }).trim()
    return dirty ? `${head} (with uncommitted changes in src/bin)` : head
  } catch {
    return 'unknown'
  }
}

// ------------------------------------------------------------ a stable build

/**
 * Copies the built CLI (bin/, dist/, package.json, oclif.manifest.json, with
 * node_modules linked) into the scratch directory and runs that copy all
 * along. Others rebuild dist/ while they work (npm test builds first); without
 * the copy one benchmark run could measure several builds. A copy taken while
 * dist/ was being rebuilt is detected (dist/ changed during the copy, or a
 * command of the manifest is missing) and taken again.
 */
async function snapshotObs(): Promise<{ bin: string; distHash: string; builtAt: string; commit: string }> {
  const dir = join(scratchDir(), 'obs')
  for (let attempt = 0; ; attempt++) {
    const before = existsSync(join(REPO, 'dist/commands')) ? statSync(join(REPO, 'dist')).mtimeMs : 0
    const commit = gitRevision()
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    let complete = before > 0
    if (complete) {
      for (const name of ['bin', 'dist', 'package.json', 'oclif.manifest.json']) cpSync(join(REPO, name), join(dir, name), { recursive: true })
      symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'))
      const after = statSync(join(REPO, 'dist')).mtimeMs
      const manifest = JSON.parse(readFileSync(join(dir, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, { relativePath?: string[] }> }
      const missing = Object.values(manifest.commands).filter((c) => c.relativePath && !existsSync(join(dir, ...c.relativePath)))
      complete = after === before && missing.length === 0
    }
    if (complete) {
      const hash = createHash('sha256')
      const walk = (path: string) => {
        for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
          const full = join(path, entry.name)
          if (entry.isDirectory()) walk(full)
          else hash.update(relative(dir, full)).update(readFileSync(full))
        }
      }
      for (const name of ['bin', 'dist', 'package.json', 'oclif.manifest.json']) {
        const full = join(dir, name)
        if (statSync(full).isDirectory()) walk(full)
        else hash.update(name).update(readFileSync(full))
      }
      return { bin: join(dir, 'bin/run.js'), distHash: hash.digest('hex').slice(0, 12), builtAt: new Date(before).toISOString(), commit }
    }
    if (attempt >= 20) throw new Error('dist/ is missing or keeps changing: run `npm run build` and try again')
    log('dist/ is being rebuilt; waiting to copy a complete build')
    await new Promise((done) => setTimeout(done, 3000))
  }
}

// ------------------------------------------------------------ request capture

interface Capture {
  targets: string[]
  headers: Record<string, string>
  /** Each request's answer: entries and bytes of a 200, the limit asked for (empty when not recorded). */
  pages: QueryRecord[]
}

/**
 * obs's requests, recorded by the tests' page counter (a forwarding proxy).
 * Only used for an untimed run, when OBS_DEBUG's lines do not carry the query
 * string.
 */
async function captureThroughProxy(lokiAddr: string, runThrough: (proxyAddr: string) => Promise<Run>): Promise<Capture> {
  const proxy = await startPageCounter(lokiAddr)
  try {
    checkExit('obs (through the recording proxy)', await runThrough(proxy.addr))
  } finally {
    await proxy.close()
  }
  return { targets: proxy.records.map((r) => r.target), headers: proxy.headers, pages: proxy.records }
}

/** OBS_DEBUG lines: `debug: GET <url> -> <status> in <ms>ms`, placed in time when the lines were stamped. */
function debugRequests(run: Run): { url: string; status: string; ms: number; end?: number }[] {
  const lines = run.stderrLines ?? run.stderr.split('\n').map((line) => ({ at: undefined as number | undefined, line }))
  const found: { url: string; status: string; ms: number; end?: number }[] = []
  for (const { at, line } of lines) {
    const match = /debug: GET (\S+) -> (\S+) in (\d+)ms/.exec(line.replace(/\x1b\[[0-9;]*m/g, ''))
    if (match) found.push({ url: match[1], status: match[2], ms: Number(match[3]), end: at })
  }
  return found
}

/** Time with at least one request in flight: the union of [end - ms, end]. */
function inFlightMs(requests: { ms: number; end?: number }[]): number | undefined {
  if (requests.some((r) => r.end === undefined)) return undefined
  const spans = requests.map((r) => [r.end! - r.ms, r.end!] as const).sort((a, b) => a[0] - b[0])
  let total = 0
  let [from, to] = spans[0] ?? [0, 0]
  for (const [start, end] of spans) {
    if (start > to) {
      total += to - from
      from = start
      to = end
    } else if (end > to) to = end
  }
  return total + (to - from)
}

// ------------------------------------------------------------ CPU profile

/**
 * Where a profiled function's code came from. dist/ is a bundle (scripts/build.ts):
 * its source maps give back the original file, under src/ or a package.
 */
function profiledSource(sourceMaps: Map<string, SourceMap | undefined>, frame: { url: string; lineNumber: number; columnNumber: number }): { url: string; line: number } {
  const url = frame.url.replace(/^file:\/\//, '')
  if (!url.startsWith(join(OBS_ROOT, 'dist'))) return { url, line: frame.lineNumber }
  if (!sourceMaps.has(url)) sourceMaps.set(url, existsSync(`${url}.map`) ? new SourceMap(JSON.parse(readFileSync(`${url}.map`, 'utf8'))) : undefined)
  const entry = sourceMaps.get(url)?.findEntry(frame.lineNumber, frame.columnNumber)
  return entry && 'originalSource' in entry
    ? { url: resolve(dirname(url), entry.originalSource.replace(/^file:\/\//, '')), line: entry.originalLine }
    : { url, line: frame.lineNumber }
}

/** Self time by function from a .cpuprofile, and the idle share (waiting on I/O). */
function summarizeProfile(file: string): { totalMs: number; idleMs: number; gcMs: number; top: { name: string; ms: number }[]; byArea: Record<string, number> } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }[]
    samples: number[]
    timeDeltas: number[]
  }
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map<number, number>()
  for (const [i, id] of profile.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  const sourceMaps = new Map<string, SourceMap | undefined>()
  const byName = new Map<string, number>()
  const byArea: Record<string, number> = {}
  let totalUs = 0
  let idleUs = 0
  let gcUs = 0
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame
    totalUs += us
    if (frame.functionName === '(idle)') idleUs += us
    if (frame.functionName === '(garbage collector)') gcUs += us
    const { url, line } = profiledSource(sourceMaps, frame)
    const root = url.startsWith(OBS_ROOT) ? OBS_ROOT : url.startsWith(REPO) ? REPO : undefined
    const where = url.includes('/node_modules/') ? url.replace(/^.*\/node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1') : root ? relative(root, url) : url || 'native'
    const area = frame.functionName.startsWith('(')
      ? frame.functionName
      : url.includes('/node_modules/')
        ? `package ${where}`
        : root
          ? url.startsWith(join(OBS_ROOT, 'dist'))
            ? 'bundle glue (dist/: module top levels, esbuild helpers)'
            : 'obs code (src/, bin/)'
          : url.startsWith('node:internal/modules')
            ? 'module loading (node:internal/modules)'
            : url.startsWith('node:')
              ? 'other Node.js internals'
              : 'native / builtins'
    byArea[area] = (byArea[area] ?? 0) + us / 1000
    const name = `${frame.functionName || '(anonymous)'} ${where}${line >= 0 && url ? `:${line + 1}` : ''}`
    byName.set(name, (byName.get(name) ?? 0) + us)
  }
  const top = [...byName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([name, us]) => ({ name, ms: us / 1000 }))
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, gcMs: gcUs / 1000, top, byArea }
}

// ------------------------------------------------------------ the benchmark

let loki: BenchLoki | undefined
let scalable: BenchLoki | undefined
let cleaning: Promise<void> | undefined

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (loki) {
      log(`stopping Loki (pid ${loki.child.pid})`)
      await loki.remove()
    }
    if (scalable) {
      log('stopping the scalable Loki')
      await scalable.remove()
    }
    removeScratch()
  })()
  return cleaning
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`)
    void cleanup().finally(() => process.exit(130))
  })
}

/** The benchmark's window: the last spanMin minutes before a minute boundary, and the sub-range for the flat-RSS check. */
interface BenchWindow {
  startMs: number
  endMs: number
  from: string
  to: string
  subTo: string
}

type Dataset = LoadResult['summary']
type Versions = Awaited<ReturnType<typeof benchVersions>>
type Profile = ReturnType<typeof summarizeProfile>

/** What a run wrote to bench/results.json, and what RESULTS.md is written from. */
interface BenchResults {
  date: string
  machine: ReturnType<typeof machine>
  loadAverage: { start: number[]; beforeExport: number[]; end: number[] }
  versions: Versions
  settings: typeof SETTINGS
  window: { from: string; to: string; subTo: string }
  load: Dataset & { ms: number; retries: number; pushRequests: number }
  loki: { addr: string; config: string; rssAfterLoadKb?: number; peakRssKb?: number }
  measurements: Record<
    string,
    { label: string; command: string; wallMs: Stats; maxRssKb: Stats; lines?: number; note?: string; runs: Pick<Run, 'wallMs' | 'maxRssKb' | 'userS' | 'sysS'>[] }
  >
  ratios: Ratio[]
  correctness: typeof correctness
  analysis: string[]
  traceAnalysis: string[]
  profile?: Profile
  traceProfile?: Profile
  capture: { requests: number; fullPages: number; fetchedEntries: number; fetchedBytes: number; headers: Record<string, string> }
  parallelTrials: ExportResult['parallelTrials']
  timings: Record<string, number>
  seriesOutputs: { obs: string; logcli: string }
  context: { requests: Record<string, number>; lines: Record<string, number> }
}

/** Runs a section, noting how long it took in `timings`. */
async function timed<R>(name: string, section: () => Promise<R>): Promise<R> {
  const t = performance.now()
  try {
    return await section()
  } finally {
    timings[name] = performance.now() - t
  }
}

/** Loads the dataset into the window that ends at the last minute boundary. */
/** The window that ends at the last minute boundary. */
function benchWindow(): BenchWindow {
  const endMs = Math.floor(Date.now() / 60_000) * 60_000
  const startMs = endMs - SETTINGS.spanMin * 60_000
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')
  return { startMs, endMs, from: iso(startMs), to: iso(endMs), subTo: iso(startMs + SETTINGS.subSpanMin * 60_000) }
}

async function loadData(): Promise<{ loaded: LoadResult; data: Dataset; window: BenchWindow; lokiAfterLoad: ReturnType<typeof procMemory> }> {
  const { startMs, endMs, from, to, subTo } = benchWindow()
  log(`loading ${fmtN(SETTINGS.lines)} lines into [${from}, ${to}) with ${SETTINGS.pushConcurrency} parallel pushes of ${fmtN(SETTINGS.perBatch)} lines`)
  const loaded = await loadDataset(
    loki!.addr,
    { seed: SETTINGS.seed, total: SETTINGS.lines, startNs: BigInt(startMs) * 1_000_000n, spanMs: SETTINGS.spanMin * 60_000, perBatch: SETTINGS.perBatch },
    SETTINGS.subSpanMin * 60_000,
    SETTINGS.pushConcurrency,
  )
  const data = loaded.summary
  const lokiAfterLoad = procMemory(loki!.child.pid!)
  log(
    `loaded ${fmtN(data.total)} lines (${(data.bytes / 1e6).toFixed(0)} MB, ${Object.keys(data.perStream).length} streams, ` +
      `${fmtN(data.requests)} requests) in ${fmtS(loaded.ms)}: ${fmtN(data.total / (loaded.ms / 1000))} lines/s, ` +
      `${(data.bytes / 1e6 / (loaded.ms / 1000)).toFixed(1)} MB/s; ${loaded.retries} pushes retried`,
  )
  return { loaded, data, window: { startMs, endMs, from, to, subTo }, lokiAfterLoad }
}

async function benchVersions(snapshot: Awaited<ReturnType<typeof snapshotObs>>) {
  const buildInfo = (await (await fetch(`${loki!.addr}/loki/api/v1/status/buildinfo`)).json()) as { version: string; revision: string }

  const versions = {
    node: process.version,
    obs: (await obs(['--version'], { stdout: 'capture' })).stdoutText!.trim(),
    obsRevision: snapshot.commit,
    loki: `${buildInfo.version} (${buildInfo.revision})`,
    logcli: await (async () => {
      // logcli prints its version on stderr.
      const run = await logcli(['--version'], { stdout: 'capture' })
      return `${run.stdoutText}${run.stderr}`.split('\n')[0].trim() || 'unknown'
    })(),
    obsBuild: `dist/ of ${snapshot.builtAt}, sha256 ${snapshot.distHash} (bin, dist, package.json, manifest)`,
  }
  log(`versions: ${JSON.stringify(versions)}`)

  return versions
}

/** The trace of one request: obs trace against logcli with the design doc's query and with obs's, and what bounds the ratio. */
async function traceSection(data: Dataset): Promise<{ traceArgs: string[]; debug: { wallMs: number; requestMs: number; requests: number }; bound: string }> {
  const reqId = data.traceReqId
  const designQuery = `{service="app"} | json | reqId="${reqId}"`
  const allServicesQuery = `${SELECTOR} | json | reqId="${reqId}"`
  const obsTraceQuery = `${SELECTOR} |= "${reqId}" | json | reqId="${reqId}"`
  const traceArgs = ['trace', reqId, '--since', '1h']
  const logcliTrace = (query: string) => ['query', query, '--since', '1h', '--limit', '0', '--batch', '5000', '--quiet', '-o', 'raw']
  const designArgs = logcliTrace(designQuery)
  const allServicesArgs = logcliTrace(allServicesQuery)
  const obsQueryArgs = logcliTrace(obsTraceQuery)
  log(`trace ${reqId} (${data.traceLines} lines in all services, ${data.traceAppLines} in service="app"), ${SETTINGS.fastRounds} rounds`)
  let traceDebug: { wallMs: number; requestMs: number; requests: number }
  {
    const obsJson = await obs([...traceArgs, '--json'], { stdout: 'capture', env: { OBS_DEBUG: '1' }, stampStderr: true })
    checkExit('obs trace --json', obsJson)
    const requests = debugRequests(obsJson)
    traceDebug = { wallMs: obsJson.wallMs, requestMs: inFlightMs(requests) ?? requests.reduce((sum, r) => sum + r.ms, 0), requests: requests.length }
    const found = (JSON.parse(obsJson.stdoutText!) as { entries: unknown[] }).entries.length
    correctness.push({ what: `obs trace ${reqId}: lines found`, expected: `${data.traceLines} (all services)`, got: String(found), ok: found === data.traceLines })
    for (const [what, args, expected, detail] of [
      ["logcli, the design doc's trace query", designArgs, data.traceAppLines, 'service="app" only, by the query\'s design'],
      ['logcli, the design query over all services', allServicesArgs, data.traceLines, 'all services'],
      ["logcli, obs's trace query", obsQueryArgs, data.traceLines, 'all services'],
    ] as const) {
      const run = await logcli([...args], { stdout: 'capture' })
      checkExit(what, run)
      const got = run.stdoutText!.split('\n').filter(Boolean).length
      correctness.push({ what: `${what}: lines found`, expected: `${expected} (${detail})`, got: String(got), ok: got === expected })
    }
  }
  const traces = await interleaved(SETTINGS.fastRounds, {
    obsTrace: () => obs(traceArgs),
    logcliDesign: () => logcli(designArgs),
    logcliAllServices: () => logcli(allServicesArgs),
    logcliObsQuery: () => logcli(obsQueryArgs),
  })
  record('obsTrace', 'obs trace', `obs ${shell(traceArgs)}`, traces.obsTrace)
  record('logcliDesign', "logcli, the design doc's query (service=app only)", `logcli ${shell(designArgs)}`, traces.logcliDesign)
  record('logcliAllServices', 'logcli, the design query over all services', `logcli ${shell(allServicesArgs)}`, traces.logcliAllServices)
  record('logcliObsQuery', "logcli with obs's trace query", `logcli ${shell(obsQueryArgs)}`, traces.logcliObsQuery)
  ratio("trace: logcli (design doc's query) ÷ obs trace", 'logcliDesign', 'obsTrace', 'time ratio, medians', { op: '>=', value: 5 })
  ratio('trace: logcli (design query, all services) ÷ obs trace', 'logcliAllServices', 'obsTrace', 'time ratio, medians: the same lines found')
  ratio("trace: logcli (obs's query) ÷ obs trace", 'logcliObsQuery', 'obsTrace', 'time ratio, medians: the tools alone')
  // Loki's own time for each query, from the stats in its answer: the floor
  // under any client that wants the same answer.
  const lokiTrace = async (query: string) => {
    const exec: number[] = []
    let lines = 0
    for (let round = 0; round < 5; round++) {
      const endNs = BigInt(Date.now()) * 1_000_000n
      const params = new URLSearchParams({ query, start: (endNs - 3_600_000_000_000n).toString(), end: endNs.toString(), limit: '5000' })
      const answer = (await (await fetch(`${loki!.addr}/loki/api/v1/query_range?${params}`)).json()) as {
        data: { stats: { summary: { execTime: number; totalLinesProcessed: number } } }
      }
      exec.push(answer.data.stats.summary.execTime * 1000)
      lines = answer.data.stats.summary.totalLinesProcessed
    }
    return { exec: stats(exec), lines }
  }
  const lokiDesign = await lokiTrace(designQuery)
  const lokiObs = await lokiTrace(obsTraceQuery)
  const obsReadyMs = await (async () => {
    const runs: number[] = []
    for (let round = 0; round < 5; round++) runs.push((await obs(['ready'])).wallMs)
    return stats(runs).median
  })()
  const fifth = measurements.get('logcliDesign')!.wall.median / 5
  const bound =
    `What bounds the trace ratio, measured: Loki's own execution time (stats.summary.execTime of its answer, median of 5) is ` +
    `${fmtS(lokiDesign.exec.median)} for the design doc's query over the hour (${fmtN(lokiDesign.lines)} lines read) and ${fmtS(lokiObs.exec.median)} for the id-filtered query over every service ` +
    `(${fmtN(lokiObs.lines)} lines read). obs trace asks neither over the whole hour: it looks for one line of the request, one entry at a time over stretches searched newest first, each twice as long ` +
    `as the one before (1m, 2m, 4m, …: Loki stops reading each stream at its first match), then fetches every line within ±45 s of it, widening while lines reach the window's edge; ` +
    `${traceDebug.requests} requests in the OBS_DEBUG run, in flight ${fmtS(traceDebug.requestMs)}. For 5×, obs trace had to finish in ${fmtS(fifth)}, start to exit; ` +
    `\`obs ready\` (Node, oclif and one trivial request) takes ${fmtS(obsReadyMs)}. The request traced is 75% into the 50-minute window, so the search reads the newest quarter of the data, in part.`
  return { traceArgs, debug: traceDebug, bound }
}

/** obs series --analyze-labels against logcli's. */
async function cardinalitySection({ from, to }: BenchWindow): Promise<{ outputs: { obs: string; logcli: string }; debug: { wallMs: number; requestMs: number } }> {
  const seriesObs = ['series', SELECTOR, '--analyze-labels', '--from', from, '--to', to]
  const seriesLogcli = ['series', SELECTOR, '--analyze-labels', '--from', from, '--to', to, '--quiet']
  log(`cardinality, ${SETTINGS.fastRounds} rounds`)
  const seriesOutputs = {
    obs: (await obs(seriesObs, { stdout: 'capture' })).stdoutText!,
    logcli: (await logcli(seriesLogcli, { stdout: 'capture' })).stdoutText!,
  }
  const seriesDebugRun = await obs(seriesObs, { env: { OBS_DEBUG: '1' }, stampStderr: true })
  const seriesDebug = { wallMs: seriesDebugRun.wallMs, requestMs: inFlightMs(debugRequests(seriesDebugRun)) ?? 0 }
  const series = await interleaved(SETTINGS.fastRounds, {
    obsSeries: () => obs(seriesObs),
    logcliSeries: () => logcli(seriesLogcli),
  })
  record('obsSeries', 'obs series --analyze-labels', `obs ${shell(seriesObs)}`, series.obsSeries)
  record('logcliSeries', 'logcli series --analyze-labels', `logcli ${shell(seriesLogcli)}`, series.logcliSeries)
  ratio('cardinality: obs ÷ logcli', 'obsSeries', 'logcliSeries', 'time ratio, medians (below 1: obs faster)')
  return { outputs: seriesOutputs, debug: seriesDebug }
}

/** query-range -C 3 around one match and around 100 (issue: context): what it costs in requests and time. */
async function contextSection({ from, to, startMs }: BenchWindow): Promise<{ requests: Record<string, number>; lines: Record<string, number> }> {
  const query = `{app="${APP}", service="app"} |= "card declined"`
  const args = (limit: number) => ['query-range', query, '--from', from, '--to', to, '--limit', String(limit), '-C', '3', '-o', 'raw']
  const requests: Record<string, number> = {}
  const lines: Record<string, number> = {}
  log(`context: -C 3 around 1 and 100 matches, ${SETTINGS.fastRounds} rounds`)
  for (const limit of [1, 100]) {
    const counted = await obs(args(limit), { stdout: 'capture', env: { OBS_DEBUG: '1' }, stampStderr: true })
    checkExit(`obs -C 3 --limit ${limit}`, counted)
    requests[limit] = debugRequests(counted).length
    const printed = counted.stdoutText!.split('\n').filter((line) => line !== '' && line !== '--')
    lines[limit] = printed.length
    const matches = printed.filter((line) => line.includes('card declined')).length
    correctness.push({
      what: `obs query-range -C 3 --limit ${limit}: matches printed`,
      expected: `${limit}, each with up to 3 lines each side`,
      got: `${matches} matches in ${printed.length} lines`,
      ok: matches >= limit && printed.length <= limit * 7 && printed.length > limit,
    })
  }
  const runs = await interleaved(SETTINGS.fastRounds, { obsContext1: () => obs(args(1)), obsContext100: () => obs(args(100)) })
  record('obsContext1', 'obs query-range -C 3, 1 match', `obs ${shell(args(1))}`, runs.obsContext1, { note: `${requests[1]} requests` })
  record('obsContext100', 'obs query-range -C 3, 100 matches', `obs ${shell(args(100))}`, runs.obsContext100, { note: `${requests[100]} requests` })
  // Dense: every line of app's stderr stream is a "card declined" error, so every match's context is its neighbours.
  // Over the window's first 20 s (the dataset may end before the window does), context planned by cost against the per-match windows (counted once: timed, they take
  // minutes) and against an export of the same stream and range, which is what the cost plan should come close to.
  const denseRange = ['--from', from, '--to', new Date(startMs + 20_000).toISOString()]
  const denseContext = ['query-range', query, ...denseRange, '--limit', '0', '-C', '3', '-o', 'raw']
  const denseExport = ['query-range', `{app="${APP}", service="app", stream="stderr"}`, ...denseRange, '--limit', '0', '-o', 'raw']
  for (const [name, args, plan] of [
    ['dense', denseContext, undefined],
    ['denseWindows', denseContext, 'windows'],
    ['denseExport', denseExport, undefined],
  ] as const) {
    const counted = await obs(args, { stdout: 'capture', env: { OBS_DEBUG: '1', ...(plan ? { OBS_CONTEXT_PLAN: plan } : {}) }, stampStderr: true })
    checkExit(`obs ${name}`, counted)
    requests[name] = debugRequests(counted).length
    lines[name] = counted.stdoutText!.split('\n').filter((line) => line !== '' && line !== '--').length
    log(`context ${name}: ${requests[name]} requests, ${lines[name]} lines`)
  }
  correctness.push({
    what: 'obs query-range -C 3 on a dense stream: the lines printed',
    expected: `the stream's ${lines.denseExport} lines, as the per-match windows print them`,
    got: `${lines.dense} lines (by cost), ${lines.denseWindows} (per-match windows)`,
    ok: lines.dense === lines.denseWindows && lines.dense >= lines.denseExport - 3,
  })
  const dense = await interleaved(SETTINGS.fastRounds, { obsContextDense: () => obs(denseContext), obsExportDense: () => obs(denseExport) })
  record('obsContextDense', 'obs query-range -C 3, every line a match (20 s)', `obs ${shell(denseContext)}`, dense.obsContextDense, {
    note: `${requests.dense} requests; per-match windows: ${requests.denseWindows}`,
  })
  record('obsExportDense', 'obs query-range, the same stream and 20 s exported', `obs ${shell(denseExport)}`, dense.obsExportDense, { note: `${requests.denseExport} requests` })
  ratio('dense context: -C 3 ÷ export of the same range', 'obsContextDense', 'obsExportDense', 'time ratio, medians (near 1: context costs what it reads)')
  analysis.push(
    `Context (-C 3) on service="app" errors: 1 match took ${requests[1]} requests and ${fmtS(measurements.get('obsContext1')!.wall.median)}; ` +
      `100 matches took ${requests[100]} requests (the matches' page, then per match one request for its nanosecond and at least one per side, 4 at a time) ` +
      `and ${fmtS(measurements.get('obsContext100')!.wall.median)}, printing ${lines[100]} lines.`,
  )
  return { requests, lines }
}

/** Start-up: node -e 0, obs --version and ready, logcli --version; the import cost of each runtime dependency. */
async function startupSection(): Promise<{ systemNodeVersion: string }> {
  log(`startup, ${SETTINGS.startupRounds} rounds`)
  // The same short calls by both tools: label names of the last hour, and
  // the newest 10 lines of the app (both default to the last hour).
  const labelsArgs = { obs: ['labels'], logcli: ['labels', '--quiet'] }
  const query10Args = { obs: ['query-range', SELECTOR, '--limit', '10', '-o', 'raw'], logcli: ['query', SELECTOR, '--limit', '10', '-o', 'raw', '--quiet'] }
  const startupCommands: Record<string, () => Promise<Run>> = {
    nodeE0: () => runMeasured(NODE, ['-e', '0']),
    obsVersion: () => obs(['--version']),
    obsReady: () => obs(['ready']),
    logcliVersion: () => logcli(['--version']),
    obsLabels: () => obs(labelsArgs.obs),
    logcliLabels: () => logcli(labelsArgs.logcli),
    obsQuery10: () => obs(query10Args.obs),
    logcliQuery10: () => logcli(query10Args.logcli),
  }
  const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((path) => existsSync(path))
  let systemNodeVersion = ''
  if (systemNode) {
    systemNodeVersion = execFileSync(systemNode, ['--version'], { encoding: 'utf8' }).trim()
    if (Number(systemNodeVersion.slice(1).split('.')[0]) < 22) {
      startupCommands.obsVersionSystemNode = () => runMeasured(systemNode, [OBS, '--version'], { env: runEnv })
    }
  }
  const startup = await interleaved(SETTINGS.startupRounds, startupCommands)
  record('nodeE0', 'node -e 0', `node -e 0   (${NODE})`, startup.nodeE0)
  record('obsVersion', 'obs --version', 'obs --version', startup.obsVersion)
  record('obsReady', 'obs ready', 'obs ready', startup.obsReady)
  record('logcliVersion', 'logcli --version', 'logcli --version', startup.logcliVersion)
  record('obsLabels', 'obs labels', `obs ${shell(labelsArgs.obs)}`, startup.obsLabels)
  record('logcliLabels', 'logcli labels', `logcli ${shell(labelsArgs.logcli)}`, startup.logcliLabels)
  record('obsQuery10', 'obs query-range --limit 10', `obs ${shell(query10Args.obs)}`, startup.obsQuery10)
  record('logcliQuery10', 'logcli query --limit 10', `logcli ${shell(query10Args.logcli)}`, startup.logcliQuery10)
  if (startup.obsVersionSystemNode) {
    record('obsVersionSystemNode', `obs --version under the system's Node ${systemNodeVersion}`, `${systemNode} bin/run.js --version`, startup.obsVersionSystemNode, {
      note: `bin/run.js hands over to Node 24 from node_modules: two Node startups`,
    })
  }
  ratio('startup: obs --version ÷ node -e 0', 'obsVersion', 'nodeE0', 'time ratio, medians', { op: '<=', value: 1.2 })
  ratio('startup: obs ready ÷ node -e 0', 'obsReady', 'nodeE0', 'time ratio, medians')
  ratio('startup: obs --version ÷ logcli --version', 'obsVersion', 'logcliVersion', 'time ratio, medians')
  // logcli has no ready command: its --version (no request at all) is the nearest, and stricter.
  ratio('startup: obs ready ÷ logcli --version', 'obsReady', 'logcliVersion', 'time ratio, medians', { op: '<=', value: 1.5 })
  ratio('startup: obs ready ÷ logcli labels (one request each)', 'obsReady', 'logcliLabels', 'time ratio, medians')
  ratio('startup: obs labels ÷ logcli labels', 'obsLabels', 'logcliLabels', 'time ratio, medians', { op: '<=', value: 1.5 })
  ratio('startup: obs query-range --limit 10 ÷ logcli query --limit 10', 'obsQuery10', 'logcliQuery10', 'time ratio, medians', { op: '<=', value: 1.5 })
  // What loading each part of the bundle costs on its own (a diagnostic for start-up and trace):
  // oclif's entry, then the modules of the commands timed above, with Node's compile cache on as obs runs.
  const entries = ['cli.js', 'commands/ready.js', 'commands/labels.js', 'commands/query-range.js', 'commands/trace.js']
  log(`startup: import cost of the bundle's entries (${entries.join(', ')}), 3 rounds`)
  const importRuns = await interleaved(
    3,
    Object.fromEntries(
      entries.map((entry) => [
        entry,
        () =>
          runMeasured(NODE, ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(join(OBS_ROOT, 'dist', entry)).href)})`], {
            env: { NODE_COMPILE_CACHE: join(tmpdir(), 'node-compile-cache') },
          }),
      ]),
    ),
  )
  for (const entry of entries)
    record(`import:${entry}`, `import('dist/${entry}')`, `NODE_COMPILE_CACHE=… node --input-type=module -e "await import('./dist/${entry}')"`, importRuns[entry])
  return { systemNodeVersion }
}

interface ExportResult {
  exportObs: string[]
  obsCounted: Run
  /** obs's requests from OBS_DEBUG; the sum of their times, and the time one was in flight. */
  debug: ReturnType<typeof debugRequests>
  requestSumMs: number
  debugMs: number
  capture: Capture
  kept: string[]
  fullPages: QueryRecord[]
  fetchedEntries: number
  fetchedBytes: number
  rawInside: number[]
  parallelTrials: { label: string; wallMs: number; count: string; ok: boolean }[]
  loadDuringExport: number[]
  throughput: (id: string) => number
}

/** Every line of the window: obs, logcli (sequential and parallel), the raw replay of obs's requests; peak RSS flat. */
async function exportSection(data: Dataset, { from, to, subTo }: BenchWindow, versions: Versions): Promise<ExportResult> {
  const exportObs = ['query-range', SELECTOR, '--from', from, '--to', to, '--limit', '0', '-o', 'raw']
  const exportObs100k = ['query-range', SELECTOR, '--from', from, '--to', subTo, '--limit', '0', '-o', 'raw']
  const exportLogcli = ['query', SELECTOR, '--from', from, '--to', to, '--limit', '0', '--batch', '5000', '-o', 'raw', '--quiet']
  const loadDuringExport = loadavg()
  const short = (n: number) => (n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n % 1000 === 0 ? `${n / 1000}k` : fmtN(n))
  const big = short(data.total)
  const sub = `${Math.round(data.subRangeLines / 1000)}k`

  log('export: obs, a counted run with OBS_DEBUG=1 (correctness and per-request times)')
  const obsCounted = await obs(exportObs, { stdout: 'count', total: data.total, env: { OBS_DEBUG: '1' }, stampStderr: true })
  checkExit('obs export', obsCounted)
  const seqOk = (run: Run, expected: number) =>
    run.lines === expected && run.seq!.distinct === expected && run.seq!.repeated === 0 && run.seq!.noSeq === 0 && run.seq!.outOfRange === 0
  const describeCount = (run: Run, expected: number) => {
    const lost = expected - run.seq!.distinct
    return `${fmtN(run.lines!)} lines: ${fmtN(run.seq!.distinct)} distinct, ${fmtN(lost)} lost, ${fmtN(run.seq!.repeated)} repeated`
  }
  correctness.push({
    what: `obs query-range, ${big} export`,
    expected: `${fmtN(data.total)} lines, each once`,
    got: describeCount(obsCounted, data.total),
    ok: seqOk(obsCounted, data.total),
  })
  const debug = debugRequests(obsCounted)
  const requestSumMs = debug.reduce((sum, r) => sum + r.ms, 0)
  const debugMs = inFlightMs(debug) ?? requestSumMs
  log(`  ${describeCount(obsCounted, data.total)}; ${debug.length} requests, a request in flight ${fmtS(debugMs)} of ${fmtS(obsCounted.wallMs)}`)

  // The requests to replay: from OBS_DEBUG when its lines carry the query
  // string, else from a recording proxy (an extra, untimed obs run).
  let capture: Capture
  const debugHasQuery = debug.length > 0 && debug.every((r) => r.url.includes('?'))
  if (debugHasQuery) {
    capture = {
      targets: debug.map((r) => {
        const url = new URL(r.url)
        return url.pathname + url.search
      }),
      headers: { 'x-loki-response-encoding-flags': 'categorize-labels', 'user-agent': `obs/${versions.obs.split(/[/ ]/)[1]}` },
      pages: [],
    }
  } else {
    log("  OBS_DEBUG's lines carry no query string: capturing obs's requests through a recording proxy (untimed run)")
    capture = await captureThroughProxy(loki!.addr, (proxy) => obs(exportObs, { env: { LOKI_ADDR: proxy } }))
  }
  if (capture.targets.length !== debug.length) {
    log(`  note: the capture saw ${capture.targets.length} requests, OBS_DEBUG ${debug.length}`)
  }
  const requestsFile = join(scratchDir(), 'requests.txt')
  writeFileSync(requestsFile, `${capture.targets.join('\n')}\n`)
  const rawArgs = [join(BENCH, 'raw-replay.ts'), loki!.addr, requestsFile, JSON.stringify(capture.headers)]
  // The pages that came back below their limit: about what exact paging with
  // obs's windows needs at the least (a window fetched ahead and then abandoned
  // counts too, so a few more).
  const kept = capture.targets.filter((_, i) => capture.pages[i]?.status === 200 && capture.pages[i].entries < capture.pages[i].limit)
  const keptFile = join(scratchDir(), 'requests-kept.txt')
  writeFileSync(keptFile, `${kept.join('\n')}\n`)
  const rawKeptArgs = [join(BENCH, 'raw-replay.ts'), loki!.addr, keptFile, JSON.stringify(capture.headers)]
  const fullPages = capture.pages.filter((p) => p.status === 200 && p.entries >= p.limit)
  const fetchedEntries = capture.pages.reduce((sum, p) => sum + p.entries, 0)
  const fetchedBytes = capture.pages.reduce((sum, p) => sum + p.bytes, 0)

  log('export: logcli, a counted run (correctness), sequential --batch 5000')
  const logcliCounted = await logcli(exportLogcli, { stdout: 'count', total: data.total })
  checkExit('logcli export', logcliCounted)
  correctness.push({
    what: `logcli query --batch 5000, ${big} export`,
    expected: `${fmtN(data.total)} lines, each once`,
    got: describeCount(logcliCounted, data.total),
    ok: seqOk(logcliCounted, data.total),
  })
  log(`  ${describeCount(logcliCounted, data.total)} in ${fmtS(logcliCounted.wallMs)}`)

  let bestParallel: { args: string[]; wallMs: number; label: string; lines: number } | undefined
  const parallelTrials: { label: string; wallMs: number; count: string; ok: boolean }[] = []
  for (const [duration, workers] of SETTINGS.logcliParallel) {
    const args = [...exportLogcli, '--parallel-duration', duration, '--parallel-max-workers', workers]
    const label = `--parallel-duration ${duration} --parallel-max-workers ${workers}`
    log(`export: logcli ${label}, a counted trial run`)
    const run = await logcli(args, { stdout: 'count', total: data.total })
    checkExit(`logcli ${label}`, run)
    const ok = seqOk(run, data.total)
    parallelTrials.push({ label, wallMs: run.wallMs, count: describeCount(run, data.total), ok })
    correctness.push({ what: `logcli query ${label}, ${big} export`, expected: `${fmtN(data.total)} lines, each once`, got: describeCount(run, data.total), ok })
    log(`  ${describeCount(run, data.total)} in ${fmtS(run.wallMs)}`)
    if (!bestParallel || run.wallMs < bestParallel.wallMs) bestParallel = { args, wallMs: run.wallMs, label, lines: run.lines! }
  }

  // obs's own --parallel, where this build has it (informational: the target is about the default).
  const help = await obs(['query-range', '--help'], { stdout: 'capture' })
  const obsParallelArgs = /--parallel\b/.test(help.stdoutText ?? '') ? [...exportObs, '--parallel', String(SETTINGS.obsParallel)] : undefined
  if (obsParallelArgs) {
    log(`export: obs --parallel ${SETTINGS.obsParallel}, a counted run`)
    const run = await obs(obsParallelArgs, { stdout: 'count', total: data.total })
    checkExit('obs --parallel export', run)
    correctness.push({
      what: `obs query-range --parallel ${SETTINGS.obsParallel}, ${big} export`,
      expected: `${fmtN(data.total)} lines, each once`,
      got: describeCount(run, data.total),
      ok: seqOk(run, data.total),
    })
    log(`  ${describeCount(run, data.total)} in ${fmtS(run.wallMs)}`)
  }

  log(
    `export: ${SETTINGS.exportRounds} interleaved rounds of obs${obsParallelArgs ? `, obs --parallel ${SETTINGS.obsParallel}` : ''}, logcli, logcli ${bestParallel!.label}, raw HTTP`,
  )
  const exportCommands: Record<string, () => Promise<Run>> = {
    obsExport: () => obs(exportObs),
    logcliExport: () => logcli(exportLogcli),
    logcliParallel: () => logcli(bestParallel!.args),
    rawExport: () => runMeasured(NODE, rawArgs),
  }
  if (kept.length > 0 && kept.length < capture.targets.length) exportCommands.rawKept = () => runMeasured(NODE, rawKeptArgs)
  if (obsParallelArgs) exportCommands.obsParallel = () => obs(obsParallelArgs)
  const exports = await interleaved(SETTINGS.exportRounds, exportCommands, (key, run, round) => log(`  round ${round + 1} ${key}: ${fmtS(run.wallMs)}, ${fmtMB(run.maxRssKb)}`))
  const rawInside = exports.rawExport.map((run) => (JSON.parse(run.stderr.trim().split('\n').at(-1)!) as { ms: number }).ms)
  record('obsExport', `obs query-range, ${big} lines`, `obs ${shell(exportObs)} > /dev/null`, exports.obsExport, { lines: obsCounted.lines })
  record('logcliExport', `logcli query --batch 5000, ${big} lines`, `logcli ${shell(exportLogcli)} > /dev/null`, exports.logcliExport, {
    lines: logcliCounted.lines,
  })
  record('logcliParallel', `logcli query ${bestParallel!.label}`, `logcli ${shell(bestParallel!.args)} > /dev/null`, exports.logcliParallel, {
    lines: bestParallel!.lines,
    note: `fastest of the parallel modes tried (${parallelTrials.map((p) => `${p.label}: ${fmtS(p.wallMs)}`).join('; ')}); output out of order`,
  })
  record(
    'rawExport',
    "raw HTTP: obs's requests replayed, bodies read",
    `node bench/raw-replay.ts <loki> <${capture.targets.length} captured requests> <obs's headers>`,
    exports.rawExport,
    {
      lines: data.total,
      note: `in-process time of the requests alone: ${spread(stats(rawInside), fmtS)}`,
    },
  )
  // Throughput ratio = time ratio, when both print every line.
  const throughput = (id: string) => measurements.get(id)!.lines! / (measurements.get(id)!.wall.median / 1000)
  const tr = ratio('export throughput: obs ÷ logcli (--batch 5000)', 'logcliExport', 'obsExport', 'lines/s ratio = time ratio, medians', {
    op: '>=',
    value: 1.5,
  })
  if (logcliCounted.lines !== obsCounted.lines) {
    tr.value = throughput('obsExport') / throughput('logcliExport')
    tr.how = "lines/s ratio, each tool's own line count"
  }
  ratio(`export throughput: obs ÷ logcli (${bestParallel!.label})`, 'logcliParallel', 'obsExport', 'lines/s ratio = time ratio, medians')
  if (obsParallelArgs) {
    record('obsParallel', `obs query-range --parallel ${SETTINGS.obsParallel}, ${big} lines`, `obs ${shell(obsParallelArgs)} > /dev/null`, exports.obsParallel, {
      lines: data.total,
    })
    ratio(`export throughput: obs --parallel ${SETTINGS.obsParallel} ÷ logcli (${bestParallel!.label})`, 'logcliParallel', 'obsParallel', 'lines/s ratio = time ratio, medians')
  }
  const rawRatio = ratio('export time: obs ÷ raw HTTP', 'obsExport', 'rawExport', 'time ratio, medians, both whole processes', { op: '<=', value: 1.15 })
  if (requestSumMs > debugMs * 1.05) {
    rawRatio.caveat =
      `obs had requests overlapping (their times add up to ${fmtS(requestSumMs)} in ${fmtS(debugMs)} with one in flight), the replay sends them one after the other as specified, ` +
      'so this ratio flatters obs; see the next row'
  }
  if (exports.rawKept) {
    const keptInside = exports.rawKept.map((run) => (JSON.parse(run.stderr.trim().split('\n').at(-1)!) as { ms: number }).ms)
    record(
      'rawKept',
      'raw HTTP: only the pages below their limit, replayed',
      `node bench/raw-replay.ts <loki> <the ${kept.length} requests whose page came back below its limit> <obs's headers>`,
      exports.rawKept,
      {
        lines: data.total,
        note: `in-process time of the requests alone: ${spread(stats(keptInside), fmtS)}; the ${capture.targets.length - kept.length} full pages obs asked again narrower are left out`,
      },
    )
    ratio('export time: obs ÷ raw HTTP (only the pages below their limit)', 'obsExport', 'rawKept', 'time ratio, medians: the cost of the pages asked again')
  }

  log(`export: obs over the first ${SETTINGS.subSpanMin} minutes (${fmtN(data.subRangeLines)} lines), peak RSS, ${SETTINGS.exportRounds} runs`)
  const small = await obs(exportObs100k, { stdout: 'count', total: data.total })
  checkExit('obs sub-range export', small)
  correctness.push({
    what: `obs query-range, ${fmtN(data.subRangeLines)}-line sub-range`,
    expected: `${fmtN(data.subRangeLines)} lines, each once`,
    got: `${fmtN(small.lines!)} lines: ${fmtN(small.seq!.distinct)} distinct, ${fmtN(small.seq!.repeated)} repeated`,
    ok: small.lines === data.subRangeLines && small.seq!.distinct === data.subRangeLines,
  })
  const smallRuns = await interleaved(SETTINGS.exportRounds, { obsExport100k: () => obs(exportObs100k) })
  record('obsExport100k', `obs query-range, ${fmtN(data.subRangeLines)} lines`, `obs ${shell(exportObs100k)} > /dev/null`, smallRuns.obsExport100k, {
    lines: data.subRangeLines,
  })
  const rss1M = measurements.get('obsExport')!.rss.median
  const rss100k = measurements.get('obsExport100k')!.rss.median
  ratios.push({
    name: `export peak RSS: obs, ${big} lines`,
    unit: 'MB',
    value: (rss1M * 1024) / 1e6,
    target: '<= 150 MB',
    pass: (rss1M * 1024) / 1e6 <= 150,
    how: 'MB (10^6 bytes), median of the timed runs',
  })
  ratios.push({
    name: `export peak RSS: obs, ${big} ÷ ${sub} lines`,
    value: rss1M / rss100k,
    target: '<= 1.10 (flat)',
    pass: rss1M / rss100k <= 1.1,
    how: 'ratio of median peak RSS; flat means within 10%',
  })
  return { exportObs, obsCounted, debug, requestSumMs, debugMs, capture, kept, fullPages, fetchedEntries, fetchedBytes, rawInside, parallelTrials, loadDuringExport, throughput }
}

/** One obs export and one obs trace under node --cpu-prof. */
async function profileSection(exportObs: string[], traceArgs: string[]): Promise<{ profile?: Profile; traceProfile?: Profile }> {
  const profiled = async (what: string, args: string[]) => {
    log(`profile: one ${what} under node --cpu-prof`)
    const dir = join(scratchDir(), 'prof')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const run = await runMeasured(NODE, ['--cpu-prof', `--cpu-prof-dir=${dir}`, OBS, ...args], { env: runEnv })
    checkExit(`${what} --cpu-prof`, run)
    const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))
    return file ? summarizeProfile(join(dir, file)) : undefined
  }
  const profile = await profiled('obs export', exportObs)
  // The trace window is the last hour: by now the oldest lines have left it, which does not matter for a profile.
  const traceProfile = await profiled('obs trace', traceArgs)
  return { profile, traceProfile }
}

/** Where the export's and the trace's time goes, in words, from the figures measured. */
function analyze(
  data: Dataset,
  exp: ExportResult,
  trace: Awaited<ReturnType<typeof traceSection>>,
  seriesDebug: { wallMs: number; requestMs: number },
  { profile, traceProfile }: { profile?: Profile; traceProfile?: Profile },
): void {
  const { debug, obsCounted, capture, fullPages, fetchedEntries, fetchedBytes, requestSumMs, debugMs, rawInside, kept } = exp
  const traceDebug = trace.debug
  const obsExport = measurements.get('obsExport')!
  const cpuS = (run: Run) => run.userS + run.sysS
  analysis.push(
    `obs issued ${fmtN(debug.length)} query_range requests for ${fmtN(data.total)} lines` +
      (capture.pages.length
        ? `; ${fullPages.length} came back full (a window too wide: asked again narrower, as designed), so Loki served ${fmtN(fetchedEntries)} entries ` +
          `(${((fetchedEntries / data.total - 1) * 100).toFixed(1)}% more than printed) in ${(fetchedBytes / 1e6).toFixed(0)} MB of JSON`
        : '') +
      '.',
    `In the OBS_DEBUG run (${fmtS(obsCounted.wallMs)} wall), a request to Loki was in flight (sent, until its body was read) for ${fmtS(debugMs)} ` +
      `(${((debugMs / obsCounted.wallMs) * 100).toFixed(0)}%; the requests' own times add up to ${fmtS(requestSumMs)}${requestSumMs > debugMs * 1.05 ? ', so they overlapped' : ''}); ` +
      `the rest, ${fmtS(obsCounted.wallMs - debugMs)}, obs had no request out: startup, and JSON parsing, sorting and writing between requests.`,
    `The raw replay of the same requests: ${spread(stats(rawInside), fmtS)} inside requests; obs's CPU per export ${spread(stats(obsExport.runs.map(cpuS)), (s) => `${s.toFixed(1)} s`)} ` +
      `user+sys, logcli's ${spread(stats(measurements.get('logcliExport')!.runs.map(cpuS)), (s) => `${s.toFixed(1)} s`)}.`,
  )
  const describeProfile = (what: string, p: NonNullable<typeof profile>) => {
    const pct = (ms: number) => `${((ms / p.totalMs) * 100).toFixed(0)}%`
    return (
      `CPU profile of one ${what} (node --cpu-prof, ${fmtS(p.totalMs)} sampled), by area: ` +
      Object.entries(p.byArea)
        .sort((a, b) => b[1] - a[1])
        .filter(([, ms]) => ms >= 5)
        .map(([area, ms]) => `${area === '(idle)' ? '(idle: waiting, mostly for Loki)' : area} ${fmtS(ms)} (${pct(ms)})`)
        .join(', ') +
      '.'
    )
  }
  const keptM = measurements.get('rawKept')
  if (keptM) {
    analysis.push(
      `Replayed one after the other, all ${capture.targets.length} of obs's requests take ${fmtS(measurements.get('rawExport')!.wall.median)}; ` +
        `only the ${kept.length} whose pages came back below their limit take ${fmtS(keptM.wall.median)}. obs took ${fmtS(obsExport.wall.median)}, logcli ${fmtS(measurements.get('logcliExport')!.wall.median)}.`,
    )
  }
  if (profile) analysis.push(describeProfile('obs export', profile))
  const obsTraceM = measurements.get('obsTrace')!
  traceAnalysis.push(
    `In an OBS_DEBUG run of obs trace (${fmtS(traceDebug.wallMs)} wall), ${traceDebug.requests} request(s) to Loki took ${fmtS(traceDebug.requestMs)}; ` +
      `the rest, ${fmtS(traceDebug.wallMs - traceDebug.requestMs)}, is obs itself (Node and oclif startup, loading the command's modules, rendering). ` +
      `Timed runs: ${spread(obsTraceM.wall, fmtS)}, peak RSS ${spread(obsTraceM.rss, fmtMB)}.`,
    `obs series --analyze-labels: ${fmtS(seriesDebug.requestMs)} of ${fmtS(seriesDebug.wallMs)} in requests to Loki.`,
  )
  const appLines = Object.entries(data.perStream)
    .filter(([key]) => key.startsWith('app/'))
    .reduce((sum, [, n]) => sum + n, 0)
  traceAnalysis.push(
    `Scope: the design doc's query reads the service="app" streams only, ${((appLines / data.total) * 100).toFixed(0)}% of the lines; ` +
      "obs's query reads every stream of the app, since a request's lines are in all services, and Loki's time goes mostly into reading (decompressing) those chunks.",
  )
  traceAnalysis.push(trace.bound)
  if (traceProfile) traceAnalysis.push(describeProfile('obs trace', traceProfile))
}

/** Ingestion limits of bench/loki-bench.yaml, as flags for the scalable Loki (whose file is the tests'). */
const BENCH_INGEST_FLAGS = [
  '-distributor.ingestion-rate-limit-mb=1024',
  '-distributor.ingestion-burst-size-mb=1024',
  '-ingester.per-stream-rate-limit=512MB',
  '-ingester.per-stream-rate-limit-burst=1024MB',
  '-shard-streams.enabled=false',
]

const scalableNotes: string[] = []

/**
 * The export on a Loki that has outgrown one process: the same million lines
 * in a scalable Loki (test/support/loki-scalable.yaml: write, backend and two
 * read processes, the frontend splitting and sharding), exported by obs and
 * by logcli from the first read's frontend, with both reads' queriers
 * working, then with the second read stopped. Counted (lost, repeated) and
 * timed, interleaved.
 */
async function scalableSection(window: BenchWindow): Promise<void> {
  const exportObs = ['query-range', SELECTOR, '--from', window.from, '--to', window.to, '--limit', '0', '-o', 'raw']
  const exportLogcli = ['query', SELECTOR, '--from', window.from, '--to', window.to, '--limit', '0', '--batch', '5000', '-o', 'raw', '--quiet']
  // A fresh Loki for each number of reads: stopping a read under a running
  // one left a request of obs's unanswered until its 30 s timeout (a part of
  // the query lost with that read's querier), which is a restart test, not a
  // measurement.
  for (const reads of [2, 1]) {
    log(`scalable: starting a Loki as backend, write and ${reads} read process(es)`)
    scalable = await startLoki({ config: 'scalable', reads, dataDir: mkdtempSync(join(tmpdir(), 'obs-bench-scalable-')), args: BENCH_INGEST_FLAGS })
    const [, write, read] = scalable.targets!
    const loaded = await loadDataset(
      write.addr,
      { seed: SETTINGS.seed, total: SETTINGS.lines, startNs: BigInt(window.startMs) * 1_000_000n, spanMs: SETTINGS.spanMin * 60_000, perBatch: SETTINGS.perBatch },
      SETTINGS.subSpanMin * 60_000,
      SETTINGS.pushConcurrency,
    )
    const data = loaded.summary
    log(`scalable: loaded ${fmtN(data.total)} lines in ${fmtS(loaded.ms)}`)
    scalableNotes.push(
      `${reads} read process${reads > 1 ? 'es' : ''}: loaded into the write process in ${fmtS(loaded.ms)} (${loaded.retries} pushes retried); exported from the first read's frontend (no gateway in the way).`,
    )
    const env = { LOKI_ADDR: read.addr }
    const describe = (run: Run) =>
      `${fmtN(run.lines!)} lines: ${fmtN(run.seq!.distinct)} distinct, ${fmtN(data.total - run.seq!.distinct)} lost, ${fmtN(run.seq!.repeated)} repeated`
    const exact = (run: Run) => run.lines === data.total && run.seq!.distinct === data.total && run.seq!.repeated === 0
    const tag = `scalable${reads}`
    log(`scalable, ${reads} read process(es): counted runs of obs and logcli`)
    const counted = { obs: await obs(exportObs, { stdout: 'count', total: data.total, env }), logcli: await logcli(exportLogcli, { stdout: 'count', total: data.total, env }) }
    checkExit('obs scalable export', counted.obs)
    checkExit('logcli scalable export', counted.logcli)
    for (const [tool, run] of Object.entries(counted)) {
      correctness.push({
        what: `${tool} export from a scalable Loki, ${reads} read process${reads > 1 ? 'es' : ''}`,
        expected: `${fmtN(data.total)} lines, each once`,
        got: describe(run),
        ok: exact(run),
      })
    }
    log(`  obs ${describe(counted.obs)} in ${fmtS(counted.obs.wallMs)}; logcli ${describe(counted.logcli)} in ${fmtS(counted.logcli.wallMs)}`)
    const runs = await interleaved(Math.max(1, SETTINGS.exportRounds - 1), { obs: () => obs(exportObs, { env }), logcli: () => logcli(exportLogcli, { env }) }, (key, run, round) =>
      log(`  round ${round + 1} ${key}: ${fmtS(run.wallMs)}`),
    )
    // The counted runs are timed runs too (their stdout read by this harness instead of /dev/null).
    const label = `${reads} read process${reads > 1 ? 'es' : ''}`
    record(`${tag}Obs`, `obs query-range, scalable Loki, ${label}`, `LOKI_ADDR=<read> obs ${shell(exportObs)} > /dev/null`, [counted.obs, ...runs.obs], { lines: data.total })
    record(`${tag}Logcli`, `logcli query --batch 5000, scalable Loki, ${label}`, `LOKI_ADDR=<read> logcli ${shell(exportLogcli)} > /dev/null`, [counted.logcli, ...runs.logcli], {
      lines: counted.logcli.lines,
    })
    const r = ratio(`scalable export throughput, ${label}: obs ÷ logcli (--batch 5000)`, `${tag}Logcli`, `${tag}Obs`, 'lines/s ratio, medians')
    // logcli may print lines twice or not at all: compare lines per second, each tool's own count.
    r.value = data.total / measurements.get(`${tag}Obs`)!.wall.median / (counted.logcli.lines! / measurements.get(`${tag}Logcli`)!.wall.median)
    await scalable.remove()
    scalable = undefined
  }
  ratio('scalable export: obs with 1 read ÷ obs with 2 reads (time)', 'scalable1Obs', 'scalable2Obs', 'time ratio, medians: what the second read process gave')
  ratio('scalable export: logcli with 1 read ÷ logcli with 2 reads (time)', 'scalable1Logcli', 'scalable2Logcli', 'time ratio, medians')
  const single = measurements.get('obsExport')
  if (single) {
    scalableNotes.push(
      `The same export from the single-process Loki took ${fmtS(single.wall.median)} (obs); from the scalable one ${fmtS(measurements.get('scalable2Obs')!.wall.median)} with 2 reads, ` +
        `${fmtS(measurements.get('scalable1Obs')!.wall.median)} with 1. All processes share this machine's ${cpus().length} cores.`,
    )
  }
}

async function main(): Promise<void> {
  const began = performance.now()
  const date = new Date()
  const load0 = loadavg()
  if (!existsSync(join(REPO, 'dist/commands'))) throw new Error('obs is not built: run `npm run build` first')
  const snapshot = await snapshotObs()
  OBS = snapshot.bin
  OBS_ROOT = dirname(dirname(OBS))
  log(`obs under test: a copy of the build at commit ${snapshot.commit}, dist/ of ${snapshot.builtAt} (sha256 ${snapshot.distHash}), in ${dirname(dirname(OBS))}`)
  if (!existsSync(LOGCLI)) throw new Error(`no logcli beside Loki at ${LOGCLI}: run scripts/build-servers.sh loki`)
  const mach = machine()
  log(`machine: ${mach.cpu}, ${mach.cores} cores, ${mach.ramGB} GB, load average ${load0.map((l) => l.toFixed(2)).join(' ')}`)
  if (!HAVE_TIME) log('no /usr/bin/time: peak RSS is sampled from /proc/<pid>/status VmHWM')

  const configFile = join(BENCH, 'loki-bench.yaml')
  log(`starting Loki ${relative(REPO, lokiBinary())} with ${relative(REPO, configFile)}`)
  const t = performance.now()
  loki = await startBenchLoki(configFile)
  log(`Loki ready at ${loki.addr} in ${fmtS(performance.now() - t)} (log: ${loki.logFile})`)
  runEnv = { LOKI_ADDR: loki.addr, XDG_CONFIG_HOME: join(scratchDir(), 'xdg') }
  if (process.env.BENCH_ONLY === 'scalable') {
    await loki.stop()
    await scalableSection(benchWindow())
    writeFileSync(
      join(BENCH, 'results-scalable.json'),
      `${JSON.stringify({ date: date.toISOString(), machine: machine(), build: snapshot, ratios, correctness, notes: scalableNotes, measurements: Object.fromEntries([...measurements].map(([id, x]) => [id, { label: x.label, command: x.display, wallMs: x.wall }])) }, null, 2)}\n`,
    )
    log(`done in ${fmtS(performance.now() - began)}; wrote bench/results-scalable.json`)
    printRatios()
    return
  }
  if (process.env.BENCH_ONLY === 'bursty') {
    const endMs = Math.floor(Date.now() / 60_000) * 60_000
    await burstyExport(endMs - SETTINGS.spanMin * 60_000, endMs)
    writeFileSync(
      join(BENCH, 'results-bursty.json'),
      `${JSON.stringify({ date: date.toISOString(), machine: machine(), build: snapshot, ratios, correctness, analysis }, null, 2)}\n`,
    )
    log(`done in ${fmtS(performance.now() - began)}; wrote bench/results-bursty.json`)
    printRatios()
    return
  }

  const { loaded, data, window, lokiAfterLoad } = await loadData()
  const versions = await benchVersions(snapshot)
  if (process.env.BENCH_ONLY === 'trace' || process.env.BENCH_ONLY === 'startup' || process.env.BENCH_ONLY === 'context') {
    // Development runs of one section on the full dataset: ratios on stdout, nothing else written.
    if (process.env.BENCH_ONLY === 'trace') {
      const trace = await traceSection(data)
      log(trace.bound)
    } else if (process.env.BENCH_ONLY === 'context') {
      const context = await contextSection(window)
      log(`context requests: ${JSON.stringify(context.requests)}; lines: ${JSON.stringify(context.lines)}`)
    } else await startupSection()
    printRatios()
    return
  }
  // trace first, while the 1h window holds all the data
  const trace = await timed('trace', () => traceSection(data))
  const cardinality = await timed('cardinality', () => cardinalitySection(window))
  const context = await timed('context', () => contextSection(window))
  const { systemNodeVersion } = await timed('startup', startupSection)
  const exp = await timed('export', () => exportSection(data, window, versions))
  await timed('bursty', () => burstyExport(window.startMs, window.endMs))
  const profiles = SETTINGS.profile ? await timed('profile', () => profileSection(exp.exportObs, trace.traceArgs)) : {}
  // The single-process Loki is done with: stop it, so the scalable one has the machine.
  log(`stopping the single-process Loki (pid ${loki.child.pid})`)
  await loki.stop()
  await timed('scalable', () => scalableSection(window)).catch((error: unknown) => {
    // The rest of the run is worth writing down, and so is the failure.
    log(`scalable section failed: ${String(error)}`)
    correctness.push({ what: 'the scalable-Loki section', expected: 'ran', got: `failed: ${String(error).split('\n')[0]}`, ok: false })
  })
  analyze(data, exp, trace, cardinality.debug, profiles)

  const load1 = loadavg()
  const totalMs = performance.now() - began
  const lokiAtEnd = procMemory(loki.child.pid!)
  const results: BenchResults = {
    date: date.toISOString(),
    machine: mach,
    loadAverage: { start: load0, beforeExport: exp.loadDuringExport, end: load1 },
    versions,
    settings: SETTINGS,
    window: { from: window.from, to: window.to, subTo: window.subTo },
    load: { ms: loaded.ms, retries: loaded.retries, pushRequests: loaded.requests, ...data },
    loki: { addr: loki.addr, config: relative(REPO, configFile), rssAfterLoadKb: lokiAfterLoad?.rssKb, peakRssKb: lokiAtEnd?.hwmKb },
    measurements: Object.fromEntries(
      [...measurements.values()].map((m) => [
        m.id,
        {
          label: m.label,
          command: m.display,
          wallMs: m.wall,
          maxRssKb: m.rss,
          lines: m.lines,
          note: m.note,
          runs: m.runs.map((r) => ({ wallMs: r.wallMs, maxRssKb: r.maxRssKb, userS: r.userS, sysS: r.sysS })),
        },
      ]),
    ),
    ratios,
    correctness,
    analysis,
    traceAnalysis,
    profile: profiles.profile,
    traceProfile: profiles.traceProfile,
    capture: {
      requests: exp.capture.targets.length,
      fullPages: exp.fullPages.length,
      fetchedEntries: exp.fetchedEntries,
      fetchedBytes: exp.fetchedBytes,
      headers: exp.capture.headers,
    },
    parallelTrials: exp.parallelTrials,
    timings: { ...timings, totalMs },
    seriesOutputs: cardinality.outputs,
    context,
  }
  writeFileSync(join(BENCH, 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
  writeResults(results, { throughput: exp.throughput, systemNodeVersion })
  log(`done in ${fmtS(totalMs)}; wrote ${relative(REPO, RESULTS_FILE)} and bench/results.json`)

  printRatios()
}

function printRatios(): void {
  const table = ratios.map((r) => {
    const verdict = (r.pass === undefined ? '' : r.pass ? '  PASS' : '  MISS') + (r.caveat ? ' (see caveat in RESULTS.md)' : '')
    const range = r.range ? ` (${fmtX(r.range[0])}–${fmtX(r.range[1])})` : ''
    const value = r.unit === 'MB' ? `${r.value.toFixed(0)} MB` : fmtX(r.value)
    return `${r.name.padEnd(62)} ${value}${range}${r.target ? `  target ${r.target}` : ''}${verdict}`
  })
  process.stdout.write(`${table.join('\n')}\n`)
}

/**
 * Exports of uneven density: the bursty dataset (test/support/bursty-dataset.ts:
 * spikes at 100× the base rate, quiet gaps, groups of lines on one
 * nanosecond), pushed under its own app label into the benchmark's window,
 * then obs's default export against logcli --batch 5000 on it, counted for
 * lost and repeated lines by `seq` and timed interleaved.
 */
async function burstyExport(startMs: number, endMs: number): Promise<void> {
  const spanNs = BigInt(endMs - startMs) * 1_000_000n
  const entries = generateBurstyDataset({ seed: SETTINGS.seed, startNs: BigInt(startMs) * 1_000_000n, spanNs, baseLines: SETTINGS.burstyBaseLines, groups: SETTINGS.burstyGroups })
  const total = entries.length
  log(`bursty: loading ${fmtN(total)} lines under {app="${BURSTY_APP}"}`)
  await pushAll(loki!.addr, toPushBatches(entries, SETTINGS.perBatch))
  const from = new Date(startMs).toISOString()
  const to = new Date(endMs).toISOString()
  const selector = `{app="${BURSTY_APP}"}`
  const obsArgsBursty = ['query-range', selector, '--from', from, '--to', to, '--limit', '0', '-o', 'raw']
  const logcliArgs = ['query', selector, '--from', from, '--to', to, '--limit', '0', '--batch', '5000', '-o', 'raw', '--quiet']
  const describe = (run: Run) => `${fmtN(run.lines!)} lines: ${fmtN(run.seq!.distinct)} distinct, ${fmtN(total - run.seq!.distinct)} lost, ${fmtN(run.seq!.repeated)} repeated`
  const exact = (run: Run) => run.lines === total && run.seq!.distinct === total && run.seq!.repeated === 0

  log('bursty: counted runs of obs (OBS_DEBUG=1, its requests) and logcli')
  const obsCounted = await obs(obsArgsBursty, { stdout: 'count', total, env: { OBS_DEBUG: '1' } })
  checkExit('obs bursty export', obsCounted)
  const requests = debugRequests(obsCounted).filter((r) => r.url.includes('query_range')).length
  correctness.push({ what: `obs query-range, bursty export (${fmtN(total)} lines)`, expected: `${fmtN(total)} lines, each once`, got: describe(obsCounted), ok: exact(obsCounted) })
  const logcliCounted = await logcli(logcliArgs, { stdout: 'count', total })
  checkExit('logcli bursty export', logcliCounted)
  correctness.push({ what: `logcli query --batch 5000, bursty export`, expected: `${fmtN(total)} lines, each once`, got: describe(logcliCounted), ok: exact(logcliCounted) })
  log(`  obs: ${describe(obsCounted)}, ${requests} requests; logcli: ${describe(logcliCounted)}`)

  const runs = await interleaved(SETTINGS.exportRounds, { obsBursty: () => obs(obsArgsBursty), logcliBursty: () => logcli(logcliArgs) }, (key, run, round) =>
    log(`  round ${round + 1} ${key}: ${fmtS(run.wallMs)}`),
  )
  record('obsBursty', `obs query-range, bursty ${fmtN(total)} lines`, `obs ${shell(obsArgsBursty)} > /dev/null`, runs.obsBursty, { lines: total })
  record('logcliBursty', 'logcli query --batch 5000, bursty', `logcli ${shell(logcliArgs)} > /dev/null`, runs.logcliBursty, { lines: logcliCounted.lines })
  const bursty = ratio('bursty export throughput: obs ÷ logcli (--batch 5000)', 'logcliBursty', 'obsBursty', 'lines/s ratio, medians', { op: '>=', value: 1.5 })
  // logcli may print lines twice or not at all: compare lines per second, each tool's own count.
  bursty.value = total / measurements.get('obsBursty')!.wall.median / (logcliCounted.lines! / measurements.get('logcliBursty')!.wall.median)
  analysis.push(
    `Bursty export (${fmtN(total)} lines: spikes at 100× the base rate, quiet gaps, groups of up to 4,000 lines on one nanosecond): ` +
      `obs made ${requests} query_range requests, ${(requests / total).toFixed(5)} per line (${((requests * 5000) / total).toFixed(2)}× the ${Math.ceil(total / 5000)} a 5000-line page count would need); ` +
      `obs ${describe(obsCounted)}, logcli ${describe(logcliCounted)}.`,
  )
}

// ------------------------------------------------------------ RESULTS.md

function topFrames(what: string, p: { top: { name: string; ms: number }[] }): string[] {
  return [`Top self time in the profiled ${what}:`, '', '| function | self time |', '|---|---|', ...p.top.map((f) => `| \`${f.name}\` | ${fmtS(f.ms)} |`), '']
}

function writeResults(r: BenchResults, helpers: { throughput: (id: string) => number; systemNodeVersion: string }): void {
  const m = (id: string) => measurements.get(id)
  const row = (id: string, withLines = false) => {
    const x = m(id)
    if (!x) return ''
    const lines = withLines && x.lines ? ` | ${fmtN(helpers.throughput(id))}` : withLines ? ' | –' : ''
    return `| ${x.label} | ${spread(x.wall, fmtS)}${lines} | ${spread(x.rss, fmtMB)} | ${x.runs.length} |`
  }
  const ratioRows = ratios.map((x: Ratio) => {
    const isMB = x.unit === 'MB'
    const value = isMB ? `${x.value.toFixed(0)} MB` : fmtX(x.value)
    const range = x.range ? `${fmtX(x.range[0])}–${fmtX(x.range[1])}` : ''
    const verdict = (x.pass === undefined ? '' : x.pass ? '**met**' : '**missed**') + (x.caveat ? ` (but: ${x.caveat})` : '')
    return `| ${x.name} | ${value} | ${range} | ${x.target ?? ''} | ${verdict} |`
  })
  const commands = [...measurements.values()].map((x) => `# ${x.label}\n${x.display}`).join('\n\n')
  const lines = [
    '# obs benchmark results',
    '',
    `Generated by \`bench/run.ts\` (\`npm run bench\`) on ${r.date}. Every figure is a median over`,
    'interleaved runs (tools alternate, starting order rotated each round) with the spread',
    '(min–max); ratios are ratios of medians, with the range of the per-round ratios.',
    '',
    '## Machine and versions',
    '',
    `- CPU: ${r.machine.cpu}, ${r.machine.cores} cores; RAM ${r.machine.ramGB} GB; ${r.machine.os}`,
    `- Load average (1/5/15 min): ${r.loadAverage.start.map((l: number) => l.toFixed(2)).join(' / ')} at the start, ` +
      `${r.loadAverage.beforeExport.map((l: number) => l.toFixed(2)).join(' / ')} before the exports, ${r.loadAverage.end.map((l: number) => l.toFixed(2)).join(' / ')} at the end. ` +
      `Other work may share this machine; a load above its ${r.machine.cores} cores means runs waited for CPU. The tools ran interleaved, so figures compare with each other within this run, less so across runs.`,
    `- Node ${r.versions.node} (${NODE}); ${r.versions.obs}, commit ${r.versions.obsRevision}, ${r.versions.obsBuild}. The harness copies the build at its start and runs the copy throughout, so one run measures one build even while dist/ is rebuilt.`,
    `- Loki ${r.versions.loki}, config \`${r.loki.config}\` (the stack's config with higher ingestion limits and no stream sharding; see its header); Loki RSS ${fmtMB(r.loki.rssAfterLoadKb ?? 0)} after the load`,
    `- ${r.versions.logcli}`,
    `- Peak RSS from ${HAVE_TIME ? 'GNU time (`/usr/bin/time -f %M`)' : '/proc/<pid>/status VmHWM, sampled every 5 ms'}; wall time from spawn to exit in the harness. MB = 10^6 bytes.`,
    '',
    '## Dataset',
    '',
    `${fmtN(r.load.total)} pino JSON lines (${(r.load.bytes / 1e6).toFixed(0)} MB, ${(r.load.bytes / r.load.total).toFixed(0)} bytes a line on average; fields level, time, pid, hostname, reqId, userId, msg, seq and context/padding fields), ` +
      `${fmtN(r.load.requests)} requests whose lines span gateway, app and worker, seed ${SETTINGS.seed}. ` +
      `Streams {app="${APP}", env="bench", service, stream}: ${Object.entries(r.load.perStream as Record<string, number>)
        .map(([k, v]) => `${k} ${fmtN(v)}`)
        .join(', ')}.`,
    '',
    `Window: the last ${SETTINGS.spanMin} minutes before a minute boundary at load time, [${r.window.from}, ${r.window.to}) in this run ` +
      '(Loki only queries its ingesters for recent data, so the window moves with the clock; lines, streams and offsets are identical from run to run, only the `time` field follows the window).',
    '',
    `Loaded through the push API, ${SETTINGS.pushConcurrency} parallel pushes of ${fmtN(SETTINGS.perBatch)} lines: **${fmtS(r.load.ms)}**, ` +
      `${fmtN(r.load.total / (r.load.ms / 1000))} lines/s, ${(r.load.bytes / 1e6 / (r.load.ms / 1000)).toFixed(1)} MB/s, ${r.load.retries} pushes retried.`,
    '',
    '## Targets and ratios',
    '',
    '| measure | value | per-round range | target | |',
    '|---|---|---|---|---|',
    ...ratioRows,
    '',
    '## Figures',
    '',
    '### Bulk export, every line of the window',
    '',
    '| command | wall time | lines/s | peak RSS | runs |',
    '|---|---|---|---|---|',
    row('obsExport', true),
    row('logcliExport', true),
    row('obsParallel', true),
    row('logcliParallel', true),
    row('rawExport', true),
    row('rawKept', true),
    row('obsExport100k', true),
    row('obsBursty', true),
    row('logcliBursty', true),
    '',
    ...[...measurements.values()]
      .filter((x) => x.id.includes('xport') || x.id.includes('Parallel'))
      .filter((x) => x.note)
      .map((x) => `- ${x.label}: ${x.note}.`),
    '',
    '### Trace of one request',
    '',
    `Request \`${r.load.traceReqId}\`: ${r.load.traceLines} lines in gateway, app and worker, ${r.load.traceAppLines} of them in service="app". ` +
      'The design doc\'s query only looks at service="app" and JSON-parses every line of it; obs\'s query filters on the id before parsing and covers every service.',
    '',
    '| command | wall time | peak RSS | runs |',
    '|---|---|---|---|',
    row('obsTrace'),
    row('logcliDesign'),
    row('logcliAllServices'),
    row('logcliObsQuery'),
    '',
    ...r.traceAnalysis.map((a: string) => `- ${a}`),
    '',
    ...(r.traceProfile ? topFrames('obs trace', r.traceProfile) : []),
    '### Cardinality',
    '',
    '| command | wall time | peak RSS | runs |',
    '|---|---|---|---|',
    row('obsSeries'),
    row('logcliSeries'),
    '',
    '<details><summary>What each printed</summary>',
    '',
    '```',
    `$ obs series … --analyze-labels\n${r.seriesOutputs.obs.trimEnd()}\n\n$ logcli series … --analyze-labels\n${r.seriesOutputs.logcli.trimEnd()}`,
    '```',
    '',
    '</details>',
    '',
    '### Context around matches (`-C 3`)',
    '',
    '| command | wall time | peak RSS | runs |',
    '|---|---|---|---|',
    row('obsContext1'),
    row('obsContext100'),
    row('obsContextDense'),
    row('obsExportDense'),
    '',
    `Requests: ${r.context.requests[1]} for one match (sparse), ${r.context.requests[100]} for 100; every line of a stream a match over 20 s: ` +
      `${r.context.requests.dense} planned by cost, ${r.context.requests.denseWindows} by per-match windows, ${r.context.requests.denseExport} for an export of the same range (OBS_DEBUG=1 runs).`,
    '',
    '### Startup',
    '',
    '| command | wall time | peak RSS | runs |',
    '|---|---|---|---|',
    row('nodeE0'),
    row('obsVersion'),
    row('obsReady'),
    row('logcliVersion'),
    row('obsLabels'),
    row('logcliLabels'),
    row('obsQuery10'),
    row('logcliQuery10'),
    row('obsVersionSystemNode'),
    '',
    "What loading each entry of obs's bundle costs on its own (dist/cli.js is oclif's; a command's module brings its chunks, undici and the LogQL grammar among them; Node's compile cache on, as obs runs it; `node --input-type=module -e \"await import(…)\"`, 3 runs; compare with `node -e 0` above):",
    '',
    '| import | wall time | peak RSS | runs |',
    '|---|---|---|---|',
    ...[...measurements.keys()].filter((id) => id.startsWith('import:')).map((id) => row(id)),
    '',
    m('obsVersionSystemNode')
      ? `- ${m('obsVersionSystemNode')!.label}: ${m('obsVersionSystemNode')!.note}. \`npm run\` puts node_modules/.bin first on PATH, so \`npm run obs\` and the measured rows use Node 24 directly.`
      : '',
    '',
    '## A Loki that has outgrown one process',
    '',
    'The same million lines in a scalable Loki (`test/support/loki-scalable.yaml`: one write, one backend and two read processes of the same binary on loopback, memberlist, a shared filesystem object store, the frontend splitting by 1h and sharding), exported from the first read, interleaved; then the same with a fresh scalable Loki of one read process.',
    '',
    '| command | wall time | lines/s | peak RSS | runs |',
    '|---|---|---|---|---|',
    row('scalable2Obs', true),
    row('scalable2Logcli', true),
    row('scalable1Obs', true),
    row('scalable1Logcli', true),
    '',
    ...scalableNotes.map((note) => `- ${note}`),
    '',
    '## Correctness',
    '',
    '| what | expected | got | |',
    '|---|---|---|---|',
    ...correctness.map((c) => `| ${c.what} | ${c.expected} | ${c.got} | ${c.ok ? 'ok' : '**wrong**'} |`),
    '',
    'Lines are told apart by their `seq` field: distinct values seen, values missing (lost) and values seen again (repeated).',
    '',
    '## Where the export time goes',
    '',
    ...r.analysis.map((a: string) => `- ${a}`),
    '',
    ...(r.profile ? topFrames('obs export', r.profile) : []),
    '## Commands',
    '',
    `\`obs\` is \`${NODE} <copy of the build>/bin/run.js\`, \`logcli\` is \`${LOGCLI}\`; LOKI_ADDR points at the benchmark's Loki.`,
    '',
    '```sh',
    commands,
    '```',
    '',
    '## Reproduce',
    '',
    '```sh',
    'scripts/build-servers.sh loki   # Loki and logcli 3.6.2, cached in ~/.cache/obs (once)',
    'npm run build',
    'npm run bench                   # node_modules/.bin/node bench/run.ts',
    '```',
    '',
    `This run took ${fmtS(r.timings.totalMs)} in all: ` +
      Object.entries(r.timings as Record<string, number>)
        .filter(([k]) => k !== 'totalMs')
        .map(([k, v]) => `${k} ${fmtS(v)}`)
        .join(', ') +
      ` (counted and trial runs included), the rest Loki's start and the load. The raw figures are in bench/results.json.`,
    '',
  ]
  let notes = `${NOTES_MARKER}\n`
  if (existsSync(RESULTS_FILE)) {
    const old = readFileSync(RESULTS_FILE, 'utf8')
    const at = old.indexOf(NOTES_MARKER)
    if (at !== -1) notes = old.slice(at)
  }
  writeFileSync(RESULTS_FILE, `${lines.filter((line, i, all) => !(line === '' && all[i - 1] === '')).join('\n')}\n${notes}`)
}

try {
  await main()
} catch (error) {
  log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
} finally {
  await cleanup()
}
