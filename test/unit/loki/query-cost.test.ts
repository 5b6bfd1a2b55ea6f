import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ExitCode, UnreachableError, UsageError } from '../../../src/lib/errors.ts'
import type { IndexStats, LokiClient, QueryData } from '../../../src/lib/loki/client.ts'
import { ExecTotals, guardQueryCost } from '../../../src/lib/loki/query-cost.ts'

const range = { start: 0n, end: 1n }
const lokiWith = (answer: IndexStats | Error, asked: string[] = []) =>
  ({
    async indexStats(query: string, _range: unknown, options: { retries?: number }) {
      asked.push(`${query} retries=${options.retries}`)
      if (answer instanceof Error) throw answer
      return answer
    },
  }) as unknown as Pick<LokiClient, 'indexStats'>

describe('guardQueryCost', () => {
  const big = { streams: 40, chunks: 9000, entries: 120_000_000, bytes: 25e9 }

  test("asks for the selector's estimate once, without retries, and refuses above the limit naming it and the way out", async () => {
    const asked: string[] = []
    const refusal = await guardQueryCost(lokiWith(big, asked), '{app="a"} |= "x" | json', range, { maxBytes: 10e9, yes: false }).catch((error: unknown) => error)
    assert.deepEqual(asked, ['{app="a"} retries=0'])
    assert.ok(refusal instanceof UsageError)
    assert.equal(refusal.exitCode, ExitCode.usage)
    assert.match(
      refusal.message,
      /would read about 25\.0 GB in 120,000,000 entries, 9,000 chunks, 40 streams \(from Loki's index: lines still in the ingesters .* not counted\), above the limit of 10\.0 GB/,
    )
    assert.match(refusal.hint ?? '', /narrow the range .* add --yes/)
  })

  test('--yes, or an estimate under the limit, lets it run; the estimate is shown', async () => {
    const shown: string[] = []
    assert.equal((await guardQueryCost(lokiWith(big), '{app="a"}', range, { maxBytes: 10e9, yes: true, show: (line) => shown.push(line) }))?.bytes, 25e9)
    assert.equal((await guardQueryCost(lokiWith({ ...big, bytes: 1e6 }), '{app="a"}', range, { maxBytes: 10e9, yes: false }))?.bytes, 1e6)
    assert.match(shown[0], /^estimate: about 25\.0 GB/)
  })

  test('a Loki or proxy without the estimate does not stop the query', async () => {
    const shown: string[] = []
    const outcome = await guardQueryCost(lokiWith(new UnreachableError('Loki answered 404')), '{app="a"}', range, { maxBytes: 1, yes: false, show: (line) => shown.push(line) })
    assert.equal(outcome, undefined)
    assert.match(shown[0], /no estimate from Loki's index \(Loki answered 404\)/)
  })
})

describe('ExecTotals', () => {
  test('adds up the summaries of every answer through the client it wraps; answers without one count as requests', async () => {
    const answers: QueryData[] = [
      {
        resultType: 'streams',
        result: [],
        stats: { summary: { execTime: 0.25, queueTime: 0.01, totalBytesProcessed: 1.5e9, totalLinesProcessed: 2_000_000, totalEntriesReturned: 100 } },
      },
      { resultType: 'streams', result: [], stats: { summary: { execTime: 0.5, totalBytesProcessed: 'lots' } } },
      { resultType: 'streams', result: [] },
    ]
    const client = { queryRange: async () => answers.shift()!, address: 'http://loki' } as unknown as LokiClient
    const totals = new ExecTotals()
    const counting = totals.counting(client)
    assert.equal(counting.address, 'http://loki')
    for (let i = 0; i < 3; i++) await counting.queryRange({ query: '{a="b"}', start: 0n, end: 1n })
    assert.equal(totals.describe(), 'stats: 3 requests; Loki processed 1.50 GB in 2,000,000 lines, returned 100 entries; execution 0.75 s, queued 0.01 s')
  })
})
