/**
 * Every message obs can print is listed once, in runbooks/TROUBLESHOOTING.md,
 * and says what happened and what to do, in the user's words: no internal
 * function, no stack frame, no JavaScript value spelled out.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { collectMessages, type Message, messagesSection, SECTION_END, SECTION_START } from '../support/messages.ts'

const TROUBLESHOOTING = join(import.meta.dirname, '../../runbooks/TROUBLESHOOTING.md')
const messages = collectMessages()
const shown = (message: Message) => `${message.places[0]}: ${message.text}${message.hint ? `; ${message.hint}` : ''}`

test('the source is read: every kind of error and the warnings are found', () => {
  assert.ok(messages.length > 80, `${messages.length} messages`)
  for (const code of [2, 3])
    assert.ok(
      messages.some((m) => m.exitCode === code),
      `an error with exit ${code}`,
    )
  assert.ok(messages.some((m) => m.kind === 'warning'))
  assert.ok(messages.some((m) => m.text === 'the query is empty' && m.hint?.startsWith('give a LogQL query')))
  assert.ok(
    messages.some((m) => m.places[0] === 'bin/run.js'),
    "the launcher's own lines",
  )
})

test('runbooks/TROUBLESHOOTING.md lists every message once, as the source has them (npm run messages writes it)', () => {
  const document = readFileSync(TROUBLESHOOTING, 'utf8')
  const start = document.indexOf(SECTION_START)
  const end = document.indexOf(SECTION_END)
  assert.ok(start !== -1 && end > start, 'the section markers are there')
  assert.equal(document.slice(start, end + SECTION_END.length), messagesSection(messages), 'the list is out of date: run npm run messages')
  const keys = messages.map((m) => JSON.stringify([m.kind, m.exitCode, m.text, m.hint]))
  assert.equal(new Set(keys).size, keys.length)
})

test('every error says what to do', () => {
  // A LogQL syntax error points a caret at the place to fix; the signal line reports how obs ended.
  const exempt = (m: Message) => m.text.startsWith('invalid LogQL at line') || m.text.startsWith('obs was killed by')
  const without = messages.filter((m) => m.kind === 'error' && !m.hint && !exempt(m)).map(shown)
  assert.deepEqual(without, [])
})

test('no message names an internal function, a stack frame or a JavaScript value', () => {
  const internal = [
    /\b[a-z]+[A-Z]\w*\(/, // a camelCase call: fetchLogPages(
    /\bat \S+ \(\S+:\d+|\.[tj]s:\d+/, // a stack frame or a source position
    /\b(undefined|NaN)\b|\[object \w+\]/,
    /\b(TypeError|ReferenceError|SyntaxError|RangeError)\b/,
    /\bthis\./,
  ]
  const offending = messages.filter((m) => internal.some((pattern) => pattern.test(`${m.text} ${m.hint ?? ''}`))).map(shown)
  assert.deepEqual(offending, [])
})
