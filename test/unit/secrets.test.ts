import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { describe, test } from 'node:test'
import { UsageError } from '../../src/lib/errors.ts'
import { checkProxyUrl, envProxies, proxyFor } from '../../src/lib/proxy.ts'
import { Redactor, redactWrites } from '../../src/lib/secrets.ts'

const USER = 'alice'
const PASSWORD = 'pw-S3cr3t"<&9f2c7'
const TOKEN = 'tok-S3cr3t-b81e4'
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('Redactor', () => {
  test('masks every form of a basic-auth password a server or a renderer could write back', () => {
    const redactor = Redactor.of({ authorization: basic(USER, PASSWORD), 'user-agent': 'obs/1' })
    const credentials = Buffer.from(`${USER}:${PASSWORD}`).toString('base64')
    for (const form of [
      PASSWORD,
      `${USER}:${PASSWORD}`,
      credentials,
      credentials.replace(/=+$/, ''),
      encodeURIComponent(credentials),
      Buffer.from(PASSWORD).toString('base64'),
      JSON.stringify(PASSWORD).slice(1, -1),
      'pw-S3cr3t&quot;&lt;&amp;9f2c7',
    ]) {
      // What stays is no secret: the user name, or base64 padding and the base64 of "alice:" (6 bytes, 8 characters).
      const out = redactor.redact(`before ${form} after`)
      assert.match(out, /^before (alice:|YWxpY2U6)?\*\*\*(=|%3D)* after$/, form)
    }
    assert.equal(redactor.redact('obs/1 alice'), 'obs/1 alice', 'the user name and other headers are no secrets')
  })

  test("a bearer token, a secret header and a proxy URL's credentials (encoded and decoded)", () => {
    const redactor = Redactor.of({ authorization: `Bearer ${TOKEN}`, 'x-api-key': 'hk-S3cr3t', 'x-scope-orgid': 'tenant-a' }, [
      'http://bob:p%40ss-S3cr3t@proxy:3128',
      undefined,
      'http://proxy-token-S3cr3t@proxy:3128',
    ])
    assert.equal(redactor.redact(`Authorization: Bearer ${TOKEN}`), 'Authorization: Bearer ***')
    assert.equal(redactor.redact(`token ${TOKEN} key hk-S3cr3t org tenant-a`), 'token *** key *** org tenant-a')
    assert.equal(redactor.redact('p@ss-S3cr3t and p%40ss-S3cr3t and bob:p@ss-S3cr3t'), '*** and *** and bob:***')
    assert.equal(redactor.redact(Buffer.from('bob:p@ss-S3cr3t').toString('base64')), '***')
    assert.equal(redactor.redact('proxy-token-S3cr3t'), '***')
  })

  test('nothing configured: inactive, and a stream is left as it is', () => {
    const redactor = Redactor.of({ 'user-agent': 'obs/1', authorization: 'abc' })
    assert.equal(redactor.active, false, 'shorter than 4 characters is no credential')
    const stream = new PassThrough()
    const write = stream.write
    redactWrites(stream, redactor)
    assert.equal(stream.write, write)
  })

  test('redactBytes masks a body as it arrives, a secret split between chunks at any byte included', async () => {
    const redactor = Redactor.of({ authorization: `Bearer ${TOKEN}`, 'x-api-key': 'ключ-S3cr3t' })
    const text = `{"data":["Bearer ${TOKEN}","${TOKEN}","ключ-S3cr3t", "x"]}`
    const bytes = Buffer.from(text)
    const collect = async (chunks: Uint8Array[]) => {
      const out: Buffer[] = []
      async function* source() {
        yield* chunks
      }
      for await (const chunk of redactor.redactBytes(source())) out.push(Buffer.from(chunk))
      return Buffer.concat(out).toString('utf8')
    }
    const want = '{"data":["Bearer ***","***","***", "x"]}'
    assert.equal(await collect([bytes]), want)
    for (let a = 1; a < bytes.length; a++) {
      assert.equal(await collect([bytes.subarray(0, a), bytes.subarray(a)]), want, `split at ${a}`)
    }
    assert.equal(await collect(Array.from(bytes, (byte) => Uint8Array.of(byte))), want, 'one byte at a time')
    assert.equal(await collect([]), '')
  })

  test('redactWrites masks strings and bytes written to a stream, once however often it is installed', () => {
    const redactor = Redactor.of({ authorization: `Bearer ${TOKEN}` })
    const stream = new PassThrough()
    redactWrites(stream, redactor)
    redactWrites(stream, redactor)
    stream.write(`a ${TOKEN}\n`)
    stream.write(Buffer.from(`b ${TOKEN}\n`))
    stream.write(Buffer.from('c clean\n'))
    stream.end()
    assert.equal(stream.read().toString(), 'a ***\nb ***\nc clean\n')
  })
})

describe('proxy settings', () => {
  test('checkProxyUrl: http:// assumed without a scheme; other schemes, paths and junk refused without the credentials', () => {
    assert.equal(checkProxyUrl('proxy.corp:3128', 'HTTPS_PROXY'), 'http://proxy.corp:3128')
    assert.equal(checkProxyUrl('https://u:p@proxy:443', '--proxy-url'), 'https://u:p@proxy:443')
    for (const bad of ['socks5://u:pw-S3cr3t@p:1080', 'http://u:pw-S3cr3t@p:3128/path', 'http://u:pw-S3cr3t@p:3128/?q', 'http://[:3128']) {
      assert.throws(
        () => checkProxyUrl(bad, '--proxy-url'),
        (error: Error) => error instanceof UsageError && error.message.includes('(--proxy-url)') && !error.message.includes('S3cr3t'),
        bad,
      )
    }
  })

  test('envProxies: lower case wins, as in curl and undici; none without HTTP(S)_PROXY', () => {
    assert.equal(envProxies({ NO_PROXY: 'x' }), undefined)
    const proxies = envProxies({ http_proxy: 'http://lower:1', HTTP_PROXY: 'http://upper:1', HTTPS_PROXY: 'upper:2', NO_PROXY: 'a,b' })
    assert.deepEqual(proxies, { http: { url: 'http://lower:1', from: 'http_proxy' }, https: { url: 'http://upper:2', from: 'HTTPS_PROXY' }, noProxy: 'a,b' })
  })

  test('proxyFor: a named proxy for everything; HTTPS_PROXY (else HTTP_PROXY) for https:// and wss://, HTTP_PROXY for http:// and ws://', () => {
    const named = { url: 'http://p:1', from: '--proxy-url' }
    const http = { url: 'http://h:1', from: 'HTTP_PROXY' }
    const https = { url: 'http://s:1', from: 'HTTPS_PROXY' }
    assert.equal(proxyFor({ named }, new URL('http://loki:3100')), named)
    assert.equal(proxyFor({ env: { http, https } }, new URL('https://loki')), https)
    assert.equal(proxyFor({ env: { http, https } }, new URL('wss://loki')), https)
    assert.equal(proxyFor({ env: { http } }, new URL('https://loki')), http)
    assert.equal(proxyFor({ env: { https } }, new URL('http://loki')), undefined)
    assert.equal(proxyFor({ env: { http, https } }, new URL('ws://loki')), http)
    assert.equal(proxyFor(undefined, new URL('http://loki')), undefined)
  })
})
