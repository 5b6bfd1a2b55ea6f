import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isErrorLevel, levelName, lineLevel } from '../../src/lib/pino.ts'

describe('lineLevel', () => {
  const cases: [string, string | undefined][] = [
    ['{"level":"info","msg":"x"}', 'info'],
    ['{"level":"INFO"}', 'info'],
    ['{"level":"Warn"}', 'warn'],
    ['{"msg":"x","level" : "error"}', 'error'],
    ['{"level":10}', 'trace'],
    ['{"level":20}', 'debug'],
    ['{"level":30,"time":1,"pid":1}', 'info'],
    ['{"level":40}', 'warn'],
    ['{"level":50}', 'error'],
    ['{"level":60}', 'fatal'],
    ['{"level":35}', undefined],
    ['{"msg":"no level"}', undefined],
    ['level=info msg=x', undefined],
    ['plain text with "level":"error" inside', undefined],
    ['', undefined],
  ]
  for (const [line, level] of cases) {
    test(`${JSON.stringify(line)} -> ${level}`, () => {
      assert.equal(lineLevel(line), level)
    })
  }
})

describe('levelName and isErrorLevel', () => {
  test("pino's numbers map to their names, names are lower-cased, anything else is no level", () => {
    assert.equal(levelName(50), 'error')
    assert.equal(levelName('60'), 'fatal')
    assert.equal(levelName('WARN'), 'warn')
    assert.equal(levelName(35), '35')
    assert.equal(levelName(''), undefined)
    assert.equal(levelName({ level: 'error' }), undefined)
  })

  test('error and fatal are errors; warn and unknown levels are not', () => {
    assert.deepEqual(['error', 'fatal', 'critical', 'err'].map(isErrorLevel), [true, true, true, true])
    assert.deepEqual(['warn', 'info', '35', undefined].map(isErrorLevel), [false, false, false, false])
  })
})
