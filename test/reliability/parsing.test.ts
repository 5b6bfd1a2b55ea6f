/**
 * Parsing that scales: the LogQL pre-check passes every long query the real
 * Loki accepts (hundreds or thousands of `or` terms, chained stages, binary
 * operators, matchers, deep nesting, up to Loki's own 128 KiB limit), and
 * refuses with Loki's column where both refuse; an answer with a 40 MB entry
 * is parsed in linear time, well inside the request timeout.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import '../support/property-seed.ts'
import { AnswerParser } from '../../src/lib/loki/answer-parser.ts'
import { checkLogQL, LogQLSyntaxError, MAX_QUERY_BYTES, type QueryKind } from '../../src/lib/loki/logql.ts'
import { testLoki } from '../support/env.ts'
import { obs } from '../support/fault-cli.ts'
import { counters } from '../support/fault-truth.ts'

const { addr } = testLoki()

/** Loki's verdict on a query: its 400 text, or undefined when it ran it. A minute in 2001 holds no data, so it runs fast. */
async function lokiRefusal(query: string): Promise<string | undefined> {
  const response = await fetch(`${addr}/loki/api/v1/query_range`, {
    method: 'POST',
    body: new URLSearchParams({ query, start: '1000000000', end: '1000000060', limit: '1', step: '60' }),
    signal: AbortSignal.timeout(60_000),
  })
  const text = await response.text()
  if (response.status === 200) return undefined
  assert.equal(response.status, 400, `Loki's answer to a ${query.length}-character query: ${response.status} ${text.slice(0, 200)}`)
  return text.trim()
}

/**
 * Long queries of each kind that tripped the grammar's depth guards, at n
 * repetitions: 300, 3000 and the most that fit Loki's size limit, unless
 * Loki bounds them otherwise.
 */
const LONG: Record<string, { kind: QueryKind; make: (n: number) => string; sizes?: number[] }> = {
  'line filter or-terms': { kind: 'log', make: (n) => `{app="a"} |= "x"${' or "y"'.repeat(n)}` },
  'label filter or-terms': { kind: 'log', make: (n) => `{app="a"} | json | level="a"${' or level="b"'.repeat(n)}` },
  'label filter and-terms': { kind: 'log', make: (n) => `{app="a"} | json | level="a"${' and level!="b"'.repeat(n)}` },
  'chained line filters': { kind: 'log', make: (n) => `{app="a"}${' |= "x"'.repeat(n)}` },
  'chained parsers': { kind: 'log', make: (n) => `{app="a"}${' | json'.repeat(n)}` },
  'nested parentheses': { kind: 'log', make: (n) => `${'('.repeat(n)}{app="a"}${')'.repeat(n)}` },
  'nested label filter parentheses': { kind: 'log', make: (n) => `{app="a"} | json | ${'('.repeat(n)}level="a"${')'.repeat(n)}` },
  // Loki takes seconds on the deepest aggregations; a few thousand levels make the point.
  'nested aggregations': { kind: 'metric', make: (n) => `${'sum('.repeat(n)}count_over_time({app="a"}[5m])${')'.repeat(n)}`, sizes: [300, 3000] },
  'binary operators': { kind: 'metric', make: (n) => Array.from({ length: n + 1 }, () => 'count_over_time({app="a"}[5m])').join(' + ') },
  // Loki allows 1000 matchers per query (max streams matchers per query).
  matchers: { kind: 'log', make: (n) => `{${Array.from({ length: n }, (_, i) => `a${i}="x"`).join(',')}}`, sizes: [300, 1000] },
}

/** The largest n whose query Loki still takes (it refuses MAX_QUERY_BYTES and more). */
function largest(make: (n: number) => string): number {
  const fits = (n: number) => Buffer.byteLength(make(n)) < MAX_QUERY_BYTES
  let n = 1
  while (fits(n * 2)) n *= 2
  for (let step = n / 2; step >= 1; step /= 2) if (fits(n + step)) n += step
  return n
}

let longCases = 0
let mutationCases = 0
let columnAgreements = 0
const columnDisagreements: string[] = []

describe('the LogQL pre-check passes every long query Loki 3.6.2 accepts', { concurrency: 2 }, () => {
  for (const [name, { kind, make, sizes = [300, 3000, largest(make)] }] of Object.entries(LONG)) {
    test(`${name}: ${sizes.join(', ')} repetitions`, async () => {
      for (const n of sizes) {
        const query = make(n)
        longCases++
        assert.equal(await lokiRefusal(query), undefined, `Loki accepts ${name} × ${n}`)
        assert.equal(checkLogQL(query), kind, `obs accepts ${name} × ${n} (${query.length} characters) as a ${kind} query`)
      }
    })
  }

  test('through the CLI: a 3000-term or-chain runs, exit 0', async () => {
    const result = await obs(['query-range', LONG['line filter or-terms'].make(3000), '--from', '1000000000', '--to', '1000000060', '--addr', addr])
    assert.equal(result.code, 0, result.err)
    assert.equal(result.err, '')
  })
})

describe('where obs refuses, Loki refuses too, at the same column', () => {
  const BASES = [
    '{app="cogni-template", env!="prod"} |= "error" != "debug" |~ "(?i)time(out)?" | json | level="error" or level=~"warn|fatal"',
    'sum by (service, level) (count_over_time({app="cogni-template"} | json | __error__="" [5m]))',
    'topk(3, sum by (app) (rate({app=~".+"} | logfmt | duration > 10s and status >= 500 [1m]))) > 2',
    '{app="x"}\n  | json reqId="reqId"\n  | line_format "{{.msg}}"\n  | label_format svc=service',
    'quantile_over_time(0.99, {app="x"} | json | unwrap latency_ms [5m]) by (service) offset 1h',
    'sum(rate({app="x"}[5m])) / on (app) group_left sum(rate({app="x"} |= "err" [5m]))',
  ]
  const TOKENS = ['(', ')', '{', '}', '[', ']', ',', '|', '|=', '=', '"', '`', ' or ', ' and ', 'by', 'sum', '5m', '1', 'x', ' ', '\n', '😀', '#c\n', '+', '!', '~']
  const mutated = fc
    .tuple(fc.constantFrom(...BASES), fc.nat(), fc.constantFrom('cut', 'insert', 'delete'), fc.constantFrom(...TOKENS))
    .map(([base, position, edit, token]) => {
      const at = position % (base.length + 1)
      if (edit === 'cut') return base.slice(0, at)
      return edit === 'insert' ? base.slice(0, at) + token + base.slice(at) : base.slice(0, at) + base.slice(at + 1)
    })
    .filter((query) => query.trim() !== '')

  test('mutations of real queries: never a refusal of what Loki accepts', async () => {
    const wrongRefusals: string[] = []
    for (const query of fc.sample(mutated, { numRuns: Number(process.env.OBS_PROPERTY_RUNS ?? 300), seed: 12 })) {
      mutationCases++
      let refusal: unknown
      try {
        checkLogQL(query)
      } catch (error) {
        refusal = error
      }
      const loki = await lokiRefusal(query)
      if (loki === undefined) {
        if (refusal) wrongRefusals.push(`${JSON.stringify(query)}: ${(refusal as Error).message.split('\n')[0]}`)
        continue
      }
      const position = /parse error at line (\d+), col (\d+): syntax error/.exec(loki)
      if (!(refusal instanceof LogQLSyntaxError) || !position) continue
      // Loki says line 0 for errors its lexer finds; the column is still right.
      const sameLine = position[1] === '0' || Number(position[1]) === refusal.line
      if (sameLine && Number(position[2]) === refusal.column) columnAgreements++
      else columnDisagreements.push(`${JSON.stringify(query)}: obs line ${refusal.line} col ${refusal.column}, Loki ${loki}`)
    }
    assert.deepEqual(wrongRefusals, [])
  })
})

describe('an answer with one 40 MB entry', () => {
  const line = 'x'.repeat(40 * 1024 * 1024)
  const body = JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [{ stream: { app: 'a' }, values: [['1700000000000000000', line]] }], stats: {} } })

  test('parses in linear time: 16 KB chunks in well under a second per 40 MB (37.7 s before)', () => {
    const started = performance.now()
    const parser = new AnswerParser()
    for (let i = 0; i < body.length; i += 16_384) parser.write(body.slice(i, i + 16_384))
    const answer = parser.end() as { data: { result: { values: [string, string][] }[] } }
    const seconds = (performance.now() - started) / 1000
    assert.equal(answer.data.result[0].values[0][1].length, line.length)
    // Generous for a loaded 2-core machine; the quadratic parser needed 37.7 s here.
    assert.ok(seconds < 5, `${seconds.toFixed(2)} s`)
  })

  test('through the CLI, from a server that answers at once: printed whole, exit 0', async () => {
    // Only the query is answered; the limits page is missing, as on many proxies.
    const server = createServer((request, response) => {
      if (request.url?.startsWith('/loki/api/v1/query_range')) response.writeHead(200, { 'content-type': 'application/json' }).end(body)
      else response.writeHead(404).end()
    })
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening))
    try {
      const fake = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const result = await obs(['query-range', '{app="a"}', '--from', '1699999999', '--to', '1700000001', '-o', 'raw', '--addr', fake, '--timeout', '20s'], { timeoutMs: 60_000 })
      assert.equal(result.code, 0, result.err)
      assert.equal(result.stdout.length, line.length + 1)
    } finally {
      server.closeAllConnections()
      await new Promise((closed) => server.close(closed))
    }
  })
})

test('counts', (t) => {
  t.diagnostic(counters('parsing', { longCases, mutationCases, columnAgreements, columnDisagreements: columnDisagreements.length }))
  for (const disagreement of columnDisagreements) t.diagnostic(`column differs: ${disagreement}`)
})
