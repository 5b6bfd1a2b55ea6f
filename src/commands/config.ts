import { ObsCommand } from '../lib/cli/command.ts'
import { jsonFlag } from '../lib/cli/flags.ts'
import { renderTable } from '../lib/render/output.ts'
import { neutralize } from '../lib/text.ts'

export default class ConfigCommand extends ObsCommand {
  static override summary = 'Show the effective settings, and where each one came from'
  static override description =
    'Every setting obs would use for a command run here, with the same flags and environment: its value and its source (flag, env, profile, config file or default), by the precedence flag > environment > profile > default. Passwords, tokens and secret headers are shown as ***. Nothing is sent to Loki or Alloy.'
  static override examples = [
    '<%= config.bin %> config',
    '<%= config.bin %> config --profile prod',
    '<%= config.bin %> config --json | jq \'.settings[] | select(.from != "default")\'',
  ]

  static override flags = {
    json: jsonFlag,
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(ConfigCommand)
    const settings = await this.resolveSettings(flags)
    if (flags.json) {
      await this.writeJson({ configFile: settings.configPath ?? null, profile: settings.profile ?? null, settings: settings.sources })
      return
    }
    const rows = settings.sources.map(({ setting, value, from }) => [setting, neutralize(value), neutralize(from)])
    process.stdout.write(
      `${await renderTable(['setting', 'value', 'from'], rows, this.stdoutChalk)}\n` +
        `config file: ${settings.configPath ? neutralize(settings.configPath) : 'none found'}${settings.profile ? `; profile: ${neutralize(settings.profile)}` : ''}\n`,
    )
  }
}
