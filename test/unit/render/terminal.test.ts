import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, test } from 'node:test'
import { ExitCode, ObsError } from '../../../src/lib/errors.ts'
import { chalkFor, guardStdout, onStdoutError, Progress, sparkline, wantsColor, writeChunk, writeFailure } from '../../../src/lib/render/terminal.ts'
import { neutralize } from '../../../src/lib/text.ts'

const TTY = { isTTY: true }
const PIPE = { isTTY: false }

describe('wantsColor', () => {
  const cases: [string, { isTTY?: boolean }, NodeJS.ProcessEnv, boolean][] = [
    ['a terminal', TTY, {}, true],
    ['a pipe', PIPE, {}, false],
    ['no isTTY at all', {}, {}, false],
    ['NO_COLOR on a terminal', TTY, { NO_COLOR: '1' }, false],
    ['NO_COLOR wins over FORCE_COLOR', TTY, { NO_COLOR: '1', FORCE_COLOR: '1' }, false],
    ['an empty NO_COLOR is ignored', TTY, { NO_COLOR: '' }, true],
    ['FORCE_COLOR on a pipe', PIPE, { FORCE_COLOR: '1' }, true],
    ['FORCE_COLOR=3 on a pipe', PIPE, { FORCE_COLOR: '3' }, true],
    ['an empty FORCE_COLOR forces colour', PIPE, { FORCE_COLOR: '' }, true],
    ['FORCE_COLOR=0 on a terminal', TTY, { FORCE_COLOR: '0' }, false],
    ['FORCE_COLOR=false on a terminal', TTY, { FORCE_COLOR: 'false' }, false],
    ['TERM=dumb on a terminal', TTY, { TERM: 'dumb' }, false],
    ['TERM=dumb with FORCE_COLOR', TTY, { TERM: 'dumb', FORCE_COLOR: '1' }, true],
  ]
  for (const [name, stream, env, expected] of cases) {
    test(`${name}: ${expected}`, () => {
      assert.equal(wantsColor(stream, env), expected)
    })
  }

  test('chalkFor gives a colouring chalk only when colour is wanted', () => {
    assert.equal(chalkFor(TTY, {}).level, 1)
    assert.equal(chalkFor(PIPE, {}).level, 0)
    assert.equal(chalkFor(TTY, { NO_COLOR: 'x' }).red('a'), 'a')
    assert.notEqual(chalkFor(PIPE, { FORCE_COLOR: '1' }).red('a'), 'a')
  })
})

describe('neutralize', () => {
  const cases: [string, string][] = [
    ['\u001b[31mred\u001b[0m', '\\x1b[31mred\\x1b[0m'],
    ['\u009b2J', '\\x9b2J'],
    ['bell\u0007', 'bell\\x07'],
    ['back\bspace', 'back\\x08space'],
    ['nul\u0000', 'nul\\x00'],
    ['a\nb', 'a\\nb'],
    ['a\rb', 'a\\rb'],
    ['del\u007f', 'del\\x7f'],
    ['\u202eevil', '\\u202eevil'],
    ['\u2066iso\u2069', '\\u2066iso\\u2069'],
    ['\u200fmark\u200e', '\\u200fmark\\u200e'],
    ['\u061c', '\\u061c'],
    ['lone \ud800 high', 'lone \\ud800 high'],
    ['lone \udc00 low', 'lone \\udc00 low'],
    ['\u001b]0;title\u0007', '\\x1b]0;title\\x07'],
  ]
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
      assert.equal(neutralize(input), expected)
    })
  }

  test('keeps tabs and ordinary text, including emoji and CJK', () => {
    for (const text of ['tab\there', 'ünïcödé 日本語 🚀 👩‍👩‍👧', '{"level":"info","msg":"ok"}', '']) {
      assert.equal(neutralize(text), text)
    }
  })

  test('no unsafe character survives, on random input (seeded)', () => {
    let seed = 99
    const random = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
      return seed / 2 ** 32
    }
    const unsafe = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/
    for (let i = 0; i < 3000; i++) {
      let text = ''
      for (let j = 0; j < 12; j++) {
        const r = random()
        text += r < 0.5 ? String.fromCharCode(Math.floor(random() * 0xa0)) : String.fromCharCode(Math.floor(random() * 0x10000))
      }
      const safe = neutralize(text)
      assert.equal(unsafe.test(safe), false, JSON.stringify(safe))
      assert.equal(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(safe), false, JSON.stringify(safe))
    }
  })
})

describe('writeChunk', () => {
  function collector(highWaterMark: number, delayMs: number) {
    const chunks: string[] = []
    const out = new Writable({
      highWaterMark,
      decodeStrings: false,
      write(chunk: string | Buffer, _encoding, callback) {
        chunks.push(chunk.toString())
        setTimeout(callback, delayMs)
      },
    })
    return { out, chunks }
  }

  test('returns at once while the buffer has room', async () => {
    const { out, chunks } = collector(1024, 0)
    await writeChunk(out, 'small')
    assert.deepEqual(chunks, ['small'])
  })

  test('waits for the drain when the buffer is full', async () => {
    const { out } = collector(4, 20)
    let drained = false
    out.once('drain', () => {
      drained = true
    })
    await writeChunk(out, 'more than four')
    assert.equal(drained, true)
  })

  test('writes nothing for an empty chunk', async () => {
    const { out, chunks } = collector(4, 0)
    await writeChunk(out, '')
    assert.deepEqual(chunks, [])
  })

  test('rejects when the stream fails while waiting', async () => {
    const out = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        setTimeout(() => callback(new Error('EPIPE-like failure')), 5)
      },
    })
    await assert.rejects(writeChunk(out, 'data'), /EPIPE-like failure/)
  })

  test('ends when the stream closes while waiting', async () => {
    const out = new Writable({
      highWaterMark: 1,
      write() {
        // never calls back
      },
    })
    const pending = writeChunk(out, 'data')
    out.destroy()
    await pending
  })
})

describe('sparkline', () => {
  test('rising values use the whole scale', () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), '▁▂▃▄▅▆▇█')
  })

  test('a flat series is a flat line, at its height above zero; all zeros lie on the floor', () => {
    assert.equal(sparkline([5, 5, 5]), '███')
    assert.equal(sparkline([0, 0, 0]), '▁▁▁')
  })

  test('a change of one in a hundred is drawn as one, not as a spike', () => {
    assert.equal(sparkline([100, 100, 100, 101, 100]), '█████')
    assert.equal(sparkline([10, 10, 20]), '▅▅█')
  })

  test('negative values: the bars stand on the lowest', () => {
    assert.equal(sparkline([-7, 0, 7]), '▁▅█')
  })

  test('nothing to draw: empty string', () => {
    assert.equal(sparkline([]), '')
    assert.equal(sparkline([Number.NaN]), '')
  })

  test('gaps are blanks', () => {
    assert.equal(sparkline([0, Number.NaN, 1]), '▁ █')
  })

  test('long series are cut to the width, keeping a spike', () => {
    const values = Array.from({ length: 1000 }, (_, i) => (i === 517 ? 100 : 1))
    const line = sparkline(values, 40)
    assert.equal([...line].length, 40)
    assert.ok(line.includes('█'))
  })
})

describe('Progress', () => {
  function withStderr(fn: (writes: string[]) => void): string[] {
    const writes: string[] = []
    const original = process.stderr.write
    process.stderr.write = ((chunk: string | Uint8Array) => {
      writes.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    try {
      fn(writes)
    } finally {
      process.stderr.write = original
    }
    return writes
  }

  test('draws on stderr when stderr is a terminal and stdout is not', () => {
    const writes = withStderr(() => {
      const progress = new Progress(PIPE, TTY)
      progress.update('10 lines')
      progress.update('20 lines') // within 200ms: skipped
      progress.done()
    })
    assert.deepEqual(writes, ['\r\u001b[K10 lines', '\r\u001b[K'])
  })

  test('silent when stdout is a terminal or stderr is not', () => {
    for (const [stdout, stderr] of [
      [TTY, TTY],
      [PIPE, PIPE],
      [TTY, PIPE],
    ]) {
      const writes = withStderr(() => {
        const progress = new Progress(stdout, stderr)
        progress.update('x')
        progress.done()
      })
      assert.deepEqual(writes, [])
    }
  })
})

describe('output that cannot be written', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })

  test('writeFailure: one line naming the target, the reason and the fix; exit 1 unless told', () => {
    const failure = writeFailure('to standard output', enospc)
    assert.equal(failure.render(), 'cannot write to standard output: no space left on device (ENOSPC); free space on that disk or send the output elsewhere')
    assert.equal(failure.exitCode, ExitCode.failed)
    const open = Object.assign(new Error("EACCES: permission denied, open '/x/\u001b[2Jr.xml'"), { code: 'EACCES' })
    const report = writeFailure('the JUnit report to /x/\u001b[2Jr.xml', open, ExitCode.usage)
    assert.equal(report.exitCode, ExitCode.usage)
    assert.equal(report.render(), 'cannot write the JUnit report to /x/\\x1b[2Jr.xml: permission denied (EACCES); choose a path you can write to')
  })

  test('onStdoutError: EPIPE ends quietly with 0, anything else is one line and exit 1', () => {
    const written: string[] = []
    const stderr = { write: (text: string) => written.push(text) > 0 }
    const exit = (code: number): never => {
      throw Object.assign(new Error('exit'), { exitCode: code })
    }
    assert.throws(() => onStdoutError(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }), stderr, exit), { exitCode: 0 })
    assert.deepEqual(written, [])
    assert.throws(() => onStdoutError(enospc, stderr, exit), { exitCode: 1 })
    assert.equal(written.length, 1)
    assert.match(written[0], /^\S*error:\S* cannot write to standard output: no space left on device \(ENOSPC\);[^\n]*\n$/)
  })

  test("guardStdout runs ahead of listeners added before it (oclif's rethrows)", () => {
    const out = new Writable({ write: (_chunk, _encoding, done) => done() })
    const order: string[] = []
    out.on('error', () => order.push('oclif'))
    out.on('error', () => order.push('later'))
    const original = process.exit
    process.exit = ((code?: number) => {
      order.push(`exit ${code}`)
      throw new Error('exited')
    }) as typeof process.exit
    try {
      guardStdout(out)
      assert.throws(() => out.emit('error', Object.assign(new Error('EPIPE'), { code: 'EPIPE' })), /exited/)
    } finally {
      process.exit = original
    }
    assert.deepEqual(order, ['exit 0'])
  })

  test('writeChunk on a stream that failed: one line, never a silent success', async () => {
    const out = new Writable({ write: (_chunk, _encoding, done) => done(enospc) })
    out.on('error', () => {})
    out.write('first')
    await new Promise((resolve) => setImmediate(resolve))
    await assert.rejects(
      writeChunk(out, 'second'),
      (error: unknown) => error instanceof ObsError && /^cannot write the output: no space left on device \(ENOSPC\)/.test(error.message),
    )
  })
})
