/** What obs says only on a terminal, driven through a pseudo-terminal. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { testLoki } from '../support/env.ts'
import { runInTerminal } from '../support/pty.ts'

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
