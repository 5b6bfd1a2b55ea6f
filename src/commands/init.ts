import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { resolve } from 'node:path'
import { Command } from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import { readConfigFile } from '../lib/config/settings.ts'
import { checkStarterAnswer, STARTER_DEFAULTS, type StarterAnswers, starterConfig } from '../lib/config/starter.ts'
import { ExitCode, ObsError, UsageError } from '../lib/errors.ts'
import { chalkFor } from '../lib/render/terminal.ts'
import { neutralize } from '../lib/text.ts'

export default class Init extends Command {
  static override summary = 'Write a commented obs.config.yaml to start from'
  static override description =
    'Profiles dev, test and prod for the stack, the label policy and the cost guard, each commented. On a terminal it asks for the addresses and the app (Enter keeps the default shown); otherwise it takes the flags. It never overwrites a file without --force. `obs config` then shows what is in effect.'
  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --dev-addr http://localhost:3100 --prod-addr https://loki.internal --app billing',
    '<%= config.bin %> init --file ~/.config/obs/config.yaml --force',
  ]

  static override flags = {
    file: Flags.string({ description: 'where to write it', default: 'obs.config.yaml' }),
    'dev-addr': Flags.string({ description: `Loki for the dev and test profiles (default: ${STARTER_DEFAULTS.devAddr})` }),
    'prod-addr': Flags.string({ description: `Loki for the prod profile (default: ${STARTER_DEFAULTS.prodAddr})` }),
    app: Flags.string({ description: `the app label (default: ${STARTER_DEFAULTS.app})` }),
    service: Flags.string({ description: `the service smoke reads (default: ${STARTER_DEFAULTS.service})` }),
    force: Flags.boolean({ description: 'replace an existing file' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Init)
    const given: Partial<StarterAnswers> = { devAddr: flags['dev-addr'], prodAddr: flags['prod-addr'], app: flags.app, service: flags.service }
    // What the flags give is checked before anything is asked or written: a profile obs would refuse is no start.
    for (const key of Object.keys(given) as (keyof StarterAnswers)[]) if (given[key] !== undefined) checkStarterAnswer(key, given[key])
    const answers = process.stdin.isTTY && process.stdout.isTTY ? await ask(given) : { ...STARTER_DEFAULTS, ...definedOnly(given) }
    const text = starterConfig(answers)
    const path = resolve(flags.file)
    // What obs writes, obs must read back: checked before the file exists.
    await readConfigFile({ path, text, mode: 0o600 })
    let fd: number
    try {
      // O_EXCL: an existing file is never touched without --force, even one that appears meanwhile.
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | (flags.force ? constants.O_TRUNC : constants.O_EXCL), 0o600)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      const reason = code === 'EEXIST' ? 'it exists' : code === 'ENOENT' ? 'its directory does not exist' : code === 'EACCES' ? 'permission denied' : code
      process.stderr.write(`error: not writing ${neutralize(path)}: ${reason}; ${code === 'EEXIST' ? 'add --force to replace it' : 'choose another --file'}\n`)
      return this.exit(ExitCode.usage)
    }
    try {
      writeSync(fd, text)
    } finally {
      closeSync(fd)
    }
    process.stdout.write(`wrote ${neutralize(path)} (profiles dev, test, prod; dev is the default). Next: obs config, then obs smoke.\n`)
  }

  /** init takes no connection flags, so it is no ObsCommand; its bad input is one line and exit 2 all the same. */
  override async catch(error: Error & { code?: unknown }): Promise<void> {
    if (error instanceof ObsError) {
      process.stderr.write(`${chalkFor(process.stderr).red('error:')} ${error.render()}\n`)
      return this.exit(error.exitCode)
    }
    return super.catch(error)
  }
}

function definedOnly(values: Partial<StarterAnswers>): Partial<StarterAnswers> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined))
}

/** Asks for what the flags did not give; Enter keeps the default shown. */
async function ask(given: Partial<StarterAnswers>): Promise<StarterAnswers> {
  const { createInterface } = await import('node:readline/promises')
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try {
    const answers = { ...STARTER_DEFAULTS, ...definedOnly(given) }
    const questions: [keyof StarterAnswers, string][] = [
      ['devAddr', 'Loki for dev and test'],
      ['prodAddr', 'Loki for prod'],
      ['app', 'app label'],
      ['service', 'service to smoke-test'],
    ]
    for (const [key, question] of questions) {
      if (given[key] !== undefined) continue
      for (;;) {
        const answer = (await rl.question(`${question} [${answers[key]}]: `)).trim()
        if (answer === '') break
        try {
          checkStarterAnswer(key, answer)
        } catch (error) {
          // Asked again, with what was wrong: a typo costs one more line, not a file to fix.
          if (!(error instanceof UsageError)) throw error
          process.stdout.write(`${error.render()}\n`)
          continue
        }
        answers[key] = answer
        break
      }
    }
    return answers
  } finally {
    rl.close()
  }
}
