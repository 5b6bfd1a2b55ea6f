/**
 * HTTP faults between obs and the shared test Loki, injected by the fault
 * proxy: resets and closes in the middle of a body, dropped connections, a
 * server slower than --timeout, 429 with Retry-After, 502/504 HTML pages from
 * a proxy, truncated JSON, answers of the wrong shape, and server text
 * holding terminal escape sequences.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { testLoki } from '../support/env.ts'
import { type ObsOutput, obs, stderrLines } from '../support/fault-cli.ts'
import { type Fault, type FaultProxy, htmlErrorPage, type ProxiedRequest, startFaultProxy } from '../support/fault-proxy.ts'
import { assertOrdered, assertSameEntries, counters, parseJsonl, toNs } from '../support/fault-truth.ts'

const { addr, dataset } = testLoki()
const ALL = '{app="cogni-template"}'
/** The whole dataset, by explicit bounds (a late run cannot slide past its start). */
const FIRST = dataset.entries.reduce((min, e) => (BigInt(e.ts) < min ? BigInt(e.ts) : min), BigInt(dataset.entries[0].ts))
const LAST = dataset.entries.reduce((max, e) => (BigInt(e.ts) > max ? BigInt(e.ts) : max), 0n)
const EXPORT = ['query-range', ALL, '--from', FIRST.toString(), '--to', (LAST + 1n).toString(), '--limit', '0', '-o', 'jsonl', '--batch', '2000']
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

let faultsSurvived = 0
let faultsInjected = 0
let linesLost = 0

const proxies: FaultProxy[] = []
after(async () => {
  await Promise.all(proxies.map((proxy) => proxy.close()))
})

/** A proxy of its own for each test, so tests can run concurrently. */
async function proxyWith(rule: (request: ProxiedRequest, queryIndex: number) => Fault | undefined): Promise<FaultProxy> {
  const proxy = await startFaultProxy(addr)
  proxies.push(proxy)
  let queries = 0
  proxy.setRule((request) => {
    if (!request.path.endsWith('/query_range')) return undefined
    const fault = rule(request, ++queries)
    if (fault && fault.type !== 'pass') faultsInjected++
    return fault
  })
  return proxy
}

function run(proxy: FaultProxy, args: string[], env: Record<string, string> = {}): Promise<ObsOutput> {
  return obs(args, { env: { LOKI_ADDR: proxy.addr, ...env }, timeoutMs: 60_000 })
}

/** Exit 3 and exactly one line on stderr, without HTML or raw control characters. */
function assertOneCleanLine(result: ObsOutput, code = 3): string {
  assert.equal(result.code, code, result.err)
  const lines = stderrLines(result)
  assert.equal(lines.length, 1, `one line on stderr: ${result.err}`)
  assert.doesNotMatch(lines[0], /<[a-z!/]/i, 'no HTML')
  assert.doesNotMatch(lines[0], RAW_CONTROL, `no raw control characters: ${JSON.stringify(lines[0])}`)
  return lines[0]
}

/** Attempts per distinct request (same path and query string): retries of one window. */
function attemptsPerRequest(proxy: FaultProxy): number[] {
  const counts = new Map<string, number>()
  for (const r of proxy.requests) if (r.path.endsWith('/query_range')) counts.set(r.url.search, (counts.get(r.url.search) ?? 0) + 1)
  return [...counts.values()]
}

function assertExactExport(result: ObsOutput, faults: number): void {
  assert.equal(result.code, 0, result.err)
  assert.equal(result.err, '', 'nothing on stderr')
  const entries = parseJsonl(result.out)
  const comparison = assertSameEntries(entries, dataset.entries)
  linesLost += comparison.missing
  assertOrdered(entries, 'backward')
  faultsSurvived += faults
}

describe('faults in the middle of a paged export are retried and the output stays exact', { concurrency: true }, () => {
  test('connection reset (TCP RST) in the middle of a body, three times (windows fetched ahead, as by default)', async () => {
    const proxy = await proxyWith((_, n) => (n === 2 || n === 5 || n === 9 ? { type: 'reset-mid-body', fraction: 0.4 } : undefined))
    const result = await run(proxy, EXPORT)
    assert.equal(proxy.requests.filter((r) => r.fault === 'reset-mid-body').length, 3)
    assertExactExport(result, 3)
  })

  test('connection reset in the middle of a body, sequential paging (--parallel 1)', async () => {
    const proxy = await proxyWith((_, n) => (n === 3 || n === 7 ? { type: 'reset-mid-body', fraction: 0.8 } : undefined))
    const result = await run(proxy, [...EXPORT, '--parallel', '1'])
    assertExactExport(result, 2)
  })

  test('connection closed (FIN) before the promised Content-Length, twice', async () => {
    const proxy = await proxyWith((_, n) => (n === 1 || n === 4 ? { type: 'close-mid-body', fraction: 0.7 } : undefined))
    const result = await run(proxy, EXPORT)
    assertExactExport(result, 2)
  })

  test('connection dropped before any answer, and 503 "too many outstanding requests"', async () => {
    const proxy = await proxyWith((_, n) => (n === 3 ? { type: 'drop' } : n === 6 ? { type: 'respond', status: 503, body: 'too many outstanding requests\n' } : undefined))
    const result = await run(proxy, EXPORT)
    assertExactExport(result, 2)
  })

  test('429 with Retry-After: 2 is honoured (measured at the proxy), then the export completes', async (t) => {
    const proxy = await proxyWith((_, n) => (n === 2 ? { type: 'respond', status: 429, headers: { 'retry-after': '2' }, body: 'too many outstanding requests' } : undefined))
    // Sequential, so that the refused window is surely asked again rather than re-planned.
    const result = await run(proxy, [...EXPORT, '--parallel', '1'])
    const refused = proxy.requests.find((r) => r.status === 429)!
    const retry = proxy.requests.find((r) => r.n > refused.n && r.url.search === refused.url.search)!
    const waited = retry.at - refused.at
    t.diagnostic(`waited ${Math.round(waited)}ms after Retry-After: 2`)
    assert.ok(waited >= 1950, `waited ${waited}ms, Retry-After asked 2000`)
    assert.ok(waited < 3500, `waited ${waited}ms`)
    assertExactExport(result, 1)
  })

  test('windows fetched ahead, refused with 429 and then not needed, do not keep obs alive after the query', async (t) => {
    // --limit 500 with 4 windows in flight: the newest 500 lines lie in the newest
    // window, so the older windows, refused with Retry-After: 60 (the most obs
    // honours), are abandoned. 60 s, not less: on a loaded machine the export
    // itself may take 10-20 s, and the test must tell that from a wait.
    const middle = FIRST + (LAST - FIRST) / 2n
    const proxy = await proxyWith((request) =>
      BigInt(request.url.searchParams.get('end') ?? '0') <= middle
        ? { type: 'respond', status: 429, headers: { 'retry-after': '60' }, body: 'too many outstanding requests' }
        : undefined,
    )
    const started = performance.now()
    const result = await run(proxy, [
      'query-range',
      ALL,
      '--from',
      FIRST.toString(),
      '--to',
      (LAST + 1n).toString(),
      '--limit',
      '500',
      '--parallel',
      '4',
      '-o',
      'jsonl',
      '--batch',
      '2000',
    ])
    const elapsed = performance.now() - started
    assert.equal(result.code, 0, result.err)
    const newest = [...dataset.entries].sort((a, b) => (BigInt(b.ts) > BigInt(a.ts) ? 1 : BigInt(b.ts) < BigInt(a.ts) ? -1 : 0)).slice(0, 500)
    assert.deepEqual(new Set(parseJsonl(result.out).map((e) => toNs(e.timestamp).toString())), new Set(newest.map((e) => e.ts)))
    const refused = proxy.requests.filter((r) => r.status === 429).length
    t.diagnostic(`${refused} windows refused with Retry-After: 60; obs exited after ${Math.round(elapsed)}ms`)
    assert.ok(refused > 0, 'some windows ahead were refused')
    assert.ok(elapsed < 45_000, `obs exited ${Math.round(elapsed)}ms after it started: it waited out the Retry-After of windows it no longer needed`)
  })

  test('429 with Retry-After as an HTTP date 3 s ahead is honoured', async (t) => {
    const proxy = await proxyWith((_, n) =>
      n === 1 ? { type: 'respond', status: 429, headers: { 'retry-after': new Date(Date.now() + 3000).toUTCString() }, body: 'slow down' } : undefined,
    )
    const result = await run(proxy, ['query-range', ALL, '--from', FIRST.toString(), '--to', (LAST + 1n).toString(), '--limit', '10', '-o', 'jsonl'])
    assert.equal(result.code, 0, result.err)
    assert.equal(parseJsonl(result.out).length, 10)
    const queries = proxy.requests.filter((r) => r.path.endsWith('/query_range'))
    const waited = queries[1].at - queries[0].at
    t.diagnostic(`waited ${Math.round(waited)}ms after a Retry-After date 3 s ahead`)
    // An HTTP date has whole seconds: the wait is 2–3 s.
    assert.ok(waited >= 1900 && waited < 3500, `waited ${waited}ms`)
    faultsSurvived++
  })
})

describe('faults that end the command: one line on stderr, exit 3', { concurrency: true }, () => {
  for (const [status, title] of [
    [502, 'Bad Gateway'],
    [504, 'Gateway Time-out'],
  ] as const) {
    test(`${status} HTML page from a proxy on every attempt: retried, then one line without HTML`, async () => {
      const proxy = await proxyWith(() => ({ type: 'respond', status, headers: { 'content-type': 'text/html' }, body: htmlErrorPage(status, title) }))
      const result = await run(proxy, [...EXPORT, '--retries', '2'])
      const line = assertOneCleanLine(result)
      assert.match(line, new RegExp(`${status}`))
      assert.match(line, /HTML page/)
      assert.match(line, /gave up after 3 attempts/)
      assert.equal(Math.max(...attemptsPerRequest(proxy)), 3, 'the first attempt and two retries')
      assert.equal(result.out, '')
    })
  }

  test("Loki's own 504 text after retries: one line with Loki's message", async () => {
    const proxy = await proxyWith(() => ({
      type: 'respond',
      status: 504,
      body: 'request timed out, decrease the duration of the request or add more label matchers, or increase timeout\n',
    }))
    const line = assertOneCleanLine(await run(proxy, [...EXPORT, '--retries', '1']))
    assert.match(line, /504 Gateway Timeout: request timed out, decrease the duration/)
  })

  test('a server slower than --timeout: the message names the timeout and suggests a narrower query', async () => {
    const proxy = await proxyWith(() => ({ type: 'hang' }))
    const started = performance.now()
    const result = await run(proxy, [...EXPORT, '--timeout', '1s'])
    const elapsed = performance.now() - started
    const line = assertOneCleanLine(result)
    assert.match(line, /1s timeout/)
    assert.match(line, /narrow|shorter range/)
    assert.ok(elapsed < 8000, `gave up after ${elapsed}ms`)
  })

  test('headers in time but a body that never ends: the timeout covers the body too', async () => {
    const proxy = await proxyWith(() => ({ type: 'stall-body' }))
    const line = assertOneCleanLine(await run(proxy, [...EXPORT, '--timeout', '1500ms']))
    assert.match(line, /1\.5s timeout/)
  })

  test('truncated JSON with a matching Content-Length: one clear line, exit 3 (not retried)', async (t) => {
    const proxy = await proxyWith(() => ({ type: 'truncate', fraction: 0.6 }))
    const line = assertOneCleanLine(await run(proxy, EXPORT))
    assert.match(line, /not valid JSON/)
    t.diagnostic(`truncated JSON: ${line}; attempts per window: ${attemptsPerRequest(proxy).join(', ')}`)
  })

  test('truncated JSON on a later page: the pages before it are printed, then one line, exit 3', async () => {
    const proxy = await proxyWith((_, n) => (n === 5 ? { type: 'truncate', fraction: 0.5 } : undefined))
    const result = await run(proxy, EXPORT)
    assertOneCleanLine(result)
    const entries = parseJsonl(result.out)
    assert.ok(entries.length > 0 && entries.length < dataset.entries.length)
  })

  test('nothing listens on the port (a wrong port on this machine): one line naming the address, at once, not after retries', async () => {
    const result = await obs([...EXPORT, '--retries', '3', '--addr', 'http://127.0.0.1:1'])
    const line = assertOneCleanLine(result)
    assert.match(line, /http:\/\/127\.0\.0\.1:1/)
    assert.match(line, /connection refused/)
    assert.doesNotMatch(line, /gave up/)
    assert.ok(result.ms < 5000, `${result.ms} ms`)
  })

  test('a 200 HTML page (a captive portal) instead of JSON: one line, exit 3', async () => {
    const proxy = await proxyWith(() => ({ type: 'respond', status: 200, headers: { 'content-type': 'text/html' }, body: htmlErrorPage(200, 'Sign in') }))
    assertOneCleanLine(await run(proxy, EXPORT))
  })

  test('JSON answers of the wrong shape: one line, exit 3, never "unexpected"', async () => {
    const bodies = [
      'null',
      '[]',
      '{"status":"success"}',
      '{"status":"success","data":{"resultType":"streams","result":null}}',
      '{"status":"success","data":{"resultType":"streams","result":[{"stream":null,"values":[["1","a"]]}]}}',
      '{"status":"success","data":{"resultType":"streams","result":[{"stream":{"a":"b"},"values":null}]}}',
      '{"status":"success","data":{"resultType":"streams","result":[{"stream":{"a":"b"},"values":[[1,2]]}]}}',
    ]
    const failures: string[] = []
    for (const body of bodies) {
      const proxy = await proxyWith(() => ({ type: 'respond', status: 200, headers: { 'content-type': 'application/json' }, body }))
      const result = await run(proxy, EXPORT)
      const lines = stderrLines(result)
      if (result.code !== 3 || lines.length !== 1 || /unexpected/.test(result.err)) failures.push(`${body} -> exit ${result.code}: ${result.err.trim()}`)
    }
    assert.deepEqual(failures, [])
  })
})

/**
 * Errors about the query itself that Loki 3.6 answers with 500 (its
 * evaluator's binary-operation matching, a disabled approx_topk): asked
 * again, the same query fails the same way, so they are bad input, exit 2,
 * Loki's reason and the fix, and the query is sent once, retries allowed.
 */
describe("Loki's errors about the query, answered with 500: exit 2, Loki's reason, sent once", { concurrency: true }, () => {
  const range = ['--from', FIRST.toString(), '--to', (LAST + 1n).toString()]
  for (const [name, args, reason] of [
    [
      'many-to-many on ()',
      ['query-range', `sum by (service) (count_over_time(${ALL}[1m])) / on() count_over_time(${ALL}[1m])`, ...range],
      /many-to-many matching not allowed.*; match on labels that identify one series/,
    ],
    [
      'many-to-one without group_left',
      ['query-range', `count_over_time(${ALL}[1m]) / on(app) sum by (app) (count_over_time(${ALL}[1m]))`, ...range],
      /many-to-one matching must be explicit \(group_left\/group_right\); add group_left/,
    ],
    [
      'many-to-many, instant',
      ['query', `sum by (service) (count_over_time(${ALL}[1h])) / on() count_over_time(${ALL}[1h])`, '--time', (LAST + 1n).toString()],
      /many-to-many matching not allowed/,
    ],
    [
      'approx_topk not enabled',
      ['query-range', `approx_topk(2, sum by (service) (count_over_time(${ALL}[1m])))`, ...range],
      /approx_topk is not enabled.*; use topk, or add approx_topk/,
    ],
  ] as const) {
    test(name, async (t) => {
      const [command, query] = args
      const path = command === 'query' ? '/loki/api/v1/query' : '/loki/api/v1/query_range'
      const direct = await fetch(`${addr}${path}?${new URLSearchParams({ query, start: FIRST.toString(), end: (LAST + 1n).toString(), time: (LAST + 1n).toString() })}`)
      if (direct.status !== 500) return t.skip(`this Loki answers ${direct.status} to it, not 500`)
      const proxy = await startFaultProxy(addr)
      proxies.push(proxy)
      const line = assertOneCleanLine(await run(proxy, [...args, '--retries', '3']), 2)
      assert.match(line, /^error: Loki cannot evaluate the query: /)
      assert.match(line, reason)
      assert.doesNotMatch(line, /retry|persists|Internal Server Error/)
      assert.equal(proxy.requests.filter((r) => r.path === path).length, 1, 'the query is sent once')
    })
  }
})

describe('text from the server never reaches the terminal with raw control characters', { concurrency: true }, () => {
  test('an error body with escape sequences (500): cleaned to one line', async () => {
    const proxy = await proxyWith(() => ({ type: 'respond', status: 500, body: 'boom \u001b[2J\u001b]0;pwned\u0007\r\nsecond line \u202eevil' }))
    const line = assertOneCleanLine(await run(proxy, EXPORT))
    assert.match(line, /500 Internal Server Error: boom/)
  })

  test('a JSON envelope whose status holds escape sequences', async () => {
    const proxy = await proxyWith(() => ({ type: 'respond', status: 200, body: '{"status":"\\u001b[31merror\\u001b]0;pwned\\u0007"}' }))
    assertOneCleanLine(await run(proxy, EXPORT))
  })

  test("/ready's 503 reason with escape sequences, with and without --wait", async () => {
    const proxy = await startFaultProxy(addr)
    proxies.push(proxy)
    proxy.setRule((request) =>
      request.path === '/ready' ? { type: 'respond', status: 503, body: '\u001b]0;pwned\u0007Ingester not ready: \u001b[2Jwaiting for 15s\n' } : undefined,
    )
    for (const args of [['ready'], ['ready', '--wait', '600ms', '--interval', '200ms']]) {
      const result = await obs(args, { env: { LOKI_ADDR: proxy.addr } })
      assert.equal(result.code, 1, result.err)
      assert.match(result.out + result.err, /Ingester not ready/)
      assert.doesNotMatch(result.out, RAW_CONTROL, `stdout of obs ${args.join(' ')}: ${JSON.stringify(result.out)}`)
      assert.doesNotMatch(result.err, RAW_CONTROL, `stderr of obs ${args.join(' ')}: ${JSON.stringify(result.err)}`)
    }
  })
})

test("--addr https:// to the plain-HTTP test Loki: one line naming http://, not OpenSSL's internals, exit 3", async () => {
  const https = addr.replace(/^http:/, 'https:')
  const line = assertOneCleanLine(await obs(['labels', '--addr', https], { timeoutMs: 60_000 }))
  assert.equal(line, `error: Loki at ${https} does not speak TLS (it answered plain HTTP); use http:// in --addr`)
})

test('counts', (t) => {
  t.diagnostic(counters('http-faults', { faultsInjected, faultsSurvived, linesLost }))
})
