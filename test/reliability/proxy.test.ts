/**
 * Proxies, through a real one: tinyproxy (test/support/tinyproxy.ts) in front
 * of a Loki of this file's own (so lines can be pushed for the tail). Its log
 * says which requests it forwarded and which tunnels it opened, which is how
 * each test tells that obs went through it or around it.
 *
 * - HTTP_PROXY / http_proxy take obs's requests; NO_PROXY naming the host
 *   sends them straight; a dead HTTP_PROXY fails naming it.
 * - HTTPS_PROXY tunnels to an https:// server with CONNECT.
 * - --proxy-url, LOKI_HTTP_PROXY_URL and a profile's proxyUrl take the
 *   requests, with the proxy's credentials (tinyproxy's BasicAuth), and win
 *   over HTTP_PROXY; the credentials appear in no message: a wrong password,
 *   a proxy that is down, OBS_DEBUG=1 lines, `obs config`, a bad proxy URL.
 * - The tail's WebSocket goes through the proxy too (CONNECT for ws://).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type ObsOutput, obs, spawnObs } from '../support/fault-cli.ts'
import { type FaultLoki, pushLines, startFaultLoki } from '../support/fault-loki.ts'
import { freePort, hasTinyproxy, startTinyproxy, TINYPROXY, type Tinyproxy } from '../support/tinyproxy.ts'

const USER = 'carol'
const PASSWORD = 'px-S3cr3t-41aa9'
/** Every form the proxy's credentials could take in a message: all share "S3cr3t", basic auth travels as base64. */
const FORBIDDEN = ['S3cr3t', PASSWORD, `${USER}:${PASSWORD}`, Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), Buffer.from(PASSWORD).toString('base64')]

let loki: FaultLoki
let lokiPort: number
let open: Tinyproxy
let authed: Tinyproxy
let tls: { server: Server; port: number }
let dir: string

before(async () => {
  assert.ok(hasTinyproxy(), `${TINYPROXY} is missing: apt-get install -y tinyproxy`)
  dir = mkdtempSync(join(tmpdir(), 'obs-proxy-'))
  loki = await startFaultLoki()
  lokiPort = Number(new URL(loki.addr).port)
  // An https:// server for HTTPS_PROXY (a self-signed certificate: obs is given --tls-skip-verify).
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'],
    {
      stdio: 'ignore',
    },
  )
  const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (request, response) => {
    response.writeHead(request.url === '/ready' ? 200 : 404, { 'content-type': 'text/plain' }).end(request.url === '/ready' ? 'ready\n' : 'not found\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tls = { server, port: (server.address() as AddressInfo).port }
  open = await startTinyproxy({ connectPorts: [lokiPort, tls.port] })
  authed = await startTinyproxy({ connectPorts: [lokiPort, tls.port], auth: [USER, PASSWORD] })
})

after(async () => {
  await open?.close()
  await authed?.close()
  tls?.server.closeAllConnections()
  await new Promise((resolve) => (tls ? tls.server.close(resolve) : resolve(undefined)))
  await loki?.remove()
  rmSync(dir, { recursive: true, force: true })
})

const withCredentials = (proxy: Tinyproxy, password = PASSWORD) => `http://${USER}:${password}@127.0.0.1:${proxy.port}`

/** The requests a proxy logged while `run` ran. */
async function through<T>(proxy: Tinyproxy, run: () => Promise<T>): Promise<{ result: T; requests: string[] }> {
  const before = proxy.requests().length
  const result = await run()
  // tinyproxy logs as it forwards; a moment for the last line.
  await new Promise((resolve) => setTimeout(resolve, 100))
  return { result, requests: proxy.requests().slice(before) }
}

function labels(env: Record<string, string>, args: string[] = [], cwd?: string): Promise<ObsOutput> {
  return obs(['labels', '--retries', '0', ...args], { env: { LOKI_ADDR: loki.addr, ...env }, cwd, timeoutMs: 30_000 })
}

function leaks(result: ObsOutput): string[] {
  return FORBIDDEN.filter((secret) => result.out.includes(secret) || result.err.includes(secret))
}

describe('the environment: HTTP_PROXY, HTTPS_PROXY, NO_PROXY', () => {
  for (const name of ['HTTP_PROXY', 'http_proxy']) {
    test(`${name}: obs's requests go through the proxy`, async () => {
      const { result, requests } = await through(open, () => labels({ [name]: open.addr }))
      assert.equal(result.code, 0, result.err)
      assert.ok(
        requests.some((r) => r.startsWith(`GET http://127.0.0.1:${lokiPort}/loki/api/v1/labels`)),
        `the proxy forwarded the request: ${requests.join(', ') || 'none'}`,
      )
    })
  }

  test('NO_PROXY naming the host: straight to Loki, the proxy sees nothing', async () => {
    // Without it, the same run goes through the proxy.
    const proxied = await through(open, () => labels({ HTTP_PROXY: open.addr, NO_PROXY: 'elsewhere.example' }))
    assert.equal(proxied.result.code, 0, proxied.result.err)
    assert.notDeepEqual(proxied.requests, [], 'NO_PROXY naming another host')
    for (const noProxy of ['127.0.0.1', `localhost,127.0.0.1:${lokiPort}`, 'no_proxy']) {
      if (noProxy === 'no_proxy') {
        const { result, requests } = await through(open, () => labels({ http_proxy: open.addr, no_proxy: '127.0.0.1' }))
        assert.equal(result.code, 0, result.err)
        assert.deepEqual(requests, [], 'no_proxy=127.0.0.1')
        continue
      }
      const { result, requests } = await through(open, () => labels({ HTTP_PROXY: open.addr, NO_PROXY: noProxy }))
      assert.equal(result.code, 0, result.err)
      assert.deepEqual(requests, [], `NO_PROXY=${noProxy}`)
    }
  })

  test('a dead HTTP_PROXY: exit 3, naming the proxy and the variable', async () => {
    const dead = await freePort()
    const result = await labels({ HTTP_PROXY: `http://127.0.0.1:${dead}` })
    assert.equal(result.code, 3, result.err)
    assert.match(result.err, new RegExp(`cannot reach Loki at ${loki.addr} through the proxy http://127\\.0\\.0\\.1:${dead} \\(HTTP_PROXY\\): connection refused`))
  })

  test('HTTPS_PROXY: an https:// server is reached through a CONNECT tunnel', async () => {
    const { result, requests } = await through(open, () =>
      obs(['ready', '--addr', `https://127.0.0.1:${tls.port}`, '--tls-skip-verify'], { env: { HTTPS_PROXY: open.addr }, timeoutMs: 30_000 }),
    )
    assert.equal(result.code, 0, result.err)
    assert.equal(result.out, 'ready\n')
    assert.ok(
      requests.some((r) => r === `CONNECT 127.0.0.1:${tls.port}`),
      `the proxy tunnelled: ${requests.join(', ') || 'none'}`,
    )
  })
})

describe('--proxy-url, LOKI_HTTP_PROXY_URL, proxyUrl: a proxy with credentials', () => {
  test('each source takes the requests through the proxy, with its credentials, and wins over HTTP_PROXY', async () => {
    const cwd = mkdtempSync(join(dir, 'profile-'))
    writeFileSync(join(cwd, 'obs.config.yaml'), `defaultProfile: ops\nprofiles:\n  ops:\n    proxyUrl: ${withCredentials(authed)}\n`, { mode: 0o600 })
    const deadEnv = { HTTP_PROXY: `http://127.0.0.1:${await freePort()}` }
    const sources: [string, () => Promise<ObsOutput>][] = [
      ['--proxy-url', () => labels({ OBS_DEBUG: '1' }, ['--proxy-url', withCredentials(authed)])],
      ['LOKI_HTTP_PROXY_URL', () => labels({ OBS_DEBUG: '1', LOKI_HTTP_PROXY_URL: withCredentials(authed) })],
      ['proxyUrl of a profile', () => labels({ OBS_DEBUG: '1' }, [], cwd)],
      ['--proxy-url over a dead HTTP_PROXY', () => labels({ OBS_DEBUG: '1', ...deadEnv }, ['--proxy-url', withCredentials(authed)])],
      ['LOKI_HTTP_PROXY_URL over a dead HTTP_PROXY', () => labels({ OBS_DEBUG: '1', ...deadEnv, LOKI_HTTP_PROXY_URL: withCredentials(authed) })],
    ]
    for (const [source, run] of sources) {
      const { result, requests } = await through(authed, run)
      assert.equal(result.code, 0, `${source}: ${result.err}`)
      assert.ok(
        requests.some((r) => r.startsWith(`GET http://127.0.0.1:${lokiPort}/loki/api/v1/labels`)),
        `${source}: the proxy forwarded the request: ${requests.join(', ') || 'none'}`,
      )
      // The debug lines say which proxy, without its credentials.
      assert.match(result.err, new RegExp(`debug: GET ${loki.addr}/loki/api/v1/labels through the proxy http://…@127\\.0\\.0\\.1:${authed.port} `), source)
      assert.deepEqual(leaks(result), [], `${source}: ${result.err}`)
    }
    const config = await obs(['config'], { cwd })
    assert.equal(config.code, 0, config.err)
    assert.match(config.out, new RegExp(`proxy-url[\\s│]+http://…@127\\.0\\.0\\.1:${authed.port}[\\s│]+profile ops`))
    assert.deepEqual(leaks(config), [], config.out)
  })

  test('failures name the proxy and never its credentials: a wrong password (plain and tunnelled), a proxy that is down, a bad URL', async () => {
    const wrong = withCredentials(authed, 'wrong-S3cr3t-0000')
    const dead = `http://${USER}:${PASSWORD}@127.0.0.1:${await freePort()}`
    const cases: { name: string; args: string[]; code: number; message: RegExp }[] = [
      { name: 'wrong password, http:// Loki', args: ['labels', '--proxy-url', wrong], code: 3, message: /Unauthorized/ },
      {
        name: 'wrong password, https:// server (CONNECT refused)',
        args: ['ready', '--addr', `https://127.0.0.1:${tls.port}`, '--tls-skip-verify', '--proxy-url', wrong],
        code: 3,
        message: new RegExp(
          `through the proxy http://…@127\\.0\\.0\\.1:${authed.port} \\(--proxy-url\\): the proxy answered 401 Unauthorized; check the user and password in the proxy's URL`,
        ),
      },
      {
        name: 'proxy down',
        args: ['labels', '--proxy-url', dead],
        code: 3,
        message: /cannot reach Loki at \S+ through the proxy http:\/\/…@127\.0\.0\.1:\d+ \(--proxy-url\): connection refused \(ECONNREFUSED\); check --proxy-url/,
      },
      {
        name: 'not a proxy scheme',
        args: ['labels', '--proxy-url', `socks4://${USER}:${PASSWORD}@127.0.0.1:1080`],
        code: 2,
        message: /invalid proxy URL "socks4:\/\/…@127\.0\.0\.1:1080" \(--proxy-url\)/,
      },
      { name: 'a path', args: ['labels', '--proxy-url', `http://${USER}:${PASSWORD}@127.0.0.1:1080/x`], code: 2, message: /a proxy URL has no path/ },
    ]
    for (const { name, args, code, message } of cases) {
      const result = await obs([...args, '--retries', '0'], { env: { LOKI_ADDR: loki.addr, OBS_DEBUG: '1' }, timeoutMs: 30_000 })
      assert.equal(result.code, code, `${name}: ${result.err}`)
      assert.match(result.err, message, name)
      assert.deepEqual(leaks(result), [], `${name}: ${result.err}`)
      assert.ok(!result.err.includes('wrong-S3cr3t'), `${name}: the wrong password is masked too: ${result.err}`)
    }
  })
})

describe("the tail's WebSocket", () => {
  for (const [name, settings] of [
    ['--proxy-url with credentials', (p: Tinyproxy) => ({ args: ['--proxy-url', withCredentials(p)], env: {} })],
    ['HTTP_PROXY', (p: Tinyproxy) => ({ args: [], env: { HTTP_PROXY: p.addr } })],
  ] as const) {
    test(`${name}: the tail tunnels through the proxy (CONNECT for ws://) and prints lines pushed while it runs`, async () => {
      const proxy = name === 'HTTP_PROXY' ? open : authed
      const { args, env } = settings(proxy)
      const app = `proxy-tail-${name === 'HTTP_PROXY' ? 'env' : 'flag'}`
      const before = proxy.requests().length
      const tail = spawnObs(['tail', `{app="${app}"}`, '--since', '1m', '-o', 'raw', ...args], { env: { LOKI_ADDR: loki.addr, ...env } })
      try {
        await tail.waitFor(() => proxy.requests().slice(before).includes(`CONNECT 127.0.0.1:${lokiPort}`), 'the tail to open its tunnel', 15_000)
        // Loki registers a tail a moment after the upgrade; push until a line comes through.
        const deadline = Date.now() + 15_000
        let n = 0
        while (tail.lineCount() === 0 && Date.now() < deadline) {
          await pushLines(loki.addr, { app, stream: 'stdout' }, [`line ${++n} through the proxy`], BigInt(Date.now()) * 1_000_000n)
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
        assert.ok(tail.lineCount() > 0, `a pushed line reached the tail: ${tail.stderr()}`)
        assert.match(tail.stdout().toString(), /line \d+ through the proxy\n/)
      } finally {
        const result = await tail.stop('SIGINT')
        assert.equal(result.code, 0, result.err)
        assert.deepEqual(leaks(result), [], result.err)
      }
    })
  }
})
