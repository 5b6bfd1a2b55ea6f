/**
 * `--wait` bounds the whole wait, the request in flight included. A server
 * that accepts connections and never answers held `ready --wait 2s` and
 * `smoke --wait 2s` for 30-31 s, the per-request timeout: a deploy script
 * that gave Loki two seconds waited half a minute.
 */
import assert from 'node:assert/strict'
import { createServer as createHttpServer } from 'node:http'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { obs } from '../support/fault-cli.ts'

/** Start-up of the built CLI on a loaded machine, on top of the wait itself. */
const SLACK_MS = 8000

let hung: Server
let hungAddr: string
const sockets = new Set<Socket>()

before(async () => {
  // Accepts every connection and never says a word.
  hung = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
  hungAddr = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`
})
after(async () => {
  for (const socket of sockets) socket.destroy()
  await new Promise<void>((resolve) => hung.close(() => resolve()))
})

describe('--wait bounds the whole wait, a hung request included', { concurrency: true }, () => {
  test('ready --wait 2s against a server that never answers ends after about 2 s, exit 3, saying Loki never answered', async () => {
    const result = await obs(['ready', '--wait', '2s', '--addr', hungAddr], { timeoutMs: 20_000 })
    assert.ok(result.ms < 2000 + SLACK_MS, `took ${Math.round(result.ms)}ms`)
    assert.equal(result.code, 3, result.err)
    assert.equal(result.out, '')
    assert.match(result.err, /^error: waited 2s \(--wait\) and Loki at http:\/\/127\.0\.0\.1:\d+ never answered \/ready; .*--wait\n$/)
  })

  test('ready --json --wait 2s is bounded the same way', async () => {
    const result = await obs(['ready', '--json', '--wait', '2s', '--addr', hungAddr], { timeoutMs: 20_000 })
    assert.ok(result.ms < 2000 + SLACK_MS, `took ${Math.round(result.ms)}ms`)
    assert.equal(result.code, 3, result.err)
    assert.match(result.err, /waited 2s \(--wait\) and Loki .* never answered \/ready/)
  })

  test('smoke --wait 2s against a server that never answers ends after about 2 s, exit 3, each check saying so', async () => {
    const result = await obs(['smoke', '--no-alloy', '--wait', '2s', '--addr', hungAddr], { timeoutMs: 20_000 })
    assert.ok(result.ms < 2000 + SLACK_MS, `took ${Math.round(result.ms)}ms`)
    assert.equal(result.code, 3, result.out + result.err)
    assert.match(result.out, /✖ loki-ready .*\n\s+waited 2s \(--wait\) and Loki at http:\/\/127\.0\.0\.1:\d+ never answered \/ready\n/)
    assert.match(result.out, /✖ logs-ingested .*\n\s+waited 2s \(--wait\) and Loki .* never answered \/loki\/api\/v1\/query\n/)
  })

  test('smoke --json --wait 2s: the document says the wait ran out', async () => {
    const result = await obs(['smoke', '--no-alloy', '--json', '--wait', '2s', '--addr', hungAddr], { timeoutMs: 20_000 })
    assert.ok(result.ms < 2000 + SLACK_MS, `took ${Math.round(result.ms)}ms`)
    assert.equal(result.code, 3)
    const document = JSON.parse(result.out) as { ok: boolean; checks: { id: string; status: string; detail: string }[] }
    assert.equal(document.ok, false)
    const ready = document.checks.find((check) => check.id === 'loki-ready')
    assert.equal(ready?.status, 'fail')
    assert.match(ready?.detail ?? '', /waited 2s \(--wait\) and Loki .* never answered \/ready/)
  })

  test('ready --wait: a Loki that answered "not ready" and then hangs is not ready (exit 1), the last answer deciding', async () => {
    let asked = 0
    const server = createHttpServer((_request, response) => {
      // The first /ready is answered; every later request hangs.
      if (asked++ === 0) response.writeHead(503).end('Ingester not ready: waiting for 15s after being ready\n')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const result = await obs(['ready', '--wait', '2s', '--interval', '500ms', '--addr', addr], { timeoutMs: 20_000 })
      assert.ok(result.ms < 2000 + SLACK_MS, `took ${Math.round(result.ms)}ms`)
      assert.equal(result.code, 1, result.err)
      assert.equal(result.out, 'Ingester not ready: waiting for 15s after being ready\n')
      assert.match(result.err, /is not ready \(HTTP 503\) after waiting 2s/)
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})
