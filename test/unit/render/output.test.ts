import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, test } from 'node:test'
import { Chalk } from 'chalk'
import type { EntryMetadata, Labels, QueryData } from '../../../src/lib/loki/client.ts'
import type { LogEntry, StreamInfo } from '../../../src/lib/loki/paging.ts'
import {
  type ContextLine,
  colorLevel,
  defaultOutputMode,
  EntryPrinter,
  entryToJsonl,
  fitColumns,
  formatLabels,
  metricToJsonl,
  type OutputMode,
  PIPED_TABLE_WIDTH,
  renderMetric,
  renderMetricTable,
  renderTable,
  tableWidth,
} from '../../../src/lib/render/output.ts'

const plain = new Chalk({ level: 0 })
const colour = new Chalk({ level: 1 })

/** A Writable that keeps what it is given. */
function sink(options: { highWaterMark?: number; delayMs?: number } = {}): { out: Writable; text: () => string; chunks: string[] } {
  const chunks: string[] = []
  const out = new Writable({
    highWaterMark: options.highWaterMark,
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      chunks.push(chunk.toString())
      if (options.delayMs) setTimeout(callback, options.delayMs)
      else callback()
    },
  })
  return { out, text: () => chunks.join(''), chunks }
}

function stream(labels: Labels): StreamInfo {
  const sorted: Labels = {}
  for (const name of Object.keys(labels).sort()) sorted[name] = labels[name]
  return { labels: sorted, json: JSON.stringify(sorted) }
}

const APP = stream({ app: 'cogni-template', service: 'app', stream: 'stdout' })

function entry(ts: string, line: string, labels: StreamInfo = APP, meta?: EntryMetadata): LogEntry {
  return { ts, line, stream: labels, meta }
}

/** Lines that try to drive a terminal or disguise themselves. */
const HOSTILE = [
  'clear\u001b[2Jscreen',
  'title\u001b]0;pwned\u0007',
  'red\u001b[31mRED\u001b[0m',
  'csi\u009b31m',
  'bell\u0007',
  'back\bspace\b\b',
  'nul\u0000byte',
  'carriage\rreturn',
  'new\nline',
  'bidi \u202eevil\u202c and \u2066isolate\u2069',
  'del\u007f',
  'lone \ud800 surrogate',
]

// ESC, C1 controls (CSI U+009B), BEL, backspace, CR, LF, NUL, DEL, bidi controls.
const RAW_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

describe('jsonl', () => {
  test('exactly the keys labels, line, timestamp', () => {
    const object = JSON.parse(entryToJsonl(entry('1767225600123456789', 'hello')))
    assert.deepEqual(Object.keys(object), ['labels', 'line', 'timestamp'])
    assert.deepEqual(object, {
      labels: { app: 'cogni-template', service: 'app', stream: 'stdout' },
      line: 'hello',
      timestamp: '2026-01-01T00:00:00.123456789Z',
    })
  })

  test('the timestamp is RFC 3339 UTC with nine fraction digits', () => {
    assert.equal(JSON.parse(entryToJsonl(entry('1767225600000000000', 'x'))).timestamp, '2026-01-01T00:00:00.000000000Z')
    assert.equal(JSON.parse(entryToJsonl(entry('5', 'x'))).timestamp, '1970-01-01T00:00:00.000000005Z')
  })

  for (const line of [...HOSTILE, '', '{"level":"info","msg":"\\"quoted\\""}', 'tab\there', '\u2028\u2029', 'ünï 日本 🚀', '\\', '"']) {
    test(`the line round-trips byte for byte: ${JSON.stringify(line)}`, () => {
      const text = entryToJsonl(entry('1', line))
      assert.equal(text.includes('\n'), false, 'one physical line')
      assert.equal(JSON.parse(text).line, line)
    })
  }

  test('labels hold every stream label; structured metadata and parsed labels stay apart', () => {
    const e = entry('1', 'x', APP, { structuredMetadata: { trace_id: 'abc' }, parsed: { level: 'info' } })
    const object = JSON.parse(entryToJsonl(e))
    assert.deepEqual(Object.keys(object), ['labels', 'structuredMetadata', 'parsed', 'line', 'timestamp'])
    assert.deepEqual(object.labels, { app: 'cogni-template', service: 'app', stream: 'stdout' })
    assert.deepEqual(object.structuredMetadata, { trace_id: 'abc' })
    assert.deepEqual(object.parsed, { level: 'info' })
    const empty = JSON.parse(entryToJsonl(entry('1', 'x', APP, { structuredMetadata: {}, parsed: {} })))
    assert.deepEqual(Object.keys(empty), ['labels', 'line', 'timestamp'])
  })

  test('labels with hostile values stay valid JSON', () => {
    const e = entry('1', 'x', stream({ app: 'a"b\\c\u001b[2J\n' }))
    assert.deepEqual(JSON.parse(entryToJsonl(e)).labels, { app: 'a"b\\c\u001b[2J\n' })
  })
})

describe('EntryPrinter', () => {
  const page1 = [entry('1767225600000000001', 'first', APP), entry('1767225600000000002', 'second\u001b[2J', APP)]
  const page2 = [entry('1767225600000000003', '{"level":50,"msg":"boom"}', stream({ app: 'cogni-template', service: 'worker' }))]

  async function print(mode: OutputMode, pages: LogEntry[][], chalk = plain, pinned?: Labels): Promise<string> {
    const { out, text } = sink()
    const printer = new EntryPrinter(mode, out, { chalk, pinnedLabels: pinned })
    for (const page of pages) await printer.page(page)
    await printer.end()
    return text()
  }

  test('raw: the line unchanged, one per entry', async () => {
    const lines = HOSTILE.filter((line) => !line.includes('\n'))
    const text = await print('raw', [lines.map((line, i) => entry(String(i + 1), line))])
    assert.equal(text, lines.map((line) => `${line}\n`).join(''))
  })

  test('jsonl: one object per line across pages', async () => {
    const text = await print('jsonl', [page1, [], page2])
    const lines = text.split('\n')
    assert.equal(lines.pop(), '')
    assert.deepEqual(
      lines.map((line) => JSON.parse(line).line),
      ['first', 'second\u001b[2J', '{"level":50,"msg":"boom"}'],
    )
  })

  test('json: one valid JSON array across pages', async () => {
    const text = await print('json', [page1, [], page2])
    const parsed = JSON.parse(text)
    assert.ok(Array.isArray(parsed))
    assert.equal(parsed.length, 3)
    assert.deepEqual(parsed[2], {
      labels: { app: 'cogni-template', service: 'worker' },
      line: '{"level":50,"msg":"boom"}',
      timestamp: '2026-01-01T00:00:00.000000003Z',
    })
    assert.ok(text.endsWith('\n'))
  })

  test('json: one page of one entry', async () => {
    assert.deepEqual(JSON.parse(await print('json', [[entry('1', 'only')]])).length, 1)
  })

  test('json: an empty result is an empty array', async () => {
    assert.deepEqual(JSON.parse(await print('json', [])), [])
    assert.deepEqual(JSON.parse(await print('json', [[], []])), [])
  })

  test('the other modes print nothing for no entries', async () => {
    for (const mode of ['raw', 'jsonl', 'pretty'] as const) assert.equal(await print(mode, [[]]), '')
  })

  test('pretty: timestamp, labels and line, with pinned labels left out', async () => {
    const text = await print('pretty', [page1], plain, { app: 'cogni-template' })
    const [first] = text.split('\n')
    assert.equal(first, '2026-01-01T00:00:00.000000001Z service=app stream=stdout first')
  })

  test('pretty: a pinned label with another value is still shown', async () => {
    const text = await print('pretty', [[entry('1', 'x', stream({ app: 'other' }))]], plain, { app: 'cogni-template' })
    assert.match(text, / app=other x\n$/)
  })

  test('pretty: a JSON line shows its level', async () => {
    const text = await print('pretty', [page2], plain)
    assert.match(text, / ERROR \{"level":50,"msg":"boom"\}\n$/)
  })

  test('pretty without colour: no control character of any kind reaches the terminal', async () => {
    const entries = HOSTILE.map((line, i) => entry(String(i + 1), line, stream({ app: 'x', evil: `v\u001b[2J${line}` })))
    const text = await print('pretty', [entries], plain)
    const lines = text.split('\n')
    assert.equal(lines.pop(), '')
    assert.equal(lines.length, HOSTILE.length, 'one line per entry: newlines in a line are escaped')
    for (const line of lines) {
      assert.equal(RAW_CONTROL.test(line), false, `raw control character in ${JSON.stringify(line)}`)
      assert.equal(/[\ud800-\udbff](?![\udc00-\udfff])/.test(line), false, `lone surrogate in ${JSON.stringify(line)}`)
    }
    assert.ok(text.includes('clear\\x1b[2Jscreen'), 'escapes are shown, not dropped')
    assert.ok(text.includes('\\u202e'))
  })

  test('pretty with colour: the only escape sequences are its own colours', async () => {
    const entries = HOSTILE.map((line, i) => entry(String(i + 1), `{"level":"error","msg":${JSON.stringify(line)}}`))
    entries.push(...HOSTILE.map((line, i) => entry(String(100 + i), line)))
    const text = await print('pretty', [entries], colour)
    const withoutSgr = text.replace(/\u001b\[[0-9;]*m/g, '')
    for (const line of withoutSgr.split('\n').slice(0, -1)) {
      assert.equal(RAW_CONTROL.test(line), false, `raw control character in ${JSON.stringify(line)}`)
    }
    // The line's own colour codes arrive as visible text, not as colours.
    assert.ok(text.includes('red\\x1b[31mRED\\x1b[0m'))
    assert.ok(/\u001b\[\d+m/.test(text), 'colour is on')
  })

  test('counts what it printed', async () => {
    const { out } = sink()
    const printer = new EntryPrinter('raw', out, { chalk: plain })
    await printer.page(page1)
    await printer.page(page2)
    assert.equal(printer.printed, 3)
  })

  test('waits for a slow stdout to drain between pages', async () => {
    const { out, text } = sink({ highWaterMark: 8, delayMs: 5 })
    const printer = new EntryPrinter('raw', out, { chalk: plain })
    const many = Array.from({ length: 50 }, (_, i) => entry(String(i + 1), `line ${i}`))
    for (let i = 0; i < 50; i += 10) {
      await printer.page(many.slice(i, i + 10))
      assert.equal(out.writableNeedDrain, false, 'each page waits for the drain')
    }
    await printer.end()
    await new Promise<void>((resolve) => out.end(resolve))
    assert.equal(text(), many.map((e) => `${e.line}\n`).join(''))
  })

  test('defaultOutputMode: pretty on a terminal, raw otherwise', () => {
    assert.equal(defaultOutputMode({ isTTY: true }), 'pretty')
    assert.equal(defaultOutputMode({ isTTY: false }), 'raw')
    assert.equal(defaultOutputMode({}), 'raw')
  })
})

describe('EntryPrinter.group (query-range -A/-B/-C)', () => {
  const groups: ContextLine[][] = [
    [
      { entry: entry('1767225600000000001', 'before'), role: 'before' },
      { entry: entry('1767225600000000002', 'hit \u001b[2J'), role: 'match' },
    ],
    [
      { entry: entry('1767225600000000009', 'hit two'), role: 'match' },
      { entry: entry('1767225600000000010', 'after'), role: 'after' },
    ],
  ]

  async function printGroups(mode: OutputMode): Promise<string> {
    const { out, text } = sink()
    const printer = new EntryPrinter(mode, out, { chalk: plain, pinnedLabels: APP.labels })
    for (const group of groups) await printer.group(group)
    await printer.end()
    return text()
  }

  test('raw: the lines, -- between groups', async () => {
    assert.equal(await printGroups('raw'), 'before\nhit \u001b[2J\n--\nhit two\nafter\n')
  })

  test('pretty: matches marked with >, context indented, neutralised', async () => {
    const lines = (await printGroups('pretty')).trimEnd().split('\n')
    assert.equal(lines.length, 5)
    assert.match(lines[0], /^ {2}2026-01-01T00:00:00\.000000001Z +before$/)
    assert.match(lines[1], /^> 2026-01-01T00:00:00\.000000002Z +hit /)
    assert.doesNotMatch(lines[1], RAW_CONTROL)
    assert.equal(lines[2], '--')
  })

  test('jsonl and json: each entry with its context role and group number', async () => {
    const jsonl = (await printGroups('jsonl'))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { line: string; context: string; group: number })
    assert.deepEqual(
      jsonl.map(({ line, context, group }) => [line, context, group]),
      [
        ['before', 'before', 0],
        ['hit \u001b[2J', 'match', 0],
        ['hit two', 'match', 1],
        ['after', 'after', 1],
      ],
    )
    assert.deepEqual(
      JSON.parse(await printGroups('json')),
      jsonl.map((o) => ({ ...o })),
    )
  })
})

describe('colorLevel', () => {
  test('colorLevel pads to five characters and colours by severity', () => {
    assert.equal(colorLevel(plain, 'info'), 'INFO ')
    assert.equal(colorLevel(plain, 'error'), 'ERROR')
    assert.equal(colorLevel(plain, 'warn'), 'WARN ')
    assert.equal(colorLevel(colour, 'error'), colour.red.bold('ERROR'))
    assert.equal(colorLevel(colour, 'warn'), colour.yellow('WARN '))
    assert.equal(colorLevel(colour, 'fatal'), colour.magenta.bold('FATAL'))
    assert.equal(colorLevel(colour, 'debug'), colour.gray('DEBUG'))
  })
})

describe('metric output', () => {
  const vector: QueryData = {
    resultType: 'vector',
    result: [
      { metric: { level: 'warn' }, value: [1767225600, '3'] },
      { metric: { level: 'error' }, value: [1767225600, '5'] },
    ],
  }
  const matrix: QueryData = {
    resultType: 'matrix',
    result: [
      {
        metric: { app: 'x' },
        values: [
          [1767225600, '1'],
          [1767225660, '4.25'],
          [1767225720, '2'],
        ],
      },
      { metric: { app: 'a' }, values: [[1767225600, '7']] },
    ],
  }
  const scalar: QueryData = { resultType: 'scalar', result: [1767225600, '42'] }

  function rows(table: string): string[][] {
    return table
      .split('\n')
      .filter((line) => line.startsWith('│'))
      .map((line) =>
        line
          .split('│')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      )
  }

  test('vector: series and value, sorted by series', async () => {
    const table = await renderMetricTable(vector, { chalk: plain, sparklines: false })
    assert.deepEqual(rows(table), [
      ['series', 'value'],
      ['{level="error"}', '5'],
      ['{level="warn"}', '3'],
    ])
  })

  test('matrix: points, min, max, last', async () => {
    const table = await renderMetricTable(matrix, { chalk: plain, sparklines: false })
    assert.deepEqual(rows(table), [
      ['series', 'points', 'min', 'max', 'last'],
      ['{app="a"}', '1', '7', '7', '7'],
      ['{app="x"}', '3', '1', '4.25', '2'],
    ])
  })

  test('matrix with sparklines adds a trend column', async () => {
    const table = await renderMetricTable(matrix, { chalk: plain, sparklines: true })
    const [head, , second] = rows(table)
    assert.equal(head.at(-1), 'trend')
    assert.equal(second.at(-1), '▃█▄', 'bars stand on zero: 1, 4.25, 2')
  })

  test('matrix: an empty series leaves min and max blank', async () => {
    const table = await renderMetricTable({ resultType: 'matrix', result: [{ metric: {}, values: [] }] }, { chalk: plain, sparklines: false })
    assert.deepEqual(rows(table)[1], ['{}', '0', '', '', ''])
  })

  test('matrix: large non-integer values keep their digits', async () => {
    const data: QueryData = {
      resultType: 'matrix',
      result: [
        {
          metric: { app: 'x' },
          values: [
            [1, '100000.4'],
            [2, '123000.2'],
            [3, '0.5'],
          ],
        },
      ],
    }
    const [, row] = rows(await renderMetricTable(data, { chalk: plain, sparklines: false }))
    assert.equal(row[2], '0.5', 'min')
    assert.equal(row[3], '123000', 'max')
  })

  test('scalar: time and value', async () => {
    const table = await renderMetricTable(scalar, { chalk: plain, sparklines: false })
    assert.deepEqual(rows(table), [
      ['time', 'value'],
      ['2026-01-01T00:00:00.000Z', '42'],
    ])
  })

  test('hostile label values are neutralised in tables', async () => {
    const data: QueryData = { resultType: 'vector', result: [{ metric: { app: 'x\u001b[2J\u202e' }, value: [1, '1'] }] }
    const table = await renderMetricTable(data, { chalk: plain, sparklines: false })
    assert.equal(RAW_CONTROL.test(table.replace(/\n/g, '')), false)
  })

  test('without colour the table has no escape codes', async () => {
    const table = await renderMetricTable(vector, { chalk: plain, sparklines: false })
    assert.equal(table.includes('\u001b'), false)
  })

  test('a log result is refused', async () => {
    await assert.rejects(renderMetricTable({ resultType: 'streams', result: [] }, { chalk: plain, sparklines: false }))
  })

  test('renderMetric: json is the data, jsonl one sample per line, else a table', async () => {
    assert.deepEqual(JSON.parse(await renderMetric(vector, 'json', plain, false)), vector)
    const jsonl = (await renderMetric(matrix, 'jsonl', plain, false))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.equal(jsonl.length, 4)
    assert.deepEqual(jsonl[0], { metric: { app: 'x' }, timestamp: '2026-01-01T00:00:00.000Z', value: '1' })
    const table = await renderMetric(vector, 'pretty', plain, false)
    assert.ok(table.startsWith('┌') && table.endsWith('┘\n'))
  })

  test('metricToJsonl: vector and scalar', () => {
    assert.deepEqual(
      metricToJsonl(vector)
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line)),
      [
        { metric: { level: 'warn' }, timestamp: '2026-01-01T00:00:00.000Z', value: '3' },
        { metric: { level: 'error' }, timestamp: '2026-01-01T00:00:00.000Z', value: '5' },
      ],
    )
    assert.deepEqual(JSON.parse(metricToJsonl(scalar)), { metric: {}, timestamp: '2026-01-01T00:00:00.000Z', value: '42' })
    assert.equal(metricToJsonl({ resultType: 'vector', result: [] }), '')
  })

  test('formatLabels quotes values', () => {
    assert.equal(formatLabels({ app: 'x', msg: 'a"b' }), '{app="x", msg="a\\"b"}')
    assert.equal(formatLabels({}), '{}')
  })
})

describe('tables fit their width', () => {
  /** Display columns of a line (the box drawing is one column a character). */
  const widest = (table: string) => Math.max(...table.split('\n').map((line) => Array.from(line).length))

  test('a table that fits is left as it is', () => {
    assert.deepEqual(fitColumns([5, 10, 3], 80), [undefined, undefined, undefined])
  })

  test('the widest column is cut first, to what is left', () => {
    // 80 - 3 columns * 3 - 1 = 70 for content: 5 + 3 leave 62 for the wide one.
    assert.deepEqual(fitColumns([5, 2000, 3], 80), [undefined, 62, undefined])
    assert.deepEqual(fitColumns([5, 2000, 3], 200), [undefined, 182, undefined])
  })

  test('two wide columns are cut to one width, a narrow one kept', () => {
    assert.deepEqual(fitColumns([300, 4, 500], 100), [43, undefined, 43])
  })

  test('no column is cut below 12 characters, even when the table cannot fit', () => {
    assert.deepEqual(fitColumns([100, 100, 100, 100, 100, 100, 100, 100], 40), [12, 12, 12, 12, 12, 12, 12, 12])
  })

  test("the width: a terminal's columns, else PIPED_TABLE_WIDTH", () => {
    assert.equal(tableWidth({ isTTY: true, columns: 93 }), 93)
    assert.equal(tableWidth({ isTTY: false, columns: 93 }), PIPED_TABLE_WIDTH)
    assert.equal(tableWidth({ isTTY: true, columns: 0 }), PIPED_TABLE_WIDTH)
    assert.equal(tableWidth({}), PIPED_TABLE_WIDTH)
  })

  test('a 2,000-character value is cut with … and the table is as wide as given, colour or not', async () => {
    const rows = [
      ['x'.repeat(2000), '12 MB'],
      ['short', '1 KB'],
    ]
    for (const chalk of [plain, new Chalk({ level: 1 })]) {
      const table = await renderTable(['team', 'bytes'], rows, chalk, 80)
      const visible = table.replace(/\u001b\[[0-9;]*m/g, '')
      assert.equal(widest(visible), 80, visible)
      assert.match(visible, /│ x{67}… │ 12 MB │/)
      assert.match(visible, /│ short {63} │ 1 KB {2}│/)
    }
  })

  test('wide characters count twice: the table still fits', async () => {
    const table = await renderTable(['a', 'b'], [['界'.repeat(100), 'y'.repeat(100)]], plain, 60)
    for (const line of table.split('\n')) {
      const width = Array.from(line).reduce((sum, char) => sum + (char === '界' ? 2 : 1), 0)
      assert.ok(width <= 60, `${width}: ${line}`)
    }
    assert.match(table, /界…/)
  })

  test('the metric table fits too (renderMetricTable goes through renderTable)', async () => {
    const data: QueryData = { resultType: 'vector', result: [{ metric: { team: 'w'.repeat(2000) }, value: [1, '5'] }] }
    const table = await renderMetricTable(data, { chalk: plain, sparklines: false })
    assert.ok(widest(table) <= PIPED_TABLE_WIDTH, `${widest(table)} columns`)
    assert.match(table, /\{team="w+… │ 5 {5}│/)
  })
})
