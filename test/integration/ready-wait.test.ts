import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { freePort, startLoki, stopAndRemove } from '../support/loki.ts'

test('ready --wait waits for a Loki that is still starting, then exits 0', async () => {
  const port = await freePort()
  const waiting = runObs(['ready', '--wait', '60s', '--interval', '200ms', '--addr', `http://127.0.0.1:${port}`])
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const loki = await startLoki({ port, noWait: true })
  try {
    const result = await waiting
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'ready\n')
    assert.match(result.stderr, /waiting for Loki at http:\/\/127\.0\.0\.1:\d+/)
  } finally {
    await stopAndRemove(loki)
  }
})

test('ready --wait gives up when the time is up: exit 3 when Loki never came', async () => {
  const port = await freePort()
  const started = Date.now()
  const result = await runObs(['ready', '--wait', '2s', '--interval', '500ms', '--addr', `http://127.0.0.1:${port}`])
  assert.equal(result.code, 3)
  assert.ok(Date.now() - started >= 2000)
  assert.match(result.stderr.trimEnd().split('\n').at(-1) ?? '', /cannot reach Loki at http:\/\/127\.0\.0\.1:\d+/)
})
