/**
 * The obs.config.yaml that `obs init` writes: the stack's three profiles, the
 * label policy and the cost guard, each with a comment saying what it does,
 * so that the file documents itself.
 */
import { UsageError } from '../errors.ts'
import { checkAddress, DEFAULT_IDENTITY, DEFAULT_MAX_QUERY_BYTES, DEFAULT_POLICY } from './settings.ts'
import { SETTINGS } from './table.ts'

export interface StarterAnswers {
  /** Loki for dev and test (the sandbox's, by default). */
  devAddr: string
  prodAddr: string
  app: string
  service: string
}

export const STARTER_DEFAULTS: StarterAnswers = {
  devAddr: String(SETTINGS.addr.default),
  prodAddr: 'https://loki.example.com',
  app: DEFAULT_IDENTITY.app,
  service: DEFAULT_IDENTITY.service,
}

/** The flag of each answer, for the messages that refuse one. */
const ANSWER_FLAGS: Record<keyof StarterAnswers, string> = { devAddr: '--dev-addr', prodAddr: '--prod-addr', app: '--app', service: '--service' }

/**
 * Refuses an answer the profile would not work with, as the flag that gave it:
 * an address obs would refuse later (\`loki:3100\` for http://loki:3100), a
 * label value with a control character, an empty one.
 */
export function checkStarterAnswer(key: keyof StarterAnswers, value: string): void {
  const flag = ANSWER_FLAGS[key]
  if (key === 'devAddr' || key === 'prodAddr') {
    checkAddress(value, flag)
    return
  }
  if (value.trim() === '') throw new UsageError(`${flag} is empty`, `give the ${key} label's value`)
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new UsageError(`invalid ${flag}: it holds a control character`, `give the ${key} label's value as it is`)
}

/** A YAML scalar that reads back as the same string, whatever it holds. */
const scalar = (value: string) => JSON.stringify(value)

export function starterConfig(answers: StarterAnswers): string {
  const list = (values: string[]) => `[${values.map(scalar).join(', ')}]`
  return `# obs.config.yaml, written by obs init. obs reads it from this directory or a
# parent (not above your home or the repository root), or from
# $XDG_CONFIG_HOME/obs/config.yaml. Flags and environment variables win over
# it: flag > environment > profile > default. \`obs config\` shows what is in
# effect and where each value came from.
#
# Keep secrets out of this file when you can: LOKI_PASSWORD, LOKI_BEARER_TOKEN
# or bearerTokenFile. A file holding one must not be readable by others
# (chmod 600), or obs warns.

# The profile used without --profile or OBS_PROFILE.
defaultProfile: dev

profiles:
  # The sandbox or a local stack (npm run sandbox).
  dev:
    addr: ${scalar(answers.devAddr)}
    app: ${scalar(answers.app)}       # the app label smoke, trace and doctor look at
    service: ${scalar(answers.service)}      # the service smoke's Query 2 and 3 read
    env: "dev"

  # CI's stack: the smoke gate runs against it (obs smoke --profile test --junit smoke.xml).
  test:
    addr: ${scalar(answers.devAddr)}
    app: ${scalar(answers.app)}
    service: ${scalar(answers.service)}
    env: "test"
    timeout: "30s"

  prod:
    addr: ${scalar(answers.prodAddr)}
    app: ${scalar(answers.app)}
    service: ${scalar(answers.service)}
    env: "prod"
    # orgId: "cogni"                          # the tenant, sent as X-Scope-OrgID
    # bearerTokenFile: /run/secrets/loki-token
    timeout: "60s"
    retries: 3
    # The cost guard: a --limit 0 query, or one over more than 24h, that Loki's
    # index estimates above this is refused without --yes (10GB is the default;
    # raise it to what a day of this Loki holds).
    maxQueryBytes: "${DEFAULT_MAX_QUERY_BYTES / 1e9}GB"

# The label policy smoke (label-policy) and doctor (loki-labels,
# alloy-config-labels) enforce: only these labels are indexed; high-cardinality
# fields stay in the JSON line and are queried with | json.
policy:
  allowedLabels: ${list(DEFAULT_POLICY.allowedLabels)}
  maxValuesPerLabel: ${DEFAULT_POLICY.maxValuesPerLabel}
  forbiddenLabels: ${list(DEFAULT_POLICY.forbiddenLabels)}
`
}
