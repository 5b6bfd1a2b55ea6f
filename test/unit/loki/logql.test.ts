import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parser } from '@grafana/lezer-logql'
import { ExitCode, UsageError } from '../../../src/lib/errors.ts'
import { checkLabelName, checkLogQL, LogQLSyntaxError, MAX_QUERY_BYTES, pinnedLabels, quoteLogQL, streamSelector } from '../../../src/lib/loki/logql.ts'

function syntaxError(line: number, column: number, reason?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof LogQLSyntaxError, `expected a LogQLSyntaxError, got ${String(error)}`)
    assert.ok(error instanceof UsageError)
    assert.equal(error.exitCode, ExitCode.usage)
    assert.equal(error.line, line, `line in ${JSON.stringify(error.message)}`)
    assert.equal(error.column, column, `column in ${JSON.stringify(error.message)}`)
    assert.ok(error.message.startsWith(`invalid LogQL at line ${line}, col ${column}: `), error.message)
    if (reason) assert.match(error.message.split('\n')[0], reason)
    return true
  }
}

/** The text of every String node of a parsed query, and whether the tree holds an error. */
function stringNodes(query: string): { strings: string[]; hasError: boolean } {
  const strings: string[] = []
  let hasError = false
  parser.parse(query).iterate({
    enter(ref) {
      if (ref.type.isError) hasError = true
      if (ref.name === 'String') strings.push(query.slice(ref.from, ref.to))
    },
  })
  return { strings, hasError }
}

describe('checkLogQL: valid queries and their kind', () => {
  const cases: [string, 'log' | 'metric'][] = [
    ['{app="cogni-template"}', 'log'],
    ['{app="cogni-template", service="app"}', 'log'],
    ['{app=~"cogni-.+"}', 'log'],
    ['{app="x", env!="prod"}', 'log'],
    ['{app="x"} |= "error"', 'log'],
    ['{app="x"} != "debug" |~ "(?i)timeout" !~ "health"', 'log'],
    ['{app="x"} | json', 'log'],
    ['{app="x"} | json | level="error"', 'log'],
    ['{app="x"} | json | __error__=""', 'log'],
    ['{app="x"} | logfmt | duration > 10s', 'log'],
    ['{app="x"} | json | line_format "{{.msg}}"', 'log'],
    ['{app="x"} | json reqId="reqId" | reqId="abc-123"', 'log'],
    ['{app="x"} |= `C:\\path`', 'log'],
    ['{app="x"}\n  | json\n  | level="error"', 'log'],
    ['rate({app="x"}[5m])', 'metric'],
    ['count_over_time({app="x"} |= "error" [1h])', 'metric'],
    ['sum by (level) (count_over_time({app="x"} | json [5m]))', 'metric'],
    ['sum(rate({app="x"}[5m])) > 2', 'metric'],
    ['topk(3, sum by (app) (rate({app=~".+"}[1m])))', 'metric'],
    ['count_over_time({app="x"}[5m] offset 1h)', 'metric'],
    ['quantile_over_time(0.99, {app="x"} | json | unwrap latency [5m]) by (service)', 'metric'],
    ['vector(1)', 'metric'],
    ['1 + 1', 'metric'],
  ]
  for (const [query, kind] of cases) {
    test(`${JSON.stringify(query)} is a ${kind} query`, () => {
      assert.equal(checkLogQL(query), kind)
    })
  }
})

describe('checkLogQL: syntax errors', () => {
  test('an unclosed selector points just past the end, col 22, with a caret line', () => {
    const query = '{app="cogni-template"'
    assert.throws(() => checkLogQL(query), syntaxError(1, 22, /never closed/))
    try {
      checkLogQL(query)
    } catch (error) {
      const lines = (error as Error).message.split('\n')
      assert.equal(lines.length, 3)
      assert.equal(lines[1], `  ${query}`)
      assert.equal(lines[2], `  ${' '.repeat(21)}^`)
      // The caret sits under column 22 of the echoed query.
      assert.equal(lines[2].indexOf('^') - 2 + 1, 22)
    }
  })

  test('a filter without its string points at the end', () => {
    assert.throws(() => checkLogQL('{app="x"} |='), syntaxError(1, 13, /unexpected end of query/))
  })

  test('an unknown word names the token', () => {
    assert.throws(() => checkLogQL('foo'), syntaxError(1, 1, /unexpected "foo"/))
  })

  test('an error on a later line reports that line and its column', () => {
    const query = '{app="x"}\n| json\n| foo bar'
    assert.throws(() => checkLogQL(query), syntaxError(3, 7, /unexpected "bar"/))
    try {
      checkLogQL(query)
    } catch (error) {
      const lines = (error as Error).message.split('\n')
      assert.equal(lines[1], '  | foo bar')
      assert.equal(lines[2], `  ${' '.repeat(6)}^`)
    }
  })

  test('an unclosed range bracket names the bracket', () => {
    assert.throws(
      () => checkLogQL('rate({app="x"}[5m'),
      (error: unknown) => {
        assert.ok(error instanceof LogQLSyntaxError)
        assert.equal(error.exitCode, ExitCode.usage)
        return true
      },
    )
  })

  test('an empty query is a usage error', () => {
    for (const query of ['', '   ', '\n']) {
      assert.throws(
        () => checkLogQL(query),
        (error: unknown) => {
          assert.ok(error instanceof UsageError)
          assert.equal(error.exitCode, ExitCode.usage)
          assert.match(error.message, /empty/)
          return true
        },
      )
    }
  })

  test('the reason line is a single line', () => {
    for (const query of ['{app="x"', '{app="x"} | json |', 'sum(rate({app="x"}[5m]', '{app="x"} |= "a" bogus']) {
      assert.throws(
        () => checkLogQL(query),
        (error: unknown) => {
          assert.ok(error instanceof LogQLSyntaxError, `${query}: ${String(error)}`)
          const [first] = error.message.split('\n')
          assert.match(first, /^invalid LogQL at line \d+, col \d+: \S/)
          return true
        },
      )
    }
  })
})

describe('checkLogQL: selectors that match everything', () => {
  test('{} is rejected', () => {
    assert.throws(() => checkLogQL('{}'), syntaxError(1, 2))
  })

  for (const query of ['{a=""}', '{a=~".*"}', '{a!="x"}', '{a!~"x"}', '{a="", b=~".*"}', '{a=~"|x"}']) {
    test(`${query} is rejected before anything is sent`, () => {
      assert.throws(() => checkLogQL(query), syntaxError(1, 1, /cannot match an empty value/))
    })
  }

  test('a selective matcher anywhere in the selector is enough', () => {
    assert.equal(checkLogQL('{a="", b="x"}'), 'log')
    assert.equal(checkLogQL('{a=~".+"}'), 'log')
    assert.equal(checkLogQL('{a!="x", b=~"y.*"}'), 'log')
  })

  // The grammar nests Matchers left-recursively: Matchers(Matchers(Matcher), Matcher).
  // Every matcher counts, not only the last one.
  for (const query of ['{app="x", env!="prod"}', '{app="cogni-template", stream!="stderr"}', '{a="x", b=""}', '{a="x", b="y", c=~".*"}']) {
    test(`${query}: a selective matcher before a non-selective one is enough`, () => {
      assert.equal(checkLogQL(query), 'log')
    })
  }

  test('every selector of a metric query is checked', () => {
    assert.throws(() => checkLogQL('rate({a=""}[5m])'), syntaxError(1, 6, /cannot match an empty value/))
    assert.throws(
      () => checkLogQL('sum(rate({app="x"}[5m])) / sum(rate({a=~".*"}[5m]))'),
      (error: unknown) => error instanceof LogQLSyntaxError && error.column === 37,
    )
  })
})

describe('quoteLogQL', () => {
  const samples = [
    '',
    'plain',
    'a"b',
    'a\\b',
    '\\"',
    'back`tick',
    '`',
    'pi|pe',
    '|= "x"',
    '"} or {a="b',
    'new\nline',
    'cr\rlf\n',
    'tab\there',
    '\u0000nul',
    '\u001b[31mred\u001b[0m',
    '\u007f\u0085\u009b',
    '\u2028\u2029',
    'ünïcödé 日本語 🚀',
    '\u202eevil',
    '{{.msg}}',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a line that looks like interpolation, on purpose
    '$x ${y}',
    '\\u0041',
    "it's",
  ]
  for (const value of samples) {
    test(`round-trips ${JSON.stringify(value)}`, () => {
      const literal = quoteLogQL(value)
      const query = `{app="x"} |= ${literal}`
      assert.equal(checkLogQL(query), 'log')
      const { strings, hasError } = stringNodes(query)
      assert.equal(hasError, false)
      assert.equal(strings.length, 2)
      assert.equal(strings[1], literal, 'the whole literal is one String node')
      assert.equal(JSON.parse(strings[1]), value)
    })
  }

  test('round-trips random strings (seeded)', () => {
    let seed = 0x2f6b
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      return seed / 2 ** 32
    }
    const special = ['"', '\\', '`', '|', '\n', '\r', '\t', '{', '}', '\u001b', '\u0000', '=', '~', '!']
    for (let i = 0; i < 2000; i++) {
      let value = ''
      const length = Math.floor(random() * 16)
      for (let j = 0; j < length; j++) {
        const r = random()
        if (r < 0.4) value += special[Math.floor(random() * special.length)]
        else if (r < 0.8) value += String.fromCharCode(32 + Math.floor(random() * 95))
        else value += String.fromCodePoint(0xa0 + Math.floor(random() * 0xd000))
      }
      const literal = quoteLogQL(value)
      const query = `{app="x"} |= ${literal} | json`
      assert.equal(checkLogQL(query), 'log', JSON.stringify(value))
      const { strings, hasError } = stringNodes(query)
      assert.equal(hasError, false, JSON.stringify(value))
      assert.equal(JSON.parse(strings[1]), value)
    }
  })

  test('a quoted value is also safe as a matcher value', () => {
    const value = 'a"b\\c`d|e\nf'
    const query = `{app=${quoteLogQL(value)}}`
    assert.equal(checkLogQL(query), 'log')
    assert.deepEqual(pinnedLabels(query), { app: value })
  })
})

describe('streamSelector and checkLabelName', () => {
  test('builds a selector, skipping empty values', () => {
    assert.equal(streamSelector({ app: 'cogni-template', service: 'app', env: undefined, x: '' }), '{app="cogni-template", service="app"}')
  })

  test('quotes values', () => {
    const selector = streamSelector({ app: 'a"b' })
    assert.equal(selector, '{app="a\\"b"}')
    assert.equal(checkLogQL(selector), 'log')
  })

  test('rejects bad label names', () => {
    for (const name of ['1abc', 'a-b', 'a b', '', 'a"']) {
      assert.throws(
        () => checkLabelName(name),
        (error: unknown) => error instanceof UsageError && error.exitCode === ExitCode.usage,
      )
    }
    assert.equal(checkLabelName('_ok_1'), '_ok_1')
  })
})

describe('pinnedLabels', () => {
  test('returns the = matchers of the only selector', () => {
    assert.deepEqual(pinnedLabels('{app="cogni-template", service="app"} | json'), { app: 'cogni-template', service: 'app' })
  })

  test('leaves out regex and negative matchers', () => {
    assert.deepEqual(pinnedLabels('{app="x", env=~"prod|dev", stream!="stderr", service!~"a.*"}'), { app: 'x' })
  })

  test('unquotes escaped and backtick values', () => {
    assert.deepEqual(pinnedLabels('{app="a\\"b", env=`c\\d`}'), { app: 'a"b', env: 'c\\d' })
  })

  test('a metric query pins nothing', () => {
    assert.deepEqual(pinnedLabels('rate({app="x"}[5m])'), {})
  })

  test('label filters after the selector are not pins', () => {
    assert.deepEqual(pinnedLabels('{app="x"} | json | level="error"'), { app: 'x' })
  })
})

describe('checkLogQL: what the grammar cannot follow is left to Loki', () => {
  test('@lezer/lr still has the parse internals the depth guards are read from', () => {
    const parse = parser.startParse('{app="x"}') as unknown as { bigReductionCount: unknown; stacks: { pos: unknown; stack: unknown }[]; advance(): unknown }
    assert.equal(typeof parse.bigReductionCount, 'number')
    assert.ok(Array.isArray(parse.stacks) && parse.stacks.length > 0)
    assert.equal(typeof parse.stacks[0].pos, 'number')
    assert.ok(Array.isArray(parse.stacks[0].stack))
  })

  test('a genuine error before the grammar loses depth is still refused with its column', () => {
    const deep = `${'('.repeat(3000)}{app="x"}${')'.repeat(3000)}`
    assert.throws(() => checkLogQL(`{app="x"} | bogus ${deep}`), syntaxError(1, 19))
  })

  test(`a query of Loki's ${MAX_QUERY_BYTES} bytes or more is refused, counted in bytes`, () => {
    const query = `{app="${'é'.repeat(MAX_QUERY_BYTES / 2 - 4)}"}`
    assert.throws(
      () => checkLogQL(query),
      (error: unknown) => error instanceof UsageError && /the query is 131072 bytes; Loki refuses queries of 131072 bytes or more/.test(error.message),
    )
    assert.equal(checkLogQL(`{app="${'e'.repeat(MAX_QUERY_BYTES - 10)}"}`), 'log')
  })

  test('label filters side by side are joined by and, as Loki reads them (found by the differential test)', () => {
    assert.equal(checkLogQL('{app="x"} | json | level="error" orlevel="warn" status=~"5.." '), 'log')
    assert.throws(() => checkLogQL('{app="x"} | json | level="error" bogus'), syntaxError(1, 39))
  })

  test('the kind of a query is read from its text: a selector, perhaps in parentheses or after comments, is a log query', () => {
    assert.equal(checkLogQL('# why\n(({app="x"}))'), 'log')
    assert.equal(checkLogQL('((sum(rate({app="x"}[5m]))))'), 'metric')
    assert.equal(checkLogQL('1 + 1'), 'metric')
  })
})

describe('checkLogQL: the caret sits on the column Loki names', () => {
  // Columns as Loki 3.6.2 reports them for these queries (measured on the real server).
  const cases: [string, number, number][] = [
    ['{app="😀"} | bar', 1, 16],
    ['{app="a"}\t| bar', 1, 16],
    ['{app="a"}\n| json\n| level=', 3, 9],
    ['count_over_time({app="a"}[5x])', 1, 26],
    ['sum by (a {app="a"}', 1, 11],
    ['{app="a"} |= "x" or', 1, 20],
  ]
  for (const [query, line, column] of cases) {
    test(`${JSON.stringify(query)}: line ${line}, col ${column}`, () => {
      assert.throws(() => checkLogQL(query), syntaxError(line, column))
    })
  }

  test('an invalid range names the range', () => {
    assert.throws(() => checkLogQL('rate({app="a"}[5x])'), syntaxError(1, 15, /invalid range \[5x\]: a range is a duration such as \[5m\]/))
  })
})
