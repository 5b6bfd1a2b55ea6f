import { pipeline, type Readable, type Transform } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate, createZstdDecompress } from 'node:zlib'
import type { Dispatcher } from 'undici'
import undiciRequest from 'undici/lib/api/api-request.js'
import Agent from 'undici/lib/dispatcher/agent.js'
import type { IncomingHttpHeaders } from 'undici/types/header.js'
import { ObsError, UnreachableError, UsageError } from './errors.ts'
import { describeProxy, type ProxyRoute, type ProxySource, proxyDispatcher, proxyFor } from './proxy.ts'
import { maskUrl, Redactor } from './secrets.ts'
import { oneLine } from './text.ts'
import { sleep } from './time.ts'

// Where they were first defined; callers import them from here.
export { maskUrl, SECRET_HEADER } from './secrets.ts'

export interface TlsFiles {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  rejectUnauthorized: boolean
}

export interface HttpSettings {
  /** Base URL with any path prefix, without credentials or trailing slash. */
  baseUrl: string
  /** Headers sent on every request: auth, org id, user agent, extra headers. */
  headers: Record<string, string>
  timeoutMs: number
  /** Further attempts for idempotent requests after the first one fails. */
  retries: number
  tls?: TlsFiles
  /** What is on the other end, for messages: "Loki" or "Alloy". */
  peer: string
  /** The caller's words for the fixes a failure suggests; plain ones when it gives none. */
  hints?: PeerHints
  /** Receives one line per request when debugging; never sees secrets. */
  debug?: (line: string) => void
  /** Told of each retry before its wait, so that a person at a terminal sees why nothing happens yet. */
  onRetry?: (line: string) => void
  /** The proxy requests go through, if any (proxy.ts). */
  proxy?: ProxyRoute
  /** Masks the configured secrets in messages; the settings' one, else one built from the headers. */
  redactor?: Redactor
  /** The end of a whole command's wait (--wait): it cuts the request in flight, whatever its own timeout. */
  deadline?: Deadline
}

/**
 * A limit on a whole wait, across requests and retries. The per-request
 * timeout alone let `ready --wait 2s` sit 30 s on a server that accepted the
 * connection and never answered.
 */
export interface Deadline {
  signal: AbortSignal
  /** How long, as the user gave it, and the flag: for messages. */
  waitText: string
  flag: string
}

/** A deadline `ms` from now, for the wait given to `flag` as `waitText`. */
export function deadlineIn(ms: number, waitText: string, flag: string): Deadline {
  return { signal: AbortSignal.timeout(ms), waitText, flag }
}

/** A request the deadline cut: the server never answered it within the wait. */
export class DeadlineError extends UnreachableError {
  constructor(message: string, hint?: string) {
    super(message, hint)
    this.name = 'DeadlineError'
  }
}

/**
 * How the user changes what a failed request depends on, in the caller's
 * terms (the CLI's flags): the transport knows HTTP, not the program that
 * drives it.
 */
export interface PeerHints {
  /** The setting that holds the server's address. */
  address: string
  /** What to check when the server refuses the credentials. */
  credentials: string
  /** The setting that raises the timeout. */
  timeout: string
  /** What to check when the server cannot be reached at all. */
  unreachable: string
  /** The settings for a CA certificate and for not checking it. */
  caCert: string
  skipVerify: string
}

const PLAIN_HINTS: PeerHints = {
  address: "the server's address",
  credentials: 'check the credentials and the tenant',
  timeout: 'the timeout',
  unreachable: 'check the address and that the server is running',
  caCert: 'a CA certificate',
  skipVerify: 'skipping verification',
}

export interface RequestOptions {
  method?: 'GET' | 'POST'
  params?: URLSearchParams | Record<string, string | undefined>
  body?: string | Buffer
  contentType?: string
  /** Statuses that are answers rather than errors (for example 503 from /ready). */
  answerStatuses?: readonly number[]
  /** Overrides the retry count, for example 0 for a one-shot probe. */
  retries?: number
  /** POSTs are not retried unless the caller knows the request is idempotent. */
  idempotent?: boolean
  /** Headers for this request only. */
  headers?: Record<string, string>
  /** Abandons the request and any retry still waiting, for work no longer wanted. */
  signal?: AbortSignal
  /**
   * Reads an answer's body as it arrives, in place of `body`; its result is
   * `parsed`. Called afresh on each attempt: a body cut off is retried whole.
   */
  readBody?: (body: AsyncIterable<Uint8Array>) => Promise<unknown>
}

export interface HttpResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The body as text; empty when `readBody` read it. */
  body: string
  /** What `readBody` made of the body. */
  parsed?: unknown
}

const RETRY_STATUSES = new Set([429, 502, 503, 504])
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
])
/**
 * The most of one answer obs reads, decoded. Loki's answers are pages and
 * lists far below this; past it a proxy is misbehaving or the query is too
 * wide, and reading on would exhaust memory (a string holds at most 512 MB).
 */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024

/** The content codings a server or proxy may apply, by their Content-Encoding names; undici's request() leaves them applied. */
const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
  zstd: createZstdDecompress,
}

/** Paths whose cost the user's query decides, where "narrow the query" is the fix for a slow or huge answer. */
const QUERY_PATH = /^\/loki\/api\/v1\/(query|query_range|labels?|series|index|patterns|detected_)/
const NARROW_HINT = 'narrow the query (a shorter range or more label matchers)'

/**
 * Loki 3.6's errors about the query itself that it answers with 500 (its
 * evaluator's and query mapper's, which it does not mark as the client's):
 * the same query fails the same way every time, so they are bad input,
 * exit 2 with no retry, and each has its fix.
 */
const QUERY_ERRORS_AS_500: [RegExp, string][] = [
  [/many-to-many matching not allowed/, 'match on labels that identify one series on at least one side (on(…) or ignoring(…)), or aggregate that side first with sum by (…)'],
  [/many-to-one matching must be explicit/, 'add group_left (more series on the left) or group_right after on(…) or ignoring(…)'],
  [/grouping labels must ensure unique matches/, 'the labels in on(…) or ignoring(…) must pick one series on the side without group_left/group_right'],
  [/approx_topk is not enabled/, "use topk, or add approx_topk to limits_config.shard_aggregations in Loki's config"],
  [/unsupported range vector aggregation operation/, "use a range aggregation Loki supports (LogQL's metric queries)"],
]

const BACKOFF_BASE_MS = 1000
const BACKOFF_MAX_MS = 8_000
const RETRY_AFTER_MAX_MS = 60_000

/**
 * One keep-alive connection pool to one server, with a per-request timeout,
 * retries with backoff for idempotent requests, and errors reduced to the
 * server's own one-line message.
 */
export class HttpClient {
  readonly settings: HttpSettings
  /** The connection pool; behind a proxy, made on the first request (the proxy's agent is loaded then). */
  private agent?: Dispatcher
  private proxied?: Promise<Dispatcher>
  /** The proxy this server's requests may go through, and how messages say it ("through the proxy … (HTTPS_PROXY)"). */
  private readonly proxy?: ProxySource
  private readonly throughProxy: string = ''
  private readonly origin: string
  private readonly prefix: string

  /** Keeps credentials a server might echo back out of its answers and messages; the tail's frames use it too. */
  readonly redactor: Redactor
  /** Whether the server has answered anything yet: a refused first connection to this machine is a wrong port, not a restart. */
  private answered = false
  private readonly loopback: boolean

  constructor(settings: HttpSettings) {
    this.settings = settings
    this.redactor = settings.redactor ?? Redactor.of(settings.headers)
    const url = new URL(settings.baseUrl)
    this.origin = url.origin
    this.loopback = isLoopback(url.hostname)
    this.prefix = url.pathname.replace(/\/+$/, '')
    this.proxy = proxyFor(settings.proxy, url)
    if (this.proxy) {
      const bypass = settings.proxy && 'env' in settings.proxy && settings.proxy.env.noProxy ? ' unless NO_PROXY names the host' : ''
      this.throughProxy = this.redact(` through the proxy ${describeProxy(this.proxy)}${bypass}`)
    }
    const tls = tlsOptions(settings.tls)
    const direct = () => new Agent({ keepAliveTimeout: 30_000, connections: 16, connect: tls })
    if (this.proxy) {
      this.proxied = proxyDispatcher(settings.proxy, url, { keepAliveTimeout: 30_000, connections: 16, tls }).then((agent) => (this.agent = agent ?? direct()))
      // Its failure is the first request's to report; a client that never asks must not crash the process.
      this.proxied.catch(() => undefined)
    } else {
      this.agent = direct()
    }
  }

  async request(path: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const method = options.method ?? 'GET'
    const idempotent = options.idempotent ?? method === 'GET'
    const retries = idempotent ? (options.retries ?? this.settings.retries) : 0
    const target = this.prefix + path + queryString(options.params)
    const headers: Record<string, string> = { ...this.settings.headers, ...options.headers }
    if (options.contentType) headers['content-type'] = options.contentType

    for (let attempt = 0; ; attempt++) {
      const started = performance.now()
      let failure: ObsError
      let delayMs: number
      try {
        const signals = [AbortSignal.timeout(this.settings.timeoutMs), options.signal, this.settings.deadline?.signal].filter((s) => s !== undefined)
        const signal = signals.length === 1 ? signals[0] : AbortSignal.any(signals)
        const dispatcher = this.agent ?? (await this.proxied!)
        const response = await undiciRequest.call(dispatcher, { origin: this.origin, path: target, method, headers, body: options.body, signal })
        this.answered = true
        const status = response.statusCode
        const answered = (status >= 200 && status < 300) || options.answerStatuses?.includes(status)
        // Masked as it arrives: a server that echoes the credentials (a /ready page, an error, a label value) cannot hand them to a renderer.
        const decoded = this.answerBody(response.body, response.headers['content-encoding'], path)
        const content = this.redactor.active ? this.redactor.redactBytes(decoded) : decoded
        if (answered && options.readBody) {
          const parsed = await options.readBody(content)
          this.debug(method, path, status, started)
          return { status, headers: response.headers, body: '', parsed }
        }
        const body = await readText(content)
        this.debug(method, path, status, started)
        if (answered) return { status, headers: response.headers, body }
        failure = this.statusError(status, response.headers, body, path, target)
        if (!RETRY_STATUSES.has(status)) throw failure
        delayMs = retryAfterMs(response.headers['retry-after']) ?? backoffMs(attempt)
      } catch (error) {
        // The deadline's abort, not an answer: said as the wait that ran out, never as this request's timeout.
        if (this.settings.deadline?.signal.aborted && !(error instanceof ObsError)) throw this.deadlineError(path)
        if (error instanceof ObsError || options.signal?.aborted) throw error
        this.debug(method, path, errorCode(error) ?? 'error', started)
        if (isTimeout(error)) throw this.timeoutError(path)
        failure = this.networkError(error)
        if (!NETWORK_ERROR_CODES.has(errorCode(error) ?? '')) throw failure
        // Nothing listens on that port of this machine: waiting will not change it (a restart, once the server has answered, might).
        if (errorCode(error) === 'ECONNREFUSED' && this.loopback && !this.answered) throw failure
        delayMs = backoffMs(attempt)
      }
      if (attempt >= retries) {
        if (attempt > 0) failure.message += ` (gave up after ${attempt + 1} attempts)`
        throw failure
      }
      this.settings.debug?.(`retrying in ${delayMs}ms (attempt ${attempt + 2} of ${retries + 1})`)
      this.settings.onRetry?.(`${this.settings.peer}: ${failure.message}; retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 2} of ${retries + 1})`)
      const deadline = this.settings.deadline?.signal
      await sleep(delayMs, options.signal && deadline ? AbortSignal.any([options.signal, deadline]) : (options.signal ?? deadline))
      if (options.signal?.aborted) throw options.signal.reason
      if (deadline?.aborted) throw this.deadlineError(path)
    }
  }

  async close(): Promise<void> {
    await (this.agent ?? (await this.proxied?.catch(() => undefined)))?.close()
  }

  /** The address for messages: scheme, host, port and prefix, never credentials. */
  get address(): string {
    return this.origin + this.prefix
  }

  private get hints(): PeerHints {
    return this.settings.hints ?? PLAIN_HINTS
  }

  /**
   * The body as the server meant it: its content codings undone (a proxy may
   * compress without being asked), and cut off with a clear error past
   * MAX_ANSWER_BYTES.
   */
  private async *answerBody(raw: Readable, encoding: string | string[] | undefined, path: string): AsyncGenerator<Uint8Array> {
    const peer = this.settings.peer
    const codings = String(encoding ?? '')
      .split(',')
      .map((coding) => coding.trim().toLowerCase())
      .filter((coding) => coding !== '' && coding !== 'identity')
    // A decoder passes on the error of the body it reads: that one is the connection's, for the caller to retry.
    let connectionError: unknown
    raw.once('error', (error) => (connectionError = error))
    const unknown = codings.find((coding) => !Object.hasOwn(DECODERS, coding))
    if (unknown !== undefined) {
      raw.destroy()
      throw new UnreachableError(`${peer}'s answer to ${path} is encoded as "${oneLine(unknown)}", which obs cannot decode`, `check any proxy between obs and ${peer}`)
    }
    // Codings are listed in the order they were applied.
    let decoded: Readable = raw
    for (const coding of codings.reverse()) decoded = pipeline(decoded, DECODERS[coding](), () => {})
    let bytes = 0
    try {
      for await (const chunk of decoded) {
        bytes += chunk.byteLength
        if (bytes > MAX_ANSWER_BYTES) {
          throw new UnreachableError(
            `${peer}'s answer to ${path} is larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MB; obs stopped reading it`,
            QUERY_PATH.test(path) ? NARROW_HINT : `check that ${this.hints.address} points at ${peer}, not a proxy that answers otherwise`,
          )
        }
        yield chunk
      }
    } catch (error) {
      if (error instanceof ObsError || codings.length === 0 || error === connectionError) throw error
      throw new UnreachableError(
        `${peer}'s answer to ${path} is not valid ${codings.join(', ')} (${describeNetworkError(error)}): cut off or corrupt`,
        `retry; if it persists, check any proxy between obs and ${peer}`,
      )
    }
  }

  private debug(method: string, path: string, outcome: number | string, started: number): void {
    this.settings.debug?.(`${method} ${this.address}${path}${this.throughProxy} -> ${outcome} in ${Math.round(performance.now() - started)}ms`)
  }

  private statusError(status: number, headers: IncomingHttpHeaders, body: string, path: string, target: string): ObsError {
    const peer = this.settings.peer
    if (status >= 300 && status < 400) {
      const location = typeof headers.location === 'string' ? this.redact(maskUrl(oneLine(resolveUrl(headers.location, this.origin + target)))) : undefined
      return new UnreachableError(
        `${peer} at ${this.address} answered ${status} ${REASON_PHRASES[status] ?? 'Redirect'} ${location ? `to ${location}` : 'with no Location'}`,
        `point ${this.hints.address} at the address ${peer} is served from; obs does not follow redirects, so credentials go only where you send them`,
      )
    }
    const reason = this.redact(summarizeBody(status, headers['content-type'], body))
    if (status === 400 && this.origin.startsWith('http:') && TLS_ONLY_ANSWER.test(body)) {
      return new UnreachableError(`${peer} at ${this.address} speaks only TLS (it answered ${reason})`, `use https:// in ${this.hints.address}`)
    }
    if (status === 400 || status === 422) return new UsageError(`${peer} rejected the request: ${reason}`, 'correct what it names and run the command again')
    if (status === 407) {
      return new UnreachableError(
        `cannot reach ${peer} at ${this.address}${this.throughProxy}: the proxy answered ${reason}`,
        `check the user and password in the proxy's URL (${this.proxy?.from ?? 'the proxy setting'})`,
      )
    }
    const queryFix = status === 500 && QUERY_PATH.test(path) ? QUERY_ERRORS_AS_500.find(([error]) => error.test(body))?.[1] : undefined
    if (queryFix) return new UsageError(`${peer} cannot evaluate the query: ${this.redact(oneLine(body.trim()))}`, queryFix)
    if (status === 401 || status === 403) {
      // Some proxies (tinyproxy 1.11) ask for their own credentials with 401, not 407.
      const proxy = this.proxy ? `; or, if the proxy is what asks, its user and password (${this.proxy.from})` : ''
      return new UnreachableError(`${peer} at ${this.address} refused the credentials: ${reason}`, this.hints.credentials + proxy)
    }
    if (status === 404) {
      return new UnreachableError(`${peer} at ${this.address} has no ${path}: ${reason}`, `check that ${this.hints.address} points at ${peer}, path prefix included`)
    }
    return new UnreachableError(`${peer} at ${this.address} answered ${reason}`, `retry; if it persists, ${peer}'s own log says why`)
  }

  private redact(text: string): string {
    return this.redactor.redact(text)
  }

  private timeoutError(path: string): ObsError {
    const seconds = this.settings.timeoutMs / 1000
    const peer = this.settings.peer
    return new UnreachableError(
      `${peer} did not answer ${path} within the ${seconds}s timeout`,
      QUERY_PATH.test(path)
        ? `${NARROW_HINT} or raise ${this.hints.timeout}`
        : `check that ${peer} at ${this.address} is running and not overloaded, or raise ${this.hints.timeout}`,
    )
  }

  private deadlineError(path: string): ObsError {
    const { waitText, flag } = this.settings.deadline!
    const peer = this.settings.peer
    return new DeadlineError(
      `waited ${waitText} (${flag}) and ${peer} at ${this.address} never answered ${path}`,
      `check that ${peer} is running and not overloaded, or wait longer with ${flag}`,
    )
  }

  private networkError(error: unknown): ObsError {
    if (this.origin.startsWith('https:') && speaksPlainHttp(error)) {
      return new UnreachableError(`${this.settings.peer} at ${this.address} does not speak TLS (it answered plain HTTP)`, `use http:// in ${this.hints.address}`)
    }
    const reason = this.redact(describeNetworkError(error, this.hints))
    if (!this.proxy) return new UnreachableError(`cannot reach ${this.settings.peer} at ${this.address}: ${reason}`, this.hints.unreachable)
    // Behind a proxy obs connects to the proxy only: a connection that fails is the proxy's, a refusal is the proxy's answer.
    const refusal = proxyRefusal(error)
    // tinyproxy 1.11 asks for its credentials with 401, others with 407.
    if (refusal === 407 || refusal === 401) {
      return new UnreachableError(
        `cannot reach ${this.settings.peer} at ${this.address}${this.throughProxy}: the proxy answered ${refusal} ${REASON_PHRASES[refusal]}`,
        `check the user and password in the proxy's URL (${this.proxy.from})`,
      )
    }
    if (refusal !== undefined) {
      return new UnreachableError(
        `cannot reach ${this.settings.peer} at ${this.address}${this.throughProxy}: the proxy answered ${refusal}`,
        `check that the proxy lets obs reach ${this.address} (its allowed hosts and CONNECT ports)`,
      )
    }
    return new UnreachableError(
      `cannot reach ${this.settings.peer} at ${this.address}${this.throughProxy}: ${reason}`,
      `check ${this.proxy.from} and that the proxy runs; ${this.hints.unreachable}`,
    )
  }
}

function tlsOptions(tls: TlsFiles | undefined) {
  return tls ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.rejectUnauthorized } : undefined
}

/** The status a proxy answered instead of connecting (undici says it in its message only), if that is the error. */
function proxyRefusal(error: unknown): number | undefined {
  for (let e = error as { message?: unknown; cause?: unknown } | undefined; e && typeof e === 'object'; e = e.cause as typeof e) {
    const match = /^Proxy response \((\d{3})\) !== 200|^Proxy Authentication Required \((407)\)/.exec(String(e.message))
    if (match) return Number(match[1] ?? match[2])
  }
  return undefined
}

function resolveUrl(reference: string, base: string): string {
  try {
    return new URL(reference, base).href
  } catch {
    return reference
  }
}

async function readText(body: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = []
  for await (const chunk of body) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

function queryString(params: RequestOptions['params']): string {
  if (!params) return ''
  const search = params instanceof URLSearchParams ? params : new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined))
  const text = search.toString()
  return text ? `?${text}` : ''
}

const REASON_PHRASES: Record<number, string> = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  407: 'Proxy Authentication Required',
  413: 'Payload Too Large',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

/**
 * Reduces an error body to one clean line: Loki's plain-text message as it is,
 * an HTML page from a proxy as its status and title.
 */
export function summarizeBody(status: number, contentType: string | string[] | undefined, body: string): string {
  const statusText = `${status} ${REASON_PHRASES[status] ?? 'Error'}`
  const trimmed = body.trim()
  const isHtml = /html/i.test(String(contentType ?? '')) || /^<(!doctype|html|head|body)/i.test(trimmed)
  if (isHtml) {
    const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(trimmed)?.[1] ?? /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(trimmed)?.[1]
    const cleanTitle = title ? oneLine(title.replace(/<[^>]*>/g, '')) : ''
    const shown = cleanTitle && !statusText.includes(cleanTitle) && !cleanTitle.includes(REASON_PHRASES[status] ?? '\0') ? ` (${cleanTitle})` : ''
    return `${statusText}${shown}, an HTML page: a proxy in front of the server answered`
  }
  let message = trimmed
  if (trimmed.startsWith('{')) {
    try {
      const parsed = JSON.parse(trimmed) as { error?: unknown; message?: unknown }
      const field = parsed.error ?? parsed.message
      if (typeof field === 'string') message = field
    } catch {
      // Not JSON after all: show the text.
    }
  }
  const line = oneLine(message)
  return line ? `${statusText}: ${line}` : statusText
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { code, cause } = error as { code?: unknown; cause?: unknown }
  if (typeof code === 'string') return code
  return cause ? errorCode(cause) : undefined
}

function isTimeout(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { name, cause } = error as { name?: unknown; cause?: unknown }
  return name === 'TimeoutError' || (cause !== undefined && isTimeout(cause))
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CLOSED: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed TLS certificate (use {caCert}, or {skipVerify})',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS certificate signed by an unknown CA (use {caCert})',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate cannot be verified (use {caCert})',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host name',
  CERT_HAS_EXPIRED: 'TLS certificate has expired',
}

/**
 * OpenSSL's words for a first answer that is no TLS record: a plain-HTTP
 * server's "HTTP/1.1 400" read as a record header (its version bytes, or its
 * length, make no sense).
 */
const PLAIN_HTTP_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG'])

function speaksPlainHttp(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error)
  return PLAIN_HTTP_CODES.has(errorCode(error) ?? '') || /tls_validate_record_header|wrong version number|packet length too long/.test(message)
}

/** A TLS-only server's answer to plain HTTP: Go's (Loki's own) and nginx's. */
const TLS_ONLY_ANSWER = /Client sent an HTTP request to an HTTPS server|plain HTTP request was sent to HTTPS port/i

function describeNetworkError(error: unknown, hints: PeerHints = PLAIN_HINTS): string {
  const code = errorCode(error)
  if (code && NETWORK_REASONS[code]) return `${NETWORK_REASONS[code].replace('{caCert}', hints.caCert).replace('{skipVerify}', hints.skipVerify)} (${code})`
  const message = error instanceof Error ? error.message : String(error)
  return oneLine(code ? `${message} (${code})` : message)
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (!value) return undefined
  const seconds = Number(value)
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now()
  if (!Number.isFinite(ms)) return undefined
  return Math.min(Math.max(ms, 0), RETRY_AFTER_MAX_MS)
}

function backoffMs(attempt: number): number {
  const exponential = Math.min(BACKOFF_BASE_MS * 2 ** attempt, BACKOFF_MAX_MS)
  // Jitter keeps several clients from retrying in step.
  return Math.round(exponential * (0.8 + Math.random() * 0.4))
}

/** localhost, 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
