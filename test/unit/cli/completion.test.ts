import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  type CompletionSources,
  completeWords,
  completionRequest,
  completionScript,
  connectionFlagsOnLine,
  formatCompletions,
  logqlLiteral,
} from '../../../src/lib/cli/completion.ts'
import { lexLine, type Quote, quoteContinuation, readlineWordStart } from '../../../src/lib/cli/shell-words.ts'
import { PROPERTY_SEED } from '../../support/property-seed.ts'

const asked: string[] = []
const sources: CompletionSources = {
  commands: [
    {
      id: 'query-range',
      flags: [{ name: 'output', char: 'o', options: ['pretty', 'raw', 'jsonl', 'json'] }, { name: 'since' }, { name: 'profile' }, { name: 'forward', boolean: true }],
      logqlArgument: true,
    },
    { id: 'labels', flags: [{ name: 'query' }], logqlArgument: false, labelArgument: true },
    { id: 'ready', flags: [{ name: 'wait' }], logqlArgument: false },
  ],
  profiles: async () => ['dev', 'prod'],
  labelNames: async () => {
    asked.push('names')
    return ['app', 'env', 'service', 'bad name', '0x', 'x$(touch F)', 'On']
  },
  labelValues: async (name) => {
    asked.push(`values ${name}`)
    return name === 'app' ? ['cogni-template', 'billing', 'say "hi"', 'del\u007f c1\u009b'] : []
  },
}

/** What bash would get for `line` (the script's protocol without the first space/nospace line). */
async function complete(line: string): Promise<string[]> {
  const request = completionRequest([line])
  const lexed = lexLine(request.line, {})
  assert.ok(lexed)
  const answer = formatCompletions(
    request,
    lexed,
    await completeWords(
      lexed.words.map((w) => w.value),
      lexed.current.value,
      sources,
    ),
  )
  return answer === '' ? [] : answer.slice(0, -1).split('\n')
}

describe('completeWords', () => {
  test('commands, flags, flag values and profiles', async () => {
    assert.deepEqual(await complete('obs '), ['labels', 'query-range', 'ready'])
    assert.deepEqual(await complete('obs qu'), ['query-range'])
    assert.deepEqual(await complete('obs query-range {a="b"} --s'), ['--since'])
    assert.deepEqual(await complete('obs query-range {a="b"} -o j'), ['jsonl', 'json'])
    assert.deepEqual(await complete('obs query-range --output=j'), ['jsonl', 'json'], 'bash replaces what follows the =')
    assert.deepEqual(await complete('obs query-range {a="b"} --profile '), ['dev', 'prod'])
    assert.deepEqual(await complete('obs nosuch '), [])
  })

  test("inside a selector: label names, then that label's values, as LogQL literals, after what the user typed", async () => {
    assert.deepEqual(await complete(`obs query-range '{`), ['{app=', '{env=', '{service='], 'bash replaces what follows the open quote')
    assert.deepEqual(await complete(`obs query-range '{app="c`), ['{app="cogni-template"'])
    assert.deepEqual(await complete(`obs query-range '{env="test", app="s`), ['{env="test", app="say \\"hi\\""'])
    assert.deepEqual(await complete(`obs query-range '{env="test", app="say \\"`), ['{env="test", app="say \\"hi\\""'], 'an escape typed')
    assert.deepEqual(await complete(`obs query-range '{app="d`), ['{app="del\\u007f c1\\u009b"'], 'DEL and C1 escaped in LogQL')
    assert.deepEqual(await complete(`obs query-range '{app="x"} | json`), [], 'past the selector: nothing')
    assert.deepEqual(await complete('obs labels s'), ['service'])
    assert.deepEqual(await complete(`obs labels --query '{ap`), ['{app='])
    assert.deepEqual(await complete(`obs query-range --forward '{ap`), ['{app='], 'a boolean flag takes no value')
  })

  test('label names that are not label names are never offered; in a selector, neither are LogQL keywords', async () => {
    assert.deepEqual(await complete('obs labels '), ['app', 'env', 'service', 'On'])
    assert.deepEqual(await complete(`obs query-range '{`), ['{app=', '{env=', '{service='])
  })

  test('Loki is asked only where a label can go', async () => {
    asked.length = 0
    await complete('obs ready --w')
    await complete('obs query-range {a="b"} --since ')
    assert.deepEqual(asked, [])
  })
})

describe('the line bash hands over', () => {
  test('lexLine takes quotes off and says which one is open at the cursor', () => {
    assert.deepEqual(lexLine(`obs tail '{app="a b"} |= "x y'`, {}), {
      words: [
        { value: 'obs', known: true },
        { value: 'tail', known: true },
      ],
      current: { value: '{app="a b"} |= "x y', known: true, quote: '', pending: false },
    })
    assert.equal(lexLine('obs tail ', {})?.current.value, '')
    assert.deepEqual(lexLine(`a "b\\"c`, {})?.current, { value: 'b"c', known: true, quote: '"', pending: false })
    assert.deepEqual(lexLine(`a $'b\\x41\\'`, {})?.current, { value: "bA'", known: true, quote: "$'", pending: false })
    assert.equal(lexLine('a "$X" ~/f', { X: 'x', HOME: '/h' })?.words[1].value, 'x')
    assert.equal(lexLine('a "$X" ~/f', { X: 'x', HOME: '/h' })?.current.value, '/h/f')
    assert.equal(lexLine('a $UNSET b', {})?.words[1].known, false)
  })

  test('a trailing backslash, $ or ! is pending; substitutions and operators are not guessed at', () => {
    for (const line of ['a b\\', 'a "b$', 'a b$', 'a "b!', `a $'b\\`, 'a ~']) assert.equal(lexLine(line, {})?.current.pending, true, line)
    for (const line of ['a $(b', 'a "`b', 'a <(b', 'a; b', 'a | b', 'a #b', 'a $((1']) assert.equal(lexLine(line, {}), undefined, line)
  })

  test("readline's completion word, as measured in bash 5.2 under a pty", () => {
    const breaks = ` \t\n"'@><=;|&(:`
    const word = (line: string) => line.slice(readlineWordStart(line, breaks))
    assert.equal(word(`t '{app="x`), '{app="x', 'an open quote: the word starts after it')
    assert.equal(word(`t "{app="x`), '"{app="x', 'quotes closed: the quoted breaks do not count')
    assert.equal(word('t {a=x'), 'x')
    assert.equal(word('t a@b'), '@b', '@ is a special prefix: kept')
    assert.equal(word('t a\\=b'), 'a\\=b', 'an escaped break is not one')
    assert.equal(word('t a"b"=c'), 'c')
    assert.equal(word(`t a'=b'c`), `a'=b'c`)
    assert.equal(word(`t $'a\\'=b`), `$'a\\'=b`)
  })

  test('the request: --shell and --wordbreaks before --, the words after it are never flags', () => {
    assert.deepEqual(completionRequest(['obs qu']), { shell: 'bash', wordbreaks: ` \t\n"'@><=;|&(:`, directive: false, line: 'obs qu' })
    assert.deepEqual(completionRequest(['--shell', 'bash', '--wordbreaks', ' =', '--', 'obs --shell x']), {
      shell: 'bash',
      wordbreaks: ' =',
      directive: true,
      line: 'obs --shell x',
    })
    assert.equal(completionRequest(['--shell', 'zsh', '--', 'obs', 'labels', '--', '']).line, 'obs labels -- ')
  })

  test('connection flags on the line, as resolveSettings takes them', () => {
    const flags = (line: string, env: Record<string, string> = {}) => {
      const lexed = lexLine(line, env)
      assert.ok(lexed)
      return connectionFlagsOnLine(lexed.words)
    }
    assert.deepEqual(flags(`obs labels --addr http://b --org-id=t --header 'A: 1' --header B:2 --tls-skip-verify --retries 2 --since 1h x `), {
      addr: 'http://b',
      'org-id': 't',
      header: ['A: 1', 'B:2'],
      'tls-skip-verify': true,
      retries: 2,
    })
    assert.deepEqual(flags('obs labels --profile "$P" x', { P: 'prod' }), { profile: 'prod' })
    assert.equal(flags('obs labels --profile "$P" x'), undefined, 'an unset variable: not known')
  })
})

describe('quoting a completion for the quoting at the cursor', () => {
  const OPENERS: Record<Quote, string> = { '': '', "'": "'", '"': '"', "$'": "$'" }
  const CLOSERS: Record<Quote, string> = { '': '', "'": "'", '"': '"', "$'": "'" }
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({ unit: fc.constantFrom(...`'"\`$()!\\{},;|&<>*?[]~#= \n\t\x1b\x07\x7f\u009b\u2028\u202e\u00e9\u{1f600}ax`), maxLength: 16 }),
  )
  const cases = fc.sample(fc.tuple(text, fc.constantFrom<Quote>('', "'", '"', "$'"), fc.string({ unit: 'grapheme-ascii', maxLength: 3 })), {
    numRuns: 300,
    seed: PROPERTY_SEED,
  })

  /** Each case as a word: what the user typed (opener + a plain prefix), the continuation, the closing quote. */
  const words = cases.map(([value, quote, typed]) => {
    const prefix = typed.replace(/[^A-Za-z0-9]/g, '')
    return { value: prefix + value.toWellFormed(), word: OPENERS[quote] + prefix + quoteContinuation(value.toWellFormed(), quote) + CLOSERS[quote] }
  })

  for (const shell of ['bash', 'zsh']) {
    test(`${shell} reads every quoted continuation back as the exact text, running nothing`, () => {
      const script = words.map(({ word }) => `printf '%s\\0' ${word}`).join('\n')
      const result = spawnSync(shell, shell === 'zsh' ? ['-f'] : ['--norc'], {
        input: script,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' },
      })
      assert.equal(result.stderr, '')
      assert.deepEqual(
        result.stdout.split('\0').slice(0, -1),
        words.map(({ value }) => value),
      )
    })
  }

  test('no continuation puts a control character in the line', () => {
    for (const { word } of words) assert.doesNotMatch(word, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/)
  })

  test('lexLine reads a continuation back, in the quoting it started in', () => {
    for (const [value, quote] of cases) {
      const lexed = lexLine(`obs ${OPENERS[quote]}${quoteContinuation(value.toWellFormed(), quote)}`, {})
      assert.equal(lexed?.current.value, value.toWellFormed())
      assert.equal(lexed?.current.quote, quote)
    }
  })

  test('a label value as a LogQL literal: no control character, and JSON reads back the value', () => {
    for (const [value] of cases) {
      const literal = logqlLiteral(value)
      assert.doesNotMatch(literal, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/)
      assert.equal(JSON.parse(literal), value.toWellFormed())
    }
  })
})

describe('the scripts', () => {
  test('bash hands obs the line up to the cursor and its word breaks; zsh, its words through compadd, no bashcompinit', () => {
    assert.match(completionScript('bash', 'obs'), /obs __complete --shell bash --wordbreaks "\$COMP_WORDBREAKS" -- "\$line"/)
    assert.match(completionScript('zsh', 'obs'), /compdef _obs obs/)
    assert.doesNotMatch(completionScript('zsh', 'obs'), /bashcompinit|compadd -Q/)
  })
})
