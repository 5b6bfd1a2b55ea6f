/**
 * The fuzz surface of completion (issue 24, Deliver 6): random label names
 * and values, the worst bytes a log line can set, through the completion
 * script into a real bash and zsh. The property: nothing runs (a marker file
 * `touch F` would create stays absent) and the word the shell makes of the
 * completed line is the LogQL the candidate meant, the value read back exact.
 *
 * Two layers: every case through obs's own answer and one shell process that
 * reads the completed words back (fast, OBS_FUZZ_RUNS cases, 400 by default),
 * and fewer cases typed key by key into an interactive shell on a pty, where
 * readline, zle and history expansion take part (OBS_FUZZ_RUNS / 50, at least
 * 20 per shell). OBS_PROPERTY_SEED=random takes a new seed (`npm run fuzz`).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { completionRequest, formatCompletions, logqlLiteral } from '../../src/lib/cli/completion.ts'
import { lexLine, readlineWordStart } from '../../src/lib/cli/shell-words.ts'
import { type LabelServer, startLabelServer } from '../support/label-server.ts'
import { PROPERTY_SEED } from '../support/property-seed.ts'
import { type ShellName, ShellSession } from '../support/pty.ts'

const RUNS = Number(process.env.OBS_FUZZ_RUNS ?? 400)
const TYPED_RUNS = Math.max(20, Math.ceil(RUNS / 50))

/** Pieces of shell syntax, each of which would run `touch F` or break the word if it reached the shell as code. */
const PIECES = [
  "'",
  '"',
  '`',
  '$(touch F)',
  '`touch F`',
  '$',
  '(',
  ')',
  '!',
  '!!',
  '!-1',
  '^',
  '\\',
  '\n',
  '\r',
  '\t',
  '\x1b',
  '\x1b]0;pwned\x07',
  '\x07',
  '\x7f',
  '\u009b',
  '\u2028',
  '\u202e',
  ' ',
  ';touch F;',
  '&&touch F',
  '|touch F',
  '>F',
  '{',
  '}',
  ',',
  '*',
  '~',
  '#',
  '=',
  ':',
  '@',
  'a',
  'é',
  '\u{1f600}',
  "'\\''",
  '\\"',
]
const value = fc.oneof(
  fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 8 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
)
const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,12}$/)
type Quoting = 'single' | 'double' | 'none'
const quoting = fc.constantFrom<Quoting>('single', 'double', 'none')

/** How `{name="` is typed in each quoting. */
function opener(quote: Quoting, name: string): string {
  return quote === 'single' ? `'{${name}="` : quote === 'double' ? `"{${name}=\\"` : `\\{${name}=\\"`
}

/** What to type after a completion to end the selector and the word: } and whatever quote is still open. */
function closer(line: string): string {
  const quote = lexLine(line, {})?.current.quote ?? ''
  return quote === '' ? '\\}' : `}${quote.at(-1)}`
}

const dir = mkdtempSync(join(tmpdir(), 'obs-completion-fuzz-'))
const marker = join(dir, 'F')
after(() => rmSync(dir, { recursive: true, force: true }))

test(`obs's answer, put in the line as readline would, is read back by bash and zsh as the candidate's LogQL (${RUNS} cases, seed ${PROPERTY_SEED})`, () => {
  const cases = fc.sample(fc.tuple(labelName, value, quoting), { numRuns: RUNS, seed: PROPERTY_SEED })
  const words = cases.map(([name, raw, quote]) => {
    const line = `obs query-range ${opener(quote, name)}`
    const request = completionRequest(['--shell', 'bash', '--', line])
    const lexed = lexLine(line, {})
    assert.ok(lexed)
    const meant = `{${name}=${logqlLiteral(raw)}`
    const [directive, text] = formatCompletions(request, lexed, { words: [meant], partial: true }).split('\n')
    assert.equal(directive, 'nospace')
    // readline puts the text in place of its word and, for a single match, closes the quote it found open.
    const start = readlineWordStart(line, request.wordbreaks)
    let completed = line.slice(0, start) + text
    if (quote !== 'none' && start > 0 && line[start - 1] === (quote === 'single' ? "'" : '"')) completed += line[start - 1]
    return { completed: `${completed}${closer(completed)}`, meant: `${meant}}`, value: raw.toWellFormed() }
  })
  for (const shell of ['bash', 'zsh']) {
    rmSync(marker, { force: true })
    const script = words.map(({ completed }) => `printf '%s\\0' ${completed.slice('obs query-range '.length)}`).join('\n')
    const result = spawnSync(shell, shell === 'zsh' ? ['-f'] : ['--norc'], {
      input: script,
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' },
    })
    assert.equal(result.stderr, '', shell)
    assert.ok(!existsSync(marker), `${shell} ran a label value`)
    const got = result.stdout.split('\0').slice(0, -1)
    for (const [i, { meant, value: exact, completed }] of words.entries()) {
      assert.equal(got[i], meant, `${shell}: ${JSON.stringify(completed)}`)
      assert.equal(JSON.parse(got[i].slice(got[i].indexOf('=') + 1, -1)), exact)
    }
  }
})

describe(`typed into an interactive shell on a pty (${TYPED_RUNS} cases per shell, seed ${PROPERTY_SEED})`, () => {
  let server: LabelServer
  before(async () => {
    server = await startLabelServer()
  })
  after(async () => server?.close())

  for (const shell of ['bash', 'zsh'] as ShellName[]) {
    test(`${shell}: Tab then Enter runs nothing, and obs gets the label value exactly`, async () => {
      const session = await ShellSession.start(shell, dir, { LOKI_ADDR: server.addr })
      try {
        await fc.assert(
          fc.asyncProperty(labelName, fc.array(value, { minLength: 1, maxLength: 3 }), quoting, async (name, values, quote) => {
            rmSync(marker, { force: true })
            server.values = { [name]: values }
            session.type(`obs query-range ${opener(quote, name)}\t`)
            const line = await session.line()
            session.type(closer(line))
            const args = await session.enter()
            assert.ok(!existsSync(marker), `${shell} ran a label value: ${JSON.stringify(line)}`)
            // One value: the whole literal. Several: readline or zle inserted what they share, maybe cut mid-escape;
            // then only "nothing ran" holds (the line may be left open, and obs not run).
            if (new Set(values.map((v) => v.toWellFormed())).size === 1) {
              assert.deepEqual(args, ['query-range', `{${name}=${logqlLiteral(values[0])}}`], JSON.stringify(line))
              assert.equal(JSON.parse(args[1].slice(name.length + 2, -1)), values[0].toWellFormed())
            }
          }),
          { numRuns: TYPED_RUNS, seed: PROPERTY_SEED, endOnFailure: true },
        )
      } finally {
        await session.close()
      }
    })
  }
})
