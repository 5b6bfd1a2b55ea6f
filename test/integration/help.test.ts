/** Help as people ask for it: `obs help CMD`, `obs CMD -h`, `obs CMD --help`, each with examples. */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runObs } from '../support/cli.ts'
import { REPO } from '../support/loki.ts'

const COMMANDS = readdirSync(join(REPO, 'src/commands'))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => name.slice(0, -3))
  // __complete is the completion script's helper, hidden from help.
  .filter((name) => !name.startsWith('__'))

test('every command answers help, -h and --help alike, with a usage line and examples', async () => {
  // `obs help --help` is obs's own help, as `obs help` is.
  for (const command of COMMANDS.filter((name) => name !== 'help')) {
    const [viaHelp, short, long] = await Promise.all([runObs(['help', command]), runObs([command, '-h']), runObs([command, '--help'])])
    for (const result of [viaHelp, short, long]) assert.equal(result.code, 0, `${command}: ${result.stderr}`)
    assert.equal(short.stdout, long.stdout, `${command}: -h and --help`)
    assert.equal(viaHelp.stdout, long.stdout, `${command}: help ${command} and --help`)
    assert.match(long.stdout, /^USAGE\n {2}\$ obs /m, command)
    assert.match(long.stdout, /^EXAMPLES\n/m, `${command} has examples`)
    assertFlagsAligned(command, long.stdout)
  }
})

/** In each flag section, every flag's name starts in the same column (`  -C, --context`, `      --since`). */
function assertFlagsAligned(command: string, help: string): void {
  for (const [, header, body] of help.matchAll(/^([A-Z ]*FLAGS)\n((?:(?: {2}.*)?\n)+)/gm)) {
    const columns = new Set(body.split('\n').flatMap((row) => /^ {2}(?:-\w, | {4})?(?=--)/.exec(row)?.[0].length ?? []))
    assert.ok(columns.size <= 1, `${command} ${header}: flag names start in columns ${[...columns].join(', ')}\n${body}`)
  }
}

test('obs help lists every command; help for a command that does not exist is one line, exit 2', async () => {
  const all = await runObs(['help'])
  assert.equal(all.code, 0)
  for (const command of COMMANDS) assert.match(all.stdout, new RegExp(`^ {2}${command} `, 'm'), command)
  const missing = await runObs(['help', 'nosuch\u001b[2J'])
  assert.equal(missing.code, 2)
  assert.equal(missing.stdout, '')
  assert.equal(missing.stderr.trim().split('\n').length, 1)
  assert.match(missing.stderr, /obs has no command "nosuch.*"; obs help lists them/)
  assert.doesNotMatch(missing.stderr, /\u001b/)
})
