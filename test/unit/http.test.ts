import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, afterEach, before, describe, test } from 'node:test'
import nock from 'nock'
import { Agent } from 'undici'
import { resolveSettings } from '../../src/lib/config/settings.ts'
import { ExitCode, ObsError, UnreachableError, UsageError } from '../../src/lib/errors.ts'
import { HttpClient, type HttpSettings, maskUrl, type PeerHints, summarizeBody } from '../../src/lib/http.ts'
import { LokiClient } from '../../src/lib/loki/client.ts'
import { oneLine } from '../../src/lib/text.ts'

const ORIGIN = 'http://loki.test:3100'
const PASSWORD = 'pw-Secret-1234'
const TOKEN = 'bearer-Secret-5678'

const NGINX_502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n'
const NGINX_504 =
  '<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n'
const STREAMS_DATA = { resultType: 'streams', result: [{ stream: { app: 'x' }, values: [['1', 'x']] }], stats: {} }
const STREAMS_BODY = JSON.stringify({ status: 'success', data: STREAMS_DATA })

const closers: (() => Promise<void>)[] = []

/** The hints the CLI hands the transport for Loki (config/settings.ts), so the messages below read as users see them. */
const CLI_HINTS: PeerHints = {
  address: '--addr',
  credentials: 'check --username/--password, --bearer-token or --org-id',
  timeout: '--timeout',
  unreachable: 'check --addr and that Loki is running',
  caCert: '--ca-cert',
  skipVerify: '--tls-skip-verify',
}

function settings(overrides: Partial<HttpSettings> = {}): HttpSettings {
  return { baseUrl: ORIGIN, headers: { 'user-agent': 'obs/1.2.3' }, timeoutMs: 2000, retries: 0, peer: 'Loki', hints: CLI_HINTS, ...overrides }
}

function httpClient(overrides: Partial<HttpSettings> = {}): HttpClient {
  const client = new HttpClient(settings(overrides))
  closers.push(() => client.close())
  return client
}

function lokiClient(overrides: Partial<HttpSettings> = {}): LokiClient {
  const client = new LokiClient(settings(overrides))
  closers.push(() => client.close())
  return client
}

/** Awaits a rejection and returns the ObsError, checking its class and exit code. */
async function obsError(promise: Promise<unknown>, exitCode: number): Promise<ObsError> {
  let caught: unknown
  try {
    await promise
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof ObsError, `expected an ObsError, got ${caught instanceof Error ? caught.stack : String(caught)}`)
  assert.equal(caught.exitCode, exitCode, caught.message)
  return caught
}

function assertOneCleanLine(text: string): void {
  assert.equal(/[\r\n]/.test(text), false, `not one line: ${JSON.stringify(text)}`)
  assert.equal(/<\/?[a-z!][^>]*>/i.test(text), false, `holds HTML: ${JSON.stringify(text)}`)
}

function assertNoSecret(text: string): void {
  for (const secret of [PASSWORD, TOKEN, Buffer.from(`admin:${PASSWORD}`).toString('base64')]) {
    assert.equal(text.includes(secret), false, `a secret leaked into: ${text}`)
  }
}

/** Records what nock's interceptors of a scope receive. */
function capture(scope: nock.Scope): Request[] {
  const requests: Request[] = []
  scope.on('request', (req: Request) => requests.push(req))
  return requests
}

interface TestServer {
  url: string
  hits: string[]
}

/** A real HTTP server on 127.0.0.1, for what nock cannot model faithfully. */
async function server(handler: (req: IncomingMessage, res: ServerResponse, hit: number) => void): Promise<TestServer> {
  const hits: string[] = []
  const srv = createServer((req, res) => {
    hits.push(req.url ?? '')
    handler(req, res, hits.length)
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  closers.push(async () => {
    srv.closeAllConnections()
    await new Promise<void>((resolve) => srv.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, hits }
}

before(() => {
  nock.disableNetConnect()
  nock.enableNetConnect('127.0.0.1')
})

after(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  nock.enableNetConnect()
  nock.restore()
})

describe('nock in this setup', () => {
  test("intercepts undici's Agent.request", async () => {
    const scope = nock(ORIGIN).get('/probe').reply(200, 'from nock')
    const agent = new Agent()
    closers.push(() => agent.close())
    const response = await agent.request({ origin: ORIGIN, path: '/probe', method: 'GET' })
    assert.equal(response.statusCode, 200)
    assert.equal(await response.body.text(), 'from nock')
    assert.ok(scope.isDone())
  })
})

describe('HttpClient: requests', () => {
  afterEach(() => nock.cleanAll())

  test('returns status, headers and body; params become the query string', async () => {
    const scope = nock(ORIGIN).get('/loki/api/v1/labels').query({ start: '1', end: '2', query: '{a="b"}' }).reply(200, 'ok', { 'x-answer': 'yes' })
    const response = await httpClient().request('/loki/api/v1/labels', { params: { start: '1', end: '2', query: '{a="b"}', unset: undefined } })
    assert.equal(response.status, 200)
    assert.equal(response.body, 'ok')
    assert.equal(response.headers['x-answer'], 'yes')
    assert.ok(scope.isDone())
  })

  test('a path prefix in the base URL is kept', async () => {
    const scope = nock(ORIGIN).get('/gateway/loki/ready').reply(200, 'ready')
    const client = httpClient({ baseUrl: `${ORIGIN}/gateway/loki` })
    assert.equal((await client.request('/ready')).body, 'ready')
    assert.equal(client.address, `${ORIGIN}/gateway/loki`)
    assert.ok(scope.isDone())
  })

  test('per-request headers and content type are added to the settings headers', async () => {
    const scope = nock(ORIGIN).post('/x', 'payload').reply(204)
    const requests = capture(scope)
    await httpClient({ headers: { 'user-agent': 'obs/1.2.3', 'x-team': 'core' } }).request('/x', {
      method: 'POST',
      body: 'payload',
      contentType: 'text/plain',
      headers: { 'x-once': '1' },
    })
    const headers = requests[0].headers
    assert.equal(headers.get('user-agent'), 'obs/1.2.3')
    assert.equal(headers.get('x-team'), 'core')
    assert.equal(headers.get('x-once'), '1')
    assert.equal(headers.get('content-type'), 'text/plain')
  })

  test('debug lines name method, address, path and outcome, never credentials', async () => {
    nock(ORIGIN).get('/loki/api/v1/labels').query(true).reply(200, '{}')
    const lines: string[] = []
    const client = httpClient({
      headers: { 'user-agent': 'obs/1.2.3', authorization: `Bearer ${TOKEN}` },
      debug: (line) => lines.push(line),
    })
    await client.request('/loki/api/v1/labels', { params: { query: '{a="b"}' } })
    assert.equal(lines.length, 1)
    assert.match(lines[0], /^GET http:\/\/loki\.test:3100\/loki\/api\/v1\/labels -> 200 in \d+ms$/)
    assertNoSecret(lines.join('\n'))
  })
})

describe('LokiClient: the headers obs sends', () => {
  afterEach(() => nock.cleanAll())

  test('User-Agent, X-Scope-OrgID, basic auth, extra headers; categorize-labels with query_range', async () => {
    const resolved = await resolveSettings({
      flags: { addr: ORIGIN, 'org-id': 'tenant-a', username: 'admin', password: PASSWORD, header: ['X-Extra: extra-value'] },
      env: { HOME: '/nonexistent-home', XDG_CONFIG_HOME: '/nonexistent-xdg' },
      cwd: '/',
      version: '1.2.3',
    })
    const client = new LokiClient(resolved.loki)
    closers.push(() => client.close())
    const scope = nock(ORIGIN)
      .get('/loki/api/v1/query_range')
      .query(true)
      .reply(200, STREAMS_BODY)
      .get('/loki/api/v1/query')
      .query(true)
      .reply(200, JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }))
      .get('/loki/api/v1/labels')
      .query(true)
      .reply(200, JSON.stringify({ status: 'success', data: ['app'] }))
    const requests = capture(scope)
    // Times obs sends: its time flags refuse the first 10 s of 1970, which Loki misreads.
    const start = 1_767_225_600_000_000_000n
    await client.queryRange({ query: '{app="x"}', start, end: start + 1n, limit: 10, direction: 'forward' })
    await client.queryInstant({ query: 'sum(rate({app="x"}[5m]))', time: start + 2n })
    assert.deepEqual(await client.labels({ start, end: start + 1n }), ['app'])
    assert.equal(requests.length, 3)
    for (const request of requests) {
      assert.equal(request.headers.get('user-agent'), 'obs/1.2.3')
      assert.equal(request.headers.get('x-scope-orgid'), 'tenant-a')
      assert.equal(request.headers.get('authorization'), `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`)
      assert.equal(request.headers.get('x-extra'), 'extra-value')
    }
    assert.equal(requests[0].headers.get('x-loki-response-encoding-flags'), 'categorize-labels')
    assert.equal(requests[1].headers.get('x-loki-response-encoding-flags'), 'categorize-labels')
    const url = new URL(requests[0].url)
    assert.equal(url.pathname, '/loki/api/v1/query_range')
    assert.deepEqual(Object.fromEntries(url.searchParams), { query: '{app="x"}', start: `${start}`, end: `${start + 1n}`, limit: '10', direction: 'forward' })
  })

  test('a bearer token is sent as Authorization: Bearer', async () => {
    const resolved = await resolveSettings({
      flags: { addr: ORIGIN, 'bearer-token': TOKEN },
      env: { HOME: '/nonexistent-home', XDG_CONFIG_HOME: '/nonexistent-xdg' },
      cwd: '/',
      version: '9.9.9',
    })
    const client = new LokiClient(resolved.loki)
    closers.push(() => client.close())
    const scope = nock(ORIGIN).get('/loki/api/v1/query_range').query(true).reply(200, STREAMS_BODY)
    const requests = capture(scope)
    await client.queryRange({ query: '{app="x"}', start: 1n, end: 2n })
    assert.equal(requests[0].headers.get('authorization'), `Bearer ${TOKEN}`)
    assert.equal(requests[0].headers.get('user-agent'), 'obs/9.9.9')
    assert.equal(requests[0].headers.get('x-scope-orgid'), null)
  })

  test('series sends one match[] per selector', async () => {
    const scope = nock(ORIGIN)
      .get('/loki/api/v1/series')
      .query(true)
      .reply(200, JSON.stringify({ status: 'success', data: [{ app: 'x' }] }))
    const requests = capture(scope)
    assert.deepEqual(await lokiClient().series(['{app="x"}', '{app="y"}'], { start: 1n, end: 2n }), [{ app: 'x' }])
    assert.deepEqual(new URL(requests[0].url).searchParams.getAll('match[]'), ['{app="x"}', '{app="y"}'])
  })
})

// Concurrent, so the waits overlap; each test has its own path.
describe('HttpClient: retries', { concurrency: true }, () => {
  after(() => nock.cleanAll())

  test('429 with Retry-After: 0 is retried at once', async () => {
    const scope = nock(ORIGIN).get('/retry-1').reply(429, 'too many outstanding requests', { 'Retry-After': '0' }).get('/retry-1').reply(200, 'done')
    const lines: string[] = []
    const response = await httpClient({ retries: 2, debug: (line) => lines.push(line) }).request('/retry-1')
    assert.equal(response.body, 'done')
    assert.ok(scope.isDone())
    // The backoff alone would wait at least 400ms.
    assert.ok(lines.includes('retrying in 0ms (attempt 2 of 3)'), lines.join(' | '))
  })

  test('429 with Retry-After in seconds waits that long', async () => {
    const scope = nock(ORIGIN).get('/retry-2').reply(429, 'slow down', { 'Retry-After': '1' }).get('/retry-2').reply(200, 'done')
    const lines: string[] = []
    const started = performance.now()
    await httpClient({ retries: 1, debug: (line) => lines.push(line) }).request('/retry-2')
    const elapsed = performance.now() - started
    assert.ok(scope.isDone())
    assert.ok(elapsed >= 950, `waited only ${elapsed}ms`)
    assert.ok(
      lines.some((line) => line.startsWith('retrying in 1000ms')),
      lines.join('\n'),
    )
  })

  test('429 with Retry-After as an HTTP date in the past retries at once', async () => {
    const past = new Date(Date.now() - 60_000).toUTCString()
    const scope = nock(ORIGIN).get('/retry-3').reply(429, 'x', { 'Retry-After': past }).get('/retry-3').reply(200, 'done')
    const lines: string[] = []
    await httpClient({ retries: 1, debug: (line) => lines.push(line) }).request('/retry-3')
    assert.ok(scope.isDone())
    assert.ok(lines.includes('retrying in 0ms (attempt 2 of 2)'), lines.join(' | '))
  })

  test('429 with Retry-After as a future HTTP date waits until then', async () => {
    // An HTTP date has whole seconds (up to 999 ms cut off) and a busy machine may take a few hundred ms to answer: room for both.
    const future = new Date(Date.now() + 3999).toUTCString()
    const scope = nock(ORIGIN).get('/retry-4').reply(429, 'x', { 'Retry-After': future }).get('/retry-4').reply(200, 'done')
    const lines: string[] = []
    await httpClient({ retries: 1, debug: (line) => lines.push(line) }).request('/retry-4')
    assert.ok(scope.isDone())
    const delay = Number(/retrying in (\d+)ms/.exec(lines.join('\n'))?.[1])
    assert.ok(delay >= 1500 && delay <= 4000, `delay ${delay}ms; ${lines.join(' | ')}`)
  })

  test('429 that persists gives up with exit 3 and says how often it tried', async () => {
    nock(ORIGIN).get('/retry-5').times(2).reply(429, 'too many outstanding requests\n', { 'Retry-After': '0' })
    const error = await obsError(httpClient({ retries: 1 }).request('/retry-5'), ExitCode.unreachable)
    assert.ok(error instanceof UnreachableError)
    assert.match(error.message, /429 Too Many Requests: too many outstanding requests/)
    assert.match(error.message, /gave up after 2 attempts/)
    assertOneCleanLine(error.message)
  })

  test('503 then success: the retry (with backoff) works', async () => {
    const scope = nock(ORIGIN).get('/retry-6').reply(503, 'Ingester not ready').get('/retry-6').reply(200, 'done')
    const started = performance.now()
    assert.equal((await httpClient({ retries: 1 }).request('/retry-6')).body, 'done')
    assert.ok(scope.isDone())
    assert.ok(performance.now() - started >= 350, 'backoff before the retry')
  })

  test('the retries setting is honoured (0 means one attempt)', async () => {
    const scope = nock(ORIGIN).get('/retry-7').reply(503, 'no').get('/retry-7').reply(200, 'never asked')
    await obsError(httpClient({ retries: 0 }).request('/retry-7'), ExitCode.unreachable)
    assert.equal(scope.isDone(), false)
    assert.equal(scope.pendingMocks().length, 1)
  })

  test('a per-request retries override wins over the settings', async () => {
    const scope = nock(ORIGIN).get('/retry-8').reply(503, 'no', { 'Retry-After': '0' }).get('/retry-8').reply(200, 'never asked')
    await obsError(httpClient({ retries: 3 }).request('/retry-8', { retries: 0 }), ExitCode.unreachable)
    assert.equal(scope.pendingMocks().length, 1)
  })

  test('400 is not retried', async () => {
    const scope = nock(ORIGIN).get('/retry-9').reply(400, 'bad').get('/retry-9').reply(200, 'never asked')
    await obsError(httpClient({ retries: 3 }).request('/retry-9'), ExitCode.usage)
    assert.equal(scope.pendingMocks().length, 1)
  })

  test('a POST is not retried after a 503', async () => {
    const scope = nock(ORIGIN).post('/loki/api/v1/push', '{"streams":[]}').reply(503, 'unavailable', { 'Retry-After': '0' }).post('/loki/api/v1/push').reply(204)
    const requests = capture(scope)
    await obsError(httpClient({ retries: 3 }).request('/loki/api/v1/push', { method: 'POST', body: '{"streams":[]}', contentType: 'application/json' }), ExitCode.unreachable)
    assert.equal(requests.length, 1)
    assert.equal(requests[0].headers.get('content-type'), 'application/json')
    assert.equal(scope.pendingMocks().length, 1)
  })

  test('a POST is not retried after a connection reset', async () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
    const scope = nock(ORIGIN).post('/post-11').replyWithError(reset).post('/post-11').reply(204)
    const error = await obsError(httpClient({ retries: 3 }).request('/post-11', { method: 'POST', body: 'x' }), ExitCode.unreachable)
    assert.match(error.message, /connection reset/)
    assert.equal(scope.pendingMocks().length, 1)
  })

  test('a POST marked idempotent (push) is retried', async () => {
    const scope = nock(ORIGIN).post('/push-prefix/loki/api/v1/push').reply(503, 'x', { 'Retry-After': '0' }).post('/push-prefix/loki/api/v1/push').reply(204)
    await lokiClient({ baseUrl: `${ORIGIN}/push-prefix`, retries: 1 }).push([{ stream: { app: 'x' }, values: [['1', 'line']] }])
    assert.ok(scope.isDone())
  })

  test('a connection reset is retried and the retry works', async () => {
    const scope = nock(ORIGIN)
      .get('/retry-reset')
      .replyWithError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
      .get('/retry-reset')
      .reply(200, 'done')
    assert.equal((await httpClient({ retries: 1 }).request('/retry-reset')).body, 'done')
    assert.ok(scope.isDone())
  })

  test('a connection reset in the middle of the body is retried', async () => {
    const srv = await server((_req, res, hit) => {
      if (hit === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
        res.write('{"status":"succ')
        setTimeout(() => res.socket?.destroy(), 10)
        return
      }
      res.end(STREAMS_BODY)
    })
    const client = new LokiClient(settings({ baseUrl: srv.url, retries: 1 }))
    closers.push(() => client.close())
    const data = await client.queryRange({ query: '{app="x"}', start: 1n, end: 2n })
    assert.deepEqual(data, STREAMS_DATA)
    assert.equal(srv.hits.length, 2)
  })
})

describe('HttpClient: errors', () => {
  afterEach(() => nock.cleanAll())

  test("400 with Loki's plain-text parse error passes through as one line, exit 2", async () => {
    nock(ORIGIN).get('/loki/api/v1/query_range').query(true).reply(400, 'parse error at line 1, col 5: syntax error: unexpected IDENTIFIER\n', {
      'Content-Type': 'text/plain; charset=utf-8',
    })
    const error = await obsError(lokiClient().queryRange({ query: '{app="x"}', start: 1n, end: 2n }), ExitCode.usage)
    assert.ok(error instanceof UsageError)
    assert.equal(error.message, 'Loki rejected the request: 400 Bad Request: parse error at line 1, col 5: syntax error: unexpected IDENTIFIER')
  })

  test('400 max entries limit message passes through', async () => {
    nock(ORIGIN).get('/r').reply(400, 'max entries limit per query exceeded, limit > max_entries_limit_per_query (6000 > 5000)')
    const error = await obsError(httpClient().request('/r'), ExitCode.usage)
    assert.match(error.message, /\(6000 > 5000\)$/)
  })

  test('401 is exit 3, says the credentials were refused, and leaks no secret', async () => {
    nock(ORIGIN).get('/r').reply(401, 'no org id\n')
    const client = httpClient({ headers: { 'user-agent': 'obs/1.2.3', authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` } })
    const error = await obsError(client.request('/r'), ExitCode.unreachable)
    assert.match(error.message, /^Loki at http:\/\/loki\.test:3100 refused the credentials: 401 Unauthorized: no org id$/)
    assert.match(error.hint ?? '', /--username/)
    assertNoSecret(error.render())
  })

  test("the hints are the caller's: without any, the transport names no flag of the CLI", async () => {
    nock(ORIGIN).get('/r').reply(401, 'no org id\n')
    const refused = await obsError(httpClient({ hints: undefined }).request('/r'), ExitCode.unreachable)
    assert.equal(refused.hint, 'check the credentials and the tenant')
    const unreachable = await obsError(httpClient({ baseUrl: 'http://127.0.0.1:9', hints: undefined }).request('/r'), ExitCode.unreachable)
    assert.equal(unreachable.hint, 'check the address and that the server is running')
    assert.doesNotMatch(`${refused.render()} ${unreachable.render()}`, /--/)
  })

  test('403 is exit 3 as well', async () => {
    nock(ORIGIN).get('/r').reply(403, 'forbidden')
    const error = await obsError(httpClient({ headers: { authorization: `Bearer ${TOKEN}` } }).request('/r'), ExitCode.unreachable)
    assert.match(error.message, /refused the credentials/)
    assertNoSecret(error.render())
  })

  test('404 names the path and hints at the path prefix', async () => {
    nock(ORIGIN).get('/loki/api/v1/labels').reply(404, '404 page not found\n')
    const error = await obsError(httpClient().request('/loki/api/v1/labels'), ExitCode.unreachable)
    assert.match(error.message, /has no \/loki\/api\/v1\/labels: 404 Not Found: 404 page not found$/)
    assert.match(error.hint ?? '', /prefix/)
  })

  test('502 HTML page from a proxy becomes one line without HTML', async () => {
    nock(ORIGIN).get('/r').reply(502, NGINX_502, { 'Content-Type': 'text/html' })
    const error = await obsError(httpClient().request('/r'), ExitCode.unreachable)
    assertOneCleanLine(error.message)
    assert.match(error.message, /502 Bad Gateway/)
    assert.match(error.message, /proxy/)
    assert.doesNotMatch(error.message, /nginx|center|<html|<title/i)
  })

  test('504 HTML page without a content type is recognised too', async () => {
    nock(ORIGIN).get('/r').reply(504, NGINX_504)
    const error = await obsError(httpClient().request('/r'), ExitCode.unreachable)
    assertOneCleanLine(error.message)
    assert.match(error.message, /504 Gateway Timeout/)
    assert.match(error.message, /proxy/)
  })

  test('502 then 504 pages, retried, still end as one line', async () => {
    nock(ORIGIN).get('/r').reply(502, NGINX_502, { 'Content-Type': 'text/html', 'Retry-After': '0' }).get('/r').reply(504, NGINX_504, { 'Retry-After': '0' })
    const error = await obsError(httpClient({ retries: 1 }).request('/r'), ExitCode.unreachable)
    assertOneCleanLine(error.message)
    assert.match(error.message, /504.*gave up after 2 attempts/)
  })

  test("Loki's own 504 text passes through", async () => {
    nock(ORIGIN)
      .get('/r')
      .reply(
        504,
        'request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed\n',
      )
    const error = await obsError(httpClient().request('/r'), ExitCode.unreachable)
    assert.match(error.message, /answered 504 Gateway Timeout: request timed out, decrease the duration/)
    assertOneCleanLine(error.message)
  })

  test('a JSON error body shows its error field', async () => {
    nock(ORIGIN)
      .get('/r')
      .reply(400, JSON.stringify({ status: 'invalid-query', error: 'parse error at line 1, col 2: syntax error' }))
    const error = await obsError(httpClient().request('/r'), ExitCode.usage)
    assert.equal(error.message, 'Loki rejected the request: 400 Bad Request: parse error at line 1, col 2: syntax error')
  })

  test('a connection reset is exit 3 with a plain reason', async () => {
    nock(ORIGIN)
      .get('/r')
      .replyWithError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
    const error = await obsError(httpClient().request('/r'), ExitCode.unreachable)
    assert.equal(error.message, 'cannot reach Loki at http://loki.test:3100: connection reset (ECONNRESET)')
    assert.match(error.hint ?? '', /--addr/)
  })

  test('a truncated JSON body is exit 3 and says the answer was cut off', async () => {
    nock(ORIGIN).get('/loki/api/v1/query_range').query(true).reply(200, STREAMS_BODY.slice(0, 40))
    const error = await obsError(lokiClient().queryRange({ query: '{app="x"}', start: 1n, end: 2n }), ExitCode.unreachable)
    assert.match(error.message, /not valid JSON \(40 bytes, possibly cut off\)/)
    assertOneCleanLine(error.message)
  })

  test('a success envelope without data is exit 3', async () => {
    nock(ORIGIN)
      .get('/loki/api/v1/labels')
      .query(true)
      .reply(200, JSON.stringify({ status: 'error' }))
    await obsError(lokiClient().labels({ start: 1n, end: 2n }), ExitCode.unreachable)
  })

  test('/ready 503 is an answer, not an error', async () => {
    nock(ORIGIN).get('/ready').reply(503, 'Ingester not ready: waiting for 15s after being ready\n')
    const state = await lokiClient({ retries: 3 }).ready()
    assert.deepEqual(state, { ready: false, status: 503, message: 'Ingester not ready: waiting for 15s after being ready' })
  })
})

describe('HttpClient: against a real socket', () => {
  test('a server slower than the timeout: the error names the timeout', async () => {
    const srv = await server(() => {
      // never answers
    })
    const started = performance.now()
    const client = new LokiClient(settings({ baseUrl: srv.url, timeoutMs: 200, retries: 2 }))
    closers.push(() => client.close())
    const error = await obsError(client.queryRange({ query: '{app="x"}', start: 1n, end: 2n }), ExitCode.unreachable)
    assert.equal(error.message, 'Loki did not answer /loki/api/v1/query_range within the 0.2s timeout')
    assert.match(error.hint ?? '', /--timeout/)
    assert.ok(performance.now() - started < 2000)
  })

  test('a body that stalls after the headers also hits the timeout', async () => {
    const srv = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"status":"success","data":')
    })
    const error = await obsError(httpClient({ baseUrl: srv.url, timeoutMs: 200 }).request('/stall'), ExitCode.unreachable)
    assert.match(error.message, /within the 0\.2s timeout/)
  })

  test('a connection reset in the middle of the body is exit 3, one line', async () => {
    const srv = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      res.write('{"status":"success","data":{"resultType":"str')
      setTimeout(() => res.socket?.destroy(), 10)
    })
    const error = await obsError(httpClient({ baseUrl: srv.url }).request('/cut'), ExitCode.unreachable)
    assert.match(error.message, /^cannot reach Loki at http:\/\/127\.0\.0\.1:\d+: connection closed by the server/)
    assertOneCleanLine(error.message)
  })

  test('a refused connection is exit 3 and names the address', async () => {
    const srv = await server(() => {})
    const closed = srv.url
    await closers.pop()!()
    const error = await obsError(httpClient({ baseUrl: closed }).request('/ready'), ExitCode.unreachable)
    assert.equal(error.message, `cannot reach Loki at ${closed}: connection refused (ECONNREFUSED)`)
  })
})

describe('summarizeBody and oneLine', () => {
  test('plain text is kept, trimmed, on one line', () => {
    assert.equal(summarizeBody(400, 'text/plain', 'parse error\n  at line 1\n'), '400 Bad Request: parse error at line 1')
  })

  test('an empty body gives the status alone', () => {
    assert.equal(summarizeBody(503, undefined, ''), '503 Service Unavailable')
    assert.equal(summarizeBody(599, undefined, ' '), '599 Error')
  })

  test('an HTML page gives its status and a distinct title', () => {
    const text = summarizeBody(502, 'text/html; charset=utf-8', '<!DOCTYPE html><html><head><title>Upstream <b>down</b></title></head><body>x</body></html>')
    assert.equal(text, '502 Bad Gateway (Upstream down), an HTML page: a proxy in front of the server answered')
  })

  test('JSON with error or message uses that field', () => {
    assert.equal(summarizeBody(400, 'application/json', '{"error":"bad\\nthing"}'), '400 Bad Request: bad thing')
    assert.equal(summarizeBody(500, 'application/json', '{"message":"boom"}'), '500 Internal Server Error: boom')
    assert.equal(summarizeBody(500, 'application/json', '{"other":1}'), '500 Internal Server Error: {"other":1}')
  })

  test('control characters, escapes and bidi overrides are removed', () => {
    assert.equal(oneLine('a\u001b[31mred\u001b[0m\u0007b\u202ec\u0000d'), 'a [31mred [0m b c d')
  })

  test('long messages are cut at 400 characters', () => {
    const text = oneLine('x'.repeat(1000))
    assert.equal(text.length, 401)
    assert.ok(text.endsWith('…'))
  })
})

describe('maskUrl', () => {
  const cases: [string, string][] = [
    ['http://loki:3100/prefix', 'http://loki:3100/prefix'],
    ['http://admin:pw@loki:3100', 'http://…@loki:3100'],
    ['http://admin:p/w@loki:3100/x', 'http://…@loki:3100/x'],
    ['http://admin:p?w#x@loki:3100', 'http://…@loki:3100'],
    ['http://admin:p@w@loki:3100', 'http://…@loki:3100'],
    ['admin:p/w@loki:3100', '…@loki:3100'],
    ['https://sso.example.com/login?token=abc&state=1', 'https://sso.example.com/login?…'],
    ['http://loki:3100/#frag', 'http://loki:3100/#…'],
    ['redirected to https://u:p@a.example/x?k=v, then to http://b.example/', 'redirected to https://…@a.example/x?… then to http://b.example/'],
  ]
  for (const [text, masked] of cases) {
    test(`${JSON.stringify(text)} is shown as ${JSON.stringify(masked)}`, () => {
      assert.equal(maskUrl(text), masked)
    })
  }
})

describe('connection refused on this machine', () => {
  /** A port that answered once and then closed. */
  async function closedPort(): Promise<number> {
    const server = createServer((_, res) => res.end('ok'))
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    const { port } = server.address() as AddressInfo
    await new Promise<void>((done) => server.close(() => done()))
    return port
  }

  test('a first connection refused by a loopback address fails at once: a wrong port does not come up by waiting', async () => {
    const port = await closedPort()
    const notices: string[] = []
    const started = performance.now()
    const error = await obsError(httpClient({ baseUrl: `http://127.0.0.1:${port}`, retries: 3, onRetry: (line) => notices.push(line) }).request('/ready'), ExitCode.unreachable)
    assert.match(error.message, /connection refused/)
    assert.doesNotMatch(error.message, /gave up/)
    assert.deepEqual(notices, [])
    assert.ok(performance.now() - started < 1000)
  })

  test('once the server has answered, a refusal is a restart: retried, and each retry told', async () => {
    const server = createServer((_, res) => res.end('ok'))
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    const { port } = server.address() as AddressInfo
    const notices: string[] = []
    const client = httpClient({ baseUrl: `http://127.0.0.1:${port}`, retries: 1, onRetry: (line) => notices.push(line) })
    assert.equal((await client.request('/ready')).body, 'ok')
    server.closeAllConnections()
    await new Promise<void>((done) => server.close(() => done()))
    const error = await obsError(client.request('/ready'), ExitCode.unreachable)
    assert.match(error.message, /connection refused.*gave up after 2 attempts/)
    assert.equal(notices.length, 1)
    assert.match(notices[0], /^Loki: .*connection refused.*; retrying in \d+\.\d s \(attempt 2 of 2\)$/)
  })
})
