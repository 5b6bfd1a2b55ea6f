import assert from 'node:assert/strict'
import { test } from 'node:test'
import { detectedFieldsAnswer } from '../../../src/lib/loki/answer-shapes.ts'

test('detected_fields: what Loki\'s protobuf JSON leaves out when empty (the label of a key "", a type, a cardinality of 0) is filled in', () => {
  // As Loki 3.6.2 answered for lines {"level":"info","":"v0"}.
  const answer = {
    fields: [
      { label: 'level', type: 'string', cardinality: 1, parsers: ['json'], jsonPath: ['level'] },
      { type: 'string', cardinality: 2, parsers: ['json'], jsonPath: [''] },
      { label: 'x', parsers: null },
    ],
    limit: 1000,
  }
  assert.deepEqual(detectedFieldsAnswer('/loki/api/v1/detected_fields', answer), [
    { label: 'level', type: 'string', cardinality: 1, parsers: ['json'], jsonPath: ['level'] },
    { label: '', type: 'string', cardinality: 2, parsers: ['json'], jsonPath: [''] },
    { label: 'x', type: 'string', cardinality: 0, parsers: null },
  ])
  assert.throws(() => detectedFieldsAnswer('/loki/api/v1/detected_fields', { fields: [{ label: 7 }] }), /wrong shape|label/)
})
