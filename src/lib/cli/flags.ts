import * as Flags from '@oclif/core/flags'
import type * as Interfaces from '@oclif/core/interfaces'
import { flagDescription, SETTINGS, type SettingKey, type SettingRow } from '../config/table.ts'
import { OUTPUT_MODES } from '../render/output.ts'

const CONNECTION = 'CONNECTION'

type Rows = typeof SETTINGS
type FlagFor<R> = R extends { type: 'boolean' }
  ? Interfaces.BooleanFlag<boolean>
  : R extends { type: 'number' }
    ? Interfaces.OptionFlag<number | undefined>
    : R extends { type: 'headers' }
      ? Interfaces.OptionFlag<string[] | undefined>
      : Interfaces.OptionFlag<string | undefined>

/** A setting's flag, as the settings table describes it. */
function flagFor(row: SettingRow) {
  const base = { description: flagDescription(row), helpGroup: CONNECTION }
  switch (row.type) {
    case 'boolean':
      return Flags.boolean({ ...base, allowNo: true })
    case 'number':
      return Flags.integer({ ...base, min: row.bounds?.[0], max: row.bounds?.[1] })
    case 'headers':
      return Flags.string({ ...base, multiple: true })
    default:
      return Flags.string(base)
  }
}

/** Flags of every command that talks to Loki; each falls back to its environment variable, then the profile. */
export const connectionFlags = Object.fromEntries(
  Object.values(SETTINGS as Record<string, SettingRow>)
    .filter((row) => !row.alloyOnly)
    .map((row) => [row.flag, flagFor(row)]),
) as { [K in SettingKey as Rows[K] extends { alloyOnly: true } ? never : Rows[K]['flag']]: FlagFor<Rows[K]> }

export const alloyAddrFlag = flagFor(SETTINGS.alloyAddr) as FlagFor<Rows['alloyAddr']>

/** --since, or --from with --to. */
export function timeFlags(defaultSince = '1h') {
  return {
    since: Flags.string({ description: `how far back from --to or now: 30s, 5m, 1h30m, 2d (default: ${defaultSince})` }),
    from: Flags.string({ description: 'start, inclusive: RFC 3339, Unix s/ms/ns, or now-1h' }),
    to: Flags.string({ description: 'end, exclusive: RFC 3339, Unix s/ms/ns, or now (default: now)' }),
  }
}

export const outputFlag = Flags.string({
  char: 'o',
  description: 'output mode (default: pretty on a terminal, raw otherwise)',
  options: [...OUTPUT_MODES],
})

export const jsonFlag = Flags.boolean({ description: 'print one JSON document on stdout' })
