/**
 * Wide values in tables. A 2,000-character label value made the volume and
 * metric tables 2,000 columns wide: every row wrapped on a terminal and the
 * table was unreadable. Tables (all built by renderTable) now fit: cells cut
 * with "…" to the terminal's width, or PIPED_TABLE_WIDTH when stdout is not
 * a terminal. Output meant for programs (-o raw, jsonl, json, --json) keeps
 * every value whole. Against a real Loki of this file's own.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type ObsOutput, obs } from '../support/fault-cli.ts'
import { type FaultLoki, pushLines, startFaultLoki } from '../support/fault-loki.ts'

/** PIPED_TABLE_WIDTH of src/lib/render/output.ts, written out so that this test runs (and fails) on code without it. */
const PIPED_TABLE_WIDTH = 200

const WIDE = `team-${'w'.repeat(1995)}`
const APP = 'wide-tables'

let loki: FaultLoki

before(async () => {
  loki = await startFaultLoki()
  const baseNs = BigInt(Date.now() - 120_000) * 1_000_000n
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ level: 'info', msg: 'served', reqId: `r-${i}`, owner: WIDE }))
  await pushLines(loki.addr, { app: APP, service: 'api', team: WIDE }, lines, baseNs)
  await pushLines(loki.addr, { app: APP, service: 'web', team: 'short' }, lines, baseNs)
})
after(async () => {
  await loki?.remove()
})

const run = (args: string[]): Promise<ObsOutput> => obs([...args, '--addr', loki.addr], { timeoutMs: 60_000 })

/** Display columns of a line: one per code point (the table's box drawing and "…" included). */
const columns = (line: string) => Array.from(line).length

function fits(result: ObsOutput, what: string): void {
  assert.equal(result.code, 0, `${what}: ${result.err}`)
  const widest = Math.max(...result.out.split('\n').map(columns))
  assert.ok(widest <= PIPED_TABLE_WIDTH, `${what}: a line of ${widest} columns, over ${PIPED_TABLE_WIDTH}:\n${result.out.slice(0, 600)}`)
  assert.ok(result.out.includes('…'), `${what}: no cell cut with "…":\n${result.out.slice(0, 600)}`)
  assert.ok(result.out.includes('team-www'), `${what}: the wide value's start is not shown`)
}

describe('tables fit, whatever a value holds', { concurrency: 2 }, () => {
  test('volume --by team: the wide value cut with "…", the table at most PIPED_TABLE_WIDTH columns', async () => {
    fits(await run(['volume', `{app="${APP}"}`, '--by', 'team', '--since', '1h']), 'volume')
  })

  test('query (a metric table) by team', async () => {
    fits(await run(['query', `sum by (team) (count_over_time({app="${APP}"}[1h]))`]), 'query')
  })

  test('query-range (a matrix table) by team', async () => {
    fits(await run(['query-range', `sum by (team) (count_over_time({app="${APP}"}[5m]))`, '--since', '1h']), 'query-range')
  })

  test('fields: a wide field value in the "most common" column', async () => {
    fits(await run(['fields', `{app="${APP}"}`, '--since', '1h']), 'fields')
  })

  test('config: a wide profile value', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const cwd = mkdtempSync(join(tmpdir(), 'obs-wide-config-'))
    try {
      writeFileSync(join(cwd, 'obs.config.yaml'), `defaultProfile: dev\nprofiles:\n  dev:\n    app: "${WIDE}"\n`)
      fits(await obs(['config'], { cwd, timeoutMs: 30_000 }), 'config')
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  test('programs get every value whole: query -o jsonl, query --output json, volume --json, series', async () => {
    const jsonl = await run(['query', `sum by (team) (count_over_time({app="${APP}"}[1h]))`, '-o', 'jsonl'])
    assert.equal(jsonl.code, 0, jsonl.err)
    assert.ok(jsonl.out.includes(`"team":"${WIDE}"`), 'jsonl cut the value')
    const json = await run(['query', `sum by (team) (count_over_time({app="${APP}"}[1h]))`, '-o', 'json'])
    assert.ok(json.out.includes(WIDE), 'json cut the value')
    const volume = await run(['volume', `{app="${APP}"}`, '--by', 'team', '--since', '1h', '--json'])
    assert.equal(volume.code, 0, volume.err)
    assert.ok(volume.out.includes(WIDE), 'volume --json cut the value')
    const series = await run(['series', `{app="${APP}"}`, '--since', '1h'])
    assert.equal(series.code, 0, series.err)
    assert.ok(series.out.includes(WIDE), 'series (one stream a line, not a table) cut the value')
    const raw = await run(['query-range', `{app="${APP}", service="api"}`, '--since', '1h', '--limit', '1', '-o', 'raw'])
    assert.ok(raw.out.includes(WIDE), 'raw cut the line')
  })
})
