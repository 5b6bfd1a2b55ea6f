import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DEFAULT_POLICY } from '../../../src/lib/config/settings.ts'
import { lineFields, lokiFieldName, suspectLabels } from '../../../src/lib/incident/fields.ts'

describe('lineFields', () => {
  test("JSON: leaves named as Loki's json parser names them; arrays and nulls left out", () => {
    assert.deepEqual(lineFields('{"level":30,"req":{"method":"GET","url":"/x"},"tags":["a"],"gone":null,"ok":true,"ms":1.5}'), {
      parser: 'json',
      fields: [
        ['level', 30],
        ['req_method', 'GET'],
        ['req_url', '/x'],
        ['ok', true],
        ['ms', 1.5],
      ],
      paths: [['level'], ['req', 'method'], ['req', 'url'], ['ok'], ['ms']],
    })
  })

  test("JSON keys Loki's way: trimmed, empty parts skipped; a key of nothing but spaces has no name", () => {
    assert.deepEqual(lineFields('{"":"v"," b ":1,"a":{"":"n"},"x y":2,"9x":3}'), {
      parser: 'json',
      fields: [
        ['', 'v'],
        ['b', 1],
        ['a', 'n'],
        ['x_y', 2],
        ['_9x', 3],
      ],
      paths: [[''], [' b '], ['a', ''], ['x y'], ['9x']],
    })
  })

  test('logfmt: key=value pairs, quoted values unquoted, numbers as numbers; plain text has no fields', () => {
    assert.deepEqual(lineFields('level=info msg="hello world" status=200'), {
      parser: 'logfmt',
      fields: [
        ['level', 'info'],
        ['msg', 'hello world'],
        ['status', 200],
      ],
    })
    assert.equal(lineFields('GET /health 200 in 3ms'), undefined)
    assert.equal(lineFields('{not json'), undefined)
  })

  test('field names as LogQL needs them', () => {
    assert.deepEqual(['a.b', 'x-y', '9lives', 'ok_1', ' ', 'é'].map(lokiFieldName), ['a_b', 'x_y', '_9lives', 'ok_1', '', '_'])
  })
})

describe('suspectLabels', () => {
  test('labels the policy forbids, with too many values, or id-like values are suspects; the stack labels are not', () => {
    const series = Array.from({ length: 120 }, (_, i) => ({ app: 'a', service: i % 2 ? 'app' : 'worker', pod: `pod-${i}`, reqId: `req-${String(i).padStart(8, '0')}` }))
    const suspects = suspectLabels(series, DEFAULT_POLICY)
    assert.deepEqual(
      suspects.map((s) => s.name),
      ['pod', 'reqId'],
    )
    assert.match(suspects[1].reason, /must stay a JSON field; 120 values, above the policy's 100; its values look like ids/)
  })
})
