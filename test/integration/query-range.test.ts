import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { OBS, runObs } from '../support/cli.ts'
import { entryKey, pushedLabels, type TruthEntry } from '../support/dataset.ts'
import { testLoki } from '../support/env.ts'
import { countingServer } from '../support/silent-server.ts'

const { addr, dataset, config } = testLoki()
const env = { LOKI_ADDR: addr }
const ALL = '{app="cogni-template"}'

interface JsonlEntry {
  labels: Record<string, string>
  structuredMetadata?: Record<string, string>
  parsed?: Record<string, string>
  line: string
  timestamp: string
}

const JSONL_KEYS = ['labels', 'structuredMetadata', 'parsed', 'line', 'timestamp']

/** RFC 3339 with nine fraction digits back to nanoseconds, independently of src/. */
function toNs(timestamp: string): bigint {
  const match = /^(.{19})\.(\d{9})Z$/.exec(timestamp)
  assert.ok(match, `timestamp ${timestamp} is RFC 3339 with nanoseconds in UTC`)
  return BigInt(Date.parse(`${match[1]}Z`)) * 1_000_000n + BigInt(match[2])
}

function parseJsonl(stdout: string): JsonlEntry[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const entry = JSON.parse(line) as JsonlEntry
      // labels, line and timestamp always; metadata and parsed labels when the entry has them.
      assert.deepEqual(
        Object.keys(entry),
        JSONL_KEYS.filter((key) => key in entry),
      )
      for (const key of ['labels', 'line', 'timestamp']) assert.ok(key in entry, `${key} in every entry`)
      return entry
    })
}

function keysOf(entries: JsonlEntry[]): string[] {
  return entries.map((e) => entryKey(e.labels, toNs(e.timestamp).toString(), e.line))
}

function truthKeys(entries: TruthEntry[]): string[] {
  return entries.map((e) => entryKey(e.labels, e.ts, e.line))
}

/** Asserts the exact same entries: nothing lost, nothing repeated, nothing extra. */
function assertSameEntries(actual: JsonlEntry[], expected: TruthEntry[]): void {
  const got = keysOf(actual)
  assert.equal(new Set(got).size, got.length, 'no entry is repeated')
  const want = new Set(truthKeys(expected))
  const missing = [...want].filter((key) => !got.includes(key))
  assert.equal(got.length, want.size, `same number of entries (${missing.length} missing)`)
  assert.deepEqual(new Set(got), want)
}

function assertOrdered(entries: JsonlEntry[], direction: 'forward' | 'backward'): void {
  for (let i = 1; i < entries.length; i++) {
    const a = toNs(entries[i - 1].timestamp)
    const b = toNs(entries[i].timestamp)
    assert.ok(direction === 'forward' ? a <= b : a >= b, `entry ${i} out of ${direction} order`)
  }
}

const sortedTruth = [...dataset.entries].sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : 0))

describe('query-range against the real Loki', () => {
  test('the dataset spans more than three pages', () => {
    assert.ok(dataset.entries.length > 3 * 5000, `${dataset.entries.length} lines`)
  })

  test('--limit 0 -o jsonl returns exactly the pushed lines, newest first', async () => {
    const result = await runObs(['query-range', ALL, '--since', '1h', '--limit', '0', '-o', 'jsonl'], { env })
    assert.equal(result.code, 0, result.stderr)
    const entries = parseJsonl(result.stdout)
    assertSameEntries(entries, dataset.entries)
    assertOrdered(entries, 'backward')
  })

  test('--forward with an odd batch size returns the same lines, oldest first', async () => {
    const result = await runObs(['query-range', ALL, '--since', '1h', '--limit', '0', '--forward', '--batch', '997', '-o', 'jsonl'], { env })
    assert.equal(result.code, 0, result.stderr)
    const entries = parseJsonl(result.stdout)
    assertSameEntries(entries, dataset.entries)
    assertOrdered(entries, 'forward')
  })

  test('--parallel 4 is byte-identical to the sequential export', async () => {
    for (const direction of [[], ['--forward']]) {
      const args = ['query-range', ALL, '--from', sortedTruth[0].ts, '--to', 'now', '--limit', '0', '--batch', '1500', ...direction, '-o', 'jsonl']
      const sequential = await runObs(args, { env })
      const parallel = await runObs([...args, '--parallel', '4'], { env })
      assert.equal(sequential.code, 0, sequential.stderr)
      assert.equal(parallel.code, 0, parallel.stderr)
      assert.equal(parallel.stdout.split('\n').length - 1, dataset.entries.length)
      assert.ok(parallel.stdout === sequential.stdout, 'byte-identical output')
    }
  })

  test('tiny pages across lines sharing a nanosecond in four streams lose and repeat nothing', async () => {
    const tie = sortedTruth.find((e) => e.line.includes('heartbeat'))
    assert.ok(tie)
    const from = BigInt(tie.ts) - 40_000_000n
    const to = BigInt(tie.ts) + 40_000_000n
    const expected = sortedTruth.filter((e) => BigInt(e.ts) >= from && BigInt(e.ts) < to)
    assert.ok(expected.filter((e) => e.ts === tie.ts).length >= 4)
    for (const direction of [[], ['--forward']]) {
      const result = await runObs(['query-range', ALL, '--from', from.toString(), '--to', to.toString(), '--limit', '0', '--batch', '5', ...direction, '-o', 'jsonl'], { env })
      assert.equal(result.code, 0, result.stderr)
      assertSameEntries(parseJsonl(result.stdout), expected)
    }
  })

  test('a batch smaller than one timestamp group still returns the whole group', async () => {
    const tie = sortedTruth.find((e) => e.line.includes('heartbeat'))
    assert.ok(tie)
    const group = sortedTruth.filter((e) => e.ts === tie.ts)
    assert.ok(group.length > 2)
    const result = await runObs(['query-range', ALL, '--from', tie.ts, '--to', (BigInt(tie.ts) + 1n).toString(), '--limit', '0', '--batch', '2', '-o', 'jsonl'], { env })
    assert.equal(result.code, 0, result.stderr)
    assertSameEntries(parseJsonl(result.stdout), group)
  })

  test('--from is inclusive, --to exclusive, and nothing outside the range comes back', async () => {
    const from = sortedTruth[3000]
    const to = sortedTruth[9500]
    const expected = sortedTruth.filter((e) => BigInt(e.ts) >= BigInt(from.ts) && BigInt(e.ts) < BigInt(to.ts))
    const result = await runObs(['query-range', ALL, '--from', from.ts, '--to', to.ts, '--limit', '0', '-o', 'jsonl'], { env })
    assert.equal(result.code, 0, result.stderr)
    const entries = parseJsonl(result.stdout)
    assertSameEntries(entries, expected)
    const iso = new Date(Number(BigInt(from.ts) / 1_000_000n)).toISOString()
    const rfc = await runObs(['query-range', ALL, '--from', iso, '--to', 'now', '--limit', '3', '--forward', '-o', 'jsonl'], { env })
    assert.equal(rfc.code, 0, rfc.stderr)
    for (const entry of parseJsonl(rfc.stdout)) assert.ok(toNs(entry.timestamp) >= BigInt(Date.parse(iso)) * 1_000_000n)
  })

  test('--limit N returns the N newest lines', async () => {
    const result = await runObs(['query-range', ALL, '--since', '1h', '--limit', '123', '-o', 'jsonl'], { env })
    assert.equal(result.code, 0, result.stderr)
    const entries = parseJsonl(result.stdout)
    assert.equal(entries.length, 123)
    const newest = sortedTruth.slice(-123).map((e) => BigInt(e.ts))
    assert.deepEqual(
      entries.map((e) => toNs(e.timestamp)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      newest,
    )
  })

  test('a filtered query returns exactly the matching lines; jsonl keeps the stream, metadata and parsed labels apart', async () => {
    const query = '{app="cogni-template"} | json | level="error"'
    const result = await runObs(['query-range', query, '--since', '1h', '--limit', '0', '-o', 'jsonl'], { env })
    assert.equal(result.code, 0, result.stderr)
    const entries = parseJsonl(result.stdout)
    const expected = dataset.entries.filter((e) => (JSON.parse(e.line) as { level: string }).level === 'error')
    assertSameEntries(entries, expected)
    for (const entry of entries) {
      assert.equal(entry.parsed?.level, 'error')
      assert.equal(entry.parsed?.reqId, (JSON.parse(entry.line) as { reqId: string }).reqId)
      assert.deepEqual(Object.keys(pushedLabels(entry.labels)).sort(), ['app', 'env', 'service', 'stream'])
      // Loki 3's detected_level is structured metadata where discover_log_levels is on (stock), absent where off (stack).
      if (config === 'stock') assert.deepEqual(entry.structuredMetadata, { detected_level: 'error' })
      else assert.equal(entry.structuredMetadata, undefined)
    }
  })

  test('-o raw prints the lines only and -o json one document', async () => {
    // The shared dataset's app: other tests push lines of service "worker" under apps of their own.
    const raw = await runObs(['query-range', '{app="cogni-template", service="worker"}', '--since', '1h', '--limit', '0', '-o', 'raw'], { env })
    assert.equal(raw.code, 0, raw.stderr)
    const workerLines = dataset.entries.filter((e) => e.labels.service === 'worker').map((e) => e.line)
    assert.deepEqual(raw.stdout.trimEnd().split('\n').sort(), workerLines.sort())
    const json = await runObs(['query-range', '{app="cogni-template", service="worker"}', '--since', '1h', '--limit', '50', '-o', 'json'], { env })
    assert.equal(json.code, 0, json.stderr)
    const document = JSON.parse(json.stdout) as JsonlEntry[]
    assert.equal(document.length, 50)
    const empty = await runObs(['query-range', '{service="nope"}', '--since', '1h', '-o', 'json'], { env })
    assert.deepEqual(JSON.parse(empty.stdout), [])
  })

  test('the alias query_range works', async () => {
    const result = await runObs(['query_range', ALL, '--since', '1h', '--limit', '5', '-o', 'raw'], { env })
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout.trimEnd().split('\n').length, 5)
  })

  test('a metric range query prints a table', async () => {
    const result = await runObs(['query-range', 'sum by (service) (count_over_time({app="cogni-template"}[5m]))', '--since', '1h', '--step', '5m'], { env })
    assert.equal(result.code, 0, result.stderr)
    for (const service of ['app', 'gateway', 'worker']) assert.match(result.stdout, new RegExp(`\\{service="${service}"\\}`))
    assert.match(result.stdout, /series.*points.*min.*max.*last/)
  })

  test('piping into head ends quietly', async () => {
    const child = spawn(process.execPath, [OBS, 'query-range', ALL, '--since', '1h', '--limit', '0', '-o', 'raw'], {
      env: { ...process.env, LOKI_ADDR: addr },
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
    child.stdout.destroy()
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
    assert.equal(code, 0)
    assert.equal(stderr, '')
  })
})

describe('bad input is refused before anything is sent', () => {
  let server: Awaited<ReturnType<typeof countingServer>>
  before(async () => {
    server = await countingServer()
  })
  after(async () => {
    await server.close()
  })

  test('a LogQL syntax error prints a caret under the column and exits 2', async () => {
    const result = await runObs(['query-range', '{app="cogni-template"'], { env: { LOKI_ADDR: server.addr } })
    assert.equal(result.code, 2)
    const lines = result.stderr.trimEnd().split('\n')
    const queryLine = lines.findIndex((line) => line.includes('{app="cogni-template"'))
    assert.ok(queryLine > 0, result.stderr)
    const caretColumn = lines[queryLine + 1].indexOf('^')
    assert.equal(caretColumn - lines[queryLine].indexOf('{'), '{app="cogni-template"'.length)
    assert.match(lines[0], /col 22/)
    assert.equal(result.stdout, '')
    const empty = await runObs(['query-range', '{}'], { env: { LOKI_ADDR: server.addr } })
    assert.equal(empty.code, 2)
    assert.match(empty.stderr, /col 2: a stream selector needs at least one label matcher/)
    const emptyValue = await runObs(['query-range', '{app=""} |= "x"'], { env: { LOKI_ADDR: server.addr } })
    assert.equal(emptyValue.code, 2)
    assert.match(emptyValue.stderr, /label matcher that cannot match an empty value/)
    assert.equal(server.connections(), 0)
  })

  test('other bad input: no matcher, bad durations, times, ranges and modes', async () => {
    const cases: [string[], RegExp][] = [
      [['query-range', ALL, '--since', '5x'], /invalid --since "5x"/],
      [['query-range', ALL, '--from', 'yesterday'], /invalid --from "yesterday"/],
      [['query-range', ALL, '--from', 'now-1h', '--to', 'now-2h'], /must be before --to/],
      [['query-range', ALL, '--since', '1h', '--from', 'now-2h'], /cannot be used together/],
      [['query-range', ALL, '-o', 'yaml'], /yaml/],
      [['query', '{app="cogni-template"}'], /log query cannot run as an instant query.*query-range/],
      [['labels', '--addr', 'localhost:3100'], /--addr/],
    ]
    for (const [args, message] of cases) {
      const result = await runObs(args, { env: { LOKI_ADDR: server.addr } })
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, message)
      assert.equal(result.stderr.trimEnd().split('\n').length, 1, `one line for ${args.join(' ')}: ${result.stderr}`)
    }
    assert.equal(server.connections(), 0)
  })

  test("Loki's own 400 comes through as one clean line, also where Loki hides it behind the categorize-labels flag", async () => {
    // Loki 3.6.2 answers this 200 with no entries when asked to categorize labels, and 400 without.
    for (const query of [`${ALL} | line_format "{{.msg"`, `${ALL} | json | line_format "{{.msg"`]) {
      for (const extra of [[], ['--limit', '0'], ['--forward', '--parallel', '3']]) {
        const result = await runObs(['query-range', query, '--since', '1h', ...extra], { env })
        assert.equal(result.code, 2, `${query} ${extra.join(' ')}: ${result.stderr}`)
        assert.match(result.stderr, /Loki rejected the request: .*template/)
        assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr)
        assert.equal(result.stdout, '')
      }
    }
  })
})
