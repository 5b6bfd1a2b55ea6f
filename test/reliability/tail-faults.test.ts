/**
 * obs tail under WebSocket faults. Against real Lokis where Loki can be made
 * to misbehave (too many concurrent tails; a tail max duration of seconds
 * instead of an hour), and through the fault proxy for the rest (a tail closed
 * with 1011 and some other reason, a connection cut without a close frame,
 * dropped_entries, a close reason holding escape sequences, a proxy that
 * refuses the upgrade with an HTML page).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { WebSocket } from 'undici'
import { type ObsProcess, spawnObs } from '../support/fault-cli.ts'
import { type FaultLoki, pushLines, startFaultLoki } from '../support/fault-loki.ts'
import { type FaultProxy, htmlErrorPage, startFaultProxy } from '../support/fault-proxy.ts'
import { counters } from '../support/fault-truth.ts'

/** Raw terminal controls: C0 except tab and newline, DEL, C1, bidi overrides and isolates. */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

let loki: FaultLoki
let proxy: FaultProxy
let counter = 0
let faultsSurvived = 0
let linesLost = 0

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

before(async () => {
  loki = await startFaultLoki()
  proxy = await startFaultProxy(loki.addr)
})
after(async () => {
  await proxy?.close()
  await loki?.remove()
})

async function push(addr: string, app: string, count: number): Promise<string[]> {
  const lines = Array.from({ length: count }, () => JSON.stringify({ level: 'info', n: ++counter, msg: `tail line ${counter}` }))
  await pushLines(addr, { app, stream: 'stdout' }, lines, BigInt(Date.now()) * 1_000_000n)
  return lines
}

/** Loki's count of open tails. */
async function activeTails(): Promise<number> {
  const metrics = await (await fetch(`${loki.addr}/metrics`)).text()
  return Number(/^loki_querier_tail_active (\S+)$/m.exec(metrics)?.[1] ?? 0)
}

/**
 * Waits for Loki to count one more open tail than the lowest count seen since
 * `before` (read before the test's tail started). Its WebSocket opens before the ingester has the
 * tail registered; lines pushed in between reach neither the tail nor its
 * history query (seen on a loaded machine, and in CI). The lowest count, not
 * the first: the previous test's tail may still be closing on Loki's side.
 */
async function tailRegistered(before: number): Promise<void> {
  const deadline = Date.now() + 15_000
  let lowest = before
  for (;;) {
    const now = await activeTails()
    if (now > lowest) break
    lowest = Math.min(lowest, now)
    if (Date.now() > deadline) throw new Error(`Loki never counted the tail as active (${now} open)`)
    await sleep(50)
  }
  // The gauge goes up once the ingester answered; give its side a moment.
  await sleep(200)
}

/** Tails (through the proxy by default) until obs gives up: it must exit 3 with one line on stderr, returned. */
async function refusedWithOneLine(app: string, addr = proxy.addr): Promise<string> {
  const run = tail(app, addr)
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 15_000)
  const result = await run.done
  clearTimeout(timer)
  assert.equal(result.code, 3, result.err)
  assert.equal(result.out, '', 'nothing on stdout')
  const lines = result.err.split('\n').filter((line) => line !== '')
  assert.equal(lines.length, 1, result.err)
  return lines[0]
}

function printed(run: ObsProcess): string[] {
  return run
    .stdout()
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { line: string }).line)
}

function tail(app: string, addr: string, extra: string[] = []): ObsProcess {
  return spawnObs(['tail', `{app="${app}"}`, '--since', '10s', '-o', 'jsonl', ...extra], { env: { LOKI_ADDR: addr } })
}

/** Starts a tail through the proxy; once Loki has it registered, pushes `count` lines and waits for them. */
async function tailThrough(app: string, count: number): Promise<{ run: ObsProcess; pushed: string[]; tunnelsBefore: number }> {
  const tunnelsBefore = proxy.tunnels.length
  const tailsBefore = await activeTails()
  const run = tail(app, proxy.addr)
  try {
    await run.waitFor(() => proxy.tunnels.length > tunnelsBefore, 'the tail to connect')
    await tailRegistered(tailsBefore)
    const pushed = await push(loki.addr, app, count)
    await run.waitFor(() => printed(run).length >= count, `the first ${count} lines`)
    return { run, pushed, tunnelsBefore }
  } catch (error) {
    await run.stop('SIGKILL')
    throw error
  }
}

/** Waits for every pushed line, ends the tail with Ctrl-C (exit 0) and returns what it printed; lost lines are counted. */
async function finish(run: ObsProcess, pushed: string[]): Promise<{ lines: string[]; stderr: string }> {
  await run.waitFor(() => printed(run).length >= pushed.length, `${pushed.length} lines`, 15_000)
  await sleep(700)
  const result = await run.stop('SIGINT')
  assert.equal(result.code, 0, result.err)
  const lines = printed(run)
  linesLost += pushed.filter((line) => !lines.includes(line)).length
  return { lines, stderr: result.err }
}

/**
 * Tails through the proxy, pushes lines, breaks the tail with `fault` (lines
 * are pushed while it is down), pushes more once it reconnected, and checks
 * that every line was printed once, in order.
 */
async function survives(app: string, fault: (tunnel: FaultProxy['tunnels'][number]) => void): Promise<{ stderr: string }> {
  const { run, pushed, tunnelsBefore } = await tailThrough(app, 20)
  try {
    fault(proxy.tunnels[proxy.tunnels.length - 1])
    pushed.push(...(await push(loki.addr, app, 20)))
    await run.waitFor(() => /reconnect/.test(run.stderr()), 'a reconnect note', 10_000)
    await run.waitFor(() => proxy.tunnels.length > tunnelsBefore + 1, 'a new tail', 15_000)
    await sleep(300)
    pushed.push(...(await push(loki.addr, app, 20)))
    const { lines, stderr } = await finish(run, pushed)
    assert.deepEqual(lines, pushed, 'every line once, in order')
    assert.match(stderr, /tail stopped: 60 lines, [1-9]\d* reconnects, 0 dropped/)
    faultsSurvived++
    return { stderr }
  } finally {
    await run.stop('SIGKILL')
  }
}

describe('obs tail through the fault proxy', () => {
  test('closed by the server with 1011 and a reason other than a limit: reconnects, loses and repeats nothing', async () => {
    const { stderr } = await survives('ws-1011', (tunnel) => tunnel.close(1011, 'rpc error: code = Unavailable desc = transport is closing'))
    assert.match(stderr, /1011/)
  })

  test('connection cut without a close frame: reconnects, loses and repeats nothing', async () => {
    await survives('ws-cut', (tunnel) => tunnel.cut())
  })

  test('cut right after it opened, before any line: the catch-up starts where the tail began', async () => {
    const app = 'ws-cut-early'
    const tunnelsBefore = proxy.tunnels.length
    const run = tail(app, proxy.addr)
    try {
      await run.waitFor(() => proxy.tunnels.length > tunnelsBefore, 'the tail to connect')
      await sleep(200)
      proxy.tunnels[proxy.tunnels.length - 1].cut()
      // Pushed while obs is reconnecting: only the catch-up can find them.
      const pushed = await push(loki.addr, app, 15)
      await run.waitFor(() => proxy.tunnels.length > tunnelsBefore + 1, 'a new tail', 15_000)
      await sleep(300)
      pushed.push(...(await push(loki.addr, app, 15)))
      const { lines } = await finish(run, pushed)
      assert.deepEqual(lines, pushed)
      faultsSurvived++
    } finally {
      await run.stop('SIGKILL')
    }
  })

  test('a late line reaching Loki between the catch-up and the new tail: printed once, not lost', async () => {
    const app = 'ws-gap'
    const { run, pushed, tunnelsBefore } = await tailThrough(app, 10)
    let release = () => {}
    proxy.holdUpgrade = new Promise((resolve) => {
      release = resolve
    })
    try {
      const upgradesBefore = proxy.count('/tail')
      proxy.tunnels[proxy.tunnels.length - 1].cut()
      // obs has caught up and asks for a new tail; the proxy holds the handshake, so Loki has no tail registered.
      await run.waitFor(() => proxy.count('/tail') > upgradesBefore, 'the reconnect to ask for a new tail', 15_000)
      // Stamped 5 s ago, before the end of the catch-up: neither the catch-up nor the new tail's history holds them.
      const late = Array.from({ length: 10 }, () => JSON.stringify({ level: 'info', n: ++counter, msg: `late gap line ${counter}` }))
      await pushLines(loki.addr, { app, stream: 'stdout' }, late, BigInt(Date.now() - 5000) * 1_000_000n)
      pushed.push(...late)
      release()
      await run.waitFor(() => proxy.tunnels.length > tunnelsBefore + 1, 'a new tail', 15_000)
      const { lines } = await finish(run, pushed)
      assert.equal(lines.length, new Set(lines).size, 'no line twice')
      assert.deepEqual(new Set(lines), new Set(pushed))
      faultsSurvived++
    } finally {
      release()
      proxy.holdUpgrade = undefined
      await run.stop('SIGKILL')
    }
  })

  test('dropped_entries from Loki are reported on stderr with their count', async () => {
    const app = 'ws-dropped'
    const { run, pushed } = await tailThrough(app, 5)
    try {
      const when = new Date().toISOString()
      const dropped = [1, 2, 3].map(() => ({ timestamp: when, labels: { app, stream: 'stdout' } }))
      proxy.tunnels[proxy.tunnels.length - 1].inject(JSON.stringify({ streams: [], dropped_entries: dropped }))
      await run.waitFor(() => /dropped 3 entries/.test(run.stderr()), 'the dropped entries warning', 5000)
      pushed.push(...(await push(loki.addr, app, 5)))
      await run.waitFor(() => printed(run).length >= 10, 'lines after the drop')
      const result = await run.stop('SIGINT')
      assert.equal(result.code, 0, result.err)
      assert.deepEqual(printed(run), pushed)
      const warning = result.err.split('\n').filter((line) => /dropped 3 entries/.test(line))
      assert.equal(warning.length, 1, result.err)
      assert.match(result.err, /tail stopped: 10 lines, 0 reconnects, 3 dropped/)
      faultsSurvived++
    } finally {
      await run.stop('SIGKILL')
    }
  })

  test('a close reason holding escape sequences does not reach the terminal raw', async () => {
    const { stderr } = await survives('ws-hostile-reason', (tunnel) => tunnel.close(1011, 'boom \u001b[2J\u001b]0;pwned\u0007 \u202eevil'))
    const notes = stderr.split('\n').filter((line) => /reconnect/.test(line))
    assert.ok(notes.length > 0)
    for (const note of notes) assert.doesNotMatch(note, RAW_CONTROL, `raw control characters in ${JSON.stringify(note)}`)
  })

  test('a refusal whose reason holds escape sequences: one clean line, exit 3', async () => {
    proxy.fakeWebSocket = (ws) => ws.close(1011, 'max concurrent tail requests limit exceeded \u001b[31m\u001b]0;pwned\u0007\u202e')
    try {
      const line = await refusedWithOneLine('ws-fake-refusal')
      assert.match(line, /max concurrent tail requests limit exceeded/)
      assert.doesNotMatch(line, RAW_CONTROL, `raw control characters in ${JSON.stringify(line)}`)
    } finally {
      proxy.fakeWebSocket = undefined
    }
  })

  test('a proxy that answers the upgrade with a 502 HTML page: exit 3, one line, no HTML', async () => {
    proxy.rejectUpgrade = { status: 502, reason: 'Bad Gateway', headers: { 'content-type': 'text/html' }, body: htmlErrorPage(502, 'Bad Gateway') }
    try {
      const line = await refusedWithOneLine('ws-502')
      assert.doesNotMatch(line, /<|nginx/)
      assert.match(line, /tail/)
      assert.match(line, new RegExp(proxy.addr.replace(/[.]/g, '\\.')))
    } finally {
      proxy.rejectUpgrade = undefined
    }
  })
})

describe('obs tail against a real Loki that refuses or ends tails', () => {
  test("Loki's own refusal (an 11th concurrent tail): exit 3 with one clear line", async () => {
    const sockets: WebSocket[] = []
    try {
      for (let i = 0; i < 10; i++) {
        const ws = new WebSocket(`${loki.addr.replace('http:', 'ws:')}/loki/api/v1/tail?query=${encodeURIComponent('{app="hog"}')}`)
        await new Promise((resolve, reject) => {
          ws.addEventListener('open', resolve)
          ws.addEventListener('close', () => reject(new Error(`tail ${i} closed before opening`)))
        })
        sockets.push(ws)
      }
      const line = await refusedWithOneLine('refused', loki.addr)
      assert.match(line, /max concurrent tail requests limit exceeded/)
      assert.doesNotMatch(line, /reconnect/)
    } finally {
      for (const ws of sockets) ws.close()
    }
  })

  test('Loki ending the tail at its tail max duration (3 s here, 1 h by default): obs reconnects and loses nothing', async (t) => {
    const short = await startFaultLoki({ args: ['-querier.tail-max-duration=3s'] })
    const app = 'max-duration'
    const run = tail(app, short.addr)
    try {
      await sleep(800)
      const pushed = await push(short.addr, app, 10)
      await run.waitFor(() => printed(run).length >= 10, 'the first lines')
      // Past Loki's limit: it closes the tail with 1011 "reached tail max duration limit".
      await sleep(3500)
      pushed.push(...(await push(short.addr, app, 10)))
      await run.waitFor(() => printed(run).length >= 20, 'lines after the tail max duration', 15_000)
      const result = await run.stop('SIGINT')
      assert.equal(result.code, 0, result.err)
      assert.deepEqual(printed(run), pushed)
      assert.match(result.err, /tail stopped: 20 lines, [1-9]\d* reconnects, 0 dropped/)
      faultsSurvived++
    } finally {
      const result = await run.stop('SIGKILL')
      t.diagnostic(`max-duration tail stderr: ${JSON.stringify(result.err.slice(0, 400))}`)
      await short.remove()
    }
  })

  test('counts', (t) => {
    t.diagnostic(counters('tail-faults', { faultsSurvived, linesLost }))
  })
})
