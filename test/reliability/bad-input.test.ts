/**
 * Bad input is refused before anything is sent: exit 2, one clear line on
 * stderr (a LogQL syntax error: the query, a caret under the column and the
 * reason), nothing on stdout, and not one connection to the address obs was
 * given (each case gets a counting server of its own).
 */
import assert from 'node:assert/strict'
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { SETTINGS, type SettingRow } from '../../src/lib/config/table.ts'
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
  writeFileSync(join(dir, 'token-crlf'), 'first-half\r\nsecond-half\n')
  writeFileSync(join(dir, 'empty'), '')
  writeFileSync(join(dir, 'real-cert.pem'), pem('CERTIFICATE'))
  writeFileSync(join(dir, 'real-key.pem'), pem('PRIVATE KEY'))
  writeFileSync(join(dir, 'rsa-key.pem'), pem('RSA PRIVATE KEY'))
  writeFileSync(join(dir, 'encrypted-key.pem'), pem('ENCRYPTED PRIVATE KEY'))
  writeFileSync(join(dir, 'csr.pem'), pem('CERTIFICATE REQUEST'))
  // DER: an ASN.1 SEQUENCE (0x30 0x82, two length bytes) of binary.
  writeFileSync(join(dir, 'cert.der'), Buffer.from([0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xc3, 0x1f]))
  // Over the 1 MiB cap, sparse: it costs no disk, and obs must not read it whole.
  const big = openSync(join(dir, 'big.pem'), 'w')
  ftruncateSync(big, 64 * 1024 * 1024)
  closeSync(big)
})
after(() => rmSync(dir, { recursive: true, force: true }))

/** A PEM block of that label: the shape obs checks, nothing anyone could use. */
function pem(label: string): string {
  return `-----BEGIN ${label}-----\nTUlJQm9iczEyMzQ1Njc4OTA=\n-----END ${label}-----\n`
}

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
  { args: ['labels'], env: { OBS_TIMEOUT: '30' }, says: /invalid --timeout \(from env OBS_TIMEOUT\) "30"/ },
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
  { args: ['labels'], env: { OBS_RETRIES: 'abc' }, says: /invalid --retries \(from env OBS_RETRIES\) "abc"/ },
  { args: ['labels'], env: { OBS_RETRIES: '1.5' }, says: /invalid --retries \(from env OBS_RETRIES\)/ },
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

/** Files a setting names: each read up to its cap and no further, and a TLS file checked to be PEM of its kind. */
const BOUNDED_FILES: Case[] = [
  // Was still reading after 90 s at 7.5 GB.
  { args: ['labels', '--bearer-token-file', '/dev/zero'], says: /^error: the --bearer-token-file file \/dev\/zero is larger than 64 KiB, the most obs reads of a token file/ },
  { args: ['labels'], env: { LOKI_BEARER_TOKEN_FILE: '/dev/zero' }, says: /the --bearer-token-file file \/dev\/zero \(from env LOKI_BEARER_TOKEN_FILE\) is larger than 64 KiB/ },
  {
    args: ['labels'],
    files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    bearerTokenFile: /dev/zero\n' },
    says: /\/dev\/zero \(from profile "dev" in .*obs\.config\.yaml\) is larger than 64 KiB/,
  },
  // A 1.5 GB CA file was read whole, then ignored.
  { args: ['labels', '--ca-cert', 'BIG'], says: /the --ca-cert file .*big\.pem is larger than 1 MiB, the most obs reads of a CA certificate file/ },
  { args: ['labels', '--ca-cert', '/dev/zero'], says: /the --ca-cert file \/dev\/zero is larger than 1 MiB/ },
  { args: ['labels', '--cert', '/dev/urandom', '--key', 'KEY'], says: /the --cert file \/dev\/urandom is larger than 1 MiB/ },
  { args: ['labels', '--cert', 'CERT_PEM', '--key', '/dev/zero'], says: /the --key file \/dev\/zero is larger than 1 MiB/ },
  // DER, a key, an empty file given as --ca-cert were ignored, and the hint said "use --ca-cert".
  {
    args: ['labels', '--ca-cert', 'DER'],
    says: /the --ca-cert file .*cert\.der is not a PEM certificate: it holds binary data \(DER\); convert it to PEM: openssl x509 -inform der -in /,
  },
  { args: ['labels', '--ca-cert', 'KEY'], says: /the --ca-cert file .*real-key\.pem is not a PEM certificate: it holds a private key; give the CA's certificate in PEM/ },
  { args: ['labels', '--ca-cert', 'EMPTY_FILE'], says: /the --ca-cert file .*empty is not a PEM certificate: it is empty/ },
  { args: ['labels', '--ca-cert', 'CERT'], says: /the --ca-cert file .*cert\.pem is not a PEM certificate: it holds no PEM block/ },
  { args: ['labels', '--ca-cert', 'CSR'], says: /is not a PEM certificate: it holds a CERTIFICATE REQUEST/ },
  {
    args: ['labels'],
    env: { LOKI_CA_CERT_PATH: 'KEY' },
    says: /the --ca-cert file .*real-key\.pem \(from env LOKI_CA_CERT_PATH\) is not a PEM certificate: it holds a private key/,
  },
  { args: ['labels', '--cert', 'KEY', '--key', 'KEY'], says: /the --cert file .*real-key\.pem is not a PEM certificate: it holds a private key/ },
  { args: ['labels', '--cert', 'CERT_PEM', '--key', 'CERT_PEM'], says: /the --key file .*real-cert\.pem is not a PEM private key: it holds a certificate/ },
  { args: ['labels', '--cert', 'CERT_PEM', '--key', 'ENCRYPTED'], says: /holds an encrypted private key, and obs takes no passphrase; decrypt it: openssl pkey/ },
  {
    args: ['labels', '--cert', 'CERT_PEM', '--key', 'DER'],
    says: /the --key file .*cert\.der is not a PEM private key: it holds binary data \(DER\); convert it to PEM: openssl pkey -inform der/,
  },
  { args: ['labels', '--cert', 'CERT_PEM', '--key', 'EMPTY_FILE'], says: /the --key file .*empty is not a PEM private key: it is empty/ },
]

/** Every string setting of the table, from its flag, its environment variable and a profile. */
const LINE_BREAKS: Case[] = Object.values(SETTINGS as Record<string, SettingRow>)
  .filter((row) => row.type === 'string')
  .flatMap((row): Case[] => {
    // --alloy-addr is a flag of the commands that read Alloy.
    const command = row.alloyOnly ? ['smoke'] : ['labels']
    const cases: Case[] = [
      { args: [...command, `--${row.flag}`, 'a\r\nb'], says: new RegExp(`^error: invalid --${row.flag}: it holds a line break \\(CR or LF\\)`) },
      { args: [...command, `--${row.flag}`, 'a\nb'], says: new RegExp(`^error: invalid --${row.flag}: it holds a line break`) },
    ]
    if (row.env) {
      cases.push({ args: command, env: { [row.env]: 'a\r\nb' }, says: new RegExp(`^error: invalid --${row.flag} \\(from env ${row.env}\\): it holds a line break`) })
    }
    if (row.profileKey) {
      cases.push({
        args: command,
        files: { 'obs.config.yaml': `defaultProfile: dev\nprofiles:\n  dev:\n    ${row.profileKey}: "a\\r\\nb"\n` },
        says: new RegExp(`^error: malformed config file .*obs\\.config\\.yaml: profile "dev": ${row.profileKey} holds a line break`),
      })
    }
    return cases
  })
  .concat([
    // Was exit 3, "cannot reach Loki", blaming the address.
    { args: ['labels'], env: { LOKI_ORG_ID: 'tenant\r\nX-Injected: 1' }, says: /^error: invalid --org-id \(from env LOKI_ORG_ID\): it holds a line break/ },
    { args: ['labels'], env: { LOKI_BEARER_TOKEN: 'token\nX-Injected: 1' }, says: /^error: invalid --bearer-token \(from env LOKI_BEARER_TOKEN\): it holds a line break/ },
    { args: ['labels', '--org-id', 'te\u0007nant'], says: /^error: invalid --org-id: it holds a control character/ },
    { args: ['labels', '--bearer-token-file', 'TOKEN_CRLF'], says: /^error: the --bearer-token-file file .*token-crlf holds more than one line: the token holds a line break/ },
    {
      args: ['labels'],
      files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    headers:\n      X-A: "one\\r\\nX-B: two"\n' },
      says: /profile "dev": headers: the value of X-A holds a line break/,
    },
  ])

/** One tenant: --org-id and an X-Scope-OrgID header are one setting, and two different values at one level are refused. */
const TENANTS: Case[] = [
  // Silently sent "a".
  { args: ['labels', '--org-id', 'a', '--header', 'X-Scope-OrgID: b'], says: /^error: two tenants given: --org-id "a" and --header "X-Scope-OrgID: b"; keep one/ },
  { args: ['labels', '--header', 'x-scope-orgid: a', '--header', 'X-Scope-OrgID: b'], says: /two tenants given: --header "X-Scope-OrgID: a" and --header "X-Scope-OrgID: b"/ },
  {
    args: ['labels'],
    files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    orgId: a\n    headers:\n      X-Scope-OrgID: b\n' },
    says: /profile "dev": orgId "a" and the X-Scope-OrgID header "b" name two tenants; keep one/,
  },
]

/** A bad value in a profile names the file and the profile, for every command that reads the file. */
const PROFILE_VALUES: Case[] = [
  ...['labels', 'config', 'ready'].map(
    (command): Case => ({
      args: [command],
      files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    addr: loki:3100\n' },
      says: /^error: malformed config file .*obs\.config\.yaml: profile "dev": addr "loki:3100": only http:\/\/ and https:\/\/ are supported; use http:\/\/loki:3100$/m,
    }),
  ),
  ...['labels', 'config'].map(
    (command): Case => ({
      args: [command],
      files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    timeout: 5x\n' },
      says: /^error: malformed config file .*obs\.config\.yaml: profile "dev": timeout "5x" is not a duration \(e\.g\. 30s, 2m\)/,
    }),
  ),
  // A profile not in use is still the file's, and wrong.
  {
    args: ['config'],
    files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev: {}\n  prod:\n    timeout: 30d\n' },
    says: /profile "prod": timeout "30d" must be between 1ms and 24h/,
  },
  { args: ['config'], files: { 'obs.config.yaml': 'profiles:\n  dev:\n    retries: 50\n' }, says: /profile "dev": retries 50 is not a whole number from 0 to 20/ },
  { args: ['config'], files: { 'obs.config.yaml': 'profiles:\n  dev:\n    alloyAddr: "http://u:pw@alloy:12345"\n' }, says: /profile "dev": alloyAddr must not carry credentials/ },
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
  { args: ['labels'], files: { 'obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    timeout: later\n' }, says: /profile "dev": timeout "later" is not a duration/ },
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
  'files read up to a cap, TLS files of the right kind': BOUNDED_FILES,
  'line breaks in settings, from every source': LINE_BREAKS,
  'one tenant': TENANTS,
  'bad profile values name the file and profile': PROFILE_VALUES,
  'profiles and config files': CONFIG,
  'unknown flags and commands': FLAGS,
}

let tried = 0
/** obs processes at a time, across the groups running concurrently. */
const slot = semaphore(3)

/** Replaces placeholders with the temporary directory's files. */
function resolve(args: string[]): string[] {
  const files: Record<string, string> = {
    TOKEN: join(dir, 'token'),
    EMPTY: join(dir, 'empty-token'),
    CERT: join(dir, 'cert.pem'),
    DIR: join(dir, 'a-directory'),
    TOKEN_CRLF: join(dir, 'token-crlf'),
    EMPTY_FILE: join(dir, 'empty'),
    CERT_PEM: join(dir, 'real-cert.pem'),
    KEY: join(dir, 'real-key.pem'),
    ENCRYPTED: join(dir, 'encrypted-key.pem'),
    CSR: join(dir, 'csr.pem'),
    DER: join(dir, 'cert.der'),
    BIG: join(dir, 'big.pem'),
  }
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
            const env = Object.fromEntries(Object.entries(c.env ?? {}).map(([name, value]) => [name, resolve([value])[0]]))
            const result = await obs(resolve(c.args), { env: { LOKI_ADDR: server.addr, ALLOY_ADDR: server.addr, OBS_RETRIES: '0', ...env }, cwd, timeoutMs: 20_000 })
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
