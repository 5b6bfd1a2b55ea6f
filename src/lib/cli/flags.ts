import { Flags } from '@oclif/core'
import { OUTPUT_MODES } from '../render/output.ts'

const CONNECTION = 'CONNECTION'

/** Flags of every command that talks to Loki; each falls back to its environment variable, then the profile. */
export const connectionFlags = {
  addr: Flags.string({ description: 'Loki base URL, may carry a path prefix [env: LOKI_ADDR] (default: http://localhost:3100)', helpGroup: CONNECTION }),
  'org-id': Flags.string({ description: 'tenant, sent as X-Scope-OrgID [env: LOKI_ORG_ID]', helpGroup: CONNECTION }),
  username: Flags.string({ description: 'basic auth user [env: LOKI_USERNAME]', helpGroup: CONNECTION }),
  password: Flags.string({ description: 'basic auth password [env: LOKI_PASSWORD]', helpGroup: CONNECTION }),
  'bearer-token': Flags.string({ description: 'bearer token [env: LOKI_BEARER_TOKEN]', helpGroup: CONNECTION }),
  'bearer-token-file': Flags.string({ description: 'file holding a bearer token [env: LOKI_BEARER_TOKEN_FILE]', helpGroup: CONNECTION }),
  'ca-cert': Flags.string({ description: 'CA certificate file [env: LOKI_CA_CERT_PATH]', helpGroup: CONNECTION }),
  cert: Flags.string({ description: 'client certificate file [env: LOKI_CLIENT_CERT_PATH]', helpGroup: CONNECTION }),
  key: Flags.string({ description: 'client key file [env: LOKI_CLIENT_KEY_PATH]', helpGroup: CONNECTION }),
  'tls-skip-verify': Flags.boolean({ description: 'do not check the TLS certificate [env: LOKI_TLS_SKIP_VERIFY]', helpGroup: CONNECTION, allowNo: true }),
  header: Flags.string({ description: "extra header 'Name: value', repeatable", helpGroup: CONNECTION, multiple: true }),
  timeout: Flags.string({ description: 'per HTTP request [env: OBS_TIMEOUT] (default: 30s)', helpGroup: CONNECTION }),
  retries: Flags.integer({ description: 'retries of idempotent requests [env: OBS_RETRIES] (default: 3)', helpGroup: CONNECTION, min: 0, max: 20 }),
  profile: Flags.string({ description: 'named profile from obs.config.yaml [env: OBS_PROFILE]', helpGroup: CONNECTION }),
}

export const alloyAddrFlag = Flags.string({
  description: 'Alloy base URL [env: ALLOY_ADDR] (default: http://localhost:12345)',
  helpGroup: CONNECTION,
})

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
