/**
 * Compares what obs printed as jsonl with the ground truth, independently of
 * src/: nothing lost, nothing repeated, nothing extra, and in order.
 */
import assert from 'node:assert/strict'
import { entryKey, type TruthEntry } from './dataset.ts'

export interface JsonlEntry {
  labels: Record<string, string>
  line: string
  timestamp: string
}

/** RFC 3339 with nine fraction digits, UTC, back to nanoseconds. */
export function toNs(timestamp: string): bigint {
  const match = /^(.{19})\.(\d{9})Z$/.exec(timestamp)
  assert.ok(match, `timestamp ${timestamp} is RFC 3339 with nanoseconds in UTC`)
  return BigInt(Date.parse(`${match[1]}Z`)) * 1_000_000n + BigInt(match[2])
}

export function parseJsonl(stdout: string): JsonlEntry[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as JsonlEntry)
}

export interface Comparison {
  printed: number
  expected: number
  missing: number
  repeated: number
  extra: number
}

/** Counts what differs between the printed entries and the truth. */
export function compareWithTruth(printed: JsonlEntry[], truth: TruthEntry[]): Comparison {
  const want = new Map<string, number>()
  for (const e of truth) {
    const key = entryKey(e.labels, e.ts, e.line)
    want.set(key, (want.get(key) ?? 0) + 1)
  }
  const seen = new Map<string, number>()
  for (const e of printed) {
    const key = entryKey(e.labels, toNs(e.timestamp).toString(), e.line)
    seen.set(key, (seen.get(key) ?? 0) + 1)
  }
  let missing = 0
  let repeated = 0
  let extra = 0
  for (const [key, count] of want) {
    const got = seen.get(key) ?? 0
    if (got < count) missing += count - got
    if (got > count) repeated += got - count
  }
  for (const [key, count] of seen) if (!want.has(key)) extra += count
  return { printed: printed.length, expected: truth.length, missing, repeated, extra }
}

export function assertSameEntries(printed: JsonlEntry[], truth: TruthEntry[]): Comparison {
  const comparison = compareWithTruth(printed, truth)
  assert.deepEqual(
    { missing: comparison.missing, repeated: comparison.repeated, extra: comparison.extra },
    { missing: 0, repeated: 0, extra: 0 },
    `printed ${comparison.printed} of ${comparison.expected} entries`,
  )
  return comparison
}

export function assertOrdered(entries: JsonlEntry[], direction: 'forward' | 'backward'): void {
  for (let i = 1; i < entries.length; i++) {
    const a = toNs(entries[i - 1].timestamp)
    const b = toNs(entries[i].timestamp)
    assert.ok(direction === 'forward' ? a <= b : a >= b, `entry ${i} out of ${direction} order`)
  }
}

/** One diagnostic line of counters, shown by the test reporter (for the suite's totals). */
export function counters(name: string, counts: Record<string, number>): string {
  return `reliability ${name}: ${Object.entries(counts)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`
}
