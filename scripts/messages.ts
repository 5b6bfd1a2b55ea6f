/**
 * Writes the list of every message obs prints into runbooks/TROUBLESHOOTING.md
 * (test/support/messages.ts collects them from the source). Run it after adding
 * or changing an error or a warning; `npm test` fails until it has been run.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { collectMessages, messagesSection, withSection } from '../test/support/messages.ts'

const file = join(import.meta.dirname, '../runbooks/TROUBLESHOOTING.md')
const messages = collectMessages()
writeFileSync(file, withSection(readFileSync(file, 'utf8'), messagesSection(messages)))
process.stdout.write(`${messages.length} messages listed in runbooks/TROUBLESHOOTING.md\n`)
