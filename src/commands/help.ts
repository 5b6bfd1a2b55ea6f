import * as Args from '@oclif/core/args'
import { Command } from '@oclif/core/command'
import { loadHelpClass } from '@oclif/core/help'
import { ExitCode } from '../lib/errors.ts'
import { neutralize } from '../lib/text.ts'

/** `obs help [COMMAND]`: oclif's own help, without the plugin that usually brings it (and its start-up cost). */
export default class Help extends Command {
  static override summary = 'Show help for obs, or for one of its commands'
  static override usage = '<%= command.id %> [COMMAND]'
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help trace', '<%= config.bin %> help query-range']
  static override strict = false

  static override args = {
    command: Args.string({ description: 'the command to explain', required: false }),
  }

  async run(): Promise<void> {
    const { argv } = await this.parse(Help)
    const [id] = argv as string[]
    if (id !== undefined && !this.config.findCommand(id)) {
      process.stderr.write(`error: obs has no command ${JSON.stringify(neutralize(id))}; obs help lists them\n`)
      this.exit(ExitCode.usage)
    }
    const HelpClass = await loadHelpClass(this.config)
    await new HelpClass(this.config, this.config.pjson.oclif.helpOptions ?? {}).showHelp(argv as string[])
  }
}
