/**
 * The checks' results for their readers: the checklist for people, JUnit XML
 * for CI systems. The runner (runner.ts) decides; this only shows.
 */
import { writeFileSync } from 'node:fs'
import type { ChalkInstance } from 'chalk'
import { ExitCode, type ObsError } from '../errors.ts'
import { writeFailure } from '../render/terminal.ts'
import type { Redactor } from '../secrets.ts'
import { neutralize } from '../text.ts'
import type { CheckResult, CheckStatus } from './runner.ts'

/**
 * Writes the checks as JUnit XML. A failure is returned, not thrown, so the
 * checklist is printed before it: the results are worth more than the file.
 * Exit 2: the `--junit` path is input the command could not honour.
 */
export function writeJUnit(path: string, suite: string, results: CheckResult[], redactor?: Redactor): ObsError | undefined {
  try {
    // Masked like stdout: the details quote what servers answered.
    const xml = renderJUnit(suite, results)
    writeFileSync(path, redactor ? redactor.redact(xml) : xml)
    return undefined
  } catch (error) {
    return writeFailure(`the JUnit report to ${path}`, error, ExitCode.usage)
  }
}

const SYMBOLS: Record<CheckStatus, string> = { pass: '✔', fail: '✖', warn: '!', skip: '-' }

/** The checklist for people: status, id, title, duration, and for each problem what is wrong and what to do. */
export function renderChecklist(results: CheckResult[], chalk: ChalkInstance): string {
  const paint: Record<CheckStatus, (text: string) => string> = {
    pass: chalk.green,
    fail: chalk.red.bold,
    warn: chalk.yellow,
    skip: chalk.dim,
  }
  const idWidth = Math.max(...results.map((r) => r.id.length))
  const lines: string[] = []
  for (const result of results) {
    const duration = chalk.dim(`${result.durationMs}ms`.padStart(7))
    lines.push(`${paint[result.status](SYMBOLS[result.status])} ${result.id.padEnd(idWidth)}  ${duration}  ${neutralize(result.title)}`)
    const indent = ' '.repeat(idWidth + 14)
    if (result.status !== 'pass' || result.detail) lines.push(`${indent}${chalk.dim(neutralize(result.detail))}`)
    if (result.hint && result.status !== 'pass') lines.push(`${indent}${chalk.cyan('→')} ${neutralize(result.hint)}`)
  }
  const counts = (['pass', 'fail', 'warn', 'skip'] as const).map((s) => `${results.filter((r) => r.status === s).length} ${s}`)
  lines.push('', counts.join(', '))
  return `${lines.join('\n')}\n`
}

/** The checks as JUnit XML, one testcase per check, for CI systems. */
export function renderJUnit(suite: string, results: CheckResult[]): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(3)
  const total = results.reduce((sum, r) => sum + r.durationMs, 0)
  const failures = results.filter((r) => r.status === 'fail').length
  const skipped = results.filter((r) => r.status === 'skip').length
  const cases = results.map((r) => {
    const open = `    <testcase classname="${xml(suite)}" name="${xml(`${r.id}: ${r.title}`)}" time="${seconds(r.durationMs)}"`
    const message = r.hint ? `${r.detail} (${r.hint})` : r.detail
    // Thresholds as testcase properties (JUnit 5's and most CI readers' form): a red build shows the limit it broke.
    const properties = r.thresholds
      ? `\n      <properties>\n${Object.entries(r.thresholds)
          .map(([name, value]) => `        <property name="${xml(name)}" value="${value}"/>`)
          .join('\n')}\n      </properties>`
      : ''
    if (r.status === 'fail') return `${open}>${properties}\n      <failure message="${xml(message)}">${xml(message)}</failure>\n    </testcase>`
    if (r.status === 'skip') return `${open}>${properties}\n      <skipped message="${xml(r.detail)}"/>\n    </testcase>`
    if (r.status === 'warn') return `${open}>${properties}\n      <system-out>${xml(`warning: ${message}`)}</system-out>\n    </testcase>`
    if (properties) return `${open}>${properties}\n      <system-out>${xml(r.detail)}</system-out>\n    </testcase>`
    return `${open}/>`
  })
  const attributes = `name="${xml(suite)}" tests="${results.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds(total)}"`
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ${attributes}>\n  <testsuite ${attributes}>\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`
}

function xml(text: string): string {
  return text
    .replace(/[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
}
