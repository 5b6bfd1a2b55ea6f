/**
 * The deploy verdict's thresholds (`obs smoke --deployed-at`), as a profile
 * holds them under `deploy:`. Defaults are set to catch what a rollback is
 * for (errors up by half and at least one a minute, a new error message, a
 * service gone quiet or four times as loud) and to let ordinary noise pass.
 */
import { parseBytes } from '../units.ts'

export interface DeployThresholds {
  /** error-rate fails when errors per minute after the deploy exceed this multiple of those before… */
  errorRateRatio: number
  /** …and are at least this many per minute: 0.1 → 0.3 a minute is not worth a rollback. */
  errorRateFloor: number
  /** new-patterns fails on an error message template absent before the deploy that occurs at least this often after. */
  newPatternMinCount: number
  /** volume-shift fails when a service's bytes after ÷ before fall below this… */
  volumeMinRatio: number
  /** …or rise above this… */
  volumeMaxRatio: number
  /** …for services with at least this many bytes in one of the windows. */
  volumeFloorBytes: number
}

export const DEFAULT_DEPLOY_THRESHOLDS: DeployThresholds = {
  errorRateRatio: 1.5,
  errorRateFloor: 1,
  newPatternMinCount: 1,
  volumeMinRatio: 0.25,
  volumeMaxRatio: 4,
  volumeFloorBytes: 10_000,
}

/** Checks a profile's `deploy:` mapping; sizes may be written as "10kB". Returns the thresholds it sets. */
export function readDeployThresholds(value: Record<string, unknown>, bad: (what: string) => never, where: string): Partial<DeployThresholds> {
  const read: Partial<DeployThresholds> = {}
  for (const [key, raw] of Object.entries(value)) {
    if (!Object.hasOwn(DEFAULT_DEPLOY_THRESHOLDS, key)) bad(`${where}deploy has unknown key "${key}" (expected ${Object.keys(DEFAULT_DEPLOY_THRESHOLDS).join(', ')})`)
    const number = key === 'volumeFloorBytes' && (typeof raw === 'string' || typeof raw === 'number') ? parseBytes(raw) : raw
    if (typeof number !== 'number' || !Number.isFinite(number) || number < 0)
      bad(`${where}deploy.${key} must be a number of 0 or more${key === 'volumeFloorBytes' ? ' or a size such as "10kB"' : ''}`)
    read[key as keyof DeployThresholds] = number as number
  }
  if ((read.errorRateRatio ?? DEFAULT_DEPLOY_THRESHOLDS.errorRateRatio) < 1) bad(`${where}deploy.errorRateRatio must be 1 or more`)
  const [low, high] = [read.volumeMinRatio ?? DEFAULT_DEPLOY_THRESHOLDS.volumeMinRatio, read.volumeMaxRatio ?? DEFAULT_DEPLOY_THRESHOLDS.volumeMaxRatio]
  if (low > 1 || high < 1) bad(`${where}deploy.volumeMinRatio must be at most 1 and volumeMaxRatio at least 1 (got ${low} and ${high})`)
  return read
}
