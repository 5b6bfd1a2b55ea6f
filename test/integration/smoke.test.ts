/**
 * obs smoke and obs trace on Lokis built for one scenario each: an empty Loki,
 * numeric pino levels, reqId pushed as a label, and hostile request ids.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { runObs } from '../support/cli.ts'
import { testLoki } from '../support/env.ts'
import { type LokiProcess, pushAll, startLoki, stopAndRemove } from '../support/loki.ts'

const shared = testLoki()

/** How many values __stream_shard__ has in Loki's own series API: how many shards Loki cut. */
async function streamShards(addr: string): Promise<number> {
  const response = await fetch(`${addr}/loki/api/v1/series?${new URLSearchParams({ 'match[]': '{app="cogni-template"}', since: '2h' })}`)
  const series = ((await response.json()) as { data: Record<string, string>[] }).data
  return new Set(series.map((labels) => labels.__stream_shard__).filter((shard) => shard !== undefined)).size
}
const CHECK_IDS = ['loki-ready', 'logs-ingested', 'service-logs-json', 'error-filter', 'reqid-trace', 'label-policy', 'alloy-targets']

interface SmokeDocument {
  ok: boolean
  checks: { id: string; title: string; status: string; detail: string; hint?: string; durationMs: number }[]
}

describe('obs smoke against the loaded test Loki', () => {
  test('every Loki check passes, exit 0; --json matches the contract; --junit is one testcase per check', async () => {
    const junit = join(mkdtempSync(join(tmpdir(), 'obs-junit-')), 'smoke.xml')
    const result = await runObs(['smoke', '--since', '1h', '--no-alloy', '--json', '--junit', junit], { env: { LOKI_ADDR: shared.addr } })
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const document = JSON.parse(result.stdout) as SmokeDocument
    assert.equal(document.ok, true)
    assert.deepEqual(
      document.checks.map((c) => c.id),
      CHECK_IDS,
    )
    for (const check of document.checks) {
      assert.deepEqual(
        Object.keys(check)
          .filter((k) => k !== 'hint')
          .sort(),
        ['detail', 'durationMs', 'id', 'status', 'title'],
      )
      assert.ok(['pass', 'fail', 'warn', 'skip'].includes(check.status))
      assert.ok(Number.isInteger(check.durationMs))
      if (check.id !== 'alloy-targets') assert.equal(check.status, 'pass', `${check.id}: ${check.detail}`)
    }
    const xml = readFileSync(junit, 'utf8')
    assert.equal(XMLValidator.validate(xml), true)
    const parsed = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'testcase' }).parse(xml) as {
      testsuites: { testsuite: { '@_tests': string; '@_failures': string; testcase: { '@_name': string; skipped?: unknown; failure?: unknown }[] } }
    }
    const suite = parsed.testsuites.testsuite
    assert.equal(suite.testcase.length, CHECK_IDS.length)
    assert.deepEqual(
      suite.testcase.map((c) => c['@_name'].split(':')[0]),
      CHECK_IDS,
    )
    assert.equal(suite['@_failures'], '0')
    assert.ok(suite.testcase.at(-1)?.skipped !== undefined)
  })

  test("Loki's own labels pass label-policy as information: service_name, and on the stock Loki the __stream_shard__ its load caused", async () => {
    const result = await runObs(['smoke', '--since', '1h', '--no-alloy', '--json'], { env: { LOKI_ADDR: shared.addr } })
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const policy = (JSON.parse(result.stdout) as SmokeDocument).checks.find((c) => c.id === 'label-policy')
    assert.equal(policy?.status, 'pass', policy?.detail)
    assert.match(
      policy?.detail ?? '',
      /^\d+ streams of \{app="cogni-template"\}(, \d+ before Loki split them)?: labels app \(1 value in \d+ streams\), env \(1 value in \d+ streams\), service \(3 values in \d+ streams\), stream \(2 values in \d+ streams\)/,
    )
    if (shared.config === 'stock') {
      assert.ok((await streamShards(shared.addr)) > 0, "the global setup's load made the stock Loki shard streams")
      assert.match(policy?.detail ?? '', /__stream_shard__ \(\d+ values in \d+ streams\) is Loki's own, added by stream sharding/)
      assert.match(policy?.detail ?? '', /service_name \(3 values in \d+ streams\) is Loki's own/)
    } else {
      assert.doesNotMatch(policy?.detail ?? '', /Loki's own/)
    }
  })

  test('the checklist names each check with its status', async () => {
    const result = await runObs(['smoke', '--since', '1h', '--no-alloy'], { env: { LOKI_ADDR: shared.addr } })
    assert.equal(result.code, 0, result.stdout + result.stderr)
    for (const id of CHECK_IDS.slice(0, -1)) assert.match(result.stdout, new RegExp(`✔ ${id}\\s`))
    assert.match(result.stdout, /- alloy-targets/)
  })

  test('an unreachable Alloy fails alloy-targets with exit 3 unless the user opts out', async () => {
    const result = await runObs(['smoke', '--since', '1h', '--alloy-addr', 'http://127.0.0.1:1', '--retries', '0', '--json'], { env: { LOKI_ADDR: shared.addr } })
    assert.equal(result.code, 3)
    const alloy = (JSON.parse(result.stdout) as SmokeDocument).checks.find((c) => c.id === 'alloy-targets')
    assert.equal(alloy?.status, 'fail')
    assert.match(alloy?.detail ?? '', /cannot reach Alloy at http:\/\/127\.0\.0\.1:1/)
  })
})

describe('obs smoke and trace on scenario Lokis', () => {
  let loki: LokiProcess
  const now = () => BigInt(Date.now()) * 1_000_000n
  const stream = (labels: Record<string, string>, lines: string[]) => {
    const base = now() - 60_000_000_000n
    return { stream: labels, values: lines.map((line, i) => [(base + BigInt(i) * 1_000_000n).toString(), line]) }
  }

  before(async () => {
    loki = await startLoki()
  })
  after(async () => {
    await stopAndRemove(loki)
  })

  test('a Loki with no app logs fails logs-ingested with a hint, exit 1', async () => {
    const result = await runObs(['smoke', '--no-alloy', '--json'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(result.code, 1, result.stderr)
    const checks = (JSON.parse(result.stdout) as SmokeDocument).checks
    const ingested = checks.find((c) => c.id === 'logs-ingested')
    assert.equal(ingested?.status, 'fail')
    assert.match(ingested?.detail ?? '', /no lines from \{app="cogni-template"\}/)
    assert.match(ingested?.hint ?? '', /Alloy/)
    assert.equal(checks.find((c) => c.id === 'loki-ready')?.status, 'pass')
  })

  test('--wait retries failing checks until logs arrive, with progress on stderr', async () => {
    const waiting = runObs(['smoke', '--app', 'late-app', '--no-alloy', '--wait', '60s'], { env: { LOKI_ADDR: loki.addr } })
    await new Promise((resolve) => setTimeout(resolve, 4000))
    const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ level: i === 3 ? 'error' : 'info', time: Date.now(), reqId: `late-${i}`, msg: 'after deploy' }))
    await pushAll(loki.addr, [[stream({ app: 'late-app', env: 'test', service: 'app', stream: 'stdout' }, lines)]])
    const result = await waiting
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.match(result.stderr, /waiting \(\d+s of 60s\): logs-ingested, service-logs-json/)
    assert.match(result.stdout, /✔ logs-ingested/)
  })

  test('numeric pino levels fail error-filter with the level formatter hint', async () => {
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ level: i % 5 === 0 ? 50 : 30, time: Date.now(), reqId: `n-${i}`, msg: i % 5 === 0 ? 'boom' : 'ok' }))
    await pushAll(loki.addr, [[stream({ app: 'numeric-app', env: 'test', service: 'app', stream: 'stdout' }, lines)]])
    const result = await runObs(['smoke', '--app', 'numeric-app', '--no-alloy', '--json'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(result.code, 1)
    const filter = (JSON.parse(result.stdout) as SmokeDocument).checks.find((c) => c.id === 'error-filter')
    assert.equal(filter?.status, 'fail')
    assert.match(filter?.detail ?? '', /pino numbers/)
    assert.match(filter?.hint ?? '', /formatters: \{ level/)
  })

  test('a few plain-text lines among pino JSON pass service-logs-json with a note; mostly plain text fails it', async () => {
    const mixed = Array.from({ length: 20 }, (_, i) =>
      i % 7 === 3 ? `plain warning #${i} from a library` : JSON.stringify({ level: 'info', time: Date.now(), reqId: `m-${i}`, msg: 'ok' }),
    )
    await pushAll(loki.addr, [[stream({ app: 'mixed-app', env: 'test', service: 'app', stream: 'stdout' }, mixed)]])
    const passing = await runObs(['smoke', '--app', 'mixed-app', '--no-alloy', '--json'], { env: { LOKI_ADDR: loki.addr } })
    const json = (JSON.parse(passing.stdout) as SmokeDocument).checks.find((c) => c.id === 'service-logs-json')
    assert.equal(json?.status, 'pass', json?.detail)
    assert.match(json?.detail ?? '', /^8 of 10 newest lines parse as pino JSON, .*; 2 plain-text lines among them \(first: plain warning #\d+ from a library\)$/)

    const plain = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? JSON.stringify({ level: 'info', time: Date.now(), reqId: `p-${i}`, msg: 'ok' }) : `console.log line ${i}`))
    await pushAll(loki.addr, [[stream({ app: 'plain-app', env: 'test', service: 'app', stream: 'stdout' }, plain)]])
    const failing = await runObs(['smoke', '--app', 'plain-app', '--no-alloy', '--json'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(failing.code, 1)
    const refused = (JSON.parse(failing.stdout) as SmokeDocument).checks.find((c) => c.id === 'service-logs-json')
    assert.equal(refused?.status, 'fail')
    assert.match(refused?.detail ?? '', /not JSON: console\.log line/)
  })

  test('reqId pushed as a label fails label-policy naming reqId and its number of values', async () => {
    const streams = Array.from({ length: 23 }, (_, i) =>
      stream({ app: 'labelled-app', env: 'test', service: 'app', stream: 'stdout', reqId: `r-${i}` }, [
        JSON.stringify({ level: 'info', time: Date.now(), reqId: `r-${i}`, msg: 'hello' }),
      ]),
    )
    await pushAll(loki.addr, [streams])
    const result = await runObs(['smoke', '--app', 'labelled-app', '--no-alloy', '--json'], { env: { LOKI_ADDR: loki.addr } })
    assert.equal(result.code, 1)
    const policy = (JSON.parse(result.stdout) as SmokeDocument).checks.find((c) => c.id === 'label-policy')
    assert.equal(policy?.status, 'fail')
    assert.match(policy?.detail ?? '', /reqId \(23 values in 23 streams\) is a label; it must stay a JSON field/)
    assert.match(policy?.hint ?? '', /remove the relabel rule .* creates reqId/)
  })

  test('hostile request ids neither break nor widen the trace query', async () => {
    const ids = ['abc123', 'abc1234', 'q"uote', 'back\\slash', 'back`tick', 'pi|pe', '" or reqId=~".*']
    const lines = ids.map((reqId) => JSON.stringify({ level: 'info', time: Date.now(), reqId, msg: `line of ${reqId}` }))
    await pushAll(loki.addr, [[stream({ app: 'cogni-template', env: 'test', service: 'app', stream: 'stdout' }, lines)]])
    for (const reqId of ids.slice(0, 6)) {
      const result = await runObs(['trace', reqId, '--json'], { env: { LOKI_ADDR: loki.addr } })
      assert.equal(result.code, 0, `${reqId}: ${result.stderr}`)
      const entries = (JSON.parse(result.stdout) as { entries: { fields: { reqId: string } }[] }).entries
      assert.deepEqual(
        entries.map((e) => e.fields.reqId),
        [reqId],
        reqId,
      )
    }
    for (const injection of ['.*', '" or 1=1', 'abc"} |= "', '`', '\\']) {
      const result = await runObs(['trace', injection, '--since', '7d', '--json'], { env: { LOKI_ADDR: loki.addr } })
      assert.equal(result.code, 1, `${injection}: ${result.stderr}`)
      assert.deepEqual((JSON.parse(result.stdout) as { entries: unknown[] }).entries, [])
    }
  })
})
