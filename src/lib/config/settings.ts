import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { UsageError } from '../errors.ts'
import { type HttpSettings, isLoopback, maskUrl, SECRET_HEADER, type TlsFiles } from '../http.ts'
import { checkProxyUrl, envProxies, type ProxyRoute } from '../proxy.ts'
import { Redactor } from '../secrets.ts'
import { shown } from '../text.ts'
import { parseDurationMs, TIMER_BOUNDS } from '../time.ts'
import { parseBytes } from '../units.ts'
import { DEFAULT_DEPLOY_THRESHOLDS, type DeployThresholds, readDeployThresholds } from './deploy-thresholds.ts'
import { type ConnectionFlags, SETTINGS, type SettingKey, type SettingRow, type SettingValue } from './table.ts'

/** What the label policy allows; the checks of smoke and doctor read it. */
export interface LabelPolicy {
  allowedLabels: string[]
  maxValuesPerLabel: number
  forbiddenLabels: string[]
}

/** The app whose logs the runbook commands look at. */
export interface AppIdentity {
  app: string
  service: string
  env?: string
}

export type { ConnectionFlags } from './table.ts'

type Rows = typeof SETTINGS

/** A profile of obs.config.yaml: every setting that has a profile key, and the app's identity and policy. */
type Profile = {
  [K in SettingKey as Rows[K] extends { profileKey: string } ? Rows[K]['profileKey'] : never]?: K extends 'headers' ? Record<string, string> : SettingValue<Rows[K]>
} & {
  app?: string
  env?: string
  service?: string
  policy?: Partial<LabelPolicy>
  /** The most a query may read by Loki's index estimate before obs asks for --yes ("10GB"). */
  maxQueryBytes?: string
  /** The deploy verdict's thresholds (smoke --deployed-at). */
  deploy?: Partial<DeployThresholds>
}

interface ConfigFile {
  path: string
  defaultProfile?: string
  profiles: Record<string, Profile>
  policy?: Partial<LabelPolicy>
}

export interface Settings {
  loki: HttpSettings
  alloy: HttpSettings
  identity: AppIdentity
  policy: LabelPolicy
  /** Bytes, by Loki's index estimate, above which a wide query needs --yes. */
  maxQueryBytes: number
  /** The deploy verdict's thresholds: the profile's, else the defaults. */
  deploy: DeployThresholds
  profile?: string
  configPath?: string
  /** Things the user should know, printed on stderr before the command runs. */
  warnings: string[]
  /** Each setting's effective value (secrets masked) and where it came from, for `obs config`. */
  sources: SettingSource[]
  /** Masks every configured secret; the output layer and the HTTP clients share it. */
  redactor: Redactor
}

export interface SettingSource {
  setting: string
  value: string
  /** "flag --addr", "env LOKI_ADDR", "profile prod", "config file", "default" or "unset". */
  from: string
}

const MASK = '***'

export const DEFAULT_POLICY: LabelPolicy = {
  allowedLabels: ['app', 'env', 'service', 'stream'],
  maxValuesPerLabel: 100,
  forbiddenLabels: ['reqId', 'userId', 'billingAccountId', 'attemptId'],
}

export const DEFAULT_MAX_QUERY_BYTES = 10e9

export const DEFAULT_IDENTITY: AppIdentity = { app: 'cogni-template', service: 'app' }

const CONFIG_NAMES = ['obs.config.yaml', 'obs.config.yml', 'obs.config.json']

/** A config file obs trusts, read through the descriptor it was checked on, so it cannot be swapped in between. */
export interface FoundConfig {
  path: string
  text: string
  /** Permission bits, to warn when secrets in it are readable by others. */
  mode: number
}

export interface ConfigSearch {
  found?: FoundConfig
  /** One line per config file passed over, naming it and why. */
  warnings: string[]
}

/**
 * Finds the config file: the working directory and its parents up to the
 * user's home or the repository root (a directory holding .git), then the XDG
 * config dir. A file someone else could have written is passed over: a
 * planted obs.config.yaml in a shared parent would otherwise choose where the
 * user's credentials go.
 */
export function findConfigFile(cwd: string, env: NodeJS.ProcessEnv): ConfigSearch {
  const warnings: string[] = []
  const home = realPath(env.HOME || homedir())
  const candidates: string[] = []
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    candidates.push(...CONFIG_NAMES.map((name) => join(dir, name)))
    if (dir === home || existsSync(join(dir, '.git')) || dirname(dir) === dir) break
  }
  const xdg = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  candidates.push(...['config.yaml', 'config.yml', 'config.json'].map((name) => join(xdg, 'obs', name)))
  for (const path of candidates) {
    const outcome = readTrusted(path)
    if (typeof outcome === 'string') warnings.push(`ignoring the config file ${path}: ${outcome}`)
    else if (outcome) return { found: outcome, warnings }
  }
  return { warnings }
}

function realPath(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return resolve(path)
  }
}

/** Windows has no owners or mode bits to check. */
const POSIX_PERMISSIONS = process.platform !== 'win32'

/** The file if it exists and is trusted; why not, if it exists and is not. */
function readTrusted(path: string): FoundConfig | string | undefined {
  let fd: number
  try {
    // Non-blocking, so that a FIFO planted under a config file's name cannot hang obs.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    return code === 'EACCES' ? 'it is not readable (permission denied)' : `it cannot be read (${code})`
  }
  try {
    const stats = fstatSync(fd)
    if (!stats.isFile()) return 'it is not a regular file'
    if (POSIX_PERMISSIONS) {
      if (stats.uid !== process.getuid!() && stats.uid !== 0) return `it is owned by another user (uid ${stats.uid}); obs reads only config files owned by you or root`
      const writers = [stats.mode & 0o020 && 'its group', stats.mode & 0o002 && 'others'].filter(Boolean)
      if (writers.length > 0) return `it is writable by ${writers.join(' and ')}; run chmod go-w ${path} to use it`
    }
    return { path, text: readFileSync(fd, 'utf8'), mode: stats.mode }
  } finally {
    closeSync(fd)
  }
}

/** What type each profile key holds, for the config file's check: the settings table's, then the identity and policy. */
const PROFILE_KEYS: Record<string, 'string' | 'boolean' | 'number' | 'object'> = {
  ...Object.fromEntries(
    Object.values(SETTINGS as Record<string, SettingRow>).flatMap((row) => (row.profileKey ? [[row.profileKey, row.type === 'headers' ? 'object' : row.type]] : [])),
  ),
  app: 'string',
  env: 'string',
  service: 'string',
  policy: 'object',
  maxQueryBytes: 'string',
  deploy: 'object',
}

/** A setting by the precedence every setting follows: its flag, its environment variable, the profile; empty is unset. */
function setting<K extends SettingKey>(key: K, flags: ConnectionFlags, env: NodeJS.ProcessEnv, profile: Profile): SettingValue<Rows[K]> | string | undefined {
  const row: SettingRow = SETTINGS[key]
  const fromFlag = (flags as Record<string, unknown>)[row.flag] as SettingValue<Rows[K]> | undefined
  const fromProfile = row.profileKey ? ((profile as Record<string, unknown>)[row.profileKey] as SettingValue<Rows[K]> | undefined) : undefined
  return pick<SettingValue<Rows[K]> | string>(fromFlag, row.env ? env[row.env] : undefined, fromProfile)
}

/** Aliases a config file may expand; a few are handy, a YAML "billion laughs" expands millions. */
const MAX_YAML_ALIASES = 100

export async function readConfigFile({ path, text }: FoundConfig): Promise<ConfigFile> {
  let data: unknown
  if (path.endsWith('.json')) {
    try {
      data = JSON.parse(text)
    } catch (error) {
      // JSON.parse quotes the text around the error, which may hold a secret: keep only the position.
      const position = /line (\d+) column (\d+)/.exec((error as Error).message)
      const where = position ? ` at line ${position[1]}, col ${position[2]}` : ''
      throw new UsageError(`malformed config file ${path}${where}: not valid JSON`, 'fix the JSON or remove the file')
    }
  } else {
    // A CommonJS package: its exports are the default export once bundled (scripts/build.ts), as they are in Node.
    const { parseDocument } = (await import('yaml')).default
    const doc = parseDocument(text)
    if (doc.errors.length > 0) {
      const first = doc.errors[0]
      const where = first.linePos ? ` at line ${first.linePos[0].line}, col ${first.linePos[0].col}` : ''
      throw new UsageError(`malformed config file ${path}${where}: ${first.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`, 'fix the YAML or remove the file')
    }
    try {
      data = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES })
    } catch {
      // The one failure left after parsing is the alias bound.
      throw new UsageError(`malformed config file ${path}: its YAML aliases expand to more than ${MAX_YAML_ALIASES} nodes`, 'write the values out instead of through aliases')
    }
  }
  return validateConfig(path, data ?? {})
}

function validateConfig(path: string, data: unknown): ConfigFile {
  const bad = (what: string): never => {
    throw new UsageError(`malformed config file ${path}: ${what}`, 'see "Configuration" in the README')
  }
  if (!isRecord(data)) return bad('the top level must be a mapping')
  for (const key of Object.keys(data)) {
    if (!['defaultProfile', 'profiles', 'policy'].includes(key)) bad(`unknown key "${key}" (expected defaultProfile, profiles, policy)`)
  }
  if (data.defaultProfile !== undefined && typeof data.defaultProfile !== 'string') bad('defaultProfile must be a string')
  const profiles = data.profiles ?? {}
  if (!isRecord(profiles)) return bad('profiles must be a mapping of name to settings')
  for (const [name, profile] of Object.entries(profiles)) {
    if (!isRecord(profile)) return bad(`profile "${name}" must be a mapping`)
    for (const [key, value] of Object.entries(profile)) {
      const type = Object.hasOwn(PROFILE_KEYS, key) ? PROFILE_KEYS[key] : undefined
      if (!type) bad(`profile "${name}" has unknown key "${key}"`)
      if (type === 'object' ? !isRecord(value) : typeof value !== type) bad(`profile "${name}": ${key} must be a ${type}`)
    }
    if (isRecord(profile.policy)) validatePolicy(profile.policy, bad, `profile "${name}": `)
    if (isRecord(profile.deploy)) profile.deploy = readDeployThresholds(profile.deploy, bad, `profile "${name}": `)
    if (typeof profile.maxQueryBytes === 'string' && parseBytes(profile.maxQueryBytes) === undefined) {
      bad(`profile "${name}": maxQueryBytes must be a size such as "10GB" or "500MB"`)
    }
  }
  if (data.policy !== undefined) {
    if (!isRecord(data.policy)) return bad('policy must be a mapping')
    validatePolicy(data.policy, bad, '')
  }
  if (typeof data.defaultProfile === 'string' && !Object.hasOwn(profiles, data.defaultProfile)) {
    bad(`defaultProfile "${data.defaultProfile}" is not among the profiles`)
  }
  return {
    path,
    defaultProfile: data.defaultProfile as string | undefined,
    profiles: profiles as Record<string, Profile>,
    policy: data.policy as Partial<LabelPolicy> | undefined,
  }
}

function validatePolicy(policy: Record<string, unknown>, bad: (what: string) => never, where: string): void {
  for (const [key, value] of Object.entries(policy)) {
    if (key === 'maxValuesPerLabel') {
      if (!Number.isInteger(value) || (value as number) < 1) bad(`${where}policy.maxValuesPerLabel must be a positive integer`)
    } else if (key === 'allowedLabels' || key === 'forbiddenLabels') {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) bad(`${where}policy.${key} must be a list of label names`)
    } else {
      bad(`${where}policy has unknown key "${key}"`)
    }
  }
}

function holdsSecret(config: ConfigFile): boolean {
  return Object.values(config.profiles).some(
    (profile) =>
      Object.values(SETTINGS as Record<string, SettingRow>).some((row) => row.secret && row.profileKey && (profile as Record<string, unknown>)[row.profileKey] !== undefined) ||
      Object.keys(profile.headers ?? {}).some((name) => SECRET_HEADER.test(name)) ||
      /\/\/[^/]*@/.test(profile.proxyUrl ?? ''),
  )
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export interface ResolveOptions {
  flags: ConnectionFlags
  env: NodeJS.ProcessEnv
  cwd: string
  version: string
  /** Identity flags of the runbook commands (--app, --service, --env). */
  identity?: Partial<AppIdentity>
  /** The command that runs, for the hints that name it (`obs doctor --no-alloy`); only smoke and doctor talk to Alloy. */
  command?: string
  debug?: (line: string) => void
  /** Told of each retry (a terminal shows them). */
  onRetry?: (line: string) => void
}

/** Resolves every setting with the contract's precedence: flag > environment > profile > default. */
export async function resolveSettings(options: ResolveOptions): Promise<Settings> {
  const { flags, env } = options
  const { found, warnings } = findConfigFile(options.cwd, env)
  const config = found ? await readConfigFile(found) : undefined
  const configPath = config?.path
  if (POSIX_PERMISSIONS && found && config && found.mode & 0o044 && holdsSecret(config)) {
    warnings.push(`the config file ${found.path} holds a password or token and is readable by others; run chmod 600 ${found.path}`)
  }
  const profileName = pick(flags.profile, env[SETTINGS.profile.env], config?.defaultProfile)
  let profile: Profile = {}
  if (profileName !== undefined) {
    const known = config ? Object.keys(config.profiles) : []
    if (!config || !Object.hasOwn(config.profiles, profileName)) {
      throw new UsageError(
        `unknown profile "${profileName}"`,
        known.length > 0 ? `profiles in ${configPath}: ${known.join(', ')}` : 'no config file defines profiles; see "Configuration" in the README',
      )
    }
    profile = config.profiles[profileName]
  }

  const read = <K extends SettingKey>(key: K) => setting(key, flags, env, profile)
  const addr = checkAddress(String(read('addr') ?? SETTINGS.addr.default), '--addr')
  const alloyAddr = checkAddress(String(read('alloyAddr') ?? SETTINGS.alloyAddr.default), '--alloy-addr')
  const timeout = String(read('timeout') ?? SETTINGS.timeout.default)
  const timeoutMs = parseDurationMs(timeout, '--timeout', TIMER_BOUNDS.timeout)
  const retries = parseRetries(read('retries') ?? SETTINGS.retries.default)

  const headers: Record<string, string> = { 'user-agent': `obs/${options.version}` }
  for (const [name, value] of Object.entries(profile.headers ?? {})) headers[checkHeaderName(name)] = String(value)
  for (const header of flags.header ?? []) {
    const [name, value] = parseHeader(header)
    headers[name] = value
  }
  const orgId = read('orgId') as string | undefined
  if (orgId) headers['x-scope-orgid'] = orgId

  const authorization = resolveAuth(flags, env, profile)
  if (authorization) {
    headers.authorization = authorization
    const url = new URL(addr)
    if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
      warnings.push(`credentials are sent over plain http:// to ${url.host}; use https:// to keep them private`)
    }
  }

  const skipVerify = pickBool(flags['tls-skip-verify'], env[SETTINGS.tlsSkipVerify.env], profile.tlsSkipVerify)
  if (skipVerify) warnings.push("--tls-skip-verify is set: Loki's TLS certificate is not checked")
  const tls = resolveTls(read('caCert') as string | undefined, read('cert') as string | undefined, read('key') as string | undefined, skipVerify)

  const flag = (key: SettingKey) => `--${SETTINGS[key].flag}`
  // A proxy named for obs takes Loki's requests whatever the environment says; Alloy (not Loki's) follows the environment.
  const proxyUrl = read('proxyUrl') as string | undefined
  const proxyFrom = flags['proxy-url'] ? flag('proxyUrl') : env[SETTINGS.proxyUrl.env] ? SETTINGS.proxyUrl.env : `profile ${profileName}`
  const named = proxyUrl === undefined ? undefined : { url: checkProxyUrl(proxyUrl, proxyFrom), from: proxyFrom }
  const fromEnv = envProxies(env)
  const envRoute: ProxyRoute | undefined = fromEnv && { env: fromEnv }
  const redactor = Redactor.of(headers, [named?.url, fromEnv?.http?.url, fromEnv?.https?.url])
  const hints = {
    credentials: `check ${flag('username')}/${flag('password')}, ${flag('bearerToken')} or ${flag('orgId')}`,
    timeout: flag('timeout'),
    caCert: flag('caCert'),
    skipVerify: flag('tlsSkipVerify'),
  }
  const skipAlloy = options.command ? ` (obs ${options.command} --no-alloy skips Alloy)` : ''
  return {
    loki: {
      baseUrl: addr,
      headers,
      timeoutMs,
      retries,
      tls,
      peer: 'Loki',
      hints: { ...hints, address: flag('addr'), unreachable: `check ${flag('addr')} and that Loki is running` },
      debug: options.debug,
      onRetry: options.onRetry,
      proxy: named ? { named } : envRoute,
      redactor,
    },
    alloy: {
      baseUrl: alloyAddr,
      headers: { 'user-agent': headers['user-agent'] },
      timeoutMs,
      retries,
      peer: 'Alloy',
      hints: { ...hints, address: flag('alloyAddr'), unreachable: `check ${flag('alloyAddr')} and that Alloy is running${skipAlloy}` },
      debug: options.debug,
      onRetry: options.onRetry,
      proxy: envRoute,
      redactor,
    },
    identity: {
      app: pick(options.identity?.app, profile.app) ?? DEFAULT_IDENTITY.app,
      service: pick(options.identity?.service, profile.service) ?? DEFAULT_IDENTITY.service,
      env: pick(options.identity?.env, profile.env),
    },
    policy: { ...DEFAULT_POLICY, ...config?.policy, ...profile.policy },
    maxQueryBytes: (profile.maxQueryBytes === undefined ? undefined : parseBytes(profile.maxQueryBytes)) ?? DEFAULT_MAX_QUERY_BYTES,
    deploy: { ...DEFAULT_DEPLOY_THRESHOLDS, ...profile.deploy },
    profile: profileName,
    configPath,
    warnings,
    sources: settingSources(flags, env, profile, profileName, config, options),
    redactor,
  }
}

/** Where each setting's value came from, by the same precedence resolveSettings applies. */
function settingSources(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  profile: Profile,
  profileName: string | undefined,
  config: ConfigFile | undefined,
  options: ResolveOptions,
): SettingSource[] {
  const fromProfile = `profile ${profileName}`
  const sources: SettingSource[] = []
  for (const [key, row] of Object.entries(SETTINGS as Record<string, SettingRow>)) {
    const candidates: [unknown, string][] = [
      [(flags as Record<string, unknown>)[row.flag], `flag --${row.flag}`],
      [row.env ? env[row.env] : undefined, `env ${row.env}`],
      [row.profileKey ? (profile as Record<string, unknown>)[row.profileKey] : undefined, fromProfile],
      [key === 'profile' ? config?.defaultProfile : undefined, 'config file (defaultProfile)'],
      [row.default, 'default'],
    ]
    const found = candidates.find(([value]) => value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0))
    let value = found === undefined ? '' : row.type === 'headers' ? headerText(found[0]) : String(found[0])
    if (row.secret && found && found[1] !== 'default') value = MASK
    if (key === 'proxyUrl') value = maskUrl(value)
    sources.push({ setting: row.flag, value, from: found?.[1] ?? 'unset' })
  }
  const identity = (name: 'app' | 'service' | 'env', flag: string | undefined) => {
    const candidates: [string | undefined, string][] = [
      [flag, `flag --${name}`],
      [profile[name], fromProfile],
      [name === 'env' ? undefined : DEFAULT_IDENTITY[name], 'default'],
    ]
    const found = candidates.find(([value]) => value !== undefined && value !== '')
    sources.push({ setting: name, value: found?.[0] ?? '', from: found?.[1] ?? 'unset' })
  }
  identity('app', options.identity?.app)
  identity('service', options.identity?.service)
  identity('env', options.identity?.env)
  sources.push({
    setting: 'maxQueryBytes',
    value: profile.maxQueryBytes ?? `${DEFAULT_MAX_QUERY_BYTES / 1e9}GB`,
    from: profile.maxQueryBytes === undefined ? 'default' : fromProfile,
  })
  for (const [key, fallback] of Object.entries(DEFAULT_DEPLOY_THRESHOLDS) as [keyof DeployThresholds, number][]) {
    const value = profile.deploy?.[key]
    sources.push({ setting: `deploy.${key}`, value: String(value ?? fallback), from: value === undefined ? 'default' : fromProfile })
  }
  for (const key of Object.keys(DEFAULT_POLICY) as (keyof LabelPolicy)[]) {
    const value = profile.policy?.[key] ?? config?.policy?.[key] ?? DEFAULT_POLICY[key]
    const from = profile.policy?.[key] !== undefined ? fromProfile : config?.policy?.[key] !== undefined ? 'config file (policy)' : 'default'
    sources.push({ setting: `policy.${key}`, value: Array.isArray(value) ? value.join(', ') : String(value), from })
  }
  return sources
}

/** Header names with their values, secret ones masked. */
function headerText(value: unknown): string {
  const entries: [string, string][] = Array.isArray(value)
    ? value.map((header) => parseHeader(String(header)))
    : Object.entries(value as Record<string, unknown>).map(([name, v]) => [name, String(v)])
  return entries.map(([name, v]) => `${name}: ${SECRET_HEADER.test(name) ? MASK : v}`).join('; ')
}

/** The first value that is set: the precedence order is the argument order. */
function pick<T>(...values: (T | undefined)[]): T | undefined {
  return values.find((value) => value !== undefined && value !== '')
}

function pickBool(flag: boolean | undefined, env: string | undefined, profile: boolean | undefined): boolean {
  if (flag !== undefined) return flag
  if (env !== undefined && env !== '') {
    if (/^(1|true|yes|on)$/i.test(env)) return true
    if (/^(0|false|no|off)$/i.test(env)) return false
    throw new UsageError(`invalid LOKI_TLS_SKIP_VERIFY "${env}"`, 'use true or false')
  }
  return profile ?? false
}

function checkAddress(value: string, flag: string): string {
  // Never echo credentials that were put into the URL by mistake.
  const display = shown(maskUrl(value))
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`invalid ${flag} "${display}": not a URL`, 'use a base URL like http://localhost:3100')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`invalid ${flag} "${display}": only http:// and https:// are supported`, 'use a base URL like http://localhost:3100')
  }
  if (url.username || url.password) {
    throw new UsageError(`${flag} must not carry credentials`, 'use --username/--password or --bearer-token instead')
  }
  if (url.search || url.hash) {
    throw new UsageError(`invalid ${flag} "${display}": a base URL has no query or fragment`, 'use a base URL like http://localhost:3100')
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

function parseRetries(value: number | string): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN
  const [min, max] = SETTINGS.retries.bounds
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`invalid retries "${value}"`, `use a whole number from ${min} to ${max}`)
  return n
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function checkHeaderName(name: string): string {
  if (!HEADER_NAME.test(name)) throw new UsageError(`invalid header name "${name}"`, "use --header 'Name: value'")
  return name.toLowerCase()
}

function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':')
  // The value may be a secret: messages name the header at most, never its value.
  if (colon <= 0) throw new UsageError('invalid --header: no ":" between name and value', "use --header 'Name: value'")
  const value = text.slice(colon + 1).trim()
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) throw new UsageError('invalid --header: the value holds a control character', "use --header 'Name: value'")
  return [checkHeaderName(text.slice(0, colon).trim()), value]
}

function resolveAuth(flags: ConnectionFlags, env: NodeJS.ProcessEnv, profile: Profile): string | undefined {
  const read = (key: 'username' | 'password' | 'bearerToken' | 'bearerTokenFile') => setting(key, flags, env, profile) as string | undefined
  const username = read('username')
  const password = read('password')
  const token = read('bearerToken')
  const tokenFile = read('bearerTokenFile')
  const basic = username !== undefined || password !== undefined
  const bearer = token !== undefined || tokenFile !== undefined
  if (basic && bearer) {
    throw new UsageError('basic auth and a bearer token cannot be used together', 'keep either --username/--password or --bearer-token(-file)')
  }
  if (token !== undefined && tokenFile !== undefined) {
    throw new UsageError('--bearer-token and --bearer-token-file cannot be used together', 'keep one of them')
  }
  if (password !== undefined && username === undefined) {
    throw new UsageError('a password was given without a username', 'add --username or LOKI_USERNAME')
  }
  if (basic) return `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`
  if (tokenFile !== undefined) {
    const fileToken = readSetupFile(tokenFile, '--bearer-token-file').toString('utf8').trim()
    if (!fileToken) throw new UsageError(`the bearer token file ${tokenFile} is empty`, 'put the token in the file')
    return `Bearer ${fileToken}`
  }
  return token === undefined ? undefined : `Bearer ${token}`
}

function resolveTls(ca: string | undefined, cert: string | undefined, key: string | undefined, skipVerify: boolean): TlsFiles | undefined {
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError('a client certificate needs both --cert and --key', 'give both, or neither')
  }
  if (ca === undefined && cert === undefined && !skipVerify) return undefined
  return {
    ca: ca === undefined ? undefined : readSetupFile(ca, '--ca-cert'),
    cert: cert === undefined ? undefined : readSetupFile(cert, '--cert'),
    key: key === undefined ? undefined : readSetupFile(key, '--key'),
    rejectUnauthorized: !skipVerify,
  }
}

function readSetupFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable')
    throw new UsageError(`cannot read the ${flag} file ${path}: ${reason}`, `check the path given to ${flag}`)
  }
}
