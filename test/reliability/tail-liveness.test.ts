/**
 * obs tail against connections that die without saying so, and lines that
 * reach Loki late, on a real Loki of its own:
 * - a proxy that freezes the open connection (no close, no data): the tail
 *   notices within seconds (Loki pings every second) and catches up;
 * - a server silent after the handshake: Ctrl-C still ends obs at once;
 * - a server that never answers the upgrade: --timeout bounds the handshake;
 * - lines stamped 20 s before they reach Loki, across a Loki restart: all
 *   printed once; lines later than the look-back: printed with a warning
 *   (WebSocket) or reported as missed (--poll), the warning naming the look-back.
 */
import assert from 'node:assert/strict'
import { createServer as createHttpServer, type Server } from 'node:http'
import { connect, createServer, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { startObs } from '../support/cli.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { type LokiProcess, pushAll, startLoki, stopAndRemove } from '../support/loki.ts'

let loki: LokiProcess
let counter = 0
const closers: (() => Promise<void> | void)[] = []

before(async () => {
  loki = await startLoki()
})
after(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await stopAndRemove(loki)
})

/** Pushes `count` numbered lines stamped `lateMs` before now. */
async function pushLate(app: string, count: number, lateMs: number): Promise<string[]> {
  const base = BigInt(Date.now() - lateMs) * 1_000_000n
  const lines = Array.from({ length: count }, () => JSON.stringify({ level: 'info', msg: `late line ${counter}`, n: counter++ }))
  await pushAll(loki.addr, [[{ stream: { app, stream: 'stdout' }, values: lines.map((line, i) => [(base + BigInt(i) * 1000n).toString(), line]) }]])
  return lines
}

function printed(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { line: string }).line)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A TCP proxy to Loki whose open connections can be frozen: bytes stop in both directions, nothing closes. */
async function freezingProxy(): Promise<{ addr: string; freeze(): void }> {
  const upstream = new URL(loki.addr)
  const pairs: [Socket, Socket][] = []
  const all: Socket[] = []
  const server = createServer((client) => {
    const server = connect(Number(upstream.port), upstream.hostname)
    client.pipe(server)
    server.pipe(client)
    client.on('error', () => server.destroy())
    server.on('error', () => client.destroy())
    pairs.push([client, server])
    all.push(client, server)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => {
    for (const socket of all) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const port = (server.address() as { port: number }).port
  return {
    addr: `http://127.0.0.1:${port}`,
    freeze() {
      for (const [client, server] of pairs.splice(0)) {
        client.unpipe(server)
        server.unpipe(client)
        client.pause()
        server.pause()
      }
    },
  }
}

describe('a dead WebSocket is noticed, and its close is bounded', () => {
  test('a proxy that freezes its connections: the tail reconnects within seconds and prints every line once', async () => {
    const app = 'liveness-frozen'
    const proxy = await freezingProxy()
    // The frozen proxy also holds obs's pooled HTTP connection: the catch-up's
    // first request on it is bounded by --timeout, then retried on a new one.
    const tail = startObs(['tail', `{app="${app}"}`, '--since', '5s', '--timeout', '3s', '-o', 'jsonl'], { env: { LOKI_ADDR: proxy.addr } })
    try {
      await sleep(1500)
      const pushed = await pushLate(app, 20, 0)
      await tail.waitFor(/(?:[^\n]*\n){20}/)
      proxy.freeze()
      const frozenAt = Date.now()
      pushed.push(...(await pushLate(app, 30, 0)))
      await tail.waitFor(/no frame from Loki/, 'stderr', 15_000)
      await tail.waitFor(/(?:[^\n]*\n){50}/, 'stdout', 20_000)
      const caughtUpMs = Date.now() - frozenAt
      const result = await tail.stop('SIGINT')
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(printed(result.stdout), pushed)
      // 5 s of silence, 3 s of --timeout, backoff: well under the minutes it took before.
      assert.ok(caughtUpMs < 16_000, `caught up ${caughtUpMs}ms after the freeze`)
    } finally {
      await tail.stop('SIGKILL')
    }
  })

  test('a server silent after the handshake: Ctrl-C ends obs within two seconds, with its summary', async () => {
    const proxy = await startFaultProxy(loki.addr)
    closers.push(() => proxy.close())
    proxy.fakeWebSocket = () => undefined
    const tail = startObs(['tail', '{app="liveness-silent"}', '--since', '5s'], { env: { LOKI_ADDR: proxy.addr } })
    try {
      await sleep(2000)
      const stoppedAt = Date.now()
      const result = await tail.stop('SIGINT')
      assert.equal(result.code, 0, result.stderr)
      assert.ok(Date.now() - stoppedAt < 2000, `exited ${Date.now() - stoppedAt}ms after Ctrl-C`)
      assert.match(result.stderr, /tail stopped: 0 lines/)
    } finally {
      await tail.stop('SIGKILL')
    }
  })

  test('a server that never answers the upgrade: --timeout bounds the handshake, exit 3 with one line', async () => {
    // Plain requests go to Loki; the WebSocket upgrade is held open forever.
    const held: Socket[] = []
    const server: Server = createHttpServer(async (request, response) => {
      const upstream = await fetch(`${loki.addr}${request.url}`)
      response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' })
      response.end(Buffer.from(await upstream.arrayBuffer()))
    })
    server.on('upgrade', (_request, socket: Socket) => held.push(socket))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    closers.push(() => {
      for (const socket of held) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    })
    const addr = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    const started = Date.now()
    const tail = startObs(['tail', '{app="liveness-upgrade"}', '--timeout', '2s'], { env: { LOKI_ADDR: addr } })
    const result = await tail.exit(15_000)
    await tail.stop('SIGKILL')
    assert.ok(result, 'obs ended by itself')
    assert.equal(result.code, 3, result.stderr)
    assert.match(result.stderr, /cannot open a tail .*no WebSocket handshake within the 2s timeout/)
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr)
    assert.ok(Date.now() - started < 8000, `took ${Date.now() - started}ms`)
  })
})

for (const mode of ['websocket', 'poll'] as const) {
  describe(`lines that reach Loki late (${mode})`, () => {
    const extra = mode === 'poll' ? ['--poll', '--interval', '500ms'] : []

    test('20 s late, across a Loki restart: every line printed once, no warning', async () => {
      const app = `late-${mode}-20s`
      const tail = startObs(['tail', `{app="${app}"}`, '--since', '5s', '-o', 'jsonl', ...extra], { env: { LOKI_ADDR: loki.addr } })
      try {
        await sleep(1500)
        const pushed = await pushLate(app, 30, 0)
        await tail.waitFor(/(?:[^\n]*\n){30}/)
        await loki.restart()
        // Stamped before the newest printed line: only a look-back finds them after the restart.
        pushed.push(...(await pushLate(app, 30, 20_000)))
        await sleep(3000)
        pushed.push(...(await pushLate(app, 30, 20_000)))
        // A reconnect that reaches Loki while it shuts down can wait out the whole handshake timeout (30 s by default)
        // before the next one succeeds; seen once in CI on the stock Loki. The lines must come, not come fast.
        await tail.waitFor(/(?:[^\n]*\n){90}/, 'stdout', 75_000)
        await sleep(1000)
        const result = await tail.stop('SIGINT')
        assert.equal(result.code, 0, result.stderr)
        const lines = printed(result.stdout)
        assert.equal(lines.length, new Set(lines).size, 'no line twice')
        assert.deepEqual(new Set(lines), new Set(pushed))
        assert.doesNotMatch(result.stderr, /look-back of/)
      } finally {
        await tail.stop('SIGKILL')
      }
    })

    test('later than the look-back: never silent, the warning names the look-back', async () => {
      const app = `late-${mode}-beyond`
      // A 5 s look-back and lines 12 s late, stamped after the tail began following.
      const tail = startObs(['tail', `{app="${app}"}`, '--since', '5s', '--look-back', '5s', '-o', 'jsonl', ...extra], { env: { LOKI_ADDR: loki.addr } })
      try {
        await sleep(1500)
        const onTime = await pushLate(app, 10, 0)
        await tail.waitFor(/(?:[^\n]*\n){10}/)
        await sleep(12_000)
        const late = await pushLate(app, 25, 12_000)
        await tail.waitFor(/look-back of 5s/, 'stderr', 20_000)
        const result = await tail.stop('SIGINT')
        assert.equal(result.code, 0, result.stderr)
        if (mode === 'websocket') {
          // Loki's tail sends lines as they are ingested: printed, and the user told such lines are at risk.
          assert.deepEqual(new Set(printed(result.stdout)), new Set([...onTime, ...late]))
          assert.match(
            result.stderr,
            /lines reach Loki 1\d(\.\d+)?s after their own timestamp, past the look-back of 5s: across a reconnect such lines are missed; raise --look-back/,
          )
        } else {
          assert.deepEqual(printed(result.stdout), onTime)
          assert.match(result.stderr, /25 lines between .* reached Loki more than the look-back of 5s after their timestamp and were not printed; raise --look-back/)
        }
      } finally {
        await tail.stop('SIGKILL')
      }
    })
  })
}
