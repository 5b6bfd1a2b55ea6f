/** Where a resumed tail starts, and what it does not print twice. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { LogEntry } from '../../../src/lib/loki/paging.ts'
import { ResumePoint } from '../../../src/lib/loki/tail.ts'

const S = 1_000_000_000n
const entry = (ts: bigint, line: string, service = 'app'): LogEntry => ({ ts: ts.toString(), line, stream: { labels: { service }, json: `{"service":"${service}"}` } })

test('entries seen before are dropped, however they come back; same time and line in another stream is another entry', () => {
  const point = new ResumePoint(10n * S)
  assert.deepEqual(
    point.accept([entry(100n * S, 'a'), entry(100n * S, 'b')]).map((e) => e.line),
    ['a', 'b'],
  )
  assert.deepEqual(
    point.accept([entry(100n * S, 'a'), entry(100n * S, 'a', 'worker'), entry(101n * S, 'c')]).map((e) => `${e.stream.labels.service}/${e.line}`),
    ['worker/a', 'app/c'],
  )
  assert.equal(point.lastTs, (101n * S).toString())
})

test('a resumed tail starts one look-back before the newest printed line, or at the fallback before any', () => {
  const point = new ResumePoint(10n * S)
  assert.equal(point.resumeFrom(5n), 5n)
  point.accept([entry(200n * S, 'x'), entry(150n * S, 'late, from another stream', 'worker')])
  assert.equal(point.resumeFrom(5n), 190n * S)
})

test('what fell out of the look-back is forgotten, so memory stays bounded on a long tail', () => {
  const point = new ResumePoint(10n * S)
  point.accept([entry(1n * S, 'old')])
  // More than a prune's worth of entries, far past the look-back.
  point.accept(Array.from({ length: 1001 }, (_, i) => entry(1000n * S + BigInt(i), `new ${i}`)))
  assert.deepEqual(
    point.accept([entry(1n * S, 'old')]).map((e) => e.line),
    ['old'],
    'an entry older than the look-back is no longer remembered',
  )
  assert.deepEqual(point.accept([entry(1000n * S, 'new 0')]), [], 'one inside it still is')
})
