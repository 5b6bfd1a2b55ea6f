/**
 * Secrets never appear in any output. A password, a bearer token and a token
 * file (separately: basic and bearer auth are exclusive), each given by flag,
 * by environment variable and by profile, with OBS_DEBUG=1, through every
 * command, including failing ones (unreachable address, 400 and 401 answers,
 * bad input). stdout, stderr and written files must not hold the secret, nor
 * the base64 of basic auth. The requests go through a recording proxy in
 * front of the shared test Loki, which proves the secret was really in play.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type EchoLoki, startEchoLoki } from '../support/echo-loki.ts'
import { testLoki } from '../support/env.ts'
import { type ObsOutput, obs, pool, semaphore, spawnObs } from '../support/fault-cli.ts'
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts'
import { counters } from '../support/fault-truth.ts'

const { addr, dataset } = testLoki()
const USER = 'alice'
const PASSWORD = 'pw-S3cr3t-9f2c7'
const TOKEN = 'tok-S3cr3t-b81e4'
const FILE_TOKEN = 'ftok-S3cr3t-77ad0'
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString('base64')

/** Text that must not appear anywhere: every secret shares "S3cr3t"; basic auth travels as base64. */
const FORBIDDEN = ['S3cr3t', PASSWORD, TOKEN, FILE_TOKEN, BASIC, Buffer.from(PASSWORD).toString('base64'), Buffer.from(TOKEN).toString('base64'), encodeURIComponent(BASIC)]

let dir: string
let proxy: FaultProxy
let refusing: FaultProxy
let runs = 0
const slot = semaphore(3)

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'obs-secrets-'))
  writeFileSync(join(dir, 'token'), `${FILE_TOKEN}\n`)
  proxy = await startFaultProxy(addr)
  // Loki behind a gateway that refuses the credentials.
  refusing = await startFaultProxy(addr)
  refusing.setRule(() => ({ type: 'respond', status: 401, headers: { 'www-authenticate': 'Basic realm="loki"' }, body: 'unauthorized\n' }))
})
after(async () => {
  await proxy?.close()
  await refusing?.close()
  rmSync(dir, { recursive: true, force: true })
})

interface Config {
  name: string
  /** What the proxy must have seen in Authorization. */
  authorization: string
  args: string[]
  env: Record<string, string>
  /** A profile with the credentials, in obs.config.yaml of the working directory. */
  profile?: string
}

function configs(): Config[] {
  const tokenFile = join(dir, 'token')
  const basic = `Basic ${BASIC}`
  return [
    { name: 'password by flags', authorization: basic, args: ['--username', USER, '--password', PASSWORD], env: {} },
    { name: 'password by environment', authorization: basic, args: [], env: { LOKI_USERNAME: USER, LOKI_PASSWORD: PASSWORD } },
    { name: 'password by profile', authorization: basic, args: [], env: {}, profile: `username: ${USER}\n    password: ${PASSWORD}` },
    { name: 'bearer token by flag', authorization: `Bearer ${TOKEN}`, args: ['--bearer-token', TOKEN], env: {} },
    { name: 'bearer token by environment', authorization: `Bearer ${TOKEN}`, args: [], env: { LOKI_BEARER_TOKEN: TOKEN } },
    { name: 'bearer token by profile', authorization: `Bearer ${TOKEN}`, args: [], env: {}, profile: `bearerToken: ${TOKEN}` },
    { name: 'token file by flag', authorization: `Bearer ${FILE_TOKEN}`, args: ['--bearer-token-file', tokenFile], env: {} },
    { name: 'token file by environment', authorization: `Bearer ${FILE_TOKEN}`, args: [], env: { LOKI_BEARER_TOKEN_FILE: tokenFile } },
    { name: 'token file by profile', authorization: `Bearer ${FILE_TOKEN}`, args: [], env: {}, profile: `bearerTokenFile: ${tokenFile}` },
    { name: 'Authorization header by flag', authorization: `Bearer ${TOKEN}`, args: ['--header', `Authorization: Bearer ${TOKEN}`], env: {} },
    { name: 'Authorization header by profile', authorization: `Bearer ${TOKEN}`, args: [], env: {}, profile: `headers:\n      Authorization: Bearer ${TOKEN}` },
  ]
}

interface Command {
  name: string
  args: (junit: string) => string[]
  /** Where the command is pointed, when not at the recording proxy. */
  addr?: () => string
  tail?: boolean
  /** Expected exit code. */
  code: number
}

const REQ_ID = dataset.crossServiceRequests[0]
const COMMANDS: Command[] = [
  { name: 'ready', args: () => ['ready'], code: 0 },
  { name: 'labels', args: () => ['labels', '--json'], code: 0 },
  { name: 'series', args: () => ['series', '{app="cogni-template"}', '--analyze-labels'], code: 0 },
  { name: 'query', args: () => ['query', 'sum(count_over_time({app="cogni-template"}[5m]))', '-o', 'json'], code: 0 },
  { name: 'query-range', args: () => ['query-range', '{app="cogni-template"}', '--since', '3h', '--limit', '5', '-o', 'jsonl'], code: 0 },
  { name: 'trace', args: () => ['trace', REQ_ID, '--since', '3h', '--json'], code: 0 },
  { name: 'stats', args: () => ['stats', '{app="cogni-template"}', '--since', '3h', '--json'], code: 0 },
  { name: 'fields', args: () => ['fields', '{app="cogni-template"}', '--since', '3h', '--json'], code: 0 },
  { name: 'volume', args: () => ['volume', '--since', '3h', '--compare', '1h', '--json'], code: 0 },
  { name: 'patterns', args: () => ['patterns', '{app="cogni-template"}', '--since', '3h', '--json'], code: 0 },
  { name: 'config', args: () => ['config', '--json'], code: 0 },
  { name: 'smoke --no-alloy', args: (junit) => ['smoke', '--no-alloy', '--since', '2h', '--junit', junit], code: 0 },
  { name: 'smoke, unreachable Alloy', args: (junit) => ['smoke', '--since', '2h', '--alloy-addr', 'http://127.0.0.1:1', '--retries', '0', '--json', '--junit', junit], code: 3 },
  { name: 'tail, then Ctrl-C', args: () => ['tail', '{app="cogni-template"}', '--since', '3h', '--limit', '3', '-o', 'jsonl'], tail: true, code: 0 },
  { name: 'unreachable address', args: () => ['labels', '--retries', '0'], addr: () => 'http://127.0.0.1:1', code: 3 },
  { name: '400 from Loki', args: () => ['query-range', '{app="cogni-template"} | line_format "{{.msg"', '--since', '3h', '--limit', '0'], code: 2 },
  { name: '401 from a gateway', args: () => ['labels', '--retries', '0'], addr: () => refusing.addr, code: 3 },
  { name: 'bad input', args: () => ['query-range', '{app="cogni-template"}', '--since', '5x'], code: 2 },
]

function leaks(text: string): string[] {
  return FORBIDDEN.filter((secret) => text.includes(secret))
}

async function runWith(config: Config, command: Command, debug = true): Promise<{ result: ObsOutput; files: string }> {
  const cwd = mkdtempSync(join(dir, 'cwd-'))
  if (config.profile) writeFileSync(join(cwd, 'obs.config.yaml'), `defaultProfile: ops\nprofiles:\n  ops:\n    ${config.profile}\n`)
  const junit = join(cwd, 'smoke.xml')
  const addrArgs = command.addr ? ['--addr', command.addr()] : []
  const env = { LOKI_ADDR: proxy.addr, ...(debug ? { OBS_DEBUG: '1' } : {}), ...config.env }
  const args = [...command.args(junit), ...config.args, ...addrArgs]
  let result: ObsOutput
  if (command.tail) {
    const run = spawnObs(args, { env, cwd })
    try {
      // Connected: the three newest lines of the last hour are printed.
      await run.waitFor(() => run.lineCount() >= 3, 'the tail to print its history', 15_000)
      await new Promise((resolve) => setTimeout(resolve, 300))
    } finally {
      result = await run.stop('SIGINT')
    }
  } else {
    result = await obs(args, { env, cwd, timeoutMs: 30_000 })
  }
  runs++
  let files = ''
  try {
    files = readFileSync(junit, 'utf8')
  } catch {
    // Only smoke writes one.
  }
  return { result, files }
}

/** Problems with one run: a wrong exit code, or a secret in stdout, stderr or the JUnit file. */
function check(command: Command, result: ObsOutput, files: string): string[] {
  const found: string[] = []
  if (result.code !== command.code)
    found.push(
      `exit ${result.code}, expected ${command.code}: ${result.err
        .split('\n')
        .filter((l) => !l.startsWith('debug:'))
        .join(' | ')
        .slice(0, 300)}`,
    )
  for (const [where, text] of [
    ['stdout', result.out],
    ['stderr', result.err],
    ['junit', files],
  ] as const) {
    const leaked = leaks(text)
    if (leaked.length) found.push(`${where} holds ${leaked.join(', ')}`)
  }
  return found
}

/** Runs every command of the plan with its config; one line per run where a secret showed. */
async function problemsOf(plan: { command: (typeof COMMANDS)[number]; config: ReturnType<typeof configs>[number] }[]): Promise<string[]> {
  const problems = await pool(plan, plan.length, ({ command, config }) =>
    slot(async () => {
      const { result, files } = await runWith(config, command)
      const found = check(command, result, files)
      return found.length ? `${command.name} (${config.name}): ${found.join('; ')}` : undefined
    }),
  )
  return problems.filter((problem) => problem !== undefined)
}

describe('secrets never appear in stdout, stderr or files', { concurrency: true }, () => {
  const all = configs()
  const kinds = ['password', 'bearer token', 'token file'] as const
  for (const [k, kind] of kinds.entries()) {
    // Every command with each kind of secret; the source (flag, environment, profile) rotates, so each source serves several commands.
    const plan = COMMANDS.map((command, c) => ({ command, config: all.filter((config) => config.name.startsWith(kind))[(c + k) % 3] }))
    test(`${kind} by flag, environment and profile: every command, OBS_DEBUG=1 (${plan.length} runs)`, async () => {
      assert.deepEqual(await problemsOf(plan), [])
      // The secret was really sent, to Loki and on the tail's WebSocket upgrade.
      for (const config of all.filter((c) => c.name.startsWith(kind))) {
        const sent = proxy.requests.filter((r) => r.headers.authorization === config.authorization)
        assert.ok(
          sent.some((r) => r.path === '/loki/api/v1/query_range'),
          `${config.name}: the credentials reached Loki`,
        )
      }
      assert.ok(
        proxy.requests.some(
          (r) => r.path === '/loki/api/v1/tail' && String(r.headers.authorization).endsWith(all.find((c) => c.name.startsWith(kind))!.authorization.split(' ')[1]),
        ),
        'and the tail',
      )
    })
  }

  test('an Authorization header by flag and by profile: queries, tail and failures, OBS_DEBUG=1', async () => {
    const plan = all
      .filter((config) => config.name.startsWith('Authorization'))
      .flatMap((config) =>
        COMMANDS.filter((command) => ['query-range', 'tail, then Ctrl-C', 'unreachable address', '400 from Loki'].includes(command.name)).map((command) => ({ config, command })),
      )
    assert.deepEqual(await problemsOf(plan), [])
  })

  test('a malformed --header holding a secret: exit 2, and the value is not echoed', async () => {
    for (const header of [
      `Authorization Bearer ${TOKEN}`,
      `Authorization=Bearer ${TOKEN}`,
      `Authorization: Bearer ${TOKEN}\r\nX-Extra: 1`,
      `Authorization: Bearer ${TOKEN}\u0007\n`,
    ]) {
      const result = await slot(() => obs(['labels', '--header', header], { env: { LOKI_ADDR: proxy.addr, OBS_DEBUG: '1' } }))
      runs++
      assert.equal(result.code, 2, result.err)
      assert.deepEqual(leaks(result.out + result.err), [], `--header ${JSON.stringify(header)}: ${result.err}`)
    }
  })

  test('a malformed config file holding a secret: the message does not quote it', async () => {
    const files: Record<string, string> = {
      'obs.config.yaml': `profiles:\n  ops:\n    password: "${PASSWORD}\n    username: ${USER}\n`,
      'obs.config.yml': `profiles:\n  ops:\n    bearerToken: [${TOKEN}\n`,
      'obs.config.json': `{"profiles": {"ops": {"bearerToken": "${TOKEN}", }}}`,
    }
    for (const [name, text] of Object.entries(files)) {
      const cwd = mkdtempSync(join(dir, 'cfg-'))
      writeFileSync(join(cwd, name), text)
      const result = await slot(() => obs(['labels'], { env: { LOKI_ADDR: proxy.addr, OBS_DEBUG: '1' }, cwd }))
      runs++
      assert.equal(result.code, 2, result.err)
      assert.match(result.err, /malformed config file/)
      assert.deepEqual(leaks(result.out + result.err), [], `${name}: ${result.err}`)
    }
  })

  test('a gateway that echoes the Authorization header in its 401 body: obs does not repeat the secret', async () => {
    const echo = await startFaultProxy(addr)
    try {
      echo.setRule((request) => ({ type: 'respond', status: 401, body: `invalid credentials: ${String(request.headers.authorization)}\n` }))
      for (const config of configs().filter((c) => !c.profile)) {
        const { result } = await slot(() => runWith(config, { name: 'labels', args: () => ['labels', '--retries', '0'], addr: () => echo.addr, code: 3 }, false))
        assert.equal(result.code, 3, result.err)
        assert.deepEqual(leaks(result.out + result.err), [], `${config.name}: ${result.err}`)
      }
    } finally {
      await echo.close()
    }
  })
})

/**
 * A gateway that echoes the request's headers in everything it answers
 * (echo-loki.ts): every command that sends a request, with each kind of
 * credential, OBS_DEBUG=1. Nothing of a credential may come out: not on
 * stdout, stderr, in --json, nor in smoke's JUnit file. Before one masking
 * path, `obs ready`, smoke and doctor printed the /ready page whole.
 */
describe('a gateway that echoes the credentials in every answer: every command, every kind of credential', { concurrency: true }, () => {
  const HEADER_KEY = 'hk-S3cr3t-5e0d1'
  let echo: EchoLoki
  before(async () => {
    echo = await startEchoLoki()
  })
  after(async () => {
    await echo?.close()
  })
  const tokenFile = () => join(dir, 'token')
  const modes: { name: string; args: () => string[]; sent: string }[] = [
    { name: 'bearer token', args: () => ['--bearer-token', TOKEN], sent: `Bearer ${TOKEN}` },
    { name: 'bearer token file', args: () => ['--bearer-token-file', tokenFile()], sent: `Bearer ${FILE_TOKEN}` },
    { name: 'basic auth', args: () => ['--username', USER, '--password', PASSWORD], sent: `Basic ${BASIC}` },
    { name: 'a secret header', args: () => ['--header', `X-Api-Key: ${HEADER_KEY}`], sent: HEADER_KEY },
  ]
  const forbidden = [...FORBIDDEN, HEADER_KEY, Buffer.from(HEADER_KEY).toString('base64'), `${USER}:${PASSWORD}`]
  const since = ['--since', '1h']
  const runs: { name: string; args: string[]; tail?: boolean }[] = [
    { name: 'ready', args: ['ready'] },
    { name: 'ready --json', args: ['ready', '--json'] },
    { name: 'ready --wait 2s', args: ['ready', '--wait', '2s', '--interval', '500ms'] },
    { name: 'smoke --junit', args: ['smoke', '--no-alloy', '--junit', 'JUNIT'] },
    { name: 'smoke --json --junit', args: ['smoke', '--no-alloy', '--json', '--junit', 'JUNIT'] },
    { name: 'doctor', args: ['doctor', '--no-alloy'] },
    { name: 'doctor --json', args: ['doctor', '--no-alloy', '--json'] },
    { name: 'trace', args: ['trace', 'req-echo', ...since] },
    { name: 'trace --json', args: ['trace', 'req-echo', ...since, '--json'] },
    { name: 'tail', args: ['tail', '{app="cogni-template"}', '--since', '1m'], tail: true },
    { name: 'tail -o jsonl', args: ['tail', '{app="cogni-template"}', '--since', '1m', '-o', 'jsonl'], tail: true },
    { name: 'volume', args: ['volume', ...since] },
    { name: 'volume --json', args: ['volume', ...since, '--json'] },
    { name: 'patterns', args: ['patterns', '{app="cogni-template"}', ...since] },
    { name: 'fields', args: ['fields', '{app="cogni-template"}', ...since] },
    { name: 'stats', args: ['stats', '{app="cogni-template"}', ...since, '--json'] },
    { name: 'series', args: ['series', '{app="cogni-template"}', ...since] },
    { name: 'labels', args: ['labels'] },
    { name: 'labels app', args: ['labels', 'app', '--json'] },
    { name: 'query', args: ['query', 'sum(count_over_time({app="cogni-template"}[5m]))'] },
    { name: 'query-range', args: ['query-range', '{app="cogni-template"}', ...since, '--limit', '5'] },
    { name: 'query-range -o json', args: ['query-range', '{app="cogni-template"}', ...since, '--limit', '5', '-o', 'json'] },
    { name: 'query-range, a metric', args: ['query-range', 'sum(count_over_time({app="cogni-template"}[5m]))', ...since] },
    { name: 'query-range, 400 echoing the request', args: ['query-range', '{app="cogni-template"} |= "echo-400"', ...since] },
  ]

  for (const mode of modes) {
    test(`${mode.name}: ${runs.length} commands, OBS_DEBUG=1`, async () => {
      const problems = await pool(runs, runs.length, (run) =>
        slot(async () => {
          const cwd = mkdtempSync(join(dir, 'echo-'))
          const junit = join(cwd, 'smoke.xml')
          const args = [...run.args.map((arg) => (arg === 'JUNIT' ? junit : arg)), '--addr', echo.addr, '--retries', '0', ...mode.args()]
          const options = { env: { OBS_DEBUG: '1' }, cwd }
          let result: ObsOutput
          if (run.tail) {
            const tail = spawnObs(args, options)
            // The echoing frame is printed at once; the tail then waits for more.
            await tail.waitFor(() => tail.lineCount() >= 2, 'the tail to print its history and the echoed frame', 15_000).catch(() => undefined)
            result = await tail.stop('SIGINT')
          } else {
            result = await obs(args, { ...options, timeoutMs: 30_000 })
          }
          let file = ''
          try {
            file = readFileSync(junit, 'utf8')
          } catch {
            // Only smoke writes one.
          }
          const found: string[] = []
          for (const [where, text] of [
            ['stdout', result.out],
            ['stderr', result.err],
            ['junit', file],
          ] as const) {
            const leaked = forbidden.filter((secret) => text.includes(secret))
            if (leaked.length) found.push(`${where} holds ${leaked.join(', ')}: ${text.slice(0, 400)}`)
          }
          if (run.args.includes('JUNIT') && !file) found.push('no JUnit file written')
          return found.length ? `${run.name}: ${found.join('; ')}` : undefined
        }),
      )
      assert.deepEqual(
        problems.filter((problem) => problem !== undefined),
        [],
      )
      // The credentials were sent, and echoed: on the plain requests and on the tail's upgrade.
      const sentBy = (path: string) => echo.requests.some((r) => r.path === path && Object.values(r.headers).some((value) => String(value).includes(mode.sent)))
      assert.ok(sentBy('/ready'), 'the credentials reached /ready')
      assert.ok(sentBy('/loki/api/v1/tail'), 'and the tail')
    })
  }
})

test('counts', (t) => {
  t.diagnostic(counters('secrets', { runs, configurations: configs().length, commands: COMMANDS.length }))
})
