import { HttpClient, oneLine, type HttpSettings } from './http.ts'
import type { Nanos } from './time.ts'
import { UnreachableError } from './errors.ts'
import { AnswerParser } from './answer-parser.ts'

export type Labels = Record<string, string>
export type Direction = 'forward' | 'backward'

/** Per-entry metadata Loki sends when asked to categorize labels. */
export interface EntryMetadata {
  structuredMetadata?: Labels
  parsed?: Labels
}

export type StreamValue = [string, string] | [string, string, EntryMetadata]

export interface StreamResult {
  stream: Labels
  values: StreamValue[]
}

export interface SampleSeries {
  metric: Labels
  values?: [number, string][]
  value?: [number, string]
}

export type QueryData =
  | { resultType: 'streams'; result: StreamResult[] }
  | { resultType: 'matrix'; result: SampleSeries[] }
  | { resultType: 'vector'; result: SampleSeries[] }
  | { resultType: 'scalar'; result: [number, string] }

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
const CATEGORIZE_LABELS = { 'x-loki-response-encoding-flags': 'categorize-labels' }

export interface RangeParams {
  query: string
  start: Nanos
  end: Nanos
  limit?: number
  direction?: Direction
  step?: string
  signal?: AbortSignal
}

/** Loki's HTTP API, one method per endpoint. */
export class LokiClient {
  readonly http: HttpClient

  constructor(settings: HttpSettings) {
    this.http = new HttpClient(settings)
  }

  get address(): string {
    return this.http.address
  }

  async ready(): Promise<ReadyState> {
    const response = await this.http.request('/ready', { answerStatuses: [503], retries: 0 })
    const message = oneLine(response.body.trim().split('\n')[0]) || (response.status === 200 ? 'ready' : `HTTP ${response.status}`)
    return { ready: response.status === 200, status: response.status, message }
  }

  async labels(range: { start: Nanos; end: Nanos; query?: string }): Promise<string[]> {
    return this.getData<string[]>('/loki/api/v1/labels', rangeParams(range))
  }

  async labelValues(name: string, range: { start: Nanos; end: Nanos; query?: string }): Promise<string[]> {
    return this.getData<string[]>(`/loki/api/v1/label/${encodeURIComponent(name)}/values`, rangeParams(range))
  }

  async series(matchers: string[], range: { start: Nanos; end: Nanos }): Promise<Labels[]> {
    const params = new URLSearchParams()
    for (const match of matchers) params.append('match[]', match)
    params.set('start', range.start.toString())
    params.set('end', range.end.toString())
    return this.getData<Labels[]>('/loki/api/v1/series', params)
  }

  async queryInstant(params: { query: string; time: Nanos; limit?: number; direction?: Direction }): Promise<QueryData> {
    return this.getData<QueryData>(
      '/loki/api/v1/query',
      { query: params.query, time: params.time.toString(), limit: params.limit?.toString(), direction: params.direction },
      CATEGORIZE_LABELS,
    )
  }

  async queryRange(params: RangeParams): Promise<QueryData> {
    return this.getData<QueryData>(
      '/loki/api/v1/query_range',
      {
        query: params.query,
        start: params.start.toString(),
        end: params.end.toString(),
        limit: params.limit?.toString(),
        direction: params.direction,
        step: params.step,
      },
      CATEGORIZE_LABELS,
      params.signal,
    )
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

  private async getData<T>(
    path: string,
    params: URLSearchParams | Record<string, string | undefined>,
    headers?: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<T> {
    const response = await this.http.request(path, { params, headers, signal, readBody: (body) => readJson(body, path) })
    const envelope = response.parsed as Envelope<T> | null
    if (envelope?.status !== 'success') {
      throw new UnreachableError(`Loki answered ${path} with status "${oneLine(String(envelope?.status))}"`)
    }
    // Loki leaves `data` out when a list is empty (no labels in the window).
    return envelope.data ?? ([] as T)
  }
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
  return new UnreachableError(
    `Loki's answer to ${path} is not valid JSON (${bytes} bytes, possibly cut off)`,
    'retry; if it persists, check any proxy between obs and Loki',
  )
}
