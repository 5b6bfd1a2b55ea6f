import { UnavailableError, UnreachableError, UsageError } from '../errors.ts'
import { HttpClient, type HttpSettings } from '../http.ts'
import { proxyDispatcher } from '../proxy.ts'
import { oneLine } from '../text.ts'
import { type Nanos, parseDuration } from '../time.ts'
import { AnswerParser } from './answer-parser.ts'
import {
  type DetectedField,
  detectedFieldsAnswer,
  drilldownLimitsAnswer,
  type IndexStats,
  indexStatsAnswer,
  type Labels,
  type LokiFeatures,
  labelsAnswer,
  type PatternSeries,
  patternsAnswer,
  type QueryData,
  queryAnswer,
  type SampleSeries,
  seriesAnswer,
  volumeAnswer,
} from './answer-shapes.ts'

export type Direction = 'forward' | 'backward'
// The answers' types live with their shapes; callers keep importing them from the client.
export type {
  DetectedField,
  EntryMetadata,
  ExecSummary,
  IndexStats,
  Labels,
  LokiFeatures,
  PatternSeries,
  QueryData,
  SampleSeries,
  StreamResult,
  StreamValue,
} from './answer-shapes.ts'

/** A tail's WebSocket and the means to end it when Loki does not. */
export interface TailSocket {
  socket: import('undici').WebSocket
  /** Destroys the connection under the WebSocket (a dead one never closes by itself). */
  cut(): void
  /** Frees the connection after the WebSocket closed. */
  release(): void
}

export interface ReadyState {
  ready: boolean
  status: number
  message: string
}

export interface PushStream {
  stream: Labels
  values: [string, string][] | [string, string, Labels][]
}

interface Envelope<T> {
  status: string
  data: T
}

/**
 * Asks Loki to keep indexed labels in `stream` and return structured metadata
 * and parsed labels per entry, so a `| json` query does not split into one
 * stream per line and indexed labels stay distinguishable.
 */
/** What to do about an answer that is not one Loki gives. */
export const NOT_LOKI_HINT = 'check that --addr points at Loki, not a proxy that rewrites answers'

const CATEGORIZE_LABELS = { 'x-loki-response-encoding-flags': 'categorize-labels' }

/**
 * The per-tenant limits that decide how a query must be cut to be answered.
 * 0 means Loki enforces no limit.
 */
export interface QueryLimits {
  /** max_query_length: the longest range one query may span. */
  maxQueryLengthNs: Nanos
  /** max_entries_limit_per_query: the largest `limit` one query may ask. */
  maxEntriesPerQuery: number
  /** max_query_series: the most streams or series one query may return. */
  maxQuerySeries: number
  /** query_timeout: how long Loki lets one query run. */
  queryTimeoutMs: number
  /** Where these figures came from, for messages. */
  source: 'tenant-limits' | 'defaults'
}

/** Loki 3.6's shipped limits, for a Loki that does not say its own. */
export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  maxQueryLengthNs: 721n * 3_600_000_000_000n,
  maxEntriesPerQuery: 5000,
  maxQuerySeries: 500,
  queryTimeoutMs: 60_000,
  source: 'defaults',
}

/**
 * Loki refused a query for one of its limits; `learned` holds the limit its
 * message names, so the caller can cut the query to fit and ask again.
 */
export class LimitRefusal extends UsageError {
  readonly learned: Partial<QueryLimits>
  /**
   * The length Loki measured for a refused range: the querier counts a metric
   * query's range vector ([5m]) into it, so it can exceed end − start.
   */
  readonly queryLengthNs?: Nanos

  constructor(message: string, learned: Partial<QueryLimits>, hint?: string, queryLengthNs?: Nanos) {
    super(message, hint)
    this.name = 'LimitRefusal'
    this.learned = learned
    this.queryLengthNs = queryLengthNs
  }
}

/** A volume request: bytes per value of `targetLabels` for the streams the selector matches. */
export interface VolumeParams {
  query: string
  start: Nanos
  end: Nanos
  targetLabels?: string[]
  /** The top `limit` by bytes (Loki's default, 100, when not given); VOLUME_ALL for every one. */
  limit?: number
}

/**
 * A volume limit for every series: Loki 3.6.2 takes any positive limit, but
 * refuses an answer of more than volume_max_series (1000 by default) series
 * ("the query hit the max number of series limit").
 */
export const VOLUME_ALL = 1000

/** How to turn on what a 404 of these endpoints means is off. */
const FEATURES = {
  volume: {
    name: 'volumes',
    off: "Loki's volume API is disabled (limits_config.volume_enabled: false)",
    hint: "set volume_enabled: true under limits_config in Loki's config (or in the tenant's runtime overrides) and restart Loki",
  },
  patternIngester: {
    name: 'patterns',
    off: "Loki's pattern ingester is off (pattern_ingester.enabled: false, the default)",
    hint: 'add "pattern_ingester: {enabled: true}" to Loki\'s config and restart Loki; it keeps about 3h of patterns (pattern_ingester.retain_for)',
  },
} as const

export interface RangeParams {
  query: string
  start: Nanos
  end: Nanos
  limit?: number
  direction?: Direction
  step?: string
  signal?: AbortSignal
  /**
   * Ask without the categorize-labels flag: Loki's errors come through as
   * they are, so an empty answer needs no second request to confirm it. For
   * callers that want timestamps, not structured metadata (trace's search).
   */
  plain?: boolean
}

/** Loki's HTTP API, one method per endpoint. */
export class LokiClient {
  readonly http: HttpClient
  private limits?: Promise<QueryLimits>

  constructor(settings: HttpSettings) {
    this.http = new HttpClient(settings)
  }

  get address(): string {
    return this.http.address
  }

  /** How long a request, or a WebSocket's handshake, may take. */
  get timeoutMs(): number {
    return this.http.settings.timeoutMs
  }

  /**
   * Opens /loki/api/v1/tail as a WebSocket with the client's headers and TLS
   * settings, categorized like the range queries (so an entry from either
   * has the same stream labels; without it Loki merges structured metadata
   * such as detected_level into the stream).
   */
  async openTail(params: { query: string; limit: number; start: Nanos; delayForSeconds: number }): Promise<TailSocket> {
    const url = new URL(`${this.address}/loki/api/v1/tail`)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    url.searchParams.set('query', params.query)
    url.searchParams.set('limit', String(params.limit))
    url.searchParams.set('start', params.start.toString())
    url.searchParams.set('delay_for', String(params.delayForSeconds))
    // undici's parts, not its index: the index would load all of undici (fetch,
    // caches, mocks) for the tail, and bundled, every command would share its chunk.
    const [{ default: Agent }, { default: Client }, { default: websocket }, { default: buildConnector }] = await Promise.all([
      import('undici/lib/dispatcher/agent.js'),
      import('undici/lib/dispatcher/client.js'),
      import('undici/lib/web/websocket/websocket.js'),
      import('undici/lib/core/connect.js'),
    ])
    const { WebSocket } = websocket
    const { tls: files, headers, proxy } = this.http.settings
    const tls = files ? { ca: files.ca, cert: files.cert, key: files.key, rejectUnauthorized: files.rejectUnauthorized } : undefined
    // Once upgraded, the socket belongs to the WebSocket, not to the pool: the
    // connection keeps hold of it so that a dead one can be cut. Behind a
    // proxy it is the tunnel's (the proxy's connector hands it over).
    let rawSocket: { destroy(): void } | undefined
    const factory = (origin: string | URL, options: Record<string, unknown>) => {
      const given = options.connect
      const connect = typeof given === 'function' ? (given as ReturnType<typeof buildConnector>) : buildConnector((given ?? {}) as Parameters<typeof buildConnector>[0])
      return new Client(origin, {
        ...options,
        connect: (connectOptions, callback) =>
          connect(connectOptions, (error, socket) => {
            if (socket) rawSocket = socket
            if (error) callback(error, null)
            else callback(null, socket!)
          }),
      })
    }
    // CONNECT also for ws://: a proxy that forwards plain requests drops the Upgrade.
    const dispatcher = (await proxyDispatcher(proxy, url, { connections: 1, tls, tunnel: true, factory })) ?? new Agent({ connections: 1, connect: tls, factory })
    const socket = new WebSocket(url, { headers: { ...headers, ...CATEGORIZE_LABELS }, dispatcher })
    return {
      socket,
      cut() {
        rawSocket?.destroy()
        void dispatcher.destroy()
      },
      release() {
        void dispatcher.destroy()
      },
    }
  }

  async ready(): Promise<ReadyState> {
    const response = await this.http.request('/ready', { answerStatuses: [503], retries: 0 })
    const message = oneLine(response.body.trim().split('\n')[0]) || (response.status === 200 ? 'ready' : `HTTP ${response.status}`)
    return { ready: response.status === 200, status: response.status, message }
  }

  async labels(range: { start: Nanos; end: Nanos; query?: string }): Promise<string[]> {
    return this.getData('/loki/api/v1/labels', labelsAnswer, rangeParams(range))
  }

  async labelValues(name: string, range: { start: Nanos; end: Nanos; query?: string }): Promise<string[]> {
    return this.getData(`/loki/api/v1/label/${encodeURIComponent(name)}/values`, labelsAnswer, rangeParams(range))
  }

  async series(matchers: string[], range: { start: Nanos; end: Nanos }): Promise<Labels[]> {
    const params = new URLSearchParams()
    for (const match of matchers) params.append('match[]', match)
    params.set('start', range.start.toString())
    params.set('end', range.end.toString())
    return this.getData('/loki/api/v1/series', seriesAnswer, params)
  }

  async queryInstant(params: { query: string; time: Nanos; limit?: number; direction?: Direction }): Promise<QueryData> {
    return this.getData(
      '/loki/api/v1/query',
      queryAnswer,
      { query: params.query, time: params.time.toString(), limit: params.limit?.toString(), direction: params.direction },
      CATEGORIZE_LABELS,
    )
  }

  /**
   * This tenant's query limits, read once from /config/tenant/v1/limits and
   * corrected by every refusal that names a limit. A Loki (or a proxy) that
   * does not serve that page gets Loki's shipped defaults.
   */
  queryLimits(): Promise<QueryLimits> {
    this.limits ??= this.readTenantLimits()
    return this.limits
  }

  /** This tenant's limits if they were asked for already (queryLimits), without asking. */
  limitsKnown(): Promise<QueryLimits> | undefined {
    return this.limits
  }

  async queryRange(params: RangeParams): Promise<QueryData> {
    try {
      return await this.queryRangeOnce(params)
    } catch (error) {
      const refusal = error instanceof UsageError ? limitRefusal(error) : undefined
      if (!refusal) throw error
      const known = await this.queryLimits()
      this.limits = Promise.resolve({ ...known, ...refusal.learned })
      throw refusal
    }
  }

  private async readTenantLimits(): Promise<QueryLimits> {
    try {
      // Loki without auth serves every request as the tenant "fake", but this
      // page still wants the header; a configured tenant is sent as it is.
      const tenant = this.http.settings.headers['x-scope-orgid'] ? undefined : { 'x-scope-orgid': 'fake' }
      const response = await this.http.request('/config/tenant/v1/limits', { retries: 0, headers: tenant })
      return tenantLimits(topLevelScalars(response.body))
    } catch {
      // Not every Loki or proxy serves the page; refusals still teach the limits.
      return DEFAULT_QUERY_LIMITS
    }
  }

  private async queryRangeOnce(params: RangeParams): Promise<QueryData> {
    if (params.plain) return this.queryRangeAs(params, params.limit)
    const data = await this.queryRangeAs(params, params.limit, CATEGORIZE_LABELS)
    if (isEmptyLogResult(data)) await this.confirmEmpty(params)
    return data
  }

  /**
   * Loki 3.6.2 drops the errors of a log query's execution when asked to
   * categorize labels: its categorizing iterator does not pass on the error of
   * the iterator it wraps, so an invalid line_format template answers 200 with
   * no entries where the same query without the flag answers 400 and the
   * reason. An empty answer is therefore asked again without the flag, for one
   * entry: Loki's own error, if there is one, is what the user sees.
   */
  private async confirmEmpty(params: RangeParams): Promise<void> {
    const plain = await this.queryRangeAs(params, 1)
    if (!isEmptyLogResult(plain)) {
      throw new UnreachableError(
        'Loki answered a log query with no entries when asked to categorize labels, and with entries when not: the first answer hid a failure',
        'retry; if it persists, run the query with logcli or curl to see the error Loki hides',
      )
    }
  }

  private queryRangeAs(params: RangeParams, limit: number | undefined, headers?: Record<string, string>): Promise<QueryData> {
    return this.getData(
      '/loki/api/v1/query_range',
      queryAnswer,
      {
        query: params.query,
        start: params.start.toString(),
        end: params.end.toString(),
        limit: limit?.toString(),
        direction: params.direction,
        step: params.step,
      },
      headers,
      params.signal,
    )
  }

  /** Loki's estimate, from its index alone, of what a selector covers over the range. */
  async indexStats(query: string, range: { start: Nanos; end: Nanos }, options: { retries?: number } = {}): Promise<IndexStats> {
    const path = '/loki/api/v1/index/stats'
    const response = await this.http.request(path, {
      params: { query, start: range.start.toString(), end: range.end.toString() },
      retries: options.retries,
      readBody: (body) => readJson(body, path),
    })
    return indexStatsAnswer(path, response.parsed)
  }

  /** The fields Loki's parsers find in a sample of the query's lines (detected_fields, Loki 3.0+). */
  async detectedFields(query: string, range: { start: Nanos; end: Nanos }, options: { lineLimit: number; limit: number }): Promise<DetectedField[]> {
    const path = '/loki/api/v1/detected_fields'
    const response = await this.http.request(path, {
      params: { query, start: range.start.toString(), end: range.end.toString(), line_limit: String(options.lineLimit), limit: String(options.limit) },
      retries: 0,
      readBody: (body) => readJson(body, path),
    })
    return detectedFieldsAnswer(path, response.parsed)
  }

  /**
   * Bytes per label set over the range (/loki/api/v1/index/volume): the
   * index's chunks and the ingesters' unflushed ones. Not /index/volume_range:
   * see incident/volume.ts on why a trend asks step by step.
   */
  async volume(params: VolumeParams): Promise<SampleSeries[]> {
    const series = await this.getFeatureData('/loki/api/v1/index/volume', 'volume', volumeAnswer, volumeParams(params))
    // The limit asked was raised for the cache (volumeParams): Loki's top `limit` is the answer.
    return series.sort((a, b) => Number(b.value?.[1] ?? 0) - Number(a.value?.[1] ?? 0)).slice(0, params.limit ?? DEFAULT_VOLUME_LIMIT)
  }

  /** The patterns Loki's pattern ingester found in the selector's lines, with counts per step (/loki/api/v1/patterns). */
  async patterns(params: { query: string; start: Nanos; end: Nanos; step: string }): Promise<PatternSeries[]> {
    return this.getFeatureData('/loki/api/v1/patterns', 'patternIngester', patternsAnswer, {
      query: params.query,
      start: params.start.toString(),
      end: params.end.toString(),
      step: params.step,
    })
  }

  /** What Loki 3.6 says it has switched on (/loki/api/v1/drilldown-limits); nothing where the page is not served. */
  async features(): Promise<LokiFeatures> {
    try {
      const tenant = this.http.settings.headers['x-scope-orgid'] ? undefined : { 'x-scope-orgid': 'fake' }
      const path = '/loki/api/v1/drilldown-limits'
      const response = await this.http.request(path, { retries: 0, headers: tenant, readBody: (body) => readJson(body, path) })
      return drilldownLimitsAnswer(response.parsed)
    } catch {
      return {}
    }
  }

  async buildInfo(): Promise<{ version: string; revision?: string; branch?: string }> {
    const path = '/loki/api/v1/status/buildinfo'
    const response = await this.http.request(path, { readBody: (body) => readJson(body, path) })
    return response.parsed as { version: string; revision?: string; branch?: string }
  }

  async metrics(): Promise<string> {
    return (await this.http.request('/metrics')).body
  }

  /** Pushes streams; Loki drops an entry it already has, so a retried push is harmless. */
  async push(streams: PushStream[]): Promise<void> {
    await this.http.request('/loki/api/v1/push', {
      method: 'POST',
      body: JSON.stringify({ streams }),
      contentType: 'application/json',
      idempotent: true,
    })
  }

  async close(): Promise<void> {
    await this.http.close()
  }

  /** A success envelope's data, checked by shape: a wrong-shaped answer is one line and exit 3, never a crash later. */
  private async getData<T>(
    path: string,
    validate: (path: string, data: unknown) => T,
    params: URLSearchParams | Record<string, string | undefined>,
    headers?: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<T> {
    const response = await this.http.request(path, { params, headers, signal, readBody: (body) => readJson(body, path) })
    return successData(path, response.parsed as Envelope<unknown> | null, validate)
  }

  /**
   * An endpoint of a feature Loki can switch off: both volume endpoints and
   * patterns answer 404 when it is off. The 404 is told apart from a wrong
   * address by asking Loki which features it has on; a Loki that does not
   * say (before 3.6, or a proxy) gets the benefit of the doubt.
   */
  private async getFeatureData<T>(
    path: string,
    feature: keyof typeof FEATURES,
    validate: (path: string, data: unknown) => T,
    params: Record<string, string | undefined>,
  ): Promise<T> {
    const response = await this.http.request(path, { params, answerStatuses: [404] })
    if (response.status === 404) {
      const known = (await this.features())[feature]
      const { name, off, hint } = FEATURES[feature]
      if (known === true) {
        throw new UnreachableError(
          `Loki at ${this.address} has no ${path} although it says ${name} are on`,
          'check that --addr points at Loki (not a proxy that hides the path), path prefix included',
        )
      }
      throw new UnavailableError(name, known === false ? off : `${off}, or this Loki (or a proxy in front) does not serve ${path}`, hint)
    }
    let envelope: Envelope<unknown> | null
    try {
      envelope = JSON.parse(response.body) as Envelope<unknown> | null
    } catch {
      throw notJson(path, Buffer.byteLength(response.body))
    }
    return successData(path, envelope, validate)
  }
}

/** Loki's default limit of the volume endpoints, and its default volume_max_series. */
const DEFAULT_VOLUME_LIMIT = 100
/** How far above the limit wanted the limit asked may go, for a cache key of its own (volumeParams). */
const VOLUME_LIMIT_SPREAD = 1000n

/**
 * Loki's volume results cache (on by default, for ranges that end more than
 * max_stats_cache_freshness ago) keys its entries by tenant, query, limit,
 * labels and day, merges the ranges it has answered under one key, and
 * answers a range inside them by prorating the merged total over time (its
 * VolumeExtractor "assumes a constant distribution of log volumes"). Measured
 * on Loki 3.6.2: once the ten minutes before a deploy and the ten after had
 * been asked, both read as half of the twenty, and a service silenced at the
 * deploy read as unchanged. A limit that depends on the range asked gives
 * each range a key of its own (the same range asked again is answered
 * exactly from the cache); the answer is cut back to the limit wanted.
 */
function volumeParams(params: VolumeParams): Record<string, string | undefined> {
  const wanted = params.limit ?? DEFAULT_VOLUME_LIMIT
  // Loki bounds the series it answers with (volume_max_series), not the limit asked. Two adjacent windows of length W
  // (the deploy gate's) differ by 8·W ms here, so they share a key only when W is a multiple of 999 s.
  const spread = 1n + (((params.start / 1_000_000n) * 7n + params.end / 1_000_000n) % (VOLUME_LIMIT_SPREAD - 1n))
  return {
    query: params.query,
    start: params.start.toString(),
    end: params.end.toString(),
    limit: String(BigInt(wanted) + spread),
    targetLabels: params.targetLabels?.join(','),
    aggregateBy: 'series',
  }
}

function isEmptyLogResult(data: QueryData): boolean {
  return data?.resultType === 'streams' && Array.isArray(data.result) && data.result.every((stream) => !Array.isArray(stream?.values) || stream.values.length === 0)
}

/**
 * The top-level `key: value` lines of a YAML document as written by Go's YAML
 * encoder (Loki's /config/tenant/v1/limits): numbers as numbers, quoted or
 * plain scalars as strings; nested blocks, lists and comments are skipped.
 * The limits wanted are all top-level scalars, and reading them this way
 * spares every paged query loading a YAML parser (72 modules, about 40 ms of
 * a command's start).
 */
export function topLevelScalars(text: string): Record<string, string | number> {
  const values: Record<string, string | number> = {}
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_][\w.-]*):[ \t]+(\S.*?)\s*$/.exec(line)
    if (!match || match[2].startsWith('#')) continue
    const raw = match[2]
    const quoted = /^'(.*)'$/.exec(raw) ?? /^"(.*)"$/.exec(raw)
    if (quoted) values[match[1]] = quoted[1]
    else values[match[1]] = /^-?\d+$/.test(raw) ? Number(raw) : raw
  }
  return values
}

/** The query limits out of Loki's /config/tenant/v1/limits YAML. */
export function tenantLimits(doc: unknown): QueryLimits {
  if (doc === null || typeof doc !== 'object') return DEFAULT_QUERY_LIMITS
  const yaml = doc as Record<string, unknown>
  const count = (key: string, fallback: number) => {
    const value = yaml[key]
    return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : fallback
  }
  const duration = (key: string, fallback: Nanos): Nanos => {
    const value = yaml[key]
    if (typeof value !== 'string') return fallback
    if (/^0+[a-z]*$/.test(value)) return 0n
    try {
      // Prometheus durations may carry years, which Loki writes as 365 days.
      return parseDuration(value.replace(/(\d+)y/, (_, years: string) => `${Number(years) * 365}d`))
    } catch {
      return fallback
    }
  }
  return {
    maxQueryLengthNs: duration('max_query_length', DEFAULT_QUERY_LIMITS.maxQueryLengthNs),
    maxEntriesPerQuery: count('max_entries_limit_per_query', DEFAULT_QUERY_LIMITS.maxEntriesPerQuery),
    maxQuerySeries: count('max_query_series', DEFAULT_QUERY_LIMITS.maxQuerySeries),
    queryTimeoutMs: Number(duration('query_timeout', BigInt(DEFAULT_QUERY_LIMITS.queryTimeoutMs) * 1_000_000n) / 1_000_000n),
    source: 'tenant-limits',
  }
}

/** Loki's refusals that name a limit a narrower or smaller query would fit. */
export function limitRefusal(error: UsageError): LimitRefusal | undefined {
  const length = /the query time range exceeds the limit \(query length: ([^,]+), limit: ([^)]+)\)/.exec(error.message)
  if (length) {
    try {
      return new LimitRefusal(error.message, { maxQueryLengthNs: parseDuration(length[2]) }, 'narrow the range with --since or --from/--to', parseDuration(length[1]))
    } catch {
      return undefined
    }
  }
  const entries = /max entries limit per query exceeded, limit > max_entries_limit_per_query \((\d+) > (\d+)\)/.exec(error.message)
  if (entries) return new LimitRefusal(error.message, { maxEntriesPerQuery: Number(entries[2]) }, `use --batch ${entries[2]} or less`)
  return undefined
}

function rangeParams(range: { start: Nanos; end: Nanos; query?: string }): Record<string, string | undefined> {
  return { start: range.start.toString(), end: range.end.toString(), query: range.query }
}

/** Parses an answer as it arrives: pages of log entries never sit in memory as one string. */
async function readJson(body: AsyncIterable<Uint8Array>, path: string): Promise<unknown> {
  const parser = new AnswerParser()
  const decoder = new TextDecoder()
  let bytes = 0
  try {
    for await (const chunk of body) {
      bytes += chunk.byteLength
      parser.write(decoder.decode(chunk, { stream: true }))
    }
    parser.write(decoder.decode())
    return parser.end()
  } catch (error) {
    // Anything else (the connection dropping) is the request's to retry.
    if (error instanceof SyntaxError) throw notJson(path, bytes)
    throw error
  }
}

function notJson(path: string, bytes: number): UnreachableError {
  return new UnreachableError(`Loki's answer to ${path} is not valid JSON (${bytes} bytes, possibly cut off)`, 'retry; if it persists, check any proxy between obs and Loki')
}

/** The data of Loki's success envelope, checked by `validate`; any other status is not an answer obs can use. */
function successData<T>(path: string, envelope: Envelope<unknown> | null, validate: (path: string, data: unknown) => T): T {
  if (envelope?.status !== 'success') throw new UnreachableError(`Loki answered ${path} with status "${oneLine(String(envelope?.status))}"`, NOT_LOKI_HINT)
  return validate(path, envelope.data)
}
