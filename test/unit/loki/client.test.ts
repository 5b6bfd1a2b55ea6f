/**
 * The Loki client's own judgement of answers: the limits it reads and learns,
 * and the empty answers it does not take at face value. The integration
 * suites check the same against a real Loki; here are the paths a real Loki
 * cannot be made to take on demand.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, test } from 'node:test'
import nock from 'nock'
import { parse as parseYaml } from 'yaml'
import { ExitCode, ObsError, UsageError } from '../../../src/lib/errors.ts'
import { DEFAULT_QUERY_LIMITS, LimitRefusal, LokiClient, tenantLimits, topLevelScalars } from '../../../src/lib/loki/client.ts'

const ORIGIN = 'http://loki.test:3100'
const FLAG = 'x-loki-response-encoding-flags'
const HOUR = 3_600_000_000_000n

const clients: LokiClient[] = []
function client(): LokiClient {
  const made = new LokiClient({ baseUrl: ORIGIN, headers: {}, timeoutMs: 2000, retries: 0, peer: 'Loki' })
  clients.push(made)
  return made
}

afterEach(async () => {
  nock.cleanAll()
  for (const made of clients.splice(0)) await made.close()
})

function streams(values: [string, string][]): string {
  return JSON.stringify({ status: 'success', data: { resultType: 'streams', result: values.length ? [{ stream: { app: 'x' }, values }] : [] } })
}

/** Loki 3.6.2's /config/tenant/v1/limits, as served (abridged; nested blocks and lists kept). */
const LIMITS_PAGE = `discover_log_levels: false
discover_service_name: []
log_level_fields:
- level
- LEVEL
max_entries_limit_per_query: 5000
max_query_bytes_read: 0B
max_query_length: 30d1h
max_query_series: 500
otlp_config:
  LogAttributes: null
  ResourceAttributes:
    AttributesConfig:
    - Action: index_label
      Attributes:
      - service.name
      Regex: ""
    IgnoreDefaults: false
query_timeout: 1m
retention_period: '0s'
volume_max_series: "1000"
`

describe('tenant limits', () => {
  test("the limits page's top-level scalars, read without a YAML parser, give what a YAML parser gives", () => {
    const scalars = topLevelScalars(LIMITS_PAGE)
    assert.deepEqual(tenantLimits(scalars), tenantLimits(parseYaml(LIMITS_PAGE)))
    assert.deepEqual(tenantLimits(scalars), { maxQueryLengthNs: 721n * HOUR, maxEntriesPerQuery: 5000, maxQuerySeries: 500, queryTimeoutMs: 60_000, source: 'tenant-limits' })
    assert.equal(scalars.retention_period, '0s')
    assert.equal(scalars.volume_max_series, '1000')
    // Nested keys are not top-level limits.
    assert.equal(scalars.IgnoreDefaults, undefined)
    assert.equal(scalars.Regex, undefined)
  })

  test("Loki's YAML: durations with days and years, counts, 0 for no limit", () => {
    assert.deepEqual(tenantLimits({ max_query_length: '30d1h', max_entries_limit_per_query: 1000, max_query_series: 50, query_timeout: '2m' }), {
      maxQueryLengthNs: 721n * HOUR,
      maxEntriesPerQuery: 1000,
      maxQuerySeries: 50,
      queryTimeoutMs: 120_000,
      source: 'tenant-limits',
    })
    assert.equal(tenantLimits({ max_query_length: '0s' }).maxQueryLengthNs, 0n)
    assert.equal(tenantLimits({ max_query_length: '1y' }).maxQueryLengthNs, 365n * 24n * HOUR)
  })

  test('missing or wrong-shaped values fall back to the shipped defaults', () => {
    const { source, ...defaults } = DEFAULT_QUERY_LIMITS
    assert.equal(source, 'defaults')
    assert.deepEqual({ ...tenantLimits({ max_query_length: 5, max_entries_limit_per_query: 'many', query_timeout: 'soon' }), source: 'defaults' }, DEFAULT_QUERY_LIMITS)
    assert.deepEqual(tenantLimits('not a mapping'), DEFAULT_QUERY_LIMITS)
    assert.deepEqual(tenantLimits(null), { ...defaults, source: 'defaults' })
  })

  test('read once from /config/tenant/v1/limits; a Loki without the page gets the defaults', async () => {
    const scope = nock(ORIGIN).get('/config/tenant/v1/limits').once().reply(200, 'max_query_length: 2h\nmax_entries_limit_per_query: 300\n')
    const loki = client()
    assert.equal((await loki.queryLimits()).maxQueryLengthNs, 2n * HOUR)
    assert.equal((await loki.queryLimits()).maxEntriesPerQuery, 300)
    assert.ok(scope.isDone())
    nock(ORIGIN).get('/config/tenant/v1/limits').reply(404, 'page not found')
    assert.deepEqual(await client().queryLimits(), DEFAULT_QUERY_LIMITS)
  })
})

describe('refusals that name a limit', () => {
  test('a query longer than max_query_length teaches the limit', async () => {
    nock(ORIGIN).get('/config/tenant/v1/limits').reply(404)
    nock(ORIGIN).get('/loki/api/v1/query_range').query(true).reply(400, 'the query time range exceeds the limit (query length: 1680h0m0s, limit: 30d1h)\n')
    const loki = client()
    const refusal = await loki.queryRange({ query: '{app="x"}', start: 1n, end: 2n }).catch((error: unknown) => error)
    assert.ok(refusal instanceof LimitRefusal)
    assert.equal(refusal.exitCode, ExitCode.usage)
    assert.deepEqual(refusal.learned, { maxQueryLengthNs: 721n * HOUR })
    assert.equal((await loki.queryLimits()).maxQueryLengthNs, 721n * HOUR)
  })

  test('a limit above max_entries_limit_per_query teaches the largest page', async () => {
    nock(ORIGIN).get('/config/tenant/v1/limits').reply(200, 'max_entries_limit_per_query: 5000\n')
    nock(ORIGIN).get('/loki/api/v1/query_range').query(true).reply(400, 'max entries limit per query exceeded, limit > max_entries_limit_per_query (6000 > 500)\n')
    const loki = client()
    const refusal = await loki.queryRange({ query: '{app="x"}', start: 1n, end: 2n, limit: 6000 }).catch((error: unknown) => error)
    assert.ok(refusal instanceof LimitRefusal)
    assert.deepEqual(refusal.learned, { maxEntriesPerQuery: 500 })
    assert.equal((await loki.queryLimits()).maxEntriesPerQuery, 500)
  })

  test('other 400s stay plain usage errors', async () => {
    nock(ORIGIN).get('/loki/api/v1/query_range').query(true).reply(400, 'parse error at line 1, col 2: syntax error\n')
    const error = await client()
      .queryRange({ query: '{', start: 1n, end: 2n })
      .catch((caught: unknown) => caught)
    assert.ok(error instanceof UsageError && !(error instanceof LimitRefusal))
  })
})

describe('empty answers to log queries are confirmed without the categorize-labels flag', () => {
  test('the error Loki hid behind the flag is what the user gets', async () => {
    const scope = nock(ORIGIN)
      .get('/loki/api/v1/query_range')
      .query(true)
      .matchHeader(FLAG, 'categorize-labels')
      .reply(200, streams([]))
      .get('/loki/api/v1/query_range')
      .query((query) => query.limit === '1')
      .reply(400, 'invalid line template: template: line:1: unclosed action\n')
    const requests: Request[] = []
    scope.on('request', (request: Request) => requests.push(request))
    const error = await client()
      .queryRange({ query: '{app="x"} | line_format "{{.msg"', start: 1n, end: 2n, limit: 100 })
      .catch((caught: unknown) => caught)
    assert.ok(error instanceof UsageError, String(error))
    assert.match(error.message, /^Loki rejected the request: 400 Bad Request: invalid line template/)
    assert.deepEqual(
      requests.map((request) => request.headers.get(FLAG)),
      ['categorize-labels', null],
    )
    assert.ok(scope.isDone())
  })

  test('a truly empty answer stays empty, after one more request', async () => {
    const scope = nock(ORIGIN).get('/loki/api/v1/query_range').twice().query(true).reply(200, streams([]))
    const data = await client().queryRange({ query: '{app="x"}', start: 1n, end: 2n })
    assert.deepEqual(data, { resultType: 'streams', result: [] })
    assert.ok(scope.isDone())
  })

  test('entries without the flag where there were none with it: exit 3, never "no logs"', async () => {
    nock(ORIGIN)
      .get('/loki/api/v1/query_range')
      .query(true)
      .matchHeader(FLAG, 'categorize-labels')
      .reply(200, streams([]))
      .get('/loki/api/v1/query_range')
      .query(true)
      .reply(200, streams([['5', 'a line']]))
    const error = await client()
      .queryRange({ query: '{app="x"}', start: 1n, end: 9n })
      .catch((caught: unknown) => caught)
    assert.ok(error instanceof ObsError)
    assert.equal(error.exitCode, ExitCode.unreachable)
    assert.match(error.message, /hid a failure/)
  })

  test('an answer with entries, or a metric answer, costs one request', async () => {
    const scope = nock(ORIGIN)
      .get('/loki/api/v1/query_range')
      .query(true)
      .reply(200, streams([['5', 'a line']]))
      .get('/loki/api/v1/query_range')
      .query(true)
      .reply(200, JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [] } }))
    const loki = client()
    await loki.queryRange({ query: '{app="x"}', start: 1n, end: 9n })
    await loki.queryRange({ query: 'count_over_time({app="x"}[1m])', start: 1n, end: 9n, step: '1m' })
    assert.ok(scope.isDone())
  })
})

describe('features Loki can switch off (volumes, patterns)', () => {
  const HOUR_RANGE = { start: 1_700_000_000n * 1_000_000_000n, end: 1_700_003_600n * 1_000_000_000n }

  test('a 404 where Loki says its pattern ingester is on is a wrong address or a proxy, exit 3, not "off"', async () => {
    nock(ORIGIN).get('/loki/api/v1/patterns').query(true).reply(404, '')
    nock(ORIGIN)
      .get('/loki/api/v1/drilldown-limits')
      .reply(200, { limits: { volume_enabled: true }, pattern_ingester_enabled: true, version: '3.6.2' })
    await assert.rejects(client().patterns({ query: '{app="x"}', ...HOUR_RANGE, step: '10s' }), (error: ObsError) => {
      assert.equal(error.exitCode, ExitCode.unreachable)
      assert.match(error.message, /has no \/loki\/api\/v1\/patterns although it says patterns are on/)
      return true
    })
  })

  test('a 404 from a Loki that does not say (before 3.6, a proxy) is "off, or not served", exit 1, with the setting', async () => {
    nock(ORIGIN).get('/loki/api/v1/index/volume').query(true).reply(404, 'not found')
    nock(ORIGIN).get('/loki/api/v1/drilldown-limits').reply(404, '404 page not found')
    await assert.rejects(client().volume({ query: '{app="x"}', ...HOUR_RANGE, targetLabels: ['service'] }), (error: ObsError) => {
      assert.equal(error.exitCode, ExitCode.failed)
      assert.match(error.message, /volume_enabled: false\), or this Loki \(or a proxy in front\) does not serve \/loki\/api\/v1\/index\/volume/)
      assert.match(error.hint ?? '', /volume_enabled: true under limits_config/)
      return true
    })
  })

  test('wrong-shaped answers end with one line naming the field, exit 3', async () => {
    nock(ORIGIN)
      .get('/loki/api/v1/patterns')
      .query(true)
      .reply(200, { status: 'success', data: [{ pattern: 'x <_>', samples: [[1_700_000_000, 'three']] }] })
    await assert.rejects(
      client().patterns({ query: '{app="x"}', ...HOUR_RANGE, step: '10s' }),
      /answer to \/loki\/api\/v1\/patterns has the wrong shape: data\[0\]\.samples\[0\]\[1\] is a string, not a number/,
    )
    nock(ORIGIN)
      .get('/loki/api/v1/index/volume')
      .query(true)
      .reply(200, { status: 'success', data: { resultType: 'matrix', result: [] } })
    await assert.rejects(client().volume({ query: '{app="x"}', ...HOUR_RANGE }), /data\.resultType is not one of vector/)
    nock(ORIGIN).get('/loki/api/v1/index/volume').query(true).reply(200, '{"status":"succ')
    await assert.rejects(client().volume({ query: '{app="x"}', ...HOUR_RANGE }), /is not valid JSON/)
  })
})

test("volume asks each range under a cache key of its own (Loki's volume cache prorates merged ranges) and answers Loki's top `limit`", async () => {
  const limits: number[] = []
  const answer = { status: 'success', data: { resultType: 'vector', result: [3, 9, 5].map((v) => ({ metric: { service: `s${v}` }, value: [1, String(v)] })) } }
  nock(ORIGIN)
    .get('/loki/api/v1/index/volume')
    .query((q) => {
      limits.push(Number(q.limit))
      return true
    })
    .times(3)
    .reply(200, answer)
  const at = 1_700_000_000_000_000_000n
  const window = 600_000_000_000n
  const made = client()
  const before = await made.volume({ query: '{app="x"}', start: at - window, end: at, limit: 2 })
  await made.volume({ query: '{app="x"}', start: at, end: at + window, limit: 2 })
  await made.volume({ query: '{app="x"}', start: at - window, end: at, limit: 2 })
  assert.notEqual(limits[0], limits[1], 'the windows before and after a deploy never share a cache key')
  assert.equal(limits[0], limits[2], 'the same range, the same key: answered exactly from the cache')
  assert.ok(
    limits.every((l) => l > 2 && l <= 1000),
    String(limits),
  )
  assert.deepEqual(
    before.map((s) => s.metric.service),
    ['s9', 's5'],
  )
})
