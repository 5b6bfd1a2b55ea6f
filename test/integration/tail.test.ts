/**
 * obs tail against a real Loki of its own: lines pushed while tailing appear
 * once each, in order, also across a Loki restart, over the WebSocket and with
 * --poll. On the stock config every line carries detected_level as structured
 * metadata, which is where the catch-up's entries and the WebSocket's once
 * differed and the same line was printed twice.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type RunningObs, startObs } from '../support/cli.ts'
import { type LokiProcess, pushAll, startLoki, stopAndRemove } from '../support/loki.ts'

let loki: LokiProcess
let counter = 0

before(async () => {
  loki = await startLoki()
})
after(async () => {
  await stopAndRemove(loki)
})

/** Pushes `count` numbered lines to the app's stream and returns them. */
async function pushLines(app: string, count: number, stream = 'stdout'): Promise<string[]> {
  const base = BigInt(Date.now()) * 1_000_000n
  const lines = Array.from({ length: count }, () => JSON.stringify({ level: 'info', time: Date.now(), n: counter++, msg: `line ${counter}` }))
  await pushAll(loki.addr, [[{ stream: { app, stream }, values: lines.map((line, i) => [(base + BigInt(i) * 1000n).toString(), line]) }]])
  return lines
}

function printedLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { line: string }).line)
}

async function waitForLines(tail: RunningObs, count: number): Promise<void> {
  await tail.waitFor(new RegExp(`(?:[^\\n]*\\n){${count}}`))
}

for (const mode of ['websocket', 'poll'] as const) {
  describe(`obs tail (${mode})`, () => {
    const extra = mode === 'poll' ? ['--poll', '--interval', '300ms'] : []

    test('lines pushed while tailing appear once each, in order; Ctrl-C exits 0 with a summary', async () => {
      const app = `tail-${mode}-live`
      const tail = startObs(['tail', `{app="${app}"}`, '--since', '5s', '-o', 'jsonl', ...extra], { env: { LOKI_ADDR: loki.addr } })
      try {
        await new Promise((resolve) => setTimeout(resolve, 1500))
        const pushed: string[] = []
        for (let batch = 0; batch < 4; batch++) {
          pushed.push(...(await pushLines(app, 25)))
          await new Promise((resolve) => setTimeout(resolve, 300))
        }
        await waitForLines(tail, pushed.length)
        const result = await tail.stop('SIGINT')
        assert.equal(result.code, 0, result.stderr)
        assert.deepEqual(printedLines(result.stdout), pushed)
        assert.match(result.stderr, /tail stopped: 100 lines, 0 reconnects, 0 dropped/)
      } finally {
        await tail.stop('SIGKILL')
      }
    })

    test("a query Loki's range queries reject (and its WebSocket would accept and never answer) exits 2 with Loki's reason", async () => {
      const tail = startObs(['tail', '{app="tail-bad-template"} | line_format "{{.msg"', ...extra], { env: { LOKI_ADDR: loki.addr } })
      const exited = await tail.exit(15_000)
      await tail.stop('SIGKILL')
      assert.ok(exited, 'obs tail ended by itself')
      assert.equal(exited.code, 2, exited.stderr)
      assert.match(exited.stderr, /^error: Loki rejected the request: 400 Bad Request: .*invalid line template/)
      assert.equal(exited.stderr.trimEnd().split('\n').length, 1, exited.stderr)
    })

    test('after Loki restarts the tail resumes: every line exactly once', async () => {
      const app = `tail-${mode}-restart`
      const tail = startObs(['tail', `{app="${app}"}`, '--since', '5s', '-o', 'jsonl', ...extra], { env: { LOKI_ADDR: loki.addr } })
      await new Promise((resolve) => setTimeout(resolve, 1500))
      try {
        const pushed = await pushLines(app, 100)
        await waitForLines(tail, pushed.length)
        await loki.restart()
        pushed.push(...(await pushLines(app, 100)))
        // The WebSocket was cut, so it must reconnect; polling may ride out the restart on retries.
        if (mode === 'websocket') await tail.waitFor(/reconnect/, 'stderr')
        await new Promise((resolve) => setTimeout(resolve, 2000))
        pushed.push(...(await pushLines(app, 100)))
        await waitForLines(tail, pushed.length)
        await new Promise((resolve) => setTimeout(resolve, 1000))
        const result = await tail.stop('SIGINT')
        assert.equal(result.code, 0, result.stderr)
        const printed = printedLines(result.stdout)
        assert.equal(printed.length - new Set(printed).size, 0, 'lines printed twice')
        assert.deepEqual(printed, pushed)
        assert.match(result.stderr, mode === 'websocket' ? /tail stopped: 300 lines, [1-9]\d* reconnects/ : /tail stopped: 300 lines/)
      } finally {
        await tail.stop('SIGKILL')
      }
    })
  })
}

test('a line holding escape sequences does not reach the terminal as control codes', async () => {
  const app = 'tail-hostile'
  const tail = startObs(['tail', `{app="${app}"}`, '--since', '5s', '-o', 'pretty'], { env: { LOKI_ADDR: loki.addr } })
  after(() => tail.stop('SIGKILL'))
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const hostile = 'before \u001b[2J\u001b]0;owned\u0007 \u009b31m \u202eevil\r\u0008 after'
  await pushAll(loki.addr, [[{ stream: { app, stream: 'stdout' }, values: [[(BigInt(Date.now()) * 1_000_000n).toString(), hostile]] }]])
  await tail.waitFor(/after/)
  const result = await tail.stop('SIGINT')
  assert.equal(result.code, 0)
  assert.doesNotMatch(result.stdout, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/)
  assert.match(result.stdout, /before \\x1b\[2J\\x1b\]0;owned\\x07 \\x9b31m \\u202eevil\\r\\x08 after/)
})
