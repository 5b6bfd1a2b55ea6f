import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { AnswerParser } from '../../../src/lib/loki/answer-parser.ts'
import { mulberry32 } from '../../support/dataset.ts'

/** Feeds `text` in pieces cut where `cuts` says and returns what the parser made of it. */
function parseInPieces(text: string, cuts: number[]): unknown {
  const parser = new AnswerParser()
  let from = 0
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    parser.write(text.slice(from, cut))
    from = cut
  }
  parser.write(text.slice(from))
  return parser.end()
}

function randomCuts(random: () => number, length: number): number[] {
  const count = Math.floor(random() * 12)
  return Array.from({ length: count }, () => Math.floor(random() * (length + 1)))
}

/** Strings that stress the scanner: escapes, quotes, brackets and backslashes at every position. */
function nastyString(random: () => number): string {
  const pieces = ['"', '\\', '\\"', '\\\\', '[', ']', '{', '}', ',', ':', 'values', 'result', 'data', '\n', '\u0000', '\u00e9', '\u{1f600}', 'abc', ' ']
  let text = ''
  const length = Math.floor(random() * 12)
  for (let i = 0; i < length; i++) text += pieces[Math.floor(random() * pieces.length)]
  return text
}

function randomAnswer(random: () => number): unknown {
  const result = Array.from({ length: Math.floor(random() * 4) }, () => {
    const stream: Record<string, string> = { app: nastyString(random), values: nastyString(random) }
    const values = Array.from({ length: Math.floor(random() * 6) }, () => {
      const entry: unknown[] = [String(Math.floor(random() * 1e18)), `{"msg":${JSON.stringify(nastyString(random))}}`]
      const roll = random()
      if (roll < 0.3) entry.push({})
      else if (roll < 0.5) entry.push({ structuredMetadata: { trace_id: nastyString(random) }, parsed: { values: nastyString(random) } })
      return entry
    })
    return random() < 0.5 ? { stream, values } : { values, stream }
  })
  return {
    status: 'success',
    data: { resultType: 'streams', encodingFlags: ['categorize-labels'], result, stats: { summary: { execTime: random() } } },
  }
}

describe('AnswerParser', () => {
  test('gives what JSON.parse gives, however the text is cut (500 random answers)', () => {
    const random = mulberry32(7)
    for (let round = 0; round < 500; round++) {
      const answer = randomAnswer(random)
      // Pretty-printed half the time: whitespace between every token.
      const text = round % 2 === 0 ? JSON.stringify(answer) : JSON.stringify(answer, null, 2)
      assert.deepEqual(parseInPieces(text, randomCuts(random, text.length)), JSON.parse(text), `round ${round}: ${text}`)
    }
  })

  test('cut after every single character', () => {
    const text = JSON.stringify(randomAnswer(mulberry32(3)))
    const parser = new AnswerParser()
    for (const char of text) parser.write(char)
    assert.deepEqual(parser.end(), JSON.parse(text))
  })

  test('parses the entries of data.result[i].values, and only those, on their own', () => {
    // A "values" key elsewhere (in labels, in stats, at the top) is ordinary JSON.
    const text = JSON.stringify({
      values: [[1, 2]],
      data: {
        resultType: 'streams',
        result: [
          {
            stream: { values: '[1]' },
            values: [
              ['1', 'a'],
              ['2', 'b', {}],
            ],
          },
          { values: [] },
        ],
        stats: { values: [3] },
      },
    })
    assert.deepEqual(parseInPieces(text, [10, 60, 70]), JSON.parse(text))
  })

  test('answers that are not streams are parsed whole', () => {
    for (const answer of [
      { status: 'success', data: { resultType: 'matrix', result: [{ metric: { a: 'b' }, values: [[1, '2']] }] } },
      { status: 'success', data: ['app', 'env'] },
      { status: 'error', error: 'bad' },
      [1, 2, 3],
      'text',
      null,
    ]) {
      const text = JSON.stringify(answer)
      assert.deepEqual(parseInPieces(text, [1, 5]), answer)
    }
  })

  test('rejects text that is not one complete JSON value', () => {
    const good = JSON.stringify({
      status: 'success',
      data: {
        resultType: 'streams',
        result: [
          {
            stream: {},
            values: [
              ['1', 'a'],
              ['2', 'b'],
            ],
          },
        ],
      },
    })
    const bad = [
      good.slice(0, -1),
      good.slice(0, good.indexOf('"b"') + 2),
      good.slice(0, good.indexOf('["2"')),
      good.replace('["1","a"],', '["1","a"],,'),
      good.replace('["1","a"]', ''),
      good.replace('["2","b"]', '["2","b"'),
      good.replace('["2","b"]', '["2",b]'),
      `${good}]`,
      '',
    ]
    for (const text of bad) {
      assert.throws(() => parseInPieces(text, [7]), SyntaxError, text)
    }
  })
})
