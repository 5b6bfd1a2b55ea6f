/**
 * Leaks: what obs trusts and what it echoes. A config file planted in a
 * directory others can write to (a shared /tmp, a team share) must not decide
 * where the user's credentials go, nor make obs read the user's token file
 * for someone else's server; the search stops at the home directory or the
 * repository root; secrets in a file others can read draw a warning; a
 * password in --addr is never echoed; a YAML alias bomb is bad input. Each
 * case runs the built CLI against two recording servers: the user's Loki and
 * the planter's.
 */
import assert from 'node:assert/strict'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { obs, stderrLines } from '../support/fault-cli.ts'

const USER = 'alice'
const PASSWORD = 'pw-S3cr3t-leak'
const FILE_TOKEN = 'ftok-S3cr3t-leak'
const asRoot = process.getuid?.() === 0

interface Recorder {
  addr: string
  /** The Authorization header of every request so far. */
  seen: (string | undefined)[]
  close: () => Promise<void>
}

async function recorder(): Promise<Recorder> {
  const seen: (string | undefined)[] = []
  const server: Server = createServer((request, response) => {
    seen.push(request.headers.authorization)
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success","data":["app"]}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

let root: string
let users: Recorder
let planter: Recorder
/** The user's own config, in their XDG config dir. */
let xdg: string
let tokenFile: string

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'obs-leaks-'))
  ;[users, planter] = await Promise.all([recorder(), recorder()])
  xdg = join(root, 'xdg')
  mkdirSync(join(xdg, 'obs'), { recursive: true })
  writeFileSync(join(xdg, 'obs', 'config.yaml'), `defaultProfile: mine\nprofiles:\n  mine:\n    addr: ${users.addr}\n`, { mode: 0o600 })
  tokenFile = join(root, 'token')
  writeFileSync(tokenFile, `${FILE_TOKEN}\n`, { mode: 0o600 })
})
after(async () => {
  await Promise.all([users?.close(), planter?.close()])
  rmSync(root, { recursive: true, force: true })
})

/** A directory anyone may write to, as /tmp is, with the user's project inside it. */
function sharedDir(): { shared: string; project: string } {
  const shared = mkdtempSync(join(root, 'shared-'))
  chmodSync(shared, 0o1777)
  const project = join(shared, 'alice', 'project')
  mkdirSync(project, { recursive: true })
  return { shared, project }
}

/** Writes a config file as another user would: owned by nobody when we may chown, else writable by all. */
function plant(path: string, text: string, how: 'owner' | 'mode'): void {
  writeFileSync(path, text)
  if (how === 'owner') chownSync(path, 65534, 65534)
  else chmodSync(path, 0o666)
}

function runIn(cwd: string, args: string[], env: Record<string, string> = {}) {
  return obs(args, { cwd, env: { XDG_CONFIG_HOME: xdg, HOME: join(root, 'home'), OBS_RETRIES: '0', ...env }, timeoutMs: 30_000 })
}

const plantings = asRoot ? (['owner', 'mode'] as const) : (['mode'] as const)

describe('planted config files', { concurrency: 1 }, () => {
  for (const how of plantings) {
    const planted = how === 'owner' ? 'owned by another user' : 'writable by others'

    test(`a config file ${planted} in a shared parent does not get LOKI_USERNAME/LOKI_PASSWORD: they go to the user's own Loki`, async () => {
      const { shared, project } = sharedDir()
      const path = join(shared, 'obs.config.yaml')
      plant(path, `defaultProfile: p\nprofiles:\n  p:\n    addr: ${planter.addr}\n`, how)
      const before = planter.seen.length
      const result = await runIn(project, ['labels'], { LOKI_USERNAME: USER, LOKI_PASSWORD: PASSWORD })
      assert.equal(planter.seen.length - before, 0, `the planter's server got ${planter.seen.slice(before).join(', ')}`)
      assert.equal(result.code, 0, result.err)
      assert.equal(users.seen.at(-1), `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`)
      const warning = stderrLines(result).filter((line) => line.includes(path))
      assert.equal(warning.length, 1, result.err)
      assert.match(warning[0], new RegExp(`^warning: ignoring the config file ${path}: it is ${how === 'owner' ? 'owned by another user' : 'writable by'}`))
    })

    test(`a config file ${planted} cannot make obs read the user's token file and send it away`, async () => {
      const { shared, project } = sharedDir()
      plant(join(shared, 'obs.config.yaml'), `defaultProfile: p\nprofiles:\n  p:\n    addr: ${planter.addr}\n    bearerTokenFile: ${tokenFile}\n`, how)
      const before = planter.seen.length
      const result = await runIn(project, ['labels'])
      assert.equal(planter.seen.length - before, 0, `the planter's server got ${planter.seen.slice(before).join(', ')}`)
      assert.equal(result.code, 0, result.err)
      assert.equal(result.err.includes(FILE_TOKEN), false)
    })
  }

  test('the search stops at the repository root: a config file above it is not read', async () => {
    const above = mkdtempSync(join(root, 'above-'))
    writeFileSync(join(above, 'obs.config.yaml'), `defaultProfile: p\nprofiles:\n  p:\n    addr: ${planter.addr}\n`, { mode: 0o644 })
    const repo = join(above, 'repo')
    mkdirSync(join(repo, '.git'), { recursive: true })
    mkdirSync(join(repo, 'src'))
    const before = planter.seen.length
    const result = await runIn(join(repo, 'src'), ['labels'], { LOKI_USERNAME: USER, LOKI_PASSWORD: PASSWORD })
    assert.equal(result.code, 0, result.err)
    assert.equal(planter.seen.length - before, 0, 'the config above the repository was read')
  })

  test('the search stops at the home directory: a config file above it is not read', async () => {
    const above = mkdtempSync(join(root, 'above-'))
    writeFileSync(join(above, 'obs.config.yaml'), `defaultProfile: p\nprofiles:\n  p:\n    addr: ${planter.addr}\n`, { mode: 0o644 })
    const home = join(above, 'home', 'alice')
    mkdirSync(join(home, 'work'), { recursive: true })
    const before = planter.seen.length
    const result = await runIn(join(home, 'work'), ['labels'], { HOME: home, LOKI_USERNAME: USER, LOKI_PASSWORD: PASSWORD })
    assert.equal(result.code, 0, result.err)
    assert.equal(planter.seen.length - before, 0, 'the config above home was read')
  })
})

describe('secrets kept out of sight', { concurrency: 1 }, () => {
  test('a config file holding a password that others can read draws one warning naming it and the fix', async () => {
    const dir = mkdtempSync(join(root, 'readable-'))
    const path = join(dir, 'obs.config.yaml')
    writeFileSync(path, `defaultProfile: p\nprofiles:\n  p:\n    addr: ${users.addr}\n    username: ${USER}\n    password: ${PASSWORD}\n`, { mode: 0o644 })
    chmodSync(path, 0o644)
    const result = await runIn(dir, ['labels'])
    assert.equal(result.code, 0, result.err)
    assert.deepEqual(stderrLines(result), [`warning: the config file ${path} holds a password or token and is readable by others; run chmod 600 ${path}`])
    chmodSync(path, 0o600)
    assert.deepEqual(stderrLines(await runIn(dir, ['labels'])), [])
  })

  for (const password of [`a/${PASSWORD}`, `${PASSWORD}#x`, `${PASSWORD}?/`]) {
    const addr = `http://${USER}:${password}@loki.example:3100`
    for (const [how, args, env] of [
      ['--addr', ['labels', '--addr', addr], {}],
      ['LOKI_ADDR', ['labels'], { LOKI_ADDR: addr }],
      ['--alloy-addr', ['smoke', '--alloy-addr', addr], {}],
    ] as const) {
      test(`a password holding ${JSON.stringify(password.replace(PASSWORD, '…'))} in ${how} is not echoed in the "not a URL" error`, async () => {
        const result = await runIn(root, [...args], { ...env })
        assert.equal(result.code, 2, result.err)
        assert.equal(stderrLines(result).length, 1, result.err)
        assert.match(result.err, /not a URL/)
        assert.equal(result.err.includes('S3cr3t'), false, result.err)
      })
    }
  }

  test('a YAML alias bomb in obs.config.yaml is bad input: exit 2, one line, nothing sent', async () => {
    const dir = mkdtempSync(join(root, 'bomb-'))
    const lines = [`profiles:\n  p:\n    addr: ${users.addr}`, 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for (let i = 0; i < 9; i++)
      lines.push(
        `l${i}: &l${i} [${Array(9)
          .fill(i === 0 ? '*a' : `*l${i - 1}`)
          .join(', ')}]`,
      )
    writeFileSync(join(dir, 'obs.config.yaml'), `${lines.join('\n')}\n`, { mode: 0o600 })
    const before = users.seen.length
    const result = await runIn(dir, ['labels'])
    assert.equal(result.code, 2, result.err)
    assert.deepEqual(stderrLines(result), [
      `error: malformed config file ${join(dir, 'obs.config.yaml')}: its YAML aliases expand to more than 100 nodes; write the values out instead of through aliases`,
    ])
    assert.equal(users.seen.length, before)
  })
})
