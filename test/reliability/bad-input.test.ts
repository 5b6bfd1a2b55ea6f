/**
 * Bad input is refused before anything is sent: exit 2, one clear line on
 * stderr (a LogQL syntax error: the query, a caret under the column and the
 * reason), nothing on stdout, and not one connection to the address obs was
 * given (each case gets a counting server of its own).
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type ObsOutput, obs, pool, semaphore } from '../support/fault-cli.ts'
import { counters } from '../support/fault-truth.ts'
import { countingServer } from '../support/silent-server.ts'

interface Case {
  args: string[]
  /** What the one line must say. */
  says: RegExp
  env?: Record<string, string>
  /** Files of a temporary working directory (a config file). */
  files?: Record<string, string>
  /** A LogQL syntax error: query line and caret line under the message. */
  caret?: boolean
}

const Q = '{app="cogni-template"}'
let dir: string

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'obs-bad-input-'))
  writeFileSync(join(dir, 'token'), 'a-token\n')
  writeFileSync(join(dir, 'empty-token'), '  \n')
  writeFileSync(join(dir, 'cert.pem'), 'not really a certificate')
  mkdirSync(join(dir, 'a-directory'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

const PROFILES = 'defaultProfile: dev\nprofiles:\n  dev:\n    app: cogni-template\n  prod:\n    app: cogni-template\n'

const LOGQL: Case[] = [
  { args: ['query-range', '{app="cogni-template"'], says: /col 22: unexpected end of query: "\{" is never closed/, caret: true },
  { args: ['query-range', '{app="cogni-template"} |= '], says: /unexpected end of query/, caret: true },
  { args: ['query-range', '{app="cogni-template"} |= "unterminated'], says: /col \d+/, caret: true },
  { args: ['query-range', '{app=cogni-template}'], says: /col 6: unexpected "cogni-template}"/, caret: true },
  { args: ['query-range', '{app="x"}}'], says: /col 10: unexpected "}"/, caret: true },
  { args: ['query-range', '{app="x"} | json | level='], says: /unexpected end of query/, caret: true },
  { args: ['query-range', '{app="x"} | jsonn'], says: /col \d+: unexpected/, caret: true },
  { args: ['query-range', 'sum(count_over_time({app="x"}[5m])'], says: /"\(" is never closed/, caret: true },
  { args: ['query-range', 'count_over_time({app="x"}[5x])'], says: /col 26: invalid range \[5x\]: a range is a duration such as \[5m\]/, caret: true },
  { args: ['query-range', 'rate({app="x"})'], says: /col \d+/, caret: true },
  { args: ['query-range', '{app="x"}\n| json\n| level=~'], says: /at line 3, col \d+/, caret: true },
  { args: ['query', 'sum by (level (count_over_time({app="x"}[5m]))'], says: /col \d+/, caret: true },
  { args: ['tail', '{app="x"} |= "a" |'], says: /unexpected end of query/, caret: true },
  { args: ['labels', '--query', '{app='], says: /col \d+/, caret: true },
  { args: ['series', '{service="app"'], says: /never closed/, caret: true },
  // No matcher that selects anything: Loki would refuse, obs says so first.
  { args: ['query-range', '{}'], says: /needs at least one label matcher/, caret: true },
  { args: ['query-range', '{app=""}'], says: /cannot match an empty value/, caret: true },
  { args: ['query-range', '{app=~".*"}'], says: /cannot match an empty value/, caret: true },
  { args: ['query-range', '{app!="x"}'], says: /cannot match an empty value/, caret: true },
  { args: ['query-range', '{app=~"a*", env=""} |= "x"'], says: /cannot match an empty value/, caret: true },
  { args: ['tail', '{app!~"x"}'], says: /cannot match an empty value/, caret: true },
  { args: ['query', 'count_over_time({app=""}[5m])'], says: /cannot match an empty value/, caret: true },
  // Not syntax errors, but still refused before sending.
  { args: ['query-range', ''], says: /the query is empty/ },
  { args: ['query-range', '   '], says: /the query is empty/ },
  { args: ['query', Q], says: /log query cannot run as an instant query.*query-range/ },
  { args: ['tail', 'count_over_time({app="x"}[5m])'], says: /tail follows log queries only/ },
  { args: ['series', '{app="x"} |= "a"'], says: /series takes a stream selector only/ },
  { args: ['labels', 'bad-name'], says: /invalid label name "bad-name"/ },
  { args: ['trace', ''], says: /the request id is empty/ },
  { args: ['trace', '   '], says: /the request id is empty/ },
  { args: ['volume', '{app="x"'], says: /never closed/, caret: true },
  { args: ['volume', 'count_over_time({app="x"}[5m])'], says: /volume takes a stream selector/ },
  { args: ['patterns', 'sum(count_over_time({app="x"}[5m]))'], says: /patterns takes a stream selector/ },
  // fields and stats read lines or the index of streams: a metric query is refused with its own selector as the fix.
  {
    args: ['fields', 'sum(count_over_time({app="x"}[5m]))'],
    says: /fields takes a stream selector or a log query .*not the metric query .*; give its selector alone: \{app="x"\}/,
  },
  { args: ['fields', 'rate({app="x"} |= "a" [1m])'], says: /fields takes a stream selector or a log query .*; give its selector alone: \{app="x"\}/ },
  { args: ['stats', 'sum(count_over_time({app="x"}[5m]))'], says: /stats takes a stream selector or a log query .*not the metric query .*; give its selector alone: \{app="x"\}/ },
  { args: ['stats', 'count_over_time({app="x"}[1m]) / count_over_time({app="y"}[1m])'], says: /stats takes a stream selector or a log query .*; give a selector such as/ },
  { args: ['volume', '--by', 'bad-name'], says: /invalid label name "bad-name"/ },
]

const DURATIONS: Case[] = [
  ...['5x', '0s', '-1h', '1h-', 'h', '1.h', '1 h', '1e3s', '∞', '1h30', '10', 'abc', '0', '٣h', '1hh'].map(
    (since): Case => ({ args: ['query-range', Q, '--since', since], says: /invalid --since/ }),
  ),
  { args: ['query-range', Q, '--since', ''], says: /--since/ },
  { args: ['query-range', Q, '--step', 'fast'], says: /invalid --step "fast"/ },
  // Loki refuses more than 11,000 points; a step past the range made Loki count years of it and obs ask again without end.
  {
    args: ['query-range', 'count_over_time({app="x"}[1m])', '--since', '1h', '--step', '1ms'],
    says: /invalid --step "1ms": more than Loki's 11000 points per series over 1h00m; give a --step of at least 328ms/,
  },
  {
    args: ['query-range', 'count_over_time({app="x"}[1m])', '--since', '1h', '--step', '100000d'],
    says: /invalid --step "100000d": longer than the range \(1h00m\).*at most 1h00m/,
  },
  { args: ['trace', 'req-1', '--gap', '100000d'], says: /invalid --gap "100000d": it must be between 1ms and 24h/ },
  { args: ['labels', '--timeout', 'soon'], says: /invalid --timeout "soon"/ },
  { args: ['labels', '--timeout', '0s'], says: /--timeout/ },
  { args: ['labels', '--timeout', '999us'], says: /--timeout/ },
  { args: ['labels'], env: { OBS_TIMEOUT: '30' }, says: /invalid --timeout "30"/ },
  { args: ['ready', '--wait', 'forever'], says: /invalid --wait "forever"/ },
  { args: ['ready', '--wait', '10s', '--interval', '0s'], says: /--interval/ },
  // Timers: past 2^31-1 ms Node's fire at once, and a pause of nanoseconds floods the server.
  { args: ['ready', '--wait', '30d', '--interval', '30d'], says: /invalid --wait "30d": it must be between 100ms and 24h/ },
  { args: ['ready', '--wait', '10s', '--interval', '1ns'], says: /invalid --interval "1ns": it must be between 100ms and 1h/ },
  { args: ['ready', '--wait', '10s', '--interval', '30d'], says: /invalid --interval "30d": it must be between 100ms and 1h/ },
  { args: ['ready', '--wait', '1ns'], says: /invalid --wait "1ns": it must be between 100ms and 24h/ },
  { args: ['tail', Q, '--since', '1y'], says: /invalid --since "1y"/ },
  { args: ['tail', Q, '--poll', '--interval', '1'], says: /invalid --interval "1"/ },
  { args: ['trace', 'req-1', '--since', 'yesterday'], says: /invalid --since "yesterday"/ },
  { args: ['smoke', '--no-alloy', '--since', '1h30m'], says: /--since for smoke must be one number and unit/ },
  { args: ['smoke', '--no-alloy', '--wait', '1m1'], says: /invalid --wait/ },
  { args: ['volume', '--compare', '5x'], says: /invalid --compare "5x"/ },
  // The range that much earlier would begin before the times Loki reads correctly (Loki refused it after obs had sent the range itself).
  {
    args: ['volume', '--compare', '100000d'],
    says: /invalid --compare "100000d": the range that much earlier would begin before 1970-01-01T00:00:10Z.*; give a --compare of at most \d+d for this range/,
  },
  { args: ['volume', '--from', '1970-01-11T00:00:00Z', '--to', '1970-01-12T00:00:00Z', '--compare', '10d'], says: /invalid --compare "10d".*at most 9d for this range/ },
  { args: ['smoke', '--no-alloy', '--deployed-at', 'now-10m', '--window', '30s'], says: /--window 30s is shorter than a minute/ },
  { args: ['smoke', '--no-alloy', '--window', '10m'], says: /--window needs --deployed-at/ },
]

const TIMES: Case[] = [
  ...[
    'yesterday',
    '2026-13-01T00:00:00Z',
    '2026-02-30T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-01-01T25:00:00Z',
    '2026-01-01T00:61:00Z',
    '2026-01-01T00:00:60Z',
    '2026-01-01',
    '2026-01-01T00:00:00',
    '2026-01-01T00:00:00+25:00',
    '2026-01-01T00:00:00.1234567891Z',
    '12345678901',
    '123456789012345',
    '12345678901234567890',
    '1.5e9',
    '1700000000.5.5',
    '-1',
    'now-',
    'now-5x',
    'now+-1h',
    'now - ',
    'then',
  ].map((from): Case => ({ args: ['query-range', Q, '--from', from], says: /invalid --from/ })),
  { args: ['query-range', Q, '--to', 'tomorrow'], says: /invalid --to "tomorrow"/ },
  { args: ['query', 'count_over_time({app="x"}[5m])', '--time', '2026-01-01T00:00'], says: /invalid --time/ },
  { args: ['labels', '--from', 'now-2h', '--to', 'noon'], says: /invalid --to "noon"/ },
  { args: ['query-range', Q, '--from', 'now-1h', '--to', 'now-2h'], says: /--from \(.*\) must be before --to/ },
  { args: ['query-range', Q, '--from', '1700000000', '--to', '1700000000'], says: /must be before --to/ },
  { args: ['series', Q, '--from', '2026-01-02T00:00:00Z', '--to', '2026-01-01T00:00:00Z'], says: /must be before --to/ },
  { args: ['query-range', Q, '--since', '1h', '--from', 'now-2h'], says: /--since and --from cannot be used together/ },
  // Times Loki cannot represent (int64 nanoseconds): refused here, not by Loki after a request.
  { args: ['query-range', Q, '--since', '300000w'], says: /--since/ },
  { args: ['query-range', Q, '--from', 'now-1h', '--to', '9999999999999999999'], says: /--to/ },
  // Loki's query frontend passes times on as bare nanoseconds, which its querier reads as seconds below 10^10.
  { args: ['query-range', Q, '--from', '0', '--to', '1'], says: /invalid --to "1": before 1970-01-01T00:00:10Z, the earliest time Loki reads correctly/ },
  { args: ['query-range', Q, '--from', '0', '--to', 'now'], says: /invalid --from "0": before 1970-01-01T00:00:10Z/ },
  { args: ['labels', '--from', '1970-01-01T00:00:01Z', '--to', 'now'], says: /invalid --from "1970-01-01T00:00:01Z": before 1970-01-01T00:00:10Z/ },
  { args: ['query', 'count_over_time({app="x"}[5m])', '--time', '1'], says: /invalid --time "1": before 1970-01-01T00:00:10Z/ },
  { args: ['series', Q, '--since', '1000000d'], says: /--since 1000000d reaches back before 1970-01-01T00:00:10Z/ },
  { args: ['smoke', '--no-alloy', '--deployed-at', 'yesterday'], says: /invalid --deployed-at "yesterday"/ },
  { args: ['smoke', '--no-alloy', '--deployed-at', 'now+1h'], says: /--deployed-at .* is in the future: there is no window after it to compare yet/ },
  { args: ['smoke', '--no-alloy', '--deployed-at', 'now-20s'], says: /is less than a minute ago/ },
  { args: ['patterns', Q, '--new-since', 'soon'], says: /invalid --new-since "soon"/ },
  { args: ['patterns', Q, '--since', '10m', '--new-since', 'now-2h'], says: /--new-since .* is not inside the range/ },
]

const MODES_AND_NUMBERS: Case[] = [
  { args: ['query-range', Q, '-o', 'yaml'], says: /--output=yaml to be one of: pretty, raw, jsonl, json/ },
  { args: ['query-range', Q, '-o', ''], says: /output/ },
  { args: ['query-range', Q, '--output', 'PRETTY'], says: /one of/ },
  { args: ['tail', Q, '-o', 'table'], says: /one of/ },
  { args: ['query', 'count_over_time({app="x"}[5m])', '-o', 'csv'], says: /one of/ },
  { args: ['query-range', Q, '--limit', '-1'], says: /--limit.*(-1|greater than or equal to 0|at least 0)/ },
  { args: ['query-range', Q, '--limit', 'many'], says: /--limit.*(many|integer)/ },
  { args: ['query-range', Q, '--batch', '0'], says: /--batch.*(greater than or equal to 1|at least 1)/ },
  { args: ['tail', Q, '--limit', '0'], says: /--limit.*(greater than or equal to 1|at least 1|1 to 5000)/ },
  { args: ['tail', Q, '--limit', '5001'], says: /--limit.*5000/ },
  { args: ['tail', Q, '--delay-for', '9'], says: /--delay-for.*(5|0 to 5)/ },
  { args: ['tail', Q, '--delay-for', '-1'], says: /--delay-for.*(greater than or equal to 0|0 to 5)/ },
  { args: ['labels', '--retries', '21'], says: /--retries.*20/ },
  { args: ['labels', '--retries', '-1'], says: /--retries.*(greater than or equal to 0|0 to 20)/ },
  { args: ['labels'], env: { OBS_RETRIES: 'abc' }, says: /invalid retries "abc"/ },
  { args: ['labels'], env: { OBS_RETRIES: '1.5' }, says: /invalid retries/ },
  // Node's timers hold at most 2^31-1 ms (24.8 days): longer is bad input, not an immediate timeout.
  { args: ['labels', '--timeout', '25d'], says: /--timeout/ },
  { args: ['labels', '--timeout', '50d'], says: /--timeout/ },
]

const ADDRESSES: Case[] = [
  { args: ['labels', '--addr', 'localhost:3100'], says: /invalid --addr/ },
  { args: ['labels', '--addr', 'ftp://loki:3100'], says: /only http:\/\/ and https:\/\/ are supported/ },
  { args: ['labels', '--addr', 'http://'], says: /invalid --addr/ },
  { args: ['labels', '--addr', '://loki'], says: /invalid --addr/ },
  { args: ['labels', '--addr', 'http://[::1'], says: /invalid --addr/ },
  { args: ['labels', '--addr', 'http://loki:99999'], says: /invalid --addr/ },
  { args: ['labels', '--addr', 'http://loki:3100/?tenant=a'], says: /a base URL has no query or fragment/ },
  { args: ['labels', '--addr', 'http://loki:3100/#x'], says: /a base URL has no query or fragment/ },
  { args: ['labels', '--addr', 'http://user:pw@loki:3100'], says: /--addr must not carry credentials/ },
  { args: ['labels'], env: { LOKI_ADDR: 'not a url' }, says: /invalid --addr/ },
  { args: ['smoke', '--alloy-addr', 'alloy:12345'], says: /invalid --alloy-addr/ },
  { args: ['smoke'], env: { ALLOY_ADDR: 'ws://alloy:12345' }, says: /--alloy-addr/ },
]

const FILES_AND_AUTH: Case[] = [
  { args: ['labels', '--ca-cert', '/nonexistent/ca.pem'], says: /cannot read the --ca-cert file \/nonexistent\/ca\.pem: no such file/ },
  { args: ['labels'], env: { LOKI_CA_CERT_PATH: '/nonexistent/ca.pem' }, says: /--ca-cert file \/nonexistent\/ca\.pem/ },
  { args: ['labels', '--cert', '/nonexistent/c.pem', '--key', '/nonexistent/k.pem'], says: /cannot read the --cert file/ },
  { args: ['labels', '--cert', 'CERT', '--key', '/nonexistent/k.pem'], says: /cannot read the --key file/ },
  { args: ['labels', '--cert', 'CERT'], says: /needs both --cert and --key/ },
  { args: ['labels', '--key', 'CERT'], says: /needs both --cert and --key/ },
  { args: ['labels', '--ca-cert', 'DIR'], says: /cannot read the --ca-cert file/ },
  { args: ['labels'], env: { LOKI_TLS_SKIP_VERIFY: 'maybe' }, says: /invalid LOKI_TLS_SKIP_VERIFY "maybe"/ },
  { args: ['labels', '--username', 'u', '--password', 'p', '--bearer-token', 't'], says: /basic auth and a bearer token cannot be used together/ },
  { args: ['labels', '--username', 'u', '--bearer-token-file', 'TOKEN'], says: /basic auth and a bearer token cannot be used together/ },
  { args: ['labels'], env: { LOKI_USERNAME: 'u', LOKI_BEARER_TOKEN: 't' }, says: /cannot be used together/ },
  { args: ['labels', '--bearer-token', 't', '--bearer-token-file', 'TOKEN'], says: /--bearer-token and --bearer-token-file cannot be used together/ },
  { args: ['labels'], env: { LOKI_BEARER_TOKEN: 't', LOKI_BEARER_TOKEN_FILE: 'TOKEN' }, says: /cannot be used together/ },
  { args: ['labels', '--password', 'p'], says: /a password was given without a username/ },
  { args: ['labels', '--bearer-token-file', '/nonexistent/token'], says: /cannot read the --bearer-token-file file/ },
  { args: ['labels', '--bearer-token-file', 'EMPTY'], says: /is empty/ },
  { args: ['labels', '--header', 'NoColon'], says: /invalid --header: no ":"/ },
  { args: ['labels', '--header', ': value'], says: /invalid --header/ },
  { args: ['labels', '--header', 'Bad Name: value'], says: /invalid header name "Bad Name"/ },
  { args: ['labels', '--header', 'X-A: one\r\nX-B: two'], says: /control character/ },
  { args: ['labels', '--header', 'X-Scope-OrgID: te\u007fnant\u0007'], says: /invalid --header/ },
]

const CONFIG: Case[] = [
  { args: ['labels', '--profile', 'nope'], says: /unknown profile "nope".*no config file defines profiles/ },
  { args: ['labels'], env: { OBS_PROFILE: 'staging' }, files: { 'obs.config.yaml': PROFILES }, says: /unknown profile "staging".*dev, prod/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'profiles:\n  dev:\n    addr: [unclosed\n' }, says: /malformed config file .*obs\.config\.yaml at line \d+, col \d+/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'profiles:\n\tdev: {}\n' }, says: /malformed config file/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'profiles:\n  dev: {}\n  dev: {}\n' }, says: /malformed config file/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'profile:\n  dev: {}\n' }, says: /unknown key "profile"/ },
  { args: ['labels'], files: { 'obs.config.yaml': '- dev\n- prod\n' }, says: /the top level must be a mapping/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'profiles:\n  dev:\n    retries: many\n' }, says: /retries must be a number/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'profiles:\n  dev:\n    adress: http://x\n' }, says: /unknown key "adress"/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'defaultProfile: prod\nprofiles:\n  dev: {}\n' }, says: /defaultProfile "prod" is not among the profiles/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'policy:\n  maxValuesPerLabel: -1\n' }, says: /maxValuesPerLabel must be a positive integer/ },
  { args: ['labels'], files: { 'obs.config.yml': 'profiles: [dev\n' }, says: /malformed config file .*obs\.config\.yml/ },
  {
    args: ['labels'],
    files: { 'obs.config.json': '{"profiles": {"dev": {"addr": "http://x",}}}' },
    says: /malformed config file .*obs\.config\.json at line 1, col \d+: not valid JSON/,
  },
  { args: ['labels'], files: { 'obs.config.json': '[1, 2]' }, says: /the top level must be a mapping/ },
  { args: ['labels'], files: { 'obs.config.json': '' }, says: /malformed config file/ },
  { args: ['labels'], files: { 'obs.config.json': '{"profiles": {"dev": {"timeout": 30}}}' }, says: /timeout must be a string/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    headers:\n      "Bad Name": x\n' }, says: /invalid header name/ },
  { args: ['labels'], files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    timeout: later\n' }, says: /--timeout "later"/ },
]

const FLAGS: Case[] = [
  { args: ['query-range', Q, '--bogus'], says: /Nonexistent flag: --bogus/ },
  { args: ['tail', Q, '--follow'], says: /Nonexistent flag: --follow/ },
  { args: ['labels', 'a', 'b'], says: /Unexpected argument: b/ },
  { args: ['query-range'], says: /Missing 1 required arg.*logql/i },
  { args: ['query-range', Q, '--since'], says: /--since expects a value/ },
  { args: ['frobnicate'], says: /command frobnicate not found/ },
]

const GROUPS: Record<string, Case[]> = {
  'invalid LogQL and selectors': LOGQL,
  durations: DURATIONS,
  'times and ranges': TIMES,
  'output modes and numbers': MODES_AND_NUMBERS,
  addresses: ADDRESSES,
  'certificates, auth and headers': FILES_AND_AUTH,
  'profiles and config files': CONFIG,
  'unknown flags and commands': FLAGS,
}

let tried = 0
/** obs processes at a time, across the groups running concurrently. */
const slot = semaphore(3)

/** Replaces placeholders with the temporary directory's files. */
function resolve(args: string[]): string[] {
  const files: Record<string, string> = { TOKEN: join(dir, 'token'), EMPTY: join(dir, 'empty-token'), CERT: join(dir, 'cert.pem'), DIR: join(dir, 'a-directory') }
  return args.map((arg) => files[arg] ?? arg)
}

/** Problems with one case's result; empty when it is as the contract says. */
function problems(c: Case, result: ObsOutput, connections: number): string[] {
  const found: string[] = []
  if (result.code !== 2) found.push(`exit ${result.code}, expected 2`)
  if (connections !== 0) found.push(`${connections} connection(s) to Loki`)
  if (result.out !== '') found.push(`stdout: ${JSON.stringify(result.out.slice(0, 200))}`)
  const lines = result.err.replace(/\n$/, '').split('\n')
  if (c.caret) {
    // error: invalid LogQL at line L, col C: reason / the query line / a caret under column C
    const head = /^error: invalid LogQL at line (\d+), col (\d+): .+/.exec(lines[0] ?? '')
    if (lines.length !== 3 || !head) {
      found.push(`not the message, query and caret lines: ${JSON.stringify(result.err)}`)
    } else {
      const column = Number(head[2])
      const queryLine = (c.args.find((a) => a.includes('{') || a.includes('(')) ?? '').split('\n')[Number(head[1]) - 1]
      if (lines[1] !== `  ${queryLine?.replace(/\t/g, ' ')}`) found.push(`second line is not the query line: ${JSON.stringify(lines[1])}`)
      if (lines[2] !== `  ${' '.repeat(column - 1)}^`) found.push(`caret not under col ${column}: ${JSON.stringify(lines[2])}`)
    }
  } else if (lines.length !== 1 || lines[0] === '') {
    found.push(`${lines.length} lines on stderr: ${JSON.stringify(result.err)}`)
  }
  if (!c.says.test(result.err)) found.push(`stderr does not match ${c.says}: ${JSON.stringify(result.err.trim())}`)
  return found
}

describe('bad input: exit 2, one clear line, nothing sent', { concurrency: true }, () => {
  for (const [group, cases] of Object.entries(GROUPS)) {
    test(`${group} (${cases.length} cases)`, async (t) => {
      const failures = await pool(cases, cases.length, (c) =>
        slot(async () => {
          const server = await countingServer()
          let cwd: string | undefined
          try {
            if (c.files) {
              cwd = mkdtempSync(join(dir, 'cwd-'))
              for (const [name, text] of Object.entries(c.files)) writeFileSync(join(cwd, name), text)
            }
            const result = await obs(resolve(c.args), { env: { LOKI_ADDR: server.addr, ALLOY_ADDR: server.addr, OBS_RETRIES: '0', ...c.env }, cwd, timeoutMs: 20_000 })
            tried++
            const found = problems(c, result, server.connections())
            return found.length
              ? `obs ${JSON.stringify(c.args)}${c.env ? ` ${JSON.stringify(c.env)}` : ''}${c.files ? ` with ${Object.keys(c.files).join()}` : ''}: ${found.join('; ')}`
              : undefined
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
})

test('counts', (t) => {
  t.diagnostic(counters('bad-input', { tried }))
})
