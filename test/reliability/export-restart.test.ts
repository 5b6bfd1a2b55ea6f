/**
 * A paged export survives a Loki restart in its middle: obs is stopped between
 * two pages (its stdout is not read, so it blocks on the write), Loki is shut
 * down, obs resumes and meets a refused connection, and Loki comes back with
 * the stack's own start-up timing (queries hang for about 10 s until the query
 * frontend finds the scheduler). obs retries with backoff and the export ends
 * equal to the ground truth: no line lost, none repeated.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Dataset, generateDataset, toPushBatches } from '../support/dataset.ts'
import { spawnObs } from '../support/fault-cli.ts'
import { type FaultLoki, startFaultLoki } from '../support/fault-loki.ts'
import { assertOrdered, assertSameEntries, counters, parseJsonl } from '../support/fault-truth.ts'
import { pushAll } from '../support/loki.ts'

let loki: FaultLoki
let dataset: Dataset

before(async () => {
  loki = await startFaultLoki()
  const endNs = BigInt(Date.now() - 60_000) * 1_000_000n
  dataset = generateDataset({ seed: 1337, endNs, spanMs: 40 * 60_000, requests: 9000 })
  await pushAll(loki.addr, toPushBatches(dataset.entries, 5000))
})
after(async () => {
  await loki?.remove()
})

test('a --limit 0 export rides out a Loki restart between two pages: output equals the ground truth', async (t) => {
  assert.ok(dataset.entries.length >= 30_000, `${dataset.entries.length} lines`)
  const run = spawnObs(['query-range', '{app="cogni-template"}', '--since', '1h', '--limit', '0', '-o', 'jsonl', '--batch', '1000', '--retries', '6'], {
    env: { LOKI_ADDR: loki.addr, OBS_DEBUG: '1' },
  })
  try {
    // Let the first pages through, then hold obs between two pages.
    await run.waitFor(() => run.lineCount() >= 3000, 'the first 3000 lines')
    run.pause()
    await loki.stop()
    const before = run.lineCount()
    assert.ok(before < dataset.entries.length, 'the export is not finished when Loki goes down')
    run.resume()
    // obs now asks a Loki that is not there.
    await run.waitFor(() => /ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET/.test(run.stderr()), 'a refused connection', 20_000)
    loki.launch({ stackTiming: true })
    const result = await run.done
    assert.equal(result.code, 0, result.err.slice(-2000))
    const entries = parseJsonl(result.out)
    const comparison = assertSameEntries(entries, dataset.entries)
    assertOrdered(entries, 'backward')
    const retries = (result.err.match(/retrying in/g) ?? []).length
    assert.ok(retries >= 1, 'obs retried')
    // Debug lines aside, nothing went to stderr.
    assert.deepEqual(
      result.err.split('\n').filter((l) => l && !l.startsWith('debug: ')),
      [],
    )
    t.diagnostic(
      counters('export-restart', {
        faultsSurvived: 1,
        linesExpected: comparison.expected,
        linesPrinted: comparison.printed,
        linesLost: comparison.missing,
        linesRepeated: comparison.repeated,
        retries,
        printedBeforeRestart: before,
      }),
    )
  } finally {
    await run.stop('SIGKILL')
  }
})
