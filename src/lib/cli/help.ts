import { CommandHelp, Help } from '@oclif/core/help'

type ListInput = Parameters<CommandHelp['renderList']>[0]
type ListOptions = Parameters<CommandHelp['renderList']>[1]

/**
 * A command's help with its flag columns aligned. oclif 4 trims the whole
 * list it renders, which takes the indentation off the first row when that
 * flag has no short form and others have one (`--since` above `-C,
 * --context`). The first row gets back the lead its label was given; the
 * multi-line layout, where every label is trimmed alike, is left as it is.
 */
class AlignedCommandHelp extends CommandHelp {
  override renderList(input: ListInput, options: ListOptions): string {
    const list = super.renderList(input, options)
    const firstLabel = input.find(([label]) => label)?.[0] ?? ''
    const lead = /^ */.exec(firstLabel)?.[0] ?? ''
    return lead === '' || list.includes('\n\n') ? list : lead + list
  }
}

/** oclif's help (pjson oclif.helpClass), with the command help above. */
export default class ObsHelp extends Help {
  protected override CommandHelpClass = AlignedCommandHelp
}
