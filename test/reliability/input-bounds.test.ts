/**
 * Inputs that are bounded and named, on the built CLI, where the refusals of
 * bad-input.test.ts are not the whole story: what obs does send once the
 * input is good (a token read from a pipe, the one tenant of the tenant rule),
 * and what `obs init` refuses to write. A server of this file's own records
 * each request's headers.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { obs, spawnObs } from '../support/fault-cli.ts'
import { runInTerminal } from '../support/pty.ts'

let server: Server
let addr: string
const seen: IncomingHttpHeaders[] = []
let dir: string

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'obs-input-bounds-'))
  server = createServer((request, response) => {
    seen.push(request.headers)
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success","data":["app"]}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
  rmSync(dir, { recursive: true, force: true })
})

/** Runs `obs ready` and returns the headers of the request it sent. */
async function headersSent(args: string[], env: Record<string, string> = {}): Promise<IncomingHttpHeaders> {
  const before = seen.length
  const result = await obs(['ready', ...args, '--addr', addr], { env, timeoutMs: 20_000 })
  assert.equal(result.code, 0, result.err)
  assert.equal(seen.length, before + 1)
  return seen[before]
}

describe('the tenant: one setting, one rule', () => {
  test('an X-Scope-OrgID --header is a flag: it wins over LOKI_ORG_ID, and obs config says where the tenant came from', async () => {
    const headers = await headersSent(['--header', 'X-Scope-OrgID: from-header'], { LOKI_ORG_ID: 'from-env' })
    assert.equal(headers['x-scope-orgid'], 'from-header')
    const config = await obs(['config', '--json', '--header', 'X-Scope-OrgID: from-header'], { env: { LOKI_ORG_ID: 'from-env' } })
    const orgId = (JSON.parse(config.out) as { settings: { setting: string; value: string; from: string }[] }).settings.find((s) => s.setting === 'org-id')
    assert.deepEqual(orgId, { setting: 'org-id', value: 'from-header', from: 'flag --header X-Scope-OrgID' })
  })

  test('--org-id and an X-Scope-OrgID --header naming the same tenant send it once', async () => {
    const headers = await headersSent(['--org-id', 'acme', '--header', 'x-scope-orgid: acme'])
    assert.equal(headers['x-scope-orgid'], 'acme')
  })

  test('the flags say which tenant: --org-id and --header disagreeing are refused before anything is sent', async () => {
    const before = seen.length
    const result = await obs(['labels', '--org-id', 'a', '--header', 'X-Scope-OrgID: b', '--addr', addr])
    assert.equal(result.code, 2)
    assert.equal(seen.length, before, 'a request was sent')
    assert.equal(result.err, 'error: two tenants given: --org-id "a" and --header "X-Scope-OrgID: b"; keep one: --org-id and an X-Scope-OrgID header are the same setting\n')
  })

  test('--help states the rule', async () => {
    const help = await obs(['labels', '--help'])
    assert.match(help.out.replace(/\s+/g, ' '), /--org-id=<value> tenant, sent as X-Scope-OrgID; a different one in --header is refused/)
  })
})

describe('a token file read from a pipe', () => {
  /** A named pipe, as `<(vault read …)` gives one; `write` feeds it once obs opens it. */
  function pipe(name: string): { path: string; writer: () => WriteStream } {
    const path = join(dir, name)
    execFileSync('mkfifo', [path])
    return { path, writer: () => createWriteStream(path).on('error', () => {}) }
  }

  test('the token a pipe gives is sent, its newline dropped', async () => {
    const fifo = pipe('token-pipe')
    const before = seen.length
    const run = spawnObs(['ready', '--bearer-token-file', fifo.path, '--addr', addr])
    fifo.writer().end('piped-token-123\n')
    const result = await run.done
    assert.equal(result.code, 0, result.err)
    assert.equal(seen[before]?.authorization, 'Bearer piped-token-123')
  })

  test('a pipe that never ends is read up to the cap and refused, at once, nothing sent', async () => {
    const fifo = pipe('endless-pipe')
    const before = seen.length
    const run = spawnObs(['ready', '--bearer-token-file', fifo.path, '--addr', addr])
    // Reading it whole (as obs once did) never ends: cut the run short rather than the test run.
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 15_000)
    const writer = fifo.writer()
    const chunk = Buffer.alloc(16 * 1024, 'a')
    const feed = () => {
      while (!writer.destroyed && writer.write(chunk)) {}
    }
    writer.on('drain', feed)
    feed()
    const result = await run.done
    clearTimeout(timer)
    writer.destroy()
    assert.equal(result.code, 2)
    assert.match(result.err, /^error: the --bearer-token-file file .*endless-pipe is larger than 64 KiB/)
    assert.ok(result.ms < 10_000, `took ${Math.round(result.ms)}ms`)
    assert.equal(seen.length, before)
  })
})

describe('obs init writes only what obs reads', { concurrency: true }, () => {
  for (const [args, says] of [
    [['--dev-addr', 'loki:3100'], /^error: invalid --dev-addr "loki:3100": only http:\/\/ and https:\/\/ are supported; use http:\/\/loki:3100\n$/],
    [['--prod-addr', 'loki.internal'], /^error: invalid --prod-addr "loki\.internal": not a URL; use http:\/\/loki\.internal\n$/],
    [['--dev-addr', 'http://loki:3100/?tenant=a'], /^error: invalid --dev-addr .*a base URL has no query or fragment/],
    [['--app', 'bill\ning'], /^error: invalid --app: it holds a control character/],
    [['--service', ''], /^error: --service is empty/],
  ] as const) {
    test(`init ${args.join(' ')} is refused, exit 2, and writes nothing`, async () => {
      const cwd = mkdtempSync(join(dir, 'init-'))
      const result = await obs(['init', ...args], { cwd })
      assert.equal(result.code, 2, result.err)
      assert.match(result.err, says)
      assert.equal(result.out, '')
      assert.equal(existsSync(join(cwd, 'obs.config.yaml')), false, 'a file was written')
    })
  }

  test('init on a terminal asks again after an address obs would refuse', async () => {
    const cwd = mkdtempSync(join(dir, 'init-tty-'))
    const { code, output } = await runInTerminal(['init'], {}, { cwd, input: ['loki:3100', 'http://loki:3100', '', '', ''] })
    assert.equal(code, 0, output)
    assert.match(output, /invalid --dev-addr "loki:3100": only http:\/\/ and https:\/\/ are supported; use http:\/\/loki:3100\n/)
    assert.equal(output.split('Loki for dev and test [').length - 1, 2, output)
    assert.match(readFileSync(join(cwd, 'obs.config.yaml'), 'utf8'), /addr: "http:\/\/loki:3100"/)
    const config = await obs(['config'], { cwd })
    assert.equal(config.code, 0, config.err)
  })
})
