/**
 * query-range -A/-B/-C on the real Loki, against ground truth pushed here:
 * two streams of one app whose lines crowd into shared nanoseconds around the
 * matches (the case Grafana's context view loses lines in), a match whose
 * context lies minutes away (the window must widen), and two matches close
 * enough for their contexts to merge.
 */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import { formatNanos as toRfc3339 } from '../../src/lib/time.ts'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { pushAll } from '../support/loki.ts'

const { addr } = testLoki()
const env = { LOKI_ADDR: addr }
const APP = 'context-test'

interface Line {
  ts: bigint
  service: string
  line: string
}

/** Lines of both services, oldest first in obs's order (time, stream, line). */
const truth: Line[] = []
const base = (BigInt(Date.now()) - 20n * 60_000n) * 1_000_000n

function add(offsetNs: bigint, service: string, text: string, level = text.startsWith('boom') ? 'error' : 'info'): void {
  truth.push({ ts: base + offsetNs, service, line: JSON.stringify({ level, msg: text }) })
}

const MS = 1_000_000n
const streamJson = (service: string) => JSON.stringify({ app: APP, env: 'test', service, stream: 'stdout' })

before(async () => {
  // app: a steady line every 10 ms, then six lines on one nanosecond holding the first match in their
  // middle (in obs's order the debug lines sort before it, the info lines after).
  for (let i = 0; i < 30; i++) add(BigInt(i) * 10n * MS, 'app', `tick ${String(i).padStart(2, '0')}`)
  add(300n * MS, 'app', 'same a', 'debug')
  add(300n * MS, 'app', 'same b', 'debug')
  add(300n * MS, 'app', 'boom one')
  for (const text of ['same c', 'same d', 'same e']) add(300n * MS, 'app', text)
  for (let i = 30; i < 40; i++) add(BigInt(i) * 10n * MS + 5n * MS, 'app', `tick ${i}`)
  // A second match two lines after the first's: with -C 4 their contexts overlap and merge.
  add(316n * MS, 'app', 'boom two')
  for (let i = 0; i < 5; i++) add(420n * MS + BigInt(i) * MS, 'app', `tail ${i}`)
  // gateway: its lines interleave in time; only --all-streams brings them in. (The shared Loki's
  // tests read {service="worker"} exactly, and count 3 services: this file adds none of its own.)
  for (let i = 0; i < 40; i++) add(BigInt(i) * 10n * MS + 3n * MS, 'gateway', `work ${String(i).padStart(2, '0')}`)
  // A lonely match: its nearest neighbours are five minutes away on either side.
  add(10n * 60_000n * MS, 'gateway', 'work far before')
  add(15n * 60_000n * MS, 'gateway', 'boom lonely')
  add(19n * 60_000n * MS, 'gateway', 'work far after')
  truth.sort((a, b) =>
    a.ts !== b.ts ? (a.ts < b.ts ? -1 : 1) : a.service !== b.service ? (streamJson(a.service) < streamJson(b.service) ? -1 : 1) : a.line < b.line ? -1 : a.line > b.line ? 1 : 0,
  )
  const streams = ['app', 'gateway'].map((service) => ({
    stream: { app: APP, env: 'test', service, stream: 'stdout' },
    values: truth.filter((l) => l.service === service).map((l) => [l.ts.toString(), l.line]),
  }))
  await pushAll(addr, [streams])
})

interface Printed {
  line: string
  labels: Record<string, string>
  context: 'before' | 'match' | 'after'
  group: number
}

async function context(query: string, args: string[], since = '30m'): Promise<Printed[]> {
  const result = await runObs(['query-range', query, '--since', since, '-o', 'jsonl', ...args], { env })
  assert.equal(result.code, 0, result.stderr)
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Printed)
}

/** The n lines before and after truth[i] in the lines `keep` selects, from the truth. */
function expected(match: (l: Line) => boolean, n: number, keep: (l: Line) => boolean): string[][] {
  const pool = truth.filter(keep)
  const windows = pool.flatMap((l, i) => (match(l) ? [[Math.max(0, i - n), Math.min(pool.length, i + n + 1)]] : []))
  // Merge overlapping windows, as obs does; the groups come newest first (the query's default direction).
  const merged: number[][] = []
  for (const [from, to] of windows) {
    const last = merged.at(-1)
    if (last && from < last[1]) last[1] = Math.max(last[1], to)
    else merged.push([from, to])
  }
  return merged.reverse().map(([from, to]) => pool.slice(from, to).map((l) => l.line))
}

function groups(printed: Printed[]): string[][] {
  const byGroup: string[][] = []
  for (const p of printed) {
    byGroup[p.group] ??= []
    byGroup[p.group].push(p.line)
  }
  return byGroup
}

const isMatch = (l: Line) => l.line.includes('boom')

test('-C 4 in one stream: exact around lines that share the match nanosecond, overlapping contexts merged', async () => {
  const printed = await context(`{app="${APP}", service="app"} |= "boom"`, ['-C', '4'])
  assert.deepEqual(
    groups(printed),
    expected(isMatch, 4, (l) => l.service === 'app'),
  )
  assert.deepEqual(
    printed.filter((p) => p.context === 'match').map((p) => JSON.parse(p.line).msg),
    ['boom one', 'boom two'],
  )
  assert.ok(printed.every((p) => p.labels.service === 'app'))
})

test('-B and -A apart; a match whose neighbours are minutes away widens the window until it finds them', async () => {
  const printed = await context(`{app="${APP}", service="gateway"} |= "boom"`, ['-B', '2', '-A', '1'])
  assert.deepEqual(
    printed.map((p) => [JSON.parse(p.line).msg, p.context]),
    [
      ['work 39', 'before'],
      ['work far before', 'before'],
      ['boom lonely', 'match'],
      ['work far after', 'after'],
    ],
  )
})

test('--all-streams interleaves every stream of the app', async () => {
  const printed = await context(`{app="${APP}", service="app"} |= "boom one"`, ['-C', '6', '--all-streams'])
  assert.deepEqual(
    groups(printed),
    expected(
      (l) => l.line.includes('boom one'),
      6,
      () => true,
    ),
  )
  assert.deepEqual(new Set(printed.map((p) => p.labels.service)), new Set(['app', 'gateway']))
})

test('raw output separates groups with --; bad combinations exit 2 before anything is sent', async () => {
  const raw = await runObs(['query-range', `{app="${APP}"} |= "boom"`, '--since', '30m', '-o', 'raw', '-C', '1'], { env })
  assert.equal(raw.code, 0, raw.stderr)
  assert.equal(raw.stdout.split('\n').filter((line) => line === '--').length, 2)
  const metric = await runObs(['query-range', `count_over_time({app="${APP}"}[1m])`, '-C', '1'], { env: { LOKI_ADDR: 'http://127.0.0.1:9' } })
  assert.equal(metric.code, 2)
  assert.match(metric.stderr, /metric query/)
  const lonely = await runObs(['query-range', `{app="${APP}"}`, '--all-streams'], { env: { LOKI_ADDR: 'http://127.0.0.1:9' } })
  assert.equal(lonely.code, 2)
  assert.match(lonely.stderr, /add -C N/)
})

test('trace --context shows the lines around each error line of the request, in its stream', async () => {
  const app = 'context-trace'
  const at = (BigInt(Date.now()) - 5n * 60_000n) * 1_000_000n
  const line = (msg: string, extra: Record<string, unknown> = {}) => JSON.stringify({ level: 'info', msg, ...extra })
  const worker = [
    [at, line('other 1')],
    [at + MS, line('other 2')],
    [at + 2n * MS, JSON.stringify({ level: 50, msg: 'charge failed', reqId: 'ctx-req-1' })],
    [at + 2n * MS, line('same nanosecond, other request')],
    [at + 3n * MS, line('other 3')],
    [at + 4n * MS, line('other 4')],
  ]
  await pushAll(addr, [
    [
      { stream: { app, env: 'test', service: 'app', stream: 'stdout' }, values: [[(at - MS).toString(), line('request in', { reqId: 'ctx-req-1' })]] },
      { stream: { app, env: 'test', service: 'gateway', stream: 'stdout' }, values: worker.map(([ts, text]) => [ts.toString(), text]) },
    ],
  ])
  const result = await runObs(['trace', 'ctx-req-1', '--app', app, '--context', '2', '--json'], { env })
  assert.equal(result.code, 0, result.stderr)
  const document = JSON.parse(result.stdout) as { entries: unknown[]; errorContext: { line: string; context: string; labels: Record<string, string> }[][] }
  assert.equal(document.entries.length, 2)
  assert.equal(document.errorContext.length, 1)
  assert.deepEqual(
    document.errorContext[0].map((l) => [JSON.parse(l.line).msg, l.context]),
    // obs's order within a nanosecond is by line text: {"level":"info" sorts before {"level":50.
    [
      ['other 2', 'before'],
      ['same nanosecond, other request', 'before'],
      ['charge failed', 'match'],
      ['other 3', 'after'],
      ['other 4', 'after'],
    ],
  )
  assert.ok(document.errorContext[0].every((l) => l.labels.service === 'gateway'))

  const pretty = await runObs(['trace', 'ctx-req-1', '--app', app, '-C', '1'], { env })
  assert.equal(pretty.code, 0, pretty.stderr)
  assert.match(pretty.stdout, /context of the error lines \(1 line each side, in their streams\):\n {2}.*same nanosecond.*\n> .*charge failed.*\n {2}.*other 3/)
})

test('-C 3 on the shared dataset equals the ground truth: {service="app"} |= "error", groups merged, both directions', async () => {
  const { dataset } = testLoki()
  const pipelineKey = (labels: Record<string, string>) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([name]) => !name.startsWith('__') && name !== 'service_name')
        .sort(),
    )
  const inScope = dataset.entries.filter((e) => e.labels.service === 'app')
  // obs orders lines by time, then stream, then text. A Loki that sharded a stream (the stock one, under the
  // global setup's load) orders one pipeline stream's lines of a nanosecond by shard: take that order from an
  // exact export, checked against the dataset first.
  const exported = await runObs(['query-range', '{service="app"}', '--since', '3h', '--limit', '0', '--forward', '-o', 'jsonl'], { env })
  assert.equal(exported.code, 0, exported.stderr)
  const ordered = exported.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { labels: Record<string, string>; line: string; timestamp: string })
  // Other tests push lines of their own into the shared Loki: the export holds the dataset, and maybe more.
  const exportedKeys = new Set(ordered.map((e) => `${pipelineKey(e.labels)} ${e.timestamp} ${e.line}`))
  const missing = inScope.filter((e) => !exportedKeys.has(`${pipelineKey(e.labels)} ${toRfc3339(e.ts)} ${e.line}`))
  assert.equal(missing.length, 0, 'the export holds every line of the dataset')
  const pools = new Map<string, typeof ordered>()
  for (const entry of ordered) {
    const key = pipelineKey(entry.labels)
    if (!pools.has(key)) pools.set(key, [])
    pools.get(key)!.push(entry)
  }

  for (const direction of ['backward', 'forward'] as const) {
    // The matches, as --limit 100 picks them: the 100 newest (oldest with --forward) in obs's order.
    const matches = ordered.filter((e) => e.line.includes('error'))
    const picked = (direction === 'forward' ? matches : [...matches].reverse()).slice(0, 100)
    const windows: { key: string; from: number; to: number }[] = []
    for (const match of picked) {
      const key = pipelineKey(match.labels)
      const pool = pools.get(key)!
      const at = pool.indexOf(match)
      let window = { key, from: Math.max(0, at - 3), to: Math.min(pool.length, at + 4) }
      const overlapping = windows.filter((g) => g.key === key && g.from < window.to && window.from < g.to)
      for (const g of overlapping) window = { key, from: Math.min(window.from, g.from), to: Math.max(window.to, g.to) }
      const position = overlapping.length > 0 ? windows.indexOf(overlapping[0]) : windows.length
      for (const g of overlapping) windows.splice(windows.indexOf(g), 1)
      windows.splice(Math.min(position, windows.length), 0, window)
    }
    const expectedGroups = windows.map((g) =>
      pools
        .get(g.key)!
        .slice(g.from, g.to)
        .map((e) => e.line),
    )
    const printed = await context('{service="app"} |= "error"', ['-C', '3', ...(direction === 'forward' ? ['--forward'] : [])], '3h')
    assert.deepEqual(groups(printed), expectedGroups, `${direction}: ${expectedGroups.length} groups`)
    assert.equal(printed.filter((p) => p.context === 'match').length, picked.length)
  }
})
