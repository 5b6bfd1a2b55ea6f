/**
 * Completion is inert data: label names and values come from whoever can
 * push a log line, and Tab must insert them as one literal word in a real
 * bash and zsh, in every quoting the user can be in, without running
 * anything, expanding history or sending control characters to the terminal.
 * Completion also asks the Loki and tenant the line names (--addr, --org-id,
 * --profile and the other connection flags), not the default one.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { logqlLiteral } from '../../src/lib/cli/completion.ts'
import { lexLine } from '../../src/lib/cli/shell-words.ts'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { type LabelServer, startLabelServer } from '../support/label-server.ts'
import { pushAll } from '../support/loki.ts'
import { type ShellName, ShellSession } from '../support/pty.ts'

/** Each runs `touch F` (in the shell's directory) if it ever reaches the shell as code. */
const HOSTILE: Record<string, string> = {
  single: `x'$(touch F)'`,
  backtick: '`touch F`',
  double: '"; touch F; "',
  dollar: '$(touch F)',
  newline: 'a\n$(touch F)\ntouch F\n',
  esc: '\x1b]0;pwned\x07',
  bang: '!!$(touch F)!-1',
  backslash: '\\$(touch F)\\',
  c1: '\u009b2J\u007f\u2028\u202e',
  mixed: `'"\`$(touch F)\\'"!'`,
}

/** How each quoting is opened in front of a selector, and how `{name="` is typed in it. */
const OPENERS: Record<string, (name: string) => string> = {
  single: (name) => `'{${name}="`,
  double: (name) => `"{${name}=\\"`,
  none: (name) => `\\{${name}=\\"`,
}

const dir = mkdtempSync(join(tmpdir(), 'obs-completion-'))
const marker = join(dir, 'F')
let server: LabelServer

before(async () => {
  server = await startLabelServer({
    ...Object.fromEntries(Object.entries(HOSTILE).map(([name, value]) => [name, [value]])),
    app: ['hostile'],
    team: [`x'$(touch F)'`],
    many: Object.values(HOSTILE),
  })
})
// Each test starts without the marker, so that one that ran a value fails alone.
beforeEach(() => rmSync(marker, { force: true }))
after(async () => {
  await server.close()
  rmSync(dir, { recursive: true, force: true })
})

/** What to type after a completion to end the selector and the word: } and whatever quote is still open. */
function closer(line: string): string {
  const quote = lexLine(line, {})?.current.quote ?? ''
  // zsh reads a bare } after a quoted word as the end of a block: escape it.
  return quote === '' ? '\\}' : `}${quote.at(-1)}`
}

for (const shell of ['bash', 'zsh'] as ShellName[]) {
  describe(`completion in a real ${shell}`, () => {
    let session: ShellSession
    before(async () => {
      session = await ShellSession.start(shell, dir, { LOKI_ADDR: server.addr })
    })
    after(async () => {
      await session?.close()
    })

    test(`the issue's line: '{app="hostile", team="x + Tab, then Enter, gives obs the value as one word and runs nothing`, async () => {
      session.type(`obs query-range '{app="hostile", team="x\t`)
      const line = await session.line()
      session.type(closer(line))
      const args = await session.enter()
      assert.ok(!existsSync(marker), `${shell} ran the label value: ${line}`)
      assert.deepEqual(args, ['query-range', `{app="hostile", team=${logqlLiteral(`x'$(touch F)'`)}}`], line)
    })

    for (const [quoting, opener] of Object.entries(OPENERS)) {
      test(`every hostile value, typed in ${quoting === 'none' ? 'no' : quoting} quotes, completes into one literal word`, async () => {
        for (const [name, value] of Object.entries(HOSTILE)) {
          session.type(`obs query-range ${opener(name)}\t`)
          const line = await session.line()
          session.type(closer(line))
          const args = await session.enter()
          assert.ok(!existsSync(marker), `${shell} ran ${JSON.stringify(value)}: ${line}`)
          assert.deepEqual(args, ['query-range', `{${name}=${logqlLiteral(value)}}`], `${JSON.stringify(value)}: ${line}`)
          const literal = args[1].slice(`{${name}=`.length, -1)
          assert.equal(JSON.parse(literal), value)
        }
      })
    }

    test('Tab Tab lists hostile values without running them or sending their control characters to the terminal', async () => {
      const before = session.screen().length
      session.type(`obs query-range '{many="\t\t`)
      await session.line()
      await session.cancel()
      const shown = session.screen().slice(before)
      assert.ok(!existsSync(marker), `${shell} ran a value while listing`)
      assert.doesNotMatch(shown, /\x1b\]0;pwned|\u009b|\u2028|\u202e/, 'a control character from Loki reached the terminal')
    })

    test('an unquoted {team="$ + Tab (the shell eats the LogQL quote) inserts nothing that runs', async () => {
      session.type(`obs query-range {dollar="$\t`)
      const line = await session.line()
      await session.cancel()
      assert.ok(!existsSync(marker))
      assert.doesNotMatch(line, /\$\(touch/, line)
    })
  })
}

describe('completion asks the Loki and tenant the line names', () => {
  let other: LabelServer
  before(async () => {
    other = await startLabelServer({ service: ['from-other'] })
  })
  after(async () => other?.close())

  /** The default Loki is `server` (LOKI_ADDR) unless `env` says otherwise. */
  async function complete(line: string, env: Record<string, string> = { LOKI_ADDR: server.addr }, cwd?: string): Promise<string> {
    server.requests.length = 0
    other.requests.length = 0
    // The plain form, `obs __complete LINE`, as the bash script of every version of obs calls it.
    const result = await runObs(['__complete', line], { env, cwd })
    assert.equal(result.code, 0, result.stderr)
    return result.stdout
  }

  test('--addr and --org-id on the line (both spellings)', async () => {
    for (const flags of [`--addr ${other.addr} --org-id tenant-b`, `--addr=${other.addr} --org-id=tenant-b`]) {
      const out = await complete(`obs query-range ${flags} '{service="`)
      assert.match(out, /from-other/)
      assert.equal(server.requests.length, 0, 'the default Loki was asked')
      assert.ok(other.requests.length > 0)
      for (const request of other.requests) assert.equal(request.headers['x-scope-orgid'], 'tenant-b')
    }
  })

  test('credentials, headers and a tenant from a variable on the line', async () => {
    await complete(`obs labels --addr ${other.addr} --bearer-token tok --header 'X-Extra: one' --org-id "$TENANT" s`, { LOKI_ADDR: server.addr, TENANT: 'from-env' })
    assert.ok(other.requests.length > 0)
    const [request] = other.requests
    assert.equal(request.headers.authorization, 'Bearer tok')
    assert.equal(request.headers['x-extra'], 'one')
    assert.equal(request.headers['x-scope-orgid'], 'from-env')
  })

  test('--profile on the line picks that profile', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'obs-completion-profile-'))
    try {
      writeFileSync(
        join(cwd, 'obs.config.yaml'),
        `defaultProfile: main\nprofiles:\n  main:\n    addr: ${server.addr}\n    orgId: tenant-a\n  other:\n    addr: ${other.addr}\n    orgId: tenant-b\n`,
        { mode: 0o600 },
      )
      const out = await complete(`obs query-range --profile other '{service="f`, {}, cwd)
      assert.match(out, /from-other/)
      assert.equal(server.requests.length, 0)
      assert.equal(other.requests[0]?.headers['x-scope-orgid'], 'tenant-b')
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  test('a connection flag whose value obs cannot know (an unset variable): no one is asked', async () => {
    const out = await complete(`obs query-range --org-id "$NOT_SET_ANYWHERE" '{`)
    assert.equal(out, '')
    assert.equal(server.requests.length + other.requests.length, 0)
  })
})

test('label names from Loki that are not label names are not offered', async () => {
  const odd = await startLabelServer({ good_name: ['v'] }, ['bad name', 'x$(touch F)', '0digit', 'dash-ed', 'ok_2'])
  try {
    const bash = await runObs(['__complete', `obs query-range '{`], { env: { LOKI_ADDR: odd.addr } })
    assert.deepEqual(bash.stdout.split('\n'), ['{good_name=', '{ok_2=', ''])
    const zsh = await runObs(['__complete', '--shell', 'zsh', '--', 'obs', 'query-range', `'{`], { env: { LOKI_ADDR: odd.addr } })
    assert.deepEqual(zsh.stdout.split('\0'), ['nospace', '{good_name=', '{ok_2=', ''])
  } finally {
    await odd.close()
  }
})

test('obs completion bash and zsh print valid scripts', async () => {
  for (const shell of ['bash', 'zsh']) {
    const script = await runObs(['completion', shell])
    assert.equal(script.code, 0)
    const check = spawnSync(shell, ['-n'], { input: script.stdout, encoding: 'utf8' })
    assert.equal(check.status, 0, `${shell} -n: ${check.stderr}`)
  }
})

describe('against a real Loki, named by --addr on the line', () => {
  const values = [`completion-x'$(touch F)'`, 'completion-b`touch F`']
  let addr: string
  before(async () => {
    addr = testLoki().addr
    const now = BigInt(Date.now()) * 1_000_000n
    // Only labels and services the dataset has, so that tests listing them exactly still hold.
    await pushAll(addr, [values.map((app) => ({ stream: { app, env: 'test', service: 'app', stream: 'stdout' }, values: [[now.toString(), 'completion test']] }))])
  })

  for (const shell of ['bash', 'zsh'] as ShellName[]) {
    test(`${shell}: a label value Loki stored completes into one literal word, from the Loki --addr names`, async () => {
      // The default Loki (LOKI_ADDR) is the hostile server, which has no app label: only --addr can answer.
      const session = await ShellSession.start(shell, dir, { LOKI_ADDR: server.addr })
      try {
        session.type(`obs query-range --addr ${addr} '{app="completion-x\t`)
        const line = await session.line()
        session.type(closer(line))
        const args = await session.enter()
        assert.ok(!existsSync(marker), `${shell} ran the label value: ${line}`)
        assert.deepEqual(args, ['query-range', '--addr', addr, `{app=${logqlLiteral(values[0])}}`], line)
      } finally {
        await session.close()
      }
    })
  }
})
