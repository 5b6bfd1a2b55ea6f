/** What obs says only on a terminal, driven through a pseudo-terminal. */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { runInTerminal, typeInBash } from '../support/pty.ts'

const { addr } = testLoki()

test('a query with no results says so on a terminal, naming the range searched', async () => {
  const { code, output } = await runInTerminal(['query-range', '{app="no-such-app"}', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-01T01:00:00Z'], { LOKI_ADDR: addr })
  assert.equal(code, 0, output)
  assert.match(output, /no entries match \{app="no-such-app"\} from 2026-01-01T00:00:00\.000000000Z to 2026-01-01T01:00:00\.000000000Z; widen the range/)
})

test('a --limit 0 query prints its estimate on a terminal, with the caveat', async () => {
  const { code, output } = await runInTerminal(['query-range', '{app="no-such-app"}', '--since', '5m', '--limit', '0'], { LOKI_ADDR: addr })
  assert.equal(code, 0, output)
  assert.match(output, /estimate: about .* streams \(from Loki's index: lines still in the ingesters/)
})

test('obs init on a terminal asks, Enter keeps the default, and the file it writes is the one obs reads', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'obs-init-tty-'))
  const { code, output } = await runInTerminal(['init'], {}, { cwd, input: ['http://127.0.0.1:3999', '', 'billing', ''] })
  assert.equal(code, 0, output)
  assert.match(output, /Loki for dev and test \[http:\/\/localhost:3100\]: /)
  assert.match(output, /app label \[cogni-template\]: /)
  assert.match(output, /wrote .*obs\.config\.yaml/)
  const text = readFileSync(join(cwd, 'obs.config.yaml'), 'utf8')
  assert.match(text, /addr: "http:\/\/127\.0\.0\.1:3999"/)
  assert.match(text, /addr: "https:\/\/loki\.example\.com"/)
  assert.match(text, /app: "billing"/)
})

test('completion in a real bash: Tab completes a command, a flag, and a label value live from Loki', async () => {
  const screen = await typeInBash(['obs query-ra\t', '\'{app="cogni-te\t'], { LOKI_ADDR: addr })
  assert.match(screen, /obs query-range '\{app="cogni-template"/)
})

test('completion against a Loki that never answers gives up within a second or so: the shell is not held', async () => {
  const silent = createServer(() => {})
  await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done))
  try {
    const { port } = silent.address() as AddressInfo
    const started = performance.now()
    const result = await runObs(['__complete', `obs query-range '{app="co`], { env: { LOKI_ADDR: `http://127.0.0.1:${port}` } })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, '')
    assert.ok(performance.now() - started < 4000, `${performance.now() - started} ms`)
  } finally {
    silent.closeAllConnections()
    silent.close()
  }
})
