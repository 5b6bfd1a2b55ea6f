import * as Args from '@oclif/core/args'
import { Command } from '@oclif/core/command'
import { completionScript } from '../lib/cli/completion.ts'

export default class Completion extends Command {
  static override summary = 'Print the shell completion script for bash or zsh'
  static override description =
    'Completes commands, flags, output modes and profiles, and inside a stream selector the label names and values, live from the Loki the line names (its --addr, --profile, --org-id and other connection flags, else LOKI_ADDR or the profile) with a timeout under a second, so a slow Loki never holds up the shell. A label value is inserted as one quoted word whatever it holds: nothing Loki returns can run in the shell.'
  static override examples = ['source <(<%= config.bin %> completion bash)    # in ~/.bashrc', 'source <(<%= config.bin %> completion zsh)     # in ~/.zshrc']
  static override args = {
    shell: Args.string({ description: 'bash or zsh', options: ['bash', 'zsh'], default: 'bash' }),
  }

  async run(): Promise<void> {
    const { args } = await this.parse(Completion)
    process.stdout.write(completionScript(args.shell as 'bash' | 'zsh', this.config.bin))
  }
}
