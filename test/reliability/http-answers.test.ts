/**
 * Answers a real Loki does not give but a proxy in front of it may: bodies
 * compressed without being asked, redirects, answers too large to hold, and
 * servers too slow to answer. A fake server on 127.0.0.1 gives each; obs must
 * read what can be read and otherwise end with one line naming what happened
 * and a hint that fits the request, exit 3.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { brotliCompressSync, createGzip, deflateSync, gzipSync, zstdCompressSync } from 'node:zlib'
import { MAX_ANSWER_BYTES } from '../../src/lib/http.ts'
import { type ObsOutput, obs, stderrLines } from '../support/fault-cli.ts'

type Handler = (request: IncomingMessage, response: ServerResponse) => void

let server: Server
let addr: string
let handler: Handler = (_, response) => response.writeHead(500).end()

before(async () => {
  server = createServer((request, response) => handler(request, response))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  addr = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(() => {
  server.closeAllConnections()
  return new Promise<void>((resolve) => server.close(() => resolve()))
})

/** Runs obs against the fake server answering with `answer`. */
function against(answer: Handler, args: string[], env: Record<string, string> = {}): Promise<ObsOutput> {
  handler = answer
  return obs([...args, '--addr', addr], { env: { OBS_RETRIES: '0', ...env }, timeoutMs: 60_000 })
}

function oneLineExit3(result: ObsOutput, says: RegExp): void {
  assert.equal(result.code, 3, result.err)
  assert.deepEqual(stderrLines(result).length, 1, result.err)
  assert.match(result.err, says)
  assert.equal(result.out, '')
}

const LABELS = JSON.stringify({ status: 'success', data: ['app', 'env', 'service', 'stream'] })
const STREAMS = JSON.stringify({
  status: 'success',
  data: {
    resultType: 'streams',
    result: [
      {
        stream: { app: 'a' },
        values: [
          ['1767225600000000001', 'second line'],
          ['1767225600000000000', 'first line'],
        ],
      },
    ],
    stats: {},
  },
})

const ENCODERS: Record<string, (body: string) => Buffer> = {
  gzip: (body) => gzipSync(body),
  'x-gzip': (body) => gzipSync(body),
  deflate: (body) => deflateSync(body),
  br: (body) => brotliCompressSync(body),
  zstd: (body) => zstdCompressSync(body),
  // Applied in the order listed: gzip first, then br.
  'gzip, br': (body) => brotliCompressSync(gzipSync(body)),
}

function encoded(coding: string, body: string, status = 200, type = 'application/json'): Handler {
  return (_, response) => response.writeHead(status, { 'content-type': type, 'content-encoding': coding }).end(ENCODERS[coding](body))
}

describe('compressed answers', { concurrency: 1 }, () => {
  for (const coding of Object.keys(ENCODERS)) {
    test(`a ${coding} answer is read as the JSON it holds (labels, query-range)`, async () => {
      const labels = await against(encoded(coding, LABELS), ['labels'])
      assert.equal(labels.code, 0, labels.err)
      assert.equal(labels.out, 'app\nenv\nservice\nstream\n')
      const lines = await against(encoded(coding, STREAMS), ['query-range', '{app="a"}', '--from', '1767225600', '--to', '1767225601', '--limit', '10', '-o', 'raw'])
      assert.equal(lines.code, 0, lines.err)
      assert.equal(lines.out, 'second line\nfirst line\n')
    })
  }

  test("a gzip error answer shows Loki's message, not bytes", async () => {
    const result = await against(encoded('gzip', 'parse error at line 1, col 2: syntax error\n', 400, 'text/plain'), ['labels'])
    assert.equal(result.code, 2, result.err)
    assert.match(result.err, /^error: Loki rejected the request: 400 Bad Request: parse error at line 1, col 2: syntax error; correct what it names and run the command again$/m)
  })

  test("a gzip /ready answer is read: Loki's reason, not bytes", async () => {
    const result = await against(encoded('gzip', 'Ingester not ready: waiting for 15s after being ready\n', 503, 'text/plain'), ['ready'])
    assert.equal(result.code, 1, result.err)
    assert.equal(result.out, 'Ingester not ready: waiting for 15s after being ready\n')
  })

  test('a corrupt gzip answer: one line saying so, not "possibly cut off"', async () => {
    const result = await against((_, response) => response.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(LABELS).subarray(0, 20)), ['labels'])
    oneLineExit3(result, /^error: Loki's answer to \/loki\/api\/v1\/labels is not valid gzip \(.*\): cut off or corrupt; retry/)
  })

  test('an answer in a coding obs cannot decode: one line naming it', async () => {
    const result = await against((_, response) => response.writeHead(200, { 'content-encoding': 'compress' }).end('x'), ['labels'])
    oneLineExit3(result, /^error: Loki's answer to \/loki\/api\/v1\/labels is encoded as "compress", which obs cannot decode; check any proxy between obs and Loki$/m)
  })
})

describe('redirects', { concurrency: 1 }, () => {
  for (const status of [301, 302, 303, 307, 308]) {
    test(`${status}: one line naming the target with its credentials and query masked; not followed`, async () => {
      let followed = 0
      const result = await against(
        (request, response) => {
          if (request.url?.startsWith('/moved')) followed++
          response.writeHead(status, { location: `http://admin:pw-S3cret@127.0.0.1:1/moved/loki/api/v1/labels?token=T0ken-S3cret` }).end()
        },
        ['labels'],
      )
      oneLineExit3(
        result,
        new RegExp(
          `^error: Loki at ${addr} answered ${status} [A-Z][a-z]+( [A-Z][a-z]+)? to http://…@127\\.0\\.0\\.1:1/moved/loki/api/v1/labels\\?…; point --addr at the address Loki is served from`,
        ),
      )
      assert.equal(result.err.includes('S3cret'), false)
      assert.equal(followed, 0)
    })
  }

  test('a relative Location is shown as the absolute address it names', async () => {
    const result = await against((_, response) => response.writeHead(307, { location: '/loki-behind-proxy/loki/api/v1/labels' }).end(), ['labels'])
    oneLineExit3(result, new RegExp(`answered 307 Temporary Redirect to ${addr}/loki-behind-proxy/loki/api/v1/labels;`))
  })

  test('a redirect without a Location says so', async () => {
    const result = await against((_, response) => response.writeHead(308).end(), ['labels'])
    oneLineExit3(result, /answered 308 Permanent Redirect with no Location/)
  })
})

describe('answers too large to hold', { concurrency: 1 }, () => {
  const MB = 1024 * 1024
  /** 600 MB of one JSON answer, written as fast as obs reads it, until obs hangs up. */
  function huge(path: string, prefix: string): Handler {
    return (request, response) => {
      if (!request.url?.startsWith(path)) return void response.writeHead(404).end()
      response.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(MB, 'a')
      let sent = 0
      const more = () => {
        while (sent < 600 * MB) {
          sent += MB
          if (!response.write(sent === MB ? Buffer.concat([Buffer.from(prefix), chunk]) : chunk)) return void response.once('drain', more)
        }
        response.end('"]}')
      }
      response.on('close', () => (sent = Infinity))
      more()
    }
  }

  test(`a 600 MB answer: one line saying it is larger than ${MAX_ANSWER_BYTES / MB} MB, with the query hint; not "cannot reach Loki"`, async () => {
    const result = await against(huge('/loki/api/v1/labels', '{"status":"success","data":["'), ['labels'])
    oneLineExit3(result, new RegExp(`^error: Loki's answer to /loki/api/v1/labels is larger than ${MAX_ANSWER_BYTES / MB} MB; obs stopped reading it; narrow the query`))
  })

  test('a gzip bomb (a small body that decodes to 600 MB) stops at the same bound', async () => {
    const result = await against(
      (_, response) => {
        response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
        const gzip = createGzip()
        gzip.pipe(response)
        gzip.write('{"status":"success","data":["')
        const zeros = Buffer.alloc(MB, '0')
        let left = 600
        const more = () => {
          while (left-- > 0) if (!gzip.write(zeros)) return void gzip.once('drain', more)
          gzip.end('"]}')
        }
        response.on('close', () => (left = 0))
        more()
      },
      ['labels'],
    )
    oneLineExit3(result, /is larger than \d+ MB; obs stopped reading it/)
  })

  test('a huge /ready answer gets a hint about the address, not about the query', async () => {
    const result = await against(huge('/ready', ''), ['ready'])
    oneLineExit3(result, /^error: Loki's answer to \/ready is larger than \d+ MB; obs stopped reading it; check that --addr points at Loki/)
  })
})

describe('timeouts: the hint fits the request', { concurrency: 1 }, () => {
  const silent: Handler = () => {}

  test('/ready: check that Loki is running, or raise --timeout; nothing about queries', async () => {
    const result = await against(silent, ['ready', '--timeout', '1s'])
    oneLineExit3(result, new RegExp(`^error: Loki did not answer /ready within the 1s timeout; check that Loki at ${addr} is running and not overloaded, or raise --timeout$`, 'm'))
  })

  test('a query: narrow it, or raise --timeout', async () => {
    const result = await against(silent, ['labels', '--timeout', '1s'])
    oneLineExit3(
      result,
      /^error: Loki did not answer \/loki\/api\/v1\/labels within the 1s timeout; narrow the query \(a shorter range or more label matchers\) or raise --timeout$/m,
    )
  })
})

describe('the wrong scheme in --addr', { concurrency: 1 }, () => {
  for (const args of [['labels'], ['ready'], ['query-range', '{app="a"}', '--since', '5m']]) {
    test(`https:// to a plain-HTTP server (${args[0]}): one line naming the scheme to use, not OpenSSL's internals, exit 3`, async () => {
      handler = (_, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(LABELS)
      const https = addr.replace(/^http:/, 'https:')
      const result = await obs([...args, '--addr', https], { timeoutMs: 60_000 })
      oneLineExit3(result, new RegExp(`^error: Loki at ${https} does not speak TLS \\(it answered plain HTTP\\); use http:// in --addr$`, 'm'))
      assert.doesNotMatch(result.err, /SSL routines|openssl|tls_validate/i)
    })
  }

  test("http:// to a TLS-only server (Go's answer to plain HTTP, as a TLS Loki gives it): one line naming https://, exit 3", async () => {
    const tlsOnly = createNetServer((socket) => socket.once('data', () => socket.end('HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n')))
    await new Promise<void>((resolve) => tlsOnly.listen(0, '127.0.0.1', resolve))
    try {
      const plain = `http://127.0.0.1:${(tlsOnly.address() as AddressInfo).port}`
      const result = await obs(['labels', '--addr', plain], { timeoutMs: 60_000 })
      oneLineExit3(
        result,
        new RegExp(`^error: Loki at ${plain} speaks only TLS \\(it answered 400 Bad Request: Client sent an HTTP request to an HTTPS server\\.\\); use https:// in --addr$`, 'm'),
      )
    } finally {
      await new Promise((closed) => tlsOnly.close(closed))
    }
  })
})
