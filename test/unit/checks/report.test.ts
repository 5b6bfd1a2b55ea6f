/** The checks' results as people and CI systems read them. */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Chalk } from 'chalk'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { renderChecklist, renderJUnit, writeJUnit } from '../../../src/lib/checks/report.ts'
import type { CheckResult } from '../../../src/lib/checks/runner.ts'
import { ExitCode } from '../../../src/lib/errors.ts'

const RESULTS: CheckResult[] = [
  { id: 'loki-ready', title: 'Loki responds to /ready', status: 'pass', detail: 'ready at http://127.0.0.1:3100', durationMs: 12 },
  { id: 'logs-ingested', title: 'logs arrive', status: 'fail', detail: 'no lines <in> "1h" & none\u001b[31m', hint: 'check Alloy', durationMs: 1500 },
  { id: 'alloy-targets', title: 'Alloy targets', status: 'skip', detail: 'skipped (--no-alloy)', durationMs: 0 },
  { id: 'alloy-ready', title: 'Alloy version', status: 'warn', detail: 'v1.1.1 runs', hint: 'deploy v1.9.2', durationMs: 3 },
]

describe('the checklist', () => {
  test('one line per check, the detail and the fix under problems, counts at the end; no colour without a terminal', () => {
    const text = renderChecklist(RESULTS, new Chalk({ level: 0 }))
    assert.equal(
      text,
      [
        '✔ loki-ready        12ms  Loki responds to /ready',
        '                           ready at http://127.0.0.1:3100',
        '✖ logs-ingested   1500ms  logs arrive',
        '                           no lines <in> "1h" & none\\x1b[31m',
        '                           → check Alloy',
        '- alloy-targets      0ms  Alloy targets',
        '                           skipped (--no-alloy)',
        '! alloy-ready        3ms  Alloy version',
        '                           v1.1.1 runs',
        '                           → deploy v1.9.2',
        '',
        '1 pass, 1 fail, 1 warn, 1 skip',
        '',
      ].join('\n'),
    )
  })
})

describe('JUnit', () => {
  test('one testcase per check: failures with their fix, skips, warnings as output; well-formed, escaped, control characters replaced', () => {
    const xml = renderJUnit('obs smoke', RESULTS)
    assert.equal(XMLValidator.validate(xml), true)
    const parsed = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'testcase' }).parse(xml) as {
      testsuites: { testsuite: { '@_tests': string; '@_failures': string; '@_skipped': string; '@_time': string; testcase: Record<string, unknown>[] } }
    }
    const suite = parsed.testsuites.testsuite
    assert.deepEqual([suite['@_tests'], suite['@_failures'], suite['@_skipped'], suite['@_time']], ['4', '1', '1', '1.515'])
    assert.equal((suite.testcase[1]!.failure as Record<string, string>)['@_message'], 'no lines <in> "1h" & none\ufffd[31m (check Alloy)')
    assert.ok(suite.testcase[2]?.skipped !== undefined)
    assert.equal(suite.testcase[3]?.['system-out'], 'warning: v1.1.1 runs (deploy v1.9.2)')
  })

  test('a path that cannot be written is returned as exit 2, not thrown, so the checklist still prints', () => {
    const dir = mkdtempSync(join(tmpdir(), 'obs-junit-'))
    assert.equal(writeJUnit(join(dir, 'smoke.xml'), 'obs smoke', RESULTS), undefined)
    assert.match(readFileSync(join(dir, 'smoke.xml'), 'utf8'), /^<\?xml/)
    const failure = writeJUnit(join(dir, 'no-such-dir', 'smoke.xml'), 'obs smoke', RESULTS)
    assert.equal(failure?.exitCode, ExitCode.usage)
    assert.match(failure?.message ?? '', /the JUnit report to .*no-such-dir/)
  })
})

test("JUnit carries a check's thresholds as testcase properties, passing or failing", () => {
  const results: CheckResult[] = [
    { id: 'error-rate', title: 'errors', status: 'fail', detail: 'app: 1 → 3 a minute', hint: 'look', durationMs: 5, thresholds: { errorRateRatio: 1.5, errorRateFloor: 1 } },
    { id: 'volume-shift', title: 'bytes', status: 'pass', detail: 'app: 10 kB → 11 kB', durationMs: 5, thresholds: { volumeMinRatio: 0.25 } },
  ]
  const xml = renderJUnit('obs smoke', results)
  assert.equal(XMLValidator.validate(xml), true)
  const cases = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'testcase' || name === 'property' }).parse(xml).testsuites.testsuite.testcase as {
    properties: { property: { '@_name': string; '@_value': string }[] }
    failure?: unknown
    'system-out'?: string
  }[]
  assert.deepEqual(
    cases.map((c) => c.properties.property.map((p) => `${p['@_name']}=${p['@_value']}`)),
    [['errorRateRatio=1.5', 'errorRateFloor=1'], ['volumeMinRatio=0.25']],
  )
  assert.ok(cases[0].failure !== undefined)
  assert.equal(cases[1]['system-out'], 'app: 10 kB → 11 kB')
})
