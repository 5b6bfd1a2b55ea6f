/** Message templates: what is masked, and that the LogQL counting a template is valid and quotes every piece of line text. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { groupTemplates, lineTemplate, maskText, templatePipeline, templateRegex, templateText } from '../../../src/lib/incident/templates.ts'
import { checkLogQL } from '../../../src/lib/loki/logql.ts'

describe('maskText', () => {
  test('numbers, hex and uuid-like ids, quoted values become <_>; words stay', () => {
    assert.equal(maskText('db connection refused on pool 3'), 'db connection refused on pool <_>')
    assert.equal(maskText('user 550e8400-e29b-41d4-a716-446655440000 not found'), 'user <_> not found')
    assert.equal(maskText('commit deadbeef42 at 0x1f failed'), 'commit <_> at <_> failed')
    assert.equal(maskText('key "a b c" missing, \'x\' too'), 'key <_> missing, <_> too')
    assert.equal(maskText('took 12.5 ms'), 'took <_> ms')
    assert.equal(maskText('job done'), 'job done')
  })
})

describe('lineTemplate', () => {
  test("pino's msg and err.type / err.message; plain text as a whole", () => {
    assert.deepEqual(lineTemplate('{"level":50,"msg":"upstream call failed","err":{"type":"Error","message":"socket hang up after 30 ms","stack":"..."}}'), {
      msg: 'upstream call failed',
      errType: 'Error',
      errMessage: 'socket hang up after <_> ms',
    })
    assert.equal(templateText(lineTemplate('{"msg":"x","err":{"type":"TypeError","message":"y"}}')!), 'x [TypeError: y]')
    assert.deepEqual(lineTemplate('plain 42 text'), { msg: 'plain <_> text' })
    assert.equal(lineTemplate('   '), undefined)
  })
})

describe('templatePipeline', () => {
  test('valid LogQL that quotes hostile text: quotes, backslashes, regex and LogQL syntax stay inside strings', () => {
    for (const msg of ['a "quoted" \\ back` } | json [5m]) or vector(1)', 'rate(x.*+?) failed', 'x', '', 'naïve café']) {
      const template = lineTemplate(JSON.stringify({ level: 'error', msg, err: { type: 'E"}', message: 'm\\' } }))!
      const query = `sum(count_over_time({app="a"} ${templatePipeline(template, true)} [60s]))`
      assert.equal(checkLogQL(query), 'metric', query)
      assert.equal(checkLogQL(`{app="a"} ${templatePipeline({ msg: template.msg }, false)}`), 'log')
    }
  })

  test('the regex matches the texts the template stands for, and only them', () => {
    const re = new RegExp(`^${templateRegex('db connection refused on pool <_>')}$`)
    assert.ok(re.test('db connection refused on pool 12'))
    assert.ok(!re.test('db connection refused on pool'))
    assert.ok(!re.test('db connection refused'))
  })
})

test('groupTemplates: per key, most frequent first, varying numbers one template', () => {
  const lines = [0, 1, 2, 3].map((n) => ({ key: 'web', line: JSON.stringify({ level: 'error', msg: `pool ${n} refused` }) }))
  lines.push({ key: 'jobs', line: JSON.stringify({ msg: 'job failed' }) })
  assert.deepEqual(
    groupTemplates(lines).map((g) => [g.key, g.text, g.count, g.json]),
    [
      ['web', 'pool <_> refused', 4, true],
      ['jobs', 'job failed', 1, true],
    ],
  )
})
