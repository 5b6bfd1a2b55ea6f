import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Chalk } from 'chalk'
import type { LogEntry } from '../../../src/lib/loki/paging.ts'
import { renderTimeline, type Timeline } from '../../../src/lib/render/timeline.ts'

const plain = new Chalk({ level: 0 })
const T0 = 1_780_000_000_000_000_000n

function at(offsetMs: number, service: string, line: string): Timeline['entries'][number] {
  const entry = { ts: (T0 + BigInt(offsetMs) * 1_000_000n).toString(), line, stream: { labels: { service } } } as unknown as LogEntry
  let fields: Record<string, unknown> = {}
  try {
    fields = JSON.parse(line)
  } catch {}
  return { entry, fields }
}

test("one row per line with pino's numeric levels named, offsets from the first line, and a summary counting errors", () => {
  const text = renderTimeline(
    {
      reqId: 'req-1',
      entries: [
        at(0, 'app', '{"level":30,"reqId":"req-1","msg":"start","route":"/pay"}'),
        at(12, 'worker', '{"level":50,"reqId":"req-1","msg":"card declined"}'),
        at(40, 'app', 'Error: boom'),
      ],
    },
    plain,
  )
  const rows = text.trimEnd().split('\n')
  assert.equal(rows.length, 5)
  assert.match(rows[0], /^\d\d:\d\d:\d\d\.\d{3}\s+\+0ms\s+app\s+INFO\s+start {2}route=\/pay$/)
  assert.match(rows[1], /\+12ms\s+worker\s+ERROR card declined$/)
  assert.match(rows[2], /\+40ms\s+app\s+-\s+Error: boom$/)
  assert.equal(rows[3], '')
  assert.match(rows[4], /^req-1: 3 lines over 40ms, started .*; services: app \(2\), worker \(1\); 1 error$/)
})

test('control characters in messages, fields and the id are neutralised', () => {
  const text = renderTimeline({ reqId: 'r\u001b[2J', entries: [at(0, 'app\u202e', '{"level":"info","msg":"a\u001b]0;x\u0007","k\u001b":"v\u009b"}')] }, plain)
  assert.doesNotMatch(text, /[\u001b\u0007\u009b\u202e]/)
})

test('a long service name is cut with …, so that every line is not padded to its width', () => {
  const text = renderTimeline({ reqId: 'req-2', entries: [at(0, 's'.repeat(2000), '{"level":30,"msg":"start"}'), at(5, 'app', '{"level":30,"msg":"next"}')] }, plain)
  const rows = text.split('\n')
  assert.match(rows[0], / s{23}… INFO {2}start$/)
  assert.match(rows[1], / app {21} INFO {2}next$/)
})
