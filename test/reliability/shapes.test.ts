/**
 * Answers and outputs of the wrong shape, through the built CLI: JSON from
 * something that is not Loki or not Alloy (`status: success` with anything
 * in it), standard output on a full disk, a JUnit path that cannot be
 * written. Each is one line on stderr with the contract's exit code, never a
 * stack trace or "unexpected".
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { OBS } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { type ObsOutput, obs } from '../support/fault-cli.ts'
import { counters } from '../support/fault-truth.ts'

const { addr } = testLoki()
const servers: Server[] = []
after(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    await new Promise((closed) => server.close(closed))
  }
})

/** A server that answers every request with `answer(request)` as JSON, or 404 where that is undefined. */
async function jsonServer(answer: (request: IncomingMessage) => string | undefined): Promise<string> {
  const server = createServer((request, response) => {
    const body = answer(request)
    if (body === undefined) response.writeHead(404).end('404 page not found\n')
    else response.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  servers.push(server)
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

let cases = 0

function assertOneLine(result: ObsOutput, code: number, what: string): string {
  cases++
  const lines = result.err.split('\n').filter((line) => line !== '')
  assert.equal(result.code, code, `${what}: exit ${result.code}, stderr ${result.err}`)
  assert.equal(lines.length, 1, `${what}: one line on stderr, got ${JSON.stringify(result.err)}`)
  assert.doesNotMatch(result.err, /unexpected| {4}at |Error:/, what)
  return lines[0]
}

describe("Loki's `status: success` answers of the wrong shape", { concurrency: true }, () => {
  const commands: [string, string[], string][] = [
    ['labels', ['labels'], '/loki/api/v1/labels'],
    ['label values', ['labels', 'app'], '/loki/api/v1/label/app/values'],
    ['series', ['series', '{app="a"}'], '/loki/api/v1/series'],
    ['series --analyze-labels', ['series', '{app="a"}', '--analyze-labels'], '/loki/api/v1/series'],
    ['query', ['query', 'count_over_time({app="a"}[5m])'], '/loki/api/v1/query'],
    ['metric query-range', ['query-range', 'count_over_time({app="a"}[5m])', '--since', '1h'], '/loki/api/v1/query_range'],
  ]
  const wrong = [
    '{"status":"success","data":{"a":1}}',
    '{"status":"success","data":[1,null]}',
    '{"status":"success","data":[{"app":7}]}',
    '{"status":"success","data":{"resultType":"vector","result":[{"metric":null,"value":[1,"2"]}]}}',
    '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["x","2"]]}]}}',
    '{"status":"success","data":{"resultType":"scalar","result":"7"}}',
    '{"status":"success","data":{"resultType":"nonsense","result":[]}}',
  ]
  for (const [name, args, path] of commands) {
    test(`${name}: one line naming the field, exit 3`, async () => {
      for (const body of wrong) {
        const fake = await jsonServer((request) => (request.url?.split('?')[0] === path ? body : undefined))
        const line = assertOneLine(await obs([...args, '--addr', fake, '--retries', '0']), 3, `${name} answered ${body}`)
        assert.match(line, /has the wrong shape|status/, `${name} answered ${body}: ${line}`)
      }
    })
  }
})

describe("answers at --alloy-addr that are not Alloy's", { concurrency: true }, () => {
  const foreign = ['{"status":"success","data":[]}', '[1,2,3]', '[{"name":"x"}]', '{"components":[]}', 'null']
  for (const command of ['doctor', 'smoke']) {
    test(`${command}: the Alloy checks fail with one line naming the field, exit 3`, async () => {
      for (const body of foreign) {
        const fake = await jsonServer((request) => (request.url === '/-/ready' ? '"ready"' : request.url === '/metrics' ? '' : body))
        cases++
        const result = await obs([command, '--addr', addr, '--alloy-addr', fake, '--json', '--retries', '0'])
        assert.equal(result.code, 3, `${command} with ${body} at --alloy-addr: exit ${result.code}, ${result.err}`)
        assert.doesNotMatch(result.err + result.out, /unexpected| {4}at /)
        const document = JSON.parse(result.out) as { checks: { id: string; status: string; detail: string }[] }
        const alloy = document.checks.filter((check) => check.id.startsWith('alloy') && check.status === 'fail')
        assert.ok(alloy.length > 0, `${command}: an Alloy check fails`)
        const named = alloy.filter((check) => /^Alloy's answer to \/api\/v0\/web\/components[^\n]*(wrong shape|not JSON)/.test(check.detail))
        assert.ok(named.length > 0, `${command} with ${body}: ${JSON.stringify(alloy)}`)
      }
    })
  }
})

/** The CLI with its standard output on /dev/full, where every write fails with ENOSPC. */
async function toFullDisk(args: string[]): Promise<ObsOutput> {
  const full = openSync('/dev/full', 'w')
  const started = performance.now()
  const env = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-obs-test-config', LOKI_ADDR: undefined, OBS_DEBUG: undefined }
  const child = spawn(process.execPath, [OBS, ...args], { stdio: ['ignore', full, 'pipe'], env })
  closeSync(full)
  const err: Buffer[] = []
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk))
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  const stderr = Buffer.concat(err)
  return { code, signal, stdout: Buffer.alloc(0), stderr, out: '', err: stderr.toString('utf8'), ms: performance.now() - started }
}

describe('output that cannot be written', { concurrency: true }, () => {
  const fullDisk = existsSync('/dev/full')
  for (const [name, args] of [
    ['labels', ['labels']],
    ['query-range jsonl', ['query-range', '{app="cogni-template"}', '--since', '1h', '-o', 'jsonl']],
    ['smoke', ['smoke', '--no-alloy']],
  ] as const) {
    test(`${name} > /dev/full: one line naming the full disk, exit 1`, { skip: !fullDisk && 'no /dev/full here' }, async () => {
      const line = assertOneLine(await toFullDisk([...args, '--addr', addr]), 1, name)
      assert.match(line, /cannot write to standard output: no space left on device \(ENOSPC\); free space/)
    })
  }
  // oclif writes these itself, outside any obs command (and --version outside oclif): no stack trace and bundle source either.
  for (const args of [['completion', 'bash'], ['completion', 'zsh'], ['help'], ['help', 'trace'], ['trace', '--help'], ['--version'], ['__complete', 'obs ']]) {
    const name = args.join(' ')
    test(`${name} > /dev/full: one line naming the full disk, exit 1`, { skip: !fullDisk && 'no /dev/full here' }, async () => {
      const line = assertOneLine(await toFullDisk(args), 1, name)
      assert.match(line, /^error: cannot write to standard output: no space left on device \(ENOSPC\); free space/)
    })
  }

  test('smoke --junit to a path that cannot be written: the checklist is printed, then one line, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'obs-junit-'))
    try {
      const path = join(dir, 'missing-directory', 'smoke.xml')
      const result = await obs(['smoke', '--no-alloy', '--addr', addr, '--junit', path])
      assert.match(result.out, /loki-ready/, 'the checklist is printed')
      const line = assertOneLine(result, result.out.includes('0 fail') ? 2 : 1, 'smoke --junit')
      assert.match(line, /cannot write the JUnit report to .*smoke\.xml: no such file or directory \(ENOENT\); create the directory first/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

test('counts', (t) => {
  t.diagnostic(counters('shapes', { cases }))
})
