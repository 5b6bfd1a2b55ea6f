/**
 * Injection: the queries obs builds from user-supplied request ids and label
 * values never change structure, whatever the value (unicode, quotes,
 * backslashes, backticks, pipes, braces, newlines, controls, lone
 * surrogates). Each built query is parsed with Grafana's LogQL grammar and
 * checked: no error node, exactly one selector, exactly the expected stages,
 * and every literal unquotes (JSON, and Go's rules, which Loki uses) back to
 * exactly the input. A sample is also sent to the real Loki's format_query,
 * whose answer must hold the same values.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { UsageError } from '../../src/lib/errors.ts'
import { traceQuery } from '../../src/lib/incident/trace.ts'
import { checkLogQL, LOGQL_KEYWORDS, quoteLogQL, streamSelector } from '../../src/lib/loki/logql.ts'
import { testLoki } from '../support/env.ts'
import { goUnquoteText, shapeOf } from '../support/fault-logql.ts'
import { counters } from '../support/fault-truth.ts'
import { PROPERTY_SEED } from '../support/property-seed.ts'

/** Characters that break naive quoting, weighted up against the rest of unicode. */
const NASTY = [
  '"',
  '\\',
  '`',
  "'",
  '|',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  '=',
  '~',
  '!',
  ',',
  '\n',
  '\r',
  '\t',
  '\u0000',
  '\u0007',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u2028',
  '\u2029',
  '\u202e',
  '\ufeff',
  '\ud800',
  '\udfff',
  '😀',
  'é',
  '\\u0022',
  '\\"',
  '"}',
  '|=',
  '| json',
  '\\x00',
]
const unit = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)) },
)
const nasty = (minLength = 0) => fc.string({ unit, minLength, maxLength: 40 })

const RUNS = Number(process.env.OBS_PROPERTY_RUNS ?? 3000)
let cases = 0

/** The value a literal must hold: what the input becomes once made well-formed (a lone surrogate cannot be in a log line). */
function unquoted(literal: string): string {
  const json = JSON.parse(literal) as string
  assert.equal(goUnquoteText(literal), json, `Go and JSON read ${literal} alike`)
  return json
}

describe('injection: built queries keep their structure', () => {
  test(`traceQuery(reqId, app): one selector {app=…}, |= id-as-in-JSON, | json, | reqId=id (${RUNS * 2} cases)`, () => {
    fc.assert(
      fc.property(nasty(1), nasty(1), (reqId, app) => {
        cases++
        const query = traceQuery(reqId, app)
        const shape = shapeOf(query)
        assert.equal(shape.errors, 0, `no syntax error in ${query}`)
        assert.equal(shape.selectors, 1)
        assert.equal(shape.selector.length, 1)
        assert.deepEqual([shape.selector[0].name, shape.selector[0].op], ['app', '='])
        assert.equal(unquoted(shape.selector[0].literal), app.toWellFormed())
        assert.deepEqual(
          shape.stages.map((s) => [s.kind, s.kind === 'label' ? `${s.name}${s.op}` : s.op]),
          [
            ['line', '|='],
            ['parser', 'json'],
            ['label', 'reqId='],
          ],
        )
        // The line filter holds the id as it appears inside a JSON string.
        assert.equal(unquoted(shape.stages[0].literal!), JSON.stringify(reqId).slice(1, -1))
        assert.equal(unquoted(shape.stages[2].literal!), reqId.toWellFormed())
        if (reqId.isWellFormed()) assert.equal(unquoted(shape.stages[2].literal!), reqId, 'exactly the input')
        assert.equal(checkLogQL(query), 'log')
      }),
      { numRuns: RUNS * 2 },
    )
  })

  test(`streamSelector(labels): one selector, the matchers in order, values exact; bad names are a UsageError (${RUNS} cases)`, () => {
    // The grammar mis-reads these two label names (a test below); they cannot serve as its oracle here.
    const name = fc.oneof(fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,12}$/), nasty(1)).filter((n) => n !== 'constructor' && n !== '__proto__')
    fc.assert(
      fc.property(fc.dictionary(name, fc.option(nasty(), { nil: undefined }), { minKeys: 1, maxKeys: 5 }), (labels) => {
        cases++
        const kept = Object.entries(labels).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
        let selector: string
        try {
          selector = streamSelector(labels)
        } catch (error) {
          assert.ok(error instanceof UsageError, `only a UsageError, got ${String(error)}`)
          assert.ok(
            kept.some(([n]) => !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(n) || LOGQL_KEYWORDS.has(n.toLowerCase())),
            'thrown only for a bad label name',
          )
          return
        }
        if (kept.length === 0) {
          assert.equal(selector, '{}')
          return
        }
        const shape = shapeOf(selector)
        assert.equal(shape.errors, 0, selector)
        assert.equal(shape.selectors, 1)
        assert.deepEqual(shape.stages, [])
        assert.deepEqual(
          shape.selector.map((m) => [m.name, m.op, unquoted(m.literal)]),
          kept.map(([n, v]) => [n, '=', v.toWellFormed()]),
        )
      }),
      { numRuns: RUNS },
    )
  })

  test(`quoteLogQL(value) as a matcher, a line filter and a regex filter: one literal holding exactly the value (${RUNS * 2} cases)`, () => {
    fc.assert(
      fc.property(nasty(), fc.constantFrom('|=', '!=', '|~', '!~'), (value, op) => {
        cases++
        const quoted = quoteLogQL(value)
        assert.match(quoted, /^"[^\n\r]*"$/s, 'one line, double-quoted')
        assert.doesNotMatch(quoted, /\\ud[89a-f][0-9a-f]{2}/i, 'no surrogate escape, which Loki refuses')
        assert.equal(unquoted(quoted), value.toWellFormed())
        const query = `{job="x", a=${quoted}} ${op} ${quoted} | b=${quoted}`
        const shape = shapeOf(query)
        assert.equal(shape.errors, 0, query)
        assert.equal(shape.selectors, 1)
        assert.deepEqual(
          shape.selector.map((m) => m.name),
          ['job', 'a'],
        )
        assert.equal(unquoted(shape.selector[1].literal), value.toWellFormed())
        assert.equal(shape.stages.length, 2)
        assert.equal(shape.stages[0].op, op)
        assert.equal(unquoted(shape.stages[0].literal!), value.toWellFormed())
        assert.equal(unquoted(shape.stages[1].literal!), value.toWellFormed())
      }),
      { numRuns: RUNS * 2 },
    )
  })

  test("the label names obs refuses as LogQL keywords are exactly those Loki's parser cannot take in a selector (format_query)", async () => {
    const { addr } = testLoki()
    const accepts = async (name: string) => (await fetch(`${addr}/loki/api/v1/format_query?query=${encodeURIComponent(`{${name}="x"}`)}`)).status === 200
    for (const keyword of LOGQL_KEYWORDS) {
      for (const spelling of [keyword, keyword.toUpperCase()]) {
        assert.equal(await accepts(spelling), false, `Loki refuses {${spelling}="x"}`)
        assert.throws(() => streamSelector({ [spelling]: 'x' }), /is a LogQL keyword/)
      }
    }
    // Function names are keywords only before "(": as label names they are fine.
    for (const name of ['ip', 'label_replace', 'rate', 'sum', 'strict', 'app', 'onion', 'by_service']) {
      assert.equal(await accepts(name), true, `Loki accepts {${name}="x"}`)
      assert.equal(streamSelector({ [name]: 'x' }), `{${name}="x"}`)
    }
  })

  test('the real Loki parses sampled trace queries to the same values (format_query)', async (t) => {
    const { addr } = testLoki()
    const samples = fc.sample(fc.tuple(nasty(1), nasty(1)), { numRuns: 150, seed: 4242 })
    const mismatches: string[] = []
    for (const [reqId, app] of samples) {
      cases++
      const query = traceQuery(reqId, app)
      const response = await fetch(`${addr}/loki/api/v1/format_query?query=${encodeURIComponent(query)}`)
      const answer = (await response.json()) as { status: string; data?: string; error?: string }
      if (response.status !== 200 || answer.status !== 'success' || answer.data === undefined) {
        mismatches.push(`${JSON.stringify(query)}: ${response.status} ${answer.error ?? ''}`)
        continue
      }
      const shape = shapeOf(answer.data)
      const got = {
        errors: shape.errors,
        app: shape.selector.map((m) => goUnquoteText(m.literal)),
        stages: shape.stages.map((s) => `${s.kind}:${s.name ?? ''}${s.op}:${s.literal === undefined ? '' : goUnquoteText(s.literal)}`),
      }
      const want = {
        errors: 0,
        app: [app.toWellFormed()],
        stages: [`line:|=:${JSON.stringify(reqId).slice(1, -1)}`, 'parser:json:', `label:reqId=:${reqId.toWellFormed()}`],
      }
      try {
        assert.deepEqual(got, want)
      } catch {
        mismatches.push(`${JSON.stringify(query)} -> Loki ${JSON.stringify(answer.data)}`)
      }
    }
    t.diagnostic(`${samples.length - mismatches.length} of ${samples.length} sampled queries read back identically by Loki`)
    assert.deepEqual(mismatches, [])
  })
})

describe('the LogQL check refuses nothing Loki accepts', () => {
  const VALID = [
    '{app="x"} |= `a"b`',
    '{app="x"} |~ "(?i)err" != "debug" !~ "x+"',
    '{app="x"} |= "a" or "b"',
    '{app="x"} |> "<_> error <_>"',
    '{app="x"} !> "<_> ok"',
    '{app="x"} | logfmt --strict --keep-empty',
    '{app="x"} | json first="a.b", second="c[0]"',
    '{app="x"} | pattern "<ip> - <_> <status>"',
    '{app="x"} | regexp "(?P<x>\\\\d+)"',
    '{app="x"} | unpack',
    '{app="x"} | line_format "{{.msg}} {{ .level | upper }}"',
    '{app="x"} | label_format lvl=level, x="{{.y}}"',
    '{app="x"} | drop a, b="c"',
    '{app="x"} | keep a, b',
    '{app="x"} | decolorize',
    '{app="x"} | addr = ip("10.0.0.0/8")',
    '{app="x"} | json | size > 10KB',
    '{app="x"} | json | latency >= 250ms or status >= 500',
    '{app="x"} | json | level="error" and (a="b" or c!="d")',
    'sum by (level) (rate({app="x"} | json [5m])) > 0',
    'topk(5, sum by (service) (count_over_time({app="x"}[5m])))',
    'quantile_over_time(0.99, {app="x"} | json | unwrap latency [5m]) by (service)',
    'absent_over_time({app="x"}[5m])',
    'label_replace(rate({app="x"}[1m]), "foo", "$1", "service", "(.*)")',
    'count_over_time({app="x"}[5m] offset 1h)',
    'sum without (pod) (rate({app="x"}[5m]))',
    'sort_desc(sum by (a) (rate({app="x"}[1m])))',
    '{app="x"} # a comment',
    '{app="x"}\n  | json\n  | level="error"',
    'sum(rate({app="x"} | json | unwrap bytes(size) | __error__="" [5m]))',
    'approx_topk(3, sum by (a) (rate({app="x"}[1m])))',
    'rate({app="x"}[5m]) / on() group_left vector(2)',
    'avg_over_time({app="x"} | logfmt | unwrap duration(d) [5m])',
    '{app="x"} |= ip("192.168.0.1")',
    // Label names that are also names of JavaScript's Object.prototype.
    '{constructor="x"}',
    '{__proto__="x"}',
    '{app="x"} | json | constructor="y"',
    '{app="x"} | json | __proto__="y"',
    '{toString="x", hasOwnProperty="y"}',
  ]

  test(`${VALID.length} queries Loki's own parser accepts (format_query) pass obs's check`, async () => {
    const { addr } = testLoki()
    const refused: string[] = []
    for (const query of VALID) {
      cases++
      const response = await fetch(`${addr}/loki/api/v1/format_query?query=${encodeURIComponent(query)}`)
      assert.equal(response.status, 200, `Loki accepts ${query}: ${await response.text()}`)
      try {
        checkLogQL(query)
      } catch (error) {
        refused.push(`${JSON.stringify(query)}: ${(error as Error).message.split('\n')[0]}`)
      }
    }
    assert.deepEqual(refused, [])
  })
})

test('counts', (t) => {
  t.diagnostic(counters('injection', { seed: PROPERTY_SEED, propertyCases: cases }))
})
