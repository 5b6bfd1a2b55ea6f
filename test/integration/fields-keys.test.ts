/**
 * obs fields on JSON lines whose keys LogQL cannot name as they are: an empty
 * key, as some loggers write it, and a nested one. Loki 3.6.2 reports such a
 * field in detected_fields without a label, and its plain `| json` fails on
 * such lines: every filter obs suggests must still be LogQL Loki runs.
 */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { pushAll } from '../support/loki.ts'

const { addr } = testLoki()
const env = { LOKI_ADDR: addr }
const APP = `fields-keys-${process.pid}`
const LINES = 40

before(async () => {
  const now = BigInt(Date.now()) * 1_000_000n
  const values = Array.from({ length: LINES }, (_, i) => {
    const line = JSON.stringify({ level: 'info', '': `v${i % 4 === 0 ? 1 : 0}`, status: 200, msg: 'request completed', a: { '': 'nested' } })
    return [(now - BigInt(LINES - i) * 1_000_000_000n).toString(), line]
  })
  await pushAll(addr, [[{ stream: { app: APP, env: 'test', service: 'app', stream: 'stdout' }, values }]])
})

interface FieldsDocument {
  lokiUnavailable?: string
  fields: { name: string; sampleCardinality: number; lokiCardinality?: number; lines: number; top: { value: string; count: number }[]; filter?: string }[]
}

async function fields(): Promise<FieldsDocument> {
  const result = await runObs(['fields', `{app="${APP}"}`, '--since', '1h', '--json'], { env })
  assert.equal(result.code, 0, result.stderr)
  return JSON.parse(result.stdout) as FieldsDocument
}

test("an empty JSON key: Loki's detected_fields answer is read, the field without a label keeps its numbers", async () => {
  const document = await fields()
  assert.equal(document.lokiUnavailable, undefined, "Loki's detected_fields answer is read")
  const field = (name: string) => document.fields.find((f) => f.name === name)
  assert.equal(field('level')?.lokiCardinality, 1)
  assert.equal(field('')?.lokiCardinality, 2, 'the field without a label keeps its numbers')
  assert.deepEqual(field('')?.top, [
    { value: 'v0', count: 30 },
    { value: 'v1', count: 10 },
  ])
  // Loki names the nested {"a": {"": …}} "a".
  assert.equal(field('a')?.lines, LINES)
})

test('an empty JSON key: every filter suggested is LogQL Loki runs on these lines, and finds them', async () => {
  const document = await fields()
  const filters = document.fields.filter((f) => f.filter !== undefined)
  assert.ok(filters.length >= 5, JSON.stringify(document.fields.map((f) => [f.name, f.filter])))
  for (const { name, filter, top } of filters) {
    const query = await runObs(['query-range', `{app="${APP}"} ${filter}`, '--since', '1h', '--limit', '1000', '-o', 'raw'], { env })
    assert.equal(query.code, 0, `${name}: ${filter}: ${query.stderr}`)
    assert.equal(query.stdout.trim().split('\n').length, top[0].count, `${name}: ${filter}`)
  }

  const table = await runObs(['fields', `{app="${APP}"}`, '--since', '1h'], { env })
  assert.equal(table.code, 0, table.stderr)
  assert.match(table.stdout, /"" \(empty key\)/)
  assert.doesNotMatch(table.stdout, /\| ="/)
})
