/**
 * The benchmark's dataset: pino JSON lines of about 300 bytes from three
 * services, generated lazily in push batches so that a million lines never sit
 * in memory at once.
 *
 * Reproducible: the same seed gives the same lines, streams, request ids and
 * offsets from the window's start. Only the window itself moves: it is the
 * last `spanMs` before a minute boundary at load time, because the stack's
 * Loki rejects samples older than a week and, more to the point, only queries
 * its ingesters for the last 3 hours (query_ingesters_within): a fixed window
 * in the past would need a differently behaving Loki. The `time` field of each
 * line follows the window; everything else is identical from run to run.
 *
 * Every line carries `seq`, its index 0..total-1, so an export can be checked
 * for lost and repeated lines without keeping the lines.
 */
import { mulberry32 } from '../test/support/dataset.ts'

export const APP = 'cogni-template'
export const ENV = 'bench'
export const SERVICES = ['gateway', 'app', 'worker'] as const

export interface PushStream {
  stream: Record<string, string>
  values: [string, string][]
}

export interface DatasetOptions {
  seed: number
  /** Lines in all. */
  total: number
  /** Window: [startNs, startNs + spanMs). */
  startNs: bigint
  spanMs: number
  /** Lines per push batch. */
  perBatch: number
}

export interface DatasetSummary {
  total: number
  bytes: number
  requests: number
  perStream: Record<string, number>
  /** Lines in [startNs, startNs + subSpanMs): the small export. */
  subRangeLines: number
  /** A request with lines in all three services, about three quarters into the window. */
  traceReqId: string
  /** Its lines in all services, and in service="app" only (what the design doc's query finds). */
  traceLines: number
  traceAppLines: number
}

const MESSAGES = {
  gateway: ['request received', 'request completed'],
  app: ['handling request', 'session loaded', 'payment attempt started', 'llm call finished', 'cache miss', 'db query finished'],
  appError: ['payment attempt failed', 'upstream timeout', 'validation failed'],
  worker: ['job picked up', 'job finished', 'job retried', 'email queued'],
}
const ROUTES = ['/api/v1/items/:id', '/api/v1/cart', '/api/v1/checkout', '/api/v1/users/:id', '/api/v1/search', '/healthz']
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE']
const HEX = '0123456789abcdef'

/** The request id of request i: unique (multiplying by an odd number is a bijection mod 2^32). */
export function reqIdOf(i: number): string {
  return `req-${(Math.imul(i + 1, 0x9e3779b1) >>> 0).toString(16).padStart(8, '0')}`
}

function streamKey(service: string, stream: string): string {
  return `${service}/${stream}`
}

/**
 * Yields push batches (streams of `perBatch` consecutive lines) and, once the
 * generator is done, returns the summary.
 */
export function* generateBatches(options: DatasetOptions, subSpanMs: number): Generator<PushStream[], DatasetSummary> {
  const random = mulberry32(options.seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]
  // Random hex to cut padding from: incompressible-ish, like ids and hashes.
  let pool = ''
  for (let i = 0; i < 1 << 16; i++) pool += HEX[Math.floor(random() * 16)]
  const hex = (length: number): string => {
    const at = Math.floor(random() * (pool.length - length))
    return pool.slice(at, at + length)
  }
  const spanNs = BigInt(options.spanMs) * 1_000_000n
  const subEndNs = options.startNs + BigInt(subSpanMs) * 1_000_000n
  // About 4 lines per request: spread the requests evenly over the window.
  const expectedRequests = Math.ceil(options.total / 4)
  const stepNs = spanNs / BigInt(expectedRequests + 16)
  const traceRequest = Math.floor(expectedRequests * 0.75)

  const summary: DatasetSummary = {
    total: 0,
    bytes: 0,
    requests: 0,
    perStream: {},
    subRangeLines: 0,
    traceReqId: '',
    traceLines: 0,
    traceAppLines: 0,
  }
  let batch = new Map<string, PushStream>()
  let inBatch = 0
  const ready: PushStream[][] = []

  const emit = (service: string, stream: string, ts: bigint, fields: Record<string, unknown>, isTrace: boolean): void => {
    const base = JSON.stringify({ ...fields, seq: summary.total })
    // Padding to 280..320 bytes, as pino lines with a few context fields are.
    const want = 280 + Math.floor(random() * 41)
    const padLength = Math.max(8, want - base.length - 10)
    const line = `${base.slice(0, -1)},"pad":"${hex(padLength)}"}`
    const key = streamKey(service, stream)
    const entry = batch.get(key) ?? { stream: { app: APP, env: ENV, service, stream }, values: [] }
    batch.set(key, entry)
    entry.values.push([ts.toString(), line])
    summary.total++
    summary.bytes += line.length
    summary.perStream[key] = (summary.perStream[key] ?? 0) + 1
    if (ts < subEndNs) summary.subRangeLines++
    if (isTrace) {
      summary.traceLines++
      if (service === 'app') summary.traceAppLines++
    }
    if (++inBatch >= options.perBatch) {
      ready.push([...batch.values()])
      batch = new Map()
      inBatch = 0
    }
  }

  for (let i = 0; summary.total < options.total; i++) {
    const reqId = reqIdOf(i)
    const isTrace = i === traceRequest
    if (isTrace) summary.traceReqId = reqId
    summary.requests++
    const userId = `user-${Math.floor(random() * 5000)}`
    const route = pick(ROUTES)
    const method = pick(METHODS)
    let ts = options.startNs + BigInt(i) * stepNs + BigInt(Math.floor(random() * 1_000_000))
    const line = (service: string, level: string, msg: string, extra: Record<string, unknown> = {}) => ({
      level,
      time: Number(ts / 1_000_000n),
      pid: 100 + SERVICES.indexOf(service as (typeof SERVICES)[number]),
      hostname: `${service}-7d9f6b-${service.slice(0, 2)}x4q`,
      reqId,
      userId,
      msg,
      ...extra,
    })
    const next = (maxNs: number) => {
      ts += BigInt(1 + Math.floor(random() * maxNs))
      if (ts >= options.startNs + spanNs) ts = options.startNs + spanNs - 1n
    }
    const remaining = () => options.total - summary.total
    const plan: (() => void)[] = []
    plan.push(() => emit('gateway', 'stdout', ts, line('gateway', 'info', MESSAGES.gateway[0], { method, route }), isTrace))
    const failed = random() < 0.06
    const appLines = 1 + Math.floor(random() * 2)
    for (let k = 0; k < appLines; k++) {
      const last = k === appLines - 1
      if (last && failed) {
        plan.push(() => {
          next(3_000_000)
          emit('app', 'stderr', ts, line('app', 'error', pick(MESSAGES.appError), { err: { type: 'Error', message: 'card declined' } }), isTrace)
        })
      } else {
        plan.push(() => {
          next(3_000_000)
          emit('app', 'stdout', ts, line('app', 'info', pick(MESSAGES.app), { durationMs: Math.floor(random() * 400) }), isTrace)
        })
      }
    }
    if (isTrace || random() < 0.55) {
      plan.push(() => {
        next(5_000_000)
        const level = random() < 0.08 ? 'warn' : 'info'
        emit('worker', level === 'warn' ? 'stderr' : 'stdout', ts, line('worker', level, pick(MESSAGES.worker), { attemptId: `att-${hex(6)}` }), isTrace)
      })
    }
    plan.push(() => {
      next(2_000_000)
      emit(
        'gateway',
        failed ? 'stderr' : 'stdout',
        ts,
        line('gateway', failed ? 'warn' : 'info', MESSAGES.gateway[1], { status: failed ? 502 : 200, responseTimeMs: Math.floor(random() * 900) }),
        isTrace,
      )
    })
    for (const step of plan.slice(0, remaining())) step()
    while (ready.length > 0) yield ready.shift()!
  }
  if (inBatch > 0) yield [...batch.values()]
  return summary
}
