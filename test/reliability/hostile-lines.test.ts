/**
 * Hostile log lines, pushed into a Loki of this file's own: escape sequences
 * (CSI, OSC, hyperlinks, clipboard writes), carriage returns, BEL, backspaces,
 * bidi overrides and isolates, C1 controls, NUL, DEL, invalid UTF-8 sent as raw
 * bytes in the push body, a line just under Loki's 256 KB limit, and a label
 * value with escape sequences.
 *
 * - `-o pretty` shows none of them raw: each becomes a visible escape, and
 *   every entry stays one line (with colour on too, where obs's own SGR codes
 *   are the only escape sequences).
 * - `-o raw` is exactly what Loki returns for the line, byte for byte
 *   (compared with a direct query_range fetch).
 * - `-o jsonl` parses back to that line.
 * For query-range and for tail.
 */
import assert from 'node:assert/strict'
import { isUtf8 } from 'node:buffer'
import { after, before, describe, test } from 'node:test'
import { type ObsOutput, obs, spawnObs } from '../support/fault-cli.ts'
import { type FaultLoki, pushBody, startFaultLoki } from '../support/fault-loki.ts'
import { counters, parseJsonl } from '../support/fault-truth.ts'

/** Characters that must never reach a terminal raw from a log line (the pretty output's line breaks aside). */
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffe\uffff]/

const ESC = '\u001b'
const LINE_LIMIT = 256 * 1024

/** [name, line]: a line as a string is pushed JSON-escaped; as bytes, raw into the JSON string. */
const HOSTILE: [string, string | Buffer][] = [
  ['CSI colour', `${ESC}[31mred${ESC}[0m plain`],
  ['CSI clear screen and home', `${ESC}[2J${ESC}[H${ESC}[3J`],
  ['CSI alternate screen', `${ESC}[?1049h hidden ${ESC}[?1049l`],
  ['CSI cursor up and erase line', `real${ESC}[1A${ESC}[2Kfake`],
  ['OSC window title (BEL)', `${ESC}]0;owned\u0007title`],
  ['OSC hyperlink (ST)', `${ESC}]8;;https://evil.example/${ESC}\\click me${ESC}]8;;${ESC}\\`],
  ['OSC 52 clipboard write', `${ESC}]52;c;cm0gLXJmIH4K\u0007`],
  ['DCS and APC strings', `${ESC}P1$qm${ESC}\\ ${ESC}_apc${ESC}\\`],
  ['lone ESC at the end', `trailing ${ESC}`],
  ['carriage return overwrite', 'level=info msg=ok\rlevel=error msg=FAKED'],
  ['CRLF', 'windows line\r\n'],
  ['BEL', 'ding\u0007\u0007\u0007'],
  ['backspaces over text', 'password=hunter2\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b\b*******'],
  ['vertical tab, form feed', 'a\u000bb\u000cc'],
  ['bidi override U+202E', 'invoice_\u202efdp.exe'],
  ['bidi isolates U+2066-2069', '\u2066isolated\u2069 \u2067rtl\u2069 \u2068first\u2069'],
  ['bidi embeddings U+202A-202D', '\u202aLRE\u202c \u202bRLE\u202c \u202dLRO\u202c'],
  ['bidi marks LRM RLM ALM', 'a\u200eb\u200fc\u061cd'],
  ['C1 CSI U+009B', '\u009b31mC1 red\u009b0m'],
  ['C1 OSC and ST', '\u009d0;c1 title\u009c'],
  ['C1 NEL', 'next\u0085line'],
  ['NUL', 'before\u0000after'],
  ['DEL', 'del\u007fete'],
  ['newline inside a line', 'first\nsecond\nthird'],
  ['tab (kept)', 'col1\tcol2'],
  ['noncharacters U+FFFE U+FFFF', 'x\ufffey\uffffz'],
  ['pino JSON with an escape in msg', `{"level":"error","msg":"${ESC}[31mboom${ESC}[0m\u202e","reqId":"r1"}`],
  [
    'pino JSON whose fields decode to escapes (trace)',
    JSON.stringify({ level: 'error', msg: `${ESC}[31mboom${ESC}]0;t\u0007\u202e`, reqId: 'r-hostile', [`k${ESC}[1m`]: 'v\r\u009b2J' }),
  ],
  ['many escapes', `${ESC}[1m`.repeat(2000)],
  ['invalid UTF-8: 0xFF 0xFE', Buffer.from([0x61, 0xff, 0xfe, 0x62])],
  ['invalid UTF-8: lone continuation and truncated sequence', Buffer.from([0x80, 0x20, 0xe2, 0x82, 0x20, 0xf0, 0x9f, 0x98])],
  ['invalid UTF-8: overlong "/" and encoded surrogate', Buffer.from([0xc0, 0xaf, 0x20, 0xed, 0xa0, 0x80])],
  ['valid UTF-8 around raw bytes', Buffer.concat([Buffer.from('é✓ '), Buffer.from([0xc3]), Buffer.from(' 👍🏽')])],
  ['combining marks and emoji (harmless, kept)', 'e\u0301 \u{1f44d}\u{1f3fd} Z\u0335\u0322a\u0337'],
  ['a line just under the 256 KB limit', `${ESC}[31m${'x'.repeat(LINE_LIMIT - 20)}${ESC}[0m`],
]

let loki: FaultLoki
let baseNs: bigint
const APP = 'hostile'

before(async () => {
  loki = await startFaultLoki()
  baseNs = BigInt(Date.now() - 120_000) * 1_000_000n
  const response = await fetch(`${loki.addr}/loki/api/v1/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: pushBody(
      { app: APP, stream: 'stdout' },
      HOSTILE.map(([, line], i) => [(baseNs + BigInt(i) * 1000n).toString(), line]),
    ),
  })
  assert.equal(response.status, 204, await response.text())
  const labelled = await fetch(`${loki.addr}/loki/api/v1/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: pushBody({ app: `${APP}-label`, stream: `std${ESC}[31mout\u202e\u0007` }, [[baseNs.toString(), 'plain line, hostile label']]),
  })
  assert.equal(labelled.status, 204, await labelled.text())
})
after(async () => {
  await loki?.remove()
})

/** What Loki returns for a query, straight from its API: the raw body and the lines in time order. */
async function direct(query: string): Promise<{ body: Buffer; lines: string[] }> {
  const params = new URLSearchParams({ query, start: (baseNs - 1_000_000_000n).toString(), end: (baseNs + 1_000_000_000n).toString(), limit: '5000', direction: 'forward' })
  const response = await fetch(`${loki.addr}/loki/api/v1/query_range?${params}`)
  const body = Buffer.from(await response.arrayBuffer())
  assert.equal(response.status, 200, body.toString())
  const result = (JSON.parse(body.toString('utf8')) as { data: { result: { values: [string, string][] }[] } }).data.result
  const values = result.flatMap((stream) => stream.values).sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1))
  return { body, lines: values.map(([, line]) => line) }
}

const RANGE = () => ['--from', (baseNs - 1_000_000_000n).toString(), '--to', (baseNs + 1_000_000_000n).toString(), '--limit', '0', '--forward']

function assertPrettySafe(result: ObsOutput, entries: number, color = false): void {
  assert.equal(result.code, 0, result.err)
  // obs's own colour codes are the only escape sequences allowed through.
  const text = color ? result.out.replace(/\u001b\[[0-9;]*m/g, '') : result.out
  const lines = text.split('\n')
  assert.equal(lines.pop(), '', 'ends with a newline')
  assert.equal(lines.length, entries, 'one output line per entry')
  for (const [i, line] of lines.entries()) {
    const bad = UNSAFE.exec(line)
    assert.equal(bad, null, `line ${i} holds U+${bad?.[0].charCodeAt(0).toString(16).padStart(4, '0')}: ${JSON.stringify(line.slice(0, 200))}`)
  }
}

describe('hostile lines through query-range', () => {
  test('what Loki stores for them (reported), and the line just over 256 KB is refused by Loki', async (t) => {
    const { body, lines } = await direct(`{app="${APP}"}`)
    assert.equal(lines.length, HOSTILE.length)
    const changed = HOSTILE.filter(([, pushed], i) => (typeof pushed === 'string' ? pushed : pushed.toString('utf8')) !== lines[i]).map(([name]) => name)
    t.diagnostic(`Loki's answer is valid UTF-8: ${isUtf8(body)}; lines Loki changed beyond UTF-8 decoding: ${JSON.stringify(changed)}`)
    for (const [i, [name, pushed]] of HOSTILE.entries()) {
      if (Buffer.isBuffer(pushed)) t.diagnostic(`${name}: pushed ${pushed.toString('hex')}, Loki returns ${JSON.stringify(lines[i])}`)
    }
    const over = await fetch(`${loki.addr}/loki/api/v1/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: pushBody({ app: `${APP}-big`, stream: 'stdout' }, [[baseNs.toString(), 'y'.repeat(LINE_LIMIT + 1)]]),
    })
    const message = await over.text()
    t.diagnostic(`a ${LINE_LIMIT + 1}-byte line: ${over.status} ${message.trim()}`)
    assert.equal(over.status, 400)
    assert.match(message, /max entry size '262144' bytes exceeded/)
    const surrogate = await fetch(`${loki.addr}/loki/api/v1/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"streams":[{"stream":{"app":"${APP}-surrogate"},"values":[["${baseNs}","lone \\ud800 surrogate"]]}]}`,
    })
    t.diagnostic(`a line with a lone surrogate escape (\\ud800): ${surrogate.status} ${(await surrogate.text()).trim().slice(0, 160)}`)
    const at = await fetch(`${loki.addr}/loki/api/v1/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: pushBody({ app: `${APP}-big`, stream: 'stdout' }, [[(baseNs + 1n).toString(), 'z'.repeat(LINE_LIMIT)]]),
    })
    assert.equal(at.status, 204, 'exactly 256 KB is accepted')
  })

  test('-o raw equals what Loki returns, byte for byte', async () => {
    const { lines } = await direct(`{app="${APP}"}`)
    const result = await obs(['query-range', `{app="${APP}"}`, ...RANGE(), '-o', 'raw'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(result.code, 0, result.err)
    const expected = Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8')
    assert.equal(result.stdout.length, expected.length)
    assert.ok(result.stdout.equals(expected), 'same bytes')
  })

  test('-o jsonl parses back to the lines Loki returns', async () => {
    const { lines } = await direct(`{app="${APP}"}`)
    const result = await obs(['query-range', `{app="${APP}"}`, ...RANGE(), '-o', 'jsonl'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(result.code, 0, result.err)
    assert.deepEqual(
      parseJsonl(result.out).map((e) => e.line),
      lines,
    )
  })

  test('-o pretty shows no raw control or bidi character, one line per entry, without and with colour', async () => {
    const plain = await obs(['query-range', `{app="${APP}"}`, ...RANGE(), '-o', 'pretty'], { env: { LOKI_ADDR: loki.addr } })
    assertPrettySafe(plain, HOSTILE.length)
    assert.match(plain.out, /\\x1b\[31mred\\x1b\[0m plain/)
    assert.match(plain.out, /invoice_\\u202efdp\.exe/)
    assert.match(plain.out, /level=info msg=ok\\rlevel=error msg=FAKED/)
    assert.match(plain.out, /first\\nsecond\\nthird/)
    assert.match(plain.out, /col1\tcol2/, 'tab is kept')
    const color = await obs(['query-range', `{app="${APP}"}`, ...RANGE(), '-o', 'pretty'], { env: { LOKI_ADDR: loki.addr, NO_COLOR: undefined, FORCE_COLOR: '1' } })
    assert.match(color.out, /\u001b\[/, 'colour is on')
    assertPrettySafe(color, HOSTILE.length, true)
  })

  test('a label value with escape sequences: pretty shows it escaped, jsonl keeps it', async () => {
    const query = `{app="${APP}-label"}`
    const pretty = await obs(['query-range', query, ...RANGE(), '-o', 'pretty'], { env: { LOKI_ADDR: loki.addr } })
    assertPrettySafe(pretty, 1)
    assert.match(pretty.out, /stream=std\\x1b\[31mout\\u202e\\x07/)
    const jsonl = await obs(['query-range', query, ...RANGE(), '-o', 'jsonl'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(parseJsonl(jsonl.out)[0].labels.stream, `std${ESC}[31mout\u202e\u0007`)
  })
})

describe('hostile lines through tail', () => {
  test('raw is byte for byte, jsonl parses back, pretty is safe', async () => {
    const app = `${APP}-tail`
    const tails = (['raw', 'jsonl', 'pretty'] as const).map((mode) => ({
      mode,
      run: spawnObs(['tail', `{app="${app}"}`, '--since', '5s', '-o', mode], { env: { LOKI_ADDR: loki.addr } }),
    }))
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const now = BigInt(Date.now()) * 1_000_000n
      const response = await fetch(`${loki.addr}/loki/api/v1/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: pushBody(
          { app, stream: 'stdout' },
          HOSTILE.map(([, line], i) => [(now + BigInt(i) * 1000n).toString(), line]),
        ),
      })
      assert.equal(response.status, 204)
      const params = new URLSearchParams({ query: `{app="${app}"}`, start: (now - 1n).toString(), end: (now + 1_000_000_000n).toString(), limit: '5000', direction: 'forward' })
      // Without the categorize-labels flag a stock Loki splits the stream by its detected_level metadata.
      const streams = ((await (await fetch(`${loki.addr}/loki/api/v1/query_range?${params}`)).json()) as { data: { result: { values: [string, string][] }[] } }).data.result
      const lines = streams
        .flatMap((stream) => stream.values)
        .sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1))
        .map(([, line]) => line)
      const expectedRaw = Buffer.from(lines.map((line) => `${line}\n`).join(''), 'utf8')
      const [rawRun, jsonlRun, prettyRun] = tails.map(({ run }) => run)
      await rawRun.waitFor(() => rawRun.stdout().length >= expectedRaw.length, 'the raw tail', 20_000)
      await jsonlRun.waitFor(() => jsonlRun.lineCount() >= HOSTILE.length, `${HOSTILE.length} jsonl lines`, 20_000)
      await prettyRun.waitFor(() => prettyRun.lineCount() >= HOSTILE.length, `${HOSTILE.length} pretty lines`, 20_000)
      await new Promise((resolve) => setTimeout(resolve, 300))
      const [raw, json, safe] = await Promise.all(tails.map(({ run }) => run.stop('SIGINT')))
      assert.equal(lines.length, HOSTILE.length)
      assert.equal(raw.code, 0, raw.err)
      assert.ok(raw.stdout.equals(expectedRaw), 'raw tail output is byte for byte')
      assert.deepEqual(
        parseJsonl(json.out).map((e) => e.line),
        lines,
      )
      assertPrettySafe(safe, HOSTILE.length)
    } finally {
      await Promise.all(tails.map(({ run }) => run.stop('SIGKILL')))
    }
  })
})

describe('hostile fields through trace', () => {
  test('the timeline shows no raw control or bidi character', async () => {
    const result = await obs(['trace', 'r-hostile', '--app', APP, '--since', '10m'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(result.code, 0, result.err)
    assert.match(result.out, /boom/)
    for (const line of result.out.split('\n')) assert.doesNotMatch(line, UNSAFE, JSON.stringify(line))
  })
})

test('counts', (t) => {
  t.diagnostic(counters('hostile-lines', { hostileLines: HOSTILE.length + 3, hostileLabels: 1 }))
})
