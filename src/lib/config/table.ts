/**
 * The settings obs reads, once: each one's flag, environment variable,
 * profile key, type, default and whether it is a secret. The connection flags
 * (cli/flags.ts), the profile schema and the precedence (settings.ts) and the
 * tests' list of variables to clear are all derived from this table.
 */

export type SettingType = 'string' | 'boolean' | 'number' | 'headers'

export interface SettingRow {
  flag: string
  env?: string
  /** Its key in a profile of obs.config.yaml; none for what selects the profile. */
  profileKey?: string
  type: SettingType
  default?: string | number
  secret?: boolean
  /** The flag's help, before " [env: …] (default: …)". */
  description: string
  /** A flag of the commands that talk to Alloy only, not of every command. */
  alloyOnly?: boolean
  /** The range a number may take. */
  bounds?: readonly [number, number]
}

export const SETTINGS = {
  addr: { flag: 'addr', env: 'LOKI_ADDR', profileKey: 'addr', type: 'string', default: 'http://localhost:3100', description: 'Loki base URL, may carry a path prefix' },
  orgId: { flag: 'org-id', env: 'LOKI_ORG_ID', profileKey: 'orgId', type: 'string', description: 'tenant, sent as X-Scope-OrgID; a different one in --header is refused' },
  username: { flag: 'username', env: 'LOKI_USERNAME', profileKey: 'username', type: 'string', description: 'basic auth user' },
  password: { flag: 'password', env: 'LOKI_PASSWORD', profileKey: 'password', type: 'string', secret: true, description: 'basic auth password' },
  bearerToken: { flag: 'bearer-token', env: 'LOKI_BEARER_TOKEN', profileKey: 'bearerToken', type: 'string', secret: true, description: 'bearer token' },
  bearerTokenFile: { flag: 'bearer-token-file', env: 'LOKI_BEARER_TOKEN_FILE', profileKey: 'bearerTokenFile', type: 'string', description: 'token file (at most 64 KiB)' },
  caCert: { flag: 'ca-cert', env: 'LOKI_CA_CERT_PATH', profileKey: 'caCert', type: 'string', description: 'CA certificate file, PEM (at most 1 MiB)' },
  cert: { flag: 'cert', env: 'LOKI_CLIENT_CERT_PATH', profileKey: 'cert', type: 'string', description: 'client certificate file, PEM (at most 1 MiB)' },
  key: { flag: 'key', env: 'LOKI_CLIENT_KEY_PATH', profileKey: 'key', type: 'string', description: 'client private key file, PEM (at most 1 MiB)' },
  tlsSkipVerify: { flag: 'tls-skip-verify', env: 'LOKI_TLS_SKIP_VERIFY', profileKey: 'tlsSkipVerify', type: 'boolean', description: 'do not check the TLS certificate' },
  headers: { flag: 'header', profileKey: 'headers', type: 'headers', description: "extra header 'Name: value', repeatable; X-Scope-OrgID is --org-id" },
  proxyUrl: {
    flag: 'proxy-url',
    env: 'LOKI_HTTP_PROXY_URL',
    profileKey: 'proxyUrl',
    type: 'string',
    description: 'HTTP proxy to Loki, e.g. http://user:pass@proxy:3128; wins over HTTPS_PROXY/HTTP_PROXY/NO_PROXY, which apply when it is unset',
  },
  timeout: { flag: 'timeout', env: 'OBS_TIMEOUT', profileKey: 'timeout', type: 'string', default: '30s', description: 'per HTTP request' },
  retries: { flag: 'retries', env: 'OBS_RETRIES', profileKey: 'retries', type: 'number', default: 3, bounds: [0, 20], description: 'retries of idempotent requests' },
  profile: { flag: 'profile', env: 'OBS_PROFILE', type: 'string', description: 'named profile from obs.config.yaml' },
  alloyAddr: { flag: 'alloy-addr', env: 'ALLOY_ADDR', profileKey: 'alloyAddr', type: 'string', default: 'http://localhost:12345', description: 'Alloy base URL', alloyOnly: true },
} as const satisfies Record<string, SettingRow>

export type SettingKey = keyof typeof SETTINGS
type Rows = typeof SETTINGS

/** The value a setting holds once read, by its type. */
export type SettingValue<R> = R extends { type: 'boolean' } ? boolean : R extends { type: 'number' } ? number : R extends { type: 'headers' } ? string[] : string

/** The flags as oclif parses them, keyed by flag name; all optional so that lower layers can fill in. */
export type ConnectionFlags = { [K in SettingKey as Rows[K]['flag']]?: SettingValue<Rows[K]> }

/** The help of a setting's flag: where else it can be set, and its default. */
export function flagDescription(row: SettingRow): string {
  return `${row.description}${row.env ? ` [env: ${row.env}]` : ''}${row.default !== undefined ? ` (default: ${row.default})` : ''}`
}

/** The proxy variables obs follows when no proxy is named for it (proxy.ts), in both cases. */
export const PROXY_ENV_VARS = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY']

/** Every environment variable obs reads for its settings. */
export const SETTING_ENV_VARS: string[] = [...Object.values(SETTINGS as Record<string, SettingRow>).flatMap((row) => (row.env ? [row.env] : [])), ...PROXY_ENV_VARS]
