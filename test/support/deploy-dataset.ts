/**
 * Deploys with a before and an after, for the deploy verdict's tests: one app
 * label per scenario (the shared Loki's other tests read its dataset by
 * service exactly), services `app` (pino's level names) and `gateway` (pino's
 * level numbers, 30 and 50), a line a second and one every two seconds, on
 * half-second offsets so that no line sits on a window's edge.
 */
import type { TruthEntry } from './dataset.ts'

export type DeployChange = 'none' | 'double-gateway-errors' | 'new-app-error' | 'silence-gateway'

export interface DeployScenario {
  app: string
  deployedAt: bigint
  windowNs: bigint
  entries: TruthEntry[]
}

const S = 1_000_000_000n
/**
 * Messages of four words or more: Loki's pattern ingester reads a JSON line's
 * msg alone and drops messages of fewer than four tokens.
 */
export const NEW_ERROR_MESSAGE = 'database connection refused by db-1 after 3 retries'
const OLD_ERROR_MESSAGE = 'payment attempt failed: card declined by the issuer'

/** Lines for [deployedAt − window, deployedAt + window), the deploy in the middle, changed after it as `change` says. */
export function deployScenario(app: string, change: DeployChange, end: bigint, windowSeconds = 600): DeployScenario {
  const windowNs = BigInt(windowSeconds) * S
  const deployedAt = end - windowNs
  const start = deployedAt - windowNs
  const entries: TruthEntry[] = []
  const labels = (service: string, stream = 'stdout') => ({ app, env: 'test', service, stream })
  for (let i = 0; i < 2 * windowSeconds; i++) {
    const ts = start + BigInt(i) * S + S / 2n
    const after = ts >= deployedAt
    const time = Number(ts / 1_000_000n)
    const reqId = `req-${app}-${i}`
    // app: an error every 10 s; after a new-app-error deploy, all of them a message never seen before (Loki returns
    // only patterns of 30 lines or more in the range asked: these have 60).
    if (i % 10 === 0) {
      const fresh = change === 'new-app-error' && after
      const fields = fresh
        ? { level: 'error', time, pid: 1, hostname: 'app-1', reqId, msg: NEW_ERROR_MESSAGE, code: 'ECONNREFUSED' }
        : { level: 'error', time, pid: 1, hostname: 'app-1', reqId, msg: OLD_ERROR_MESSAGE, err: 'card declined' }
      entries.push({ labels: labels('app', 'stderr'), ts: ts.toString(), line: JSON.stringify(fields) })
    } else {
      entries.push({
        labels: labels('app'),
        ts: ts.toString(),
        line: JSON.stringify({ level: 'info', time, pid: 1, hostname: 'app-1', reqId, msg: i % 2 ? 'handling the request for checkout' : 'session loaded from the cache' }),
      })
    }
    // gateway: a line every 2 s, an error (pino's 50) every 20 s, every 10 s after a double-gateway-errors deploy.
    if (i % 2 === 1 && !(change === 'silence-gateway' && after)) {
      const errorEvery = change === 'double-gateway-errors' && after ? 10 : 20
      const failed = (i + 1) % errorEvery === 0
      const line = {
        level: failed ? 50 : 30,
        time,
        pid: 1,
        hostname: 'gateway-1',
        reqId,
        msg: failed ? 'upstream failed with status 502' : 'request completed with status 200',
        status: failed ? 502 : 200,
      }
      entries.push({ labels: labels('gateway'), ts: ts.toString(), line: JSON.stringify(line) })
    }
  }
  return { app, deployedAt, windowNs, entries }
}

/** The scenario's entries as push streams, one per label set, in time order. */
export function scenarioStreams(scenario: DeployScenario): { stream: Record<string, string>; values: [string, string][] }[] {
  const streams = new Map<string, { stream: Record<string, string>; values: [string, string][] }>()
  for (const entry of scenario.entries) {
    const key = JSON.stringify(entry.labels)
    if (!streams.has(key)) streams.set(key, { stream: entry.labels, values: [] })
    streams.get(key)!.values.push([entry.ts, entry.line])
  }
  return [...streams.values()]
}

/** The short message a bad deploy brings, its number varying: too few tokens for Loki's pattern ingester. */
export const SHORT_NEW_ERROR = 'db connection refused on pool'

export interface ShortScenarioOptions {
  windowSeconds?: number
  /** The services' first line, this long before the deploy (the window's length: there all along; 0: new after it). */
  startsBeforeDeploySeconds?: number
  /** After the deploy, 40 error lines `db connection refused on pool N` (N from 0 to 6) among app's lines. */
  newError?: boolean
}

/**
 * The stack's app as pino writes it, messages of two or three words, under
 * the service names of the shared dataset (so that they add no label values
 * that other tests count): `app` as a web service (level names) "request received" a second and "upstream call failed" (with
 * an err object) every 5 s, `worker` (level numbers) "job done" every 2 s and
 * "job failed" every 10 s; from `startsBeforeDeploySeconds` before the deploy
 * (a container started then) to the end of the window after it.
 */
export function shortMessageScenario(app: string, end: bigint, options: ShortScenarioOptions = {}): DeployScenario {
  const windowSeconds = options.windowSeconds ?? 300
  const windowNs = BigInt(windowSeconds) * S
  const deployedAt = end - windowNs
  const startsAt = deployedAt - BigInt(options.startsBeforeDeploySeconds ?? windowSeconds) * S
  const entries: TruthEntry[] = []
  const labels = (service: string) => ({ app, env: 'test', service, stream: 'stdout' })
  let fresh = 0
  for (let ts = startsAt + S / 2n, i = 0; ts < end; ts += S, i++) {
    const time = Number(ts / 1_000_000n)
    const after = ts >= deployedAt
    const reqId = `req-${app}-${i}`
    let web: Record<string, unknown> = { level: 'info', time, pid: 1, hostname: 'web-1', reqId, msg: 'request received' }
    if (options.newError && after && i % 7 === 3 && fresh < 40) {
      web = { level: 'error', time, pid: 1, hostname: 'web-1', reqId, msg: `${SHORT_NEW_ERROR} ${fresh++ % 7}` }
    } else if (i % 5 === 0) {
      web = { level: 'error', time, pid: 1, hostname: 'web-1', reqId, err: { type: 'Error', message: `socket hang up after ${i} ms` }, msg: 'upstream call failed' }
    }
    entries.push({ labels: labels('app'), ts: ts.toString(), line: JSON.stringify(web) })
    if (i % 2 === 1) {
      const failed = i % 10 === 1
      const line = { level: failed ? 50 : 30, time, pid: 1, hostname: 'jobs-1', job: `job-${i}`, msg: failed ? 'job failed' : 'job done' }
      entries.push({ labels: labels('worker'), ts: ts.toString(), line: JSON.stringify(line) })
    }
  }
  return { app, deployedAt, windowNs, entries }
}
