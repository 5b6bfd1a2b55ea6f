/**
 * The files given to doctor (--compose, --alloy-config) are the user's input:
 * whatever they hold, doctor either understands them or refuses them before
 * anything is sent (exit 2, one line naming the file, the place in it and
 * what was expected, nothing on stdout, no connection to Loki), never with a
 * stack trace; and it reads them in time linear in their size. Echoes of the
 * user's input in smoke, trace and doctor are neutralised.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { testLoki } from '../support/env.ts'
import { obs, pool, semaphore } from '../support/fault-cli.ts'
import { counters } from '../support/fault-truth.ts'
import { REPO } from '../support/loki.ts'
import { countingServer } from '../support/silent-server.ts'

let dir: string
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'obs-doctor-inputs-'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

/** A file of the temporary directory holding `content`. */
function file(name: string, content: string | Buffer): string {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

const STACK_COMPOSE = readFileSync(join(REPO, 'stack/docker-compose.yml'), 'utf8')
const STACK_ALLOY = readFileSync(join(REPO, 'stack/alloy-config.alloy'), 'utf8')

interface Case {
  name: string
  flag: '--compose' | '--alloy-config'
  /** The file's content, or a path made by the test. */
  content?: string | Buffer
  path?: () => string
  says: RegExp
}

const BOMB = [
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
  'services: {s: {image: x}}',
].join('\n')

const COMPOSE: Case[] = [
  { name: 'a service with no body', content: 'services:\n  loki:\n', says: /services\.loki is empty; expected a mapping/ },
  { name: 'ports: 3100', content: 'services:\n  loki:\n    ports: 3100\n', says: /services\.loki\.ports is a number \(3100\); expected a list of ports/ },
  { name: 'image: 5', content: 'services:\n  loki:\n    image: 5\n', says: /services\.loki\.image is a number \(5\); expected a string/ },
  { name: 'volumes: [null]', content: 'services:\n  loki:\n    volumes: [null]\n', says: /services\.loki\.volumes\[0\] is empty; expected a string/ },
  { name: 'services a list', content: 'services: [loki]\n', says: /services is a list; expected a mapping of service names to services/ },
  { name: 'environment a string', content: 'services:\n  alloy:\n    environment: APP_ENV=dev\n', says: /services\.alloy\.environment is a string/ },
  {
    name: 'a port mapping of the wrong type',
    content: 'services:\n  loki:\n    ports: [{host_ip: 127, published: [1]}]\n',
    says: /services\.loki\.ports\[0\]\.host_ip is a number \(127\)/,
  },
  { name: 'no services', content: 'name: x\n', says: /defines no services/ },
  { name: 'an empty file', content: '', says: /is empty; expected a compose file with services/ },
  { name: 'binary junk', content: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0xff, 0xfe, 0x00, 0x01]), says: /is not UTF-8 text/ },
  { name: 'a YAML alias bomb', content: BOMB, says: /its aliases expand to more than 10 times its size/ },
  { name: 'duplicate services', content: 'services:\n  a: {image: x}\n  a: {image: y}\n', says: /at line 3: services\.a is defined twice/ },
  { name: 'malformed YAML', content: 'services:\n  a: [unclosed\n', says: /malformed compose file .* at line \d+: / },
  { name: 'deep nesting', content: '['.repeat(100_000), says: /nested deeper than the parser can follow/ },
  { name: 'a directory', path: () => dir, says: /is a directory; give --compose the file itself/ },
  { name: 'a missing file', path: () => join(dir, 'nope.yml'), says: /compose file .*nope\.yml does not exist/ },
  { name: 'a path through a file', path: () => join(file('plain', 'x'), 'compose.yml'), says: /cannot read the compose file .*: not a directory \(ENOTDIR\)/ },
  { name: 'a name with an escape sequence', path: () => join(dir, 'e\u001b[31m\u009b\u202e.yml'), says: /compose file .*e\\x1b\[31m\\x9b\\u202e\.yml does not exist/ },
].map((c) => ({ ...c, flag: '--compose' as const }))

const ALLOY: Case[] = [
  {
    name: 'target_label a number',
    content: 'discovery.relabel "x" {\n  rule {\n    target_label = 5\n  }\n}\n',
    says: /line 3: discovery\.relabel "x"\.rule\.target_label is a number; expected a string/,
  },
  { name: 'an unclosed block', content: 'discovery.relabel "x" {\n  rule {\n', says: /line 2: the "\{" of rule is never closed/ },
  { name: 'an unterminated string', content: 'a = "x\n', says: /line 1: a string is not closed on its line/ },
  { name: 'a stray brace', content: 'a = 1\n}\n', says: /line 2: a "\}" closes no block/ },
  { name: 'binary junk', content: Buffer.from([0xc3, 0x28, 0x00]), says: /Alloy config .* is not UTF-8 text/ },
  { name: 'control characters', content: 'a = 1\n\u0000\u0001', says: /line 2: unexpected character "\?"/ },
  { name: 'deep nesting', content: `a = ${'['.repeat(100_000)}`, says: /nested deeper than 200 levels/ },
  { name: 'a directory', path: () => dir, says: /is a directory; give --alloy-config the file itself/ },
  { name: 'a missing file', path: () => join(dir, 'nope.alloy'), says: /Alloy config .*nope\.alloy does not exist/ },
].map((c) => ({ ...c, flag: '--alloy-config' as const }))

const slot = semaphore(2)
let tried = 0

describe('doctor refuses a file it cannot understand: exit 2, one line, nothing sent', { concurrency: true }, () => {
  for (const [group, cases] of Object.entries({ '--compose': COMPOSE, '--alloy-config': ALLOY })) {
    test(`${group} (${cases.length} cases)`, async (t) => {
      const failures = await pool(cases, cases.length, (c, index) =>
        slot(async () => {
          const path = c.path ? c.path() : file(`${group.slice(2)}-${index}`, c.content ?? '')
          const server = await countingServer()
          try {
            const result = await obs(['doctor', '--no-alloy', c.flag, path], { env: { LOKI_ADDR: server.addr, OBS_RETRIES: '0' }, timeoutMs: 30_000 })
            tried++
            const found: string[] = []
            if (result.code !== 2) found.push(`exit ${result.code}`)
            if (server.connections() !== 0) found.push(`${server.connections()} connection(s) to Loki`)
            if (result.out !== '') found.push(`stdout: ${JSON.stringify(result.out.slice(0, 200))}`)
            const lines = result.err.replace(/\n$/, '').split('\n')
            if (lines.length !== 1 || !lines[0].startsWith('error: ')) found.push(`not one error line: ${JSON.stringify(result.err.slice(0, 500))}`)
            if (/^error: unexpected|\n\s+at /.test(result.err)) found.push('a stack trace or "unexpected"')
            if (/[\u001b\u009b\u202e]/.test(result.err)) found.push('a raw escape sequence')
            if (!c.says.test(result.err)) found.push(`stderr does not match ${c.says}: ${JSON.stringify(result.err.trim().slice(0, 500))}`)
            return found.length > 0 ? `${c.name}: ${found.join('; ')}` : undefined
          } finally {
            await server.close()
          }
        }),
      )
      const failed = failures.filter((f): f is string => f !== undefined)
      t.diagnostic(`${cases.length - failed.length} of ${cases.length} refused as the contract says`)
      assert.deepEqual(failed, [])
    })
  }

  test('an unreadable file names the reason', { skip: process.getuid?.() === 0 ? 'root reads every file' : false }, async () => {
    const path = file('unreadable.yml', STACK_COMPOSE)
    chmodSync(path, 0o000)
    const result = await obs(['doctor', '--no-alloy', '--compose', path], { env: { LOKI_ADDR: 'http://127.0.0.1:1' }, timeoutMs: 30_000 })
    assert.equal(result.code, 2)
    assert.match(result.err, /^error: cannot read the compose file .*unreadable\.yml: permission denied \(EACCES\)/)
  })
})

describe('doctor understands every form Compose accepts', () => {
  test('labels and environment as lists or mappings, anchors and merge keys, long syntax, from a named pipe', async () => {
    const compose = [
      'x-alloy: &alloy',
      '  image: grafana/alloy:v1.9.2',
      '  labels: [team=obs]',
      '  environment: [APP_ENV=dev]',
      'services:',
      '  alloy:',
      '    <<: *alloy',
      '    ports: [{target: 12345, published: 12345, host_ip: 127.0.0.1}]',
      '    volumes: [{type: bind, source: /var/run/docker.sock, target: /var/run/docker.sock, read_only: true}]',
      '  loki:',
      '    image: grafana/loki:3.6.2',
      '    labels: {team: obs}',
      '    environment: {LOG_LEVEL: info}',
      '    ports: ["127.0.0.1:3100:3100"]',
    ].join('\n')
    const server = await countingServer()
    try {
      // A named pipe, as the shell's <(docker compose config) gives: it has no size to read by.
      const fifo = join(dir, 'compose.fifo')
      execFileSync('mkfifo', [fifo])
      const writing = new Promise<void>((resolve, reject) =>
        createWriteStream(fifo)
          .once('error', reject)
          .end(compose, () => resolve()),
      )
      const piped = await obs(['doctor', '--no-alloy', '--compose', fifo, '--json'], { env: { LOKI_ADDR: server.addr, OBS_RETRIES: '0' }, timeoutMs: 30_000 })
      await writing
      const checks = new Map((JSON.parse(piped.out) as { checks: { id: string; status: string; detail: string }[] }).checks.map((c) => [c.id, c]))
      for (const id of ['compose-docker-socket', 'compose-ports', 'compose-images', 'compose-app-env'])
        assert.equal(checks.get(id)?.status, 'pass', `${id}: ${checks.get(id)?.detail}`)
      assert.equal(piped.code, 3, 'Loki is not there: the Loki checks fail as unreachable')
    } finally {
      await server.close()
    }
  })
})

/**
 * Seconds for doctor to read big files, against Loki on a closed port, as
 * measured on this 2-core machine. Before (quadratic): a 1.2 MB Alloy config
 * 71 s, 20,000 services 30 s (53 s under load), 100,000 services unfinished
 * after 5 minutes. After: 0.4 s, 3 s (7 s under load) and 18 s (25 s under
 * load; nearly all of it the YAML library's own parsing). Each bound is a few
 * times the linear time under load and well below the quadratic one.
 */
describe('doctor reads big files in linear time', () => {
  const timed = async (flag: string, path: string, boundS: number) => {
    const result = await obs(['doctor', '--no-alloy', flag, path, '--json'], { env: { LOKI_ADDR: 'http://127.0.0.1:1', OBS_RETRIES: '0' }, timeoutMs: boundS * 1000 })
    assert.notEqual(result.signal, 'SIGKILL', `${flag} ${path} took longer than ${boundS} s`)
    assert.equal(result.code, 3, result.err)
    return { seconds: result.ms / 1000, checks: (JSON.parse(result.out) as { checks: { id: string; status: string; detail: string }[] }).checks }
  }

  test('a 1.2 MB Alloy config: under 15 s', async (t) => {
    const ids = Array.from({ length: 40_000 }, () => '"__meta_docker_container_id"').join(', ')
    const path = file('big.alloy', `${STACK_ALLOY}\ndiscovery.relabel "ids" {\n  targets = []\n  rule {\n    source_labels = [${ids}]\n    action = "keep"\n  }\n}\n`)
    const { seconds, checks } = await timed('--alloy-config', path, 15)
    t.diagnostic(`1.2 MB Alloy config: ${seconds.toFixed(2)} s`)
    assert.equal(checks.find((c) => c.id === 'alloy-config-labels')?.status, 'pass')
  })

  const services = (n: number) => {
    const one = (i: number) =>
      `  s${i}:\n    image: grafana/loki:3.6.2\n    ports:\n      - "127.0.0.1:${3000 + (i % 1000)}:3100"\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock:ro\n    environment:\n      - APP_ENV=dev\n`
    const parts = ['services:\n']
    for (let i = 0; i < n; i++) parts.push(one(i))
    parts.push('  alloy:\n    image: grafana/alloy:latest\n')
    return parts.join('')
  }

  for (const [n, boundS] of [
    [20_000, 15],
    [100_000, 90],
  ]) {
    test(`${n} services: under ${boundS} s`, async (t) => {
      const { seconds, checks } = await timed('--compose', file(`big-${n}.yml`, services(n)), boundS)
      t.diagnostic(`${n} services: ${seconds.toFixed(2)} s`)
      assert.match(checks.find((c) => c.id === 'compose-images')?.detail ?? '', /^unpinned images: alloy: grafana\/alloy:latest —/)
    })
  }
})

describe('echoes of the user input are neutralised', () => {
  const RAW = /[\u001b\u009b\u202e]/
  const HOSTILE = 'x\u001b[31m\u009b2J\u202e'

  test('smoke --app, --service, --env', async () => {
    const result = await obs(['smoke', '--no-alloy', '--app', HOSTILE, '--service', HOSTILE, '--env', HOSTILE], { env: { LOKI_ADDR: testLoki().addr }, timeoutMs: 60_000 })
    assert.equal(result.code, 1, result.err)
    assert.doesNotMatch(result.out + result.err, RAW)
    assert.match(result.out, /Query 1: logs arrive for \{app="x\\u001b\[31m\\x9b2J\\u202e"/)
    const json = await obs(['smoke', '--no-alloy', '--app', HOSTILE, '--json'], { env: { LOKI_ADDR: testLoki().addr }, timeoutMs: 60_000 })
    assert.doesNotMatch(json.out, RAW)
  })

  test('trace --app and the request id', async () => {
    const result = await obs(['trace', HOSTILE, '--app', HOSTILE, '--since', '7d'], { env: { LOKI_ADDR: testLoki().addr }, timeoutMs: 60_000 })
    assert.equal(result.code, 1, result.err)
    assert.doesNotMatch(result.out + result.err, RAW)
    assert.match(result.err, /no lines for reqId "x\\u001b\[31m\\x9b2J\\u202e" in app "x\\u001b\[31m\\x9b2J\\u202e"/)
  })
})

test('counts', (t) => {
  t.diagnostic(counters('doctor-inputs', { tried }))
})
