import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { UsageError } from '../errors.ts'
import { type HttpSettings, isLoopback, maskUrl, SECRET_HEADER, type TlsFiles } from '../http.ts'
import { checkProxyUrl, envProxies, type ProxyRoute } from '../proxy.ts'
import { Redactor } from '../secrets.ts'
import { shellQuote, shown } from '../text.ts'
import { type DurationBounds, parseDuration, parseDurationMs, sleep, TIMER_BOUNDS } from '../time.ts'
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

/** Where a setting's value came from, for the messages that must name it. */
export type Origin = { kind: 'flag' } | { kind: 'env'; name: string } | { kind: 'profile'; profile: string; path: string } | { kind: 'default' }

/** A setting's value and where it came from. */
interface Given<T> {
  value: T
  origin: Origin
}

/** After a setting's flag in a message: where its value came from, when not from the flag itself. */
function whence(origin: Origin): string {
  switch (origin.kind) {
    case 'env':
      return ` (from env ${origin.name})`
    case 'profile':
      return ` (from profile "${shown(origin.profile)}" in ${origin.path})`
    default:
      return ''
  }
}

/** The setting as a message names it: its flag, and where its value came from (`--org-id (from env LOKI_ORG_ID)`). */
function named(key: SettingKey, origin: Origin): string {
  return `--${SETTINGS[key].flag}${whence(origin)}`
}

/**
 * Control characters a setting may not hold, tab aside. A line break in a
 * header value splits the request (LOKI_ORG_ID with a CR/LF ended as "cannot
 * reach Loki", blaming the address), and the URL parser silently drops one
 * from an address: refused wherever it comes from.
 */
const SETTING_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/

function controlProblem(value: string): string | undefined {
  if (/[\r\n]/.test(value)) return 'it holds a line break (CR or LF)'
  if (SETTING_CONTROL.test(value)) return 'it holds a control character'
  return undefined
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== ''
}

/**
 * A setting by the precedence every setting follows: its flag, its
 * environment variable, the profile; empty is unset. A string from a flag or
 * the environment is checked here for control characters; the profile's
 * were checked when the config file was read (validateConfig).
 */
function setting<K extends SettingKey>(
  key: K,
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  profile: Profile,
  profileOrigin: Origin,
): Given<SettingValue<Rows[K]> | string> | undefined {
  const row: SettingRow = SETTINGS[key]
  const candidates: [unknown, Origin][] = [
    [(flags as Record<string, unknown>)[row.flag], { kind: 'flag' }],
    [row.env ? env[row.env] : undefined, { kind: 'env', name: row.env ?? '' }],
    [row.profileKey ? (profile as Record<string, unknown>)[row.profileKey] : undefined, profileOrigin],
  ]
  const found = candidates.find(([value]) => isSet(value))
  if (!found) return undefined
  const [value, origin] = found as [SettingValue<Rows[K]> | string, Origin]
  const problem = typeof value === 'string' ? controlProblem(value) : undefined
  if (problem) throw new UsageError(`invalid ${named(key, origin)}: ${problem}`, 'remove it: a setting is one line')
  return { value, origin }
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
  const bad = (what: string, hint = 'see "Configuration" in the README'): never => {
    throw new UsageError(`malformed config file ${path}: ${what}`, hint)
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
    checkProfileValues(profile as Profile, (what, hint) => bad(`profile "${shown(name)}": ${what}`, hint))
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

/**
 * The values of a profile whose types are right, each as the command that
 * uses it would check it, so that a bad one is refused naming the file and
 * the profile (and every profile is checked, not only the one in use: the
 * file is wrong either way).
 */
function checkProfileValues(profile: Profile, bad: (what: string, hint?: string) => never): void {
  for (const row of Object.values(SETTINGS as Record<string, SettingRow>)) {
    const value = row.profileKey ? (profile as Record<string, unknown>)[row.profileKey] : undefined
    const problem = typeof value === 'string' ? controlProblem(value) : undefined
    if (problem) bad(`${row.profileKey} ${problem.replace(/^it /, '')}`, 'remove it: a setting is one line')
  }
  for (const key of ['addr', 'alloyAddr'] as const) {
    const value = profile[key]
    const problem = value === undefined ? undefined : addressProblem(value)
    if (problem) bad(problem.reason === 'must not carry credentials' ? `${key} must not carry credentials` : `${key} "${shown(maskUrl(value!))}": ${problem.reason}`, problem.fix)
  }
  if (profile.timeout !== undefined) {
    const problem = durationProblem(profile.timeout, TIMER_BOUNDS.timeout)
    if (problem) bad(`timeout "${shown(profile.timeout)}" ${problem}`)
  }
  const [min, max] = SETTINGS.retries.bounds
  if (profile.retries !== undefined && (!Number.isInteger(profile.retries) || profile.retries < min || profile.retries > max)) {
    bad(`retries ${profile.retries} is not a whole number from ${min} to ${max}`)
  }
  let headerTenant: string | undefined
  for (const [name, value] of Object.entries(profile.headers ?? {})) {
    if (!HEADER_NAME.test(name)) bad(`headers: invalid header name "${shown(name)}"`)
    if (typeof value !== 'string' && typeof value !== 'number') bad(`headers: ${shown(name)} must be a string`)
    // A header's value may be a secret: the message names the header only.
    const problem = controlProblem(String(value))
    if (problem) bad(`headers: the value of ${shown(name)} ${problem.replace(/^it /, '')}`, 'remove it: a header is one line')
    if (name.toLowerCase() === TENANT_HEADER) headerTenant = String(value).trim()
  }
  if (headerTenant !== undefined && isSet(profile.orgId) && headerTenant !== profile.orgId) {
    bad(`orgId "${shown(profile.orgId!)}" and the ${TENANT_HEADER_SHOWN} header "${shown(headerTenant)}" name two tenants`, TENANT_HINT)
  }
}

/** What is wrong with a duration setting's value, if anything. */
function durationProblem(text: string, bounds: DurationBounds): string | undefined {
  let ns: bigint
  try {
    ns = parseDuration(text)
  } catch {
    return 'is not a duration (e.g. 30s, 2m)'
  }
  if (ns < parseDuration(bounds.min) || ns > parseDuration(bounds.max)) return `must be between ${bounds.min} and ${bounds.max}`
  return undefined
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
  const profileName = pick(setting('profile', flags, env, {}, { kind: 'default' })?.value, config?.defaultProfile)
  let profile: Profile = {}
  if (profileName !== undefined) {
    const known = config ? Object.keys(config.profiles) : []
    if (!config || !Object.hasOwn(config.profiles, profileName)) {
      throw new UsageError(
        `unknown profile "${shown(profileName)}"`,
        known.length > 0 ? `profiles in ${configPath}: ${known.join(', ')}` : 'no config file defines profiles; see "Configuration" in the README',
      )
    }
    profile = config.profiles[profileName]
  }

  const profileOrigin: Origin = profileName === undefined ? { kind: 'default' } : { kind: 'profile', profile: profileName, path: configPath ?? '' }
  const read = <K extends SettingKey>(key: K) => setting(key, flags, env, profile, profileOrigin)
  const given = <K extends SettingKey>(key: K): Given<string> => {
    const found = read(key)
    return found ? { value: String(found.value), origin: found.origin } : { value: String((SETTINGS[key] as SettingRow).default), origin: { kind: 'default' } }
  }
  const addrGiven = given('addr')
  const addr = checkAddress(addrGiven.value, named('addr', addrGiven.origin))
  const alloyGiven = given('alloyAddr')
  const alloyAddr = checkAddress(alloyGiven.value, named('alloyAddr', alloyGiven.origin))
  const timeout = given('timeout')
  const timeoutMs = parseDurationMs(timeout.value, named('timeout', timeout.origin), TIMER_BOUNDS.timeout)
  const retriesGiven = read('retries')
  const retries = retriesGiven ? parseRetries(retriesGiven.value, named('retries', retriesGiven.origin)) : SETTINGS.retries.default

  const headers: Record<string, string> = { 'user-agent': `obs/${options.version}` }
  for (const [name, value] of Object.entries(profile.headers ?? {})) headers[name.toLowerCase()] = String(value).trim()
  const flagHeaders = (flags.header ?? []).map(parseHeader)
  for (const [name, value] of flagHeaders) headers[name] = value
  const tenant = resolveTenant(read('orgId') as Given<string> | undefined, flagHeaders, profile, profileOrigin)
  delete headers[TENANT_HEADER]
  if (tenant) headers[TENANT_HEADER] = tenant.value

  const authorization = await resolveAuth(flags, env, profile, profileOrigin)
  if (authorization) {
    headers.authorization = authorization
    const url = new URL(addr)
    if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
      warnings.push(`credentials are sent over plain http:// to ${url.host}; use https:// to keep them private`)
    }
  }

  const skipVerify = pickBool(flags['tls-skip-verify'], env[SETTINGS.tlsSkipVerify.env], profile.tlsSkipVerify)
  if (skipVerify) warnings.push("--tls-skip-verify is set: Loki's TLS certificate is not checked")
  const tls = await resolveTls(read('caCert') as Given<string> | undefined, read('cert') as Given<string> | undefined, read('key') as Given<string> | undefined, skipVerify)

  const flag = (key: SettingKey) => `--${SETTINGS[key].flag}`
  // A proxy named for obs takes Loki's requests whatever the environment says; Alloy (not Loki's) follows the environment.
  const proxyUrl = read('proxyUrl')?.value as string | undefined
  const proxyFrom = flags['proxy-url'] ? flag('proxyUrl') : env[SETTINGS.proxyUrl.env] ? SETTINGS.proxyUrl.env : `profile ${profileName}`
  const namedProxy = proxyUrl === undefined ? undefined : { url: checkProxyUrl(proxyUrl, proxyFrom), from: proxyFrom }
  const fromEnv = envProxies(env)
  const envRoute: ProxyRoute | undefined = fromEnv && { env: fromEnv }
  const redactor = Redactor.of(headers, [namedProxy?.url, fromEnv?.http?.url, fromEnv?.https?.url])
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
      proxy: namedProxy ? { named: namedProxy } : envRoute,
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
    sources: settingSources(flags, env, profile, profileName, config, options, tenant),
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
  tenant: Tenant | undefined,
): SettingSource[] {
  const fromProfile = `profile ${profileName}`
  const sources: SettingSource[] = []
  for (const [key, row] of Object.entries(SETTINGS as Record<string, SettingRow>)) {
    // The tenant may come from an X-Scope-OrgID header too: the one in effect, by the tenant's rule.
    if (key === 'orgId' && tenant) {
      sources.push({ setting: row.flag, value: tenant.value, from: tenant.from })
      continue
    }
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

/** What is wrong with a base URL, if anything, and the fix. */
function addressProblem(value: string): { reason: string; fix: string } | undefined {
  // Without a scheme ("loki:3100", "localhost:3100") the host reads as one: say what was meant.
  const fix = !value.includes('://') && /^[\w.-]+(:\d*)?(\/\S*)?$/.test(value) ? `use http://${shown(value)}` : 'use a base URL like http://localhost:3100'
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return { reason: 'not a URL', fix }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { reason: 'only http:// and https:// are supported', fix }
  if (url.username || url.password) return { reason: 'must not carry credentials', fix: 'use --username/--password or --bearer-token instead' }
  if (url.search || url.hash) return { reason: 'a base URL has no query or fragment', fix: 'use a base URL like http://localhost:3100' }
  return undefined
}

/** A base URL, checked (addressProblem) and without its trailing slashes. */
export function checkAddress(value: string, flag: string): string {
  const problem = addressProblem(value)
  if (problem) {
    // Never echo credentials that were put into the URL by mistake.
    if (problem.reason === 'must not carry credentials') throw new UsageError(`${flag} must not carry credentials`, problem.fix)
    throw new UsageError(`invalid ${flag} "${shown(maskUrl(value))}": ${problem.reason}`, problem.fix)
  }
  const url = new URL(value)
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

function parseRetries(value: number | string, flag: string): number {
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN
  const [min, max] = SETTINGS.retries.bounds
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`invalid ${flag} "${shown(String(value))}"`, `use a whole number from ${min} to ${max}`)
  return n
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function checkHeaderName(name: string): string {
  if (!HEADER_NAME.test(name)) throw new UsageError(`invalid header name "${name}"`, "use --header 'Name: value'")
  return name.toLowerCase()
}

/** The tenant's header, as obs sends it (lower case) and as people write it. */
const TENANT_HEADER = 'x-scope-orgid'
const TENANT_HEADER_SHOWN = 'X-Scope-OrgID'
const TENANT_HINT = `keep one: --org-id and an ${TENANT_HEADER_SHOWN} header are the same setting`

/** The tenant in effect and where it came from, for \`obs config\`. */
interface Tenant {
  value: string
  from: string
}

/**
 * The tenant, by one rule: --org-id (LOKI_ORG_ID, orgId) and an X-Scope-OrgID
 * header are one setting. Two different tenants at one level (the flags, or
 * one profile, checked when the file is read) are refused: which one the user
 * meant is a guess. Across levels the precedence holds: flags > environment >
 * profile. (Before, --org-id a with --header 'X-Scope-OrgID: b' silently sent
 * a, and a profile's orgId beat a --header flag.)
 */
function resolveTenant(orgId: Given<string> | undefined, flagHeaders: [string, string][], profile: Profile, profileOrigin: Origin): Tenant | undefined {
  const fromHeader = flagHeaders.filter(([name]) => name === TENANT_HEADER).map(([, value]) => value)
  const fromFlags = [...(orgId?.origin.kind === 'flag' ? [orgId.value] : []), ...fromHeader]
  if (new Set(fromFlags).size > 1) {
    const given = [
      ...(orgId?.origin.kind === 'flag' ? [`--org-id "${shown(orgId.value)}"`] : []),
      ...fromHeader.map((value) => `--header "${TENANT_HEADER_SHOWN}: ${shown(value)}"`),
    ]
    throw new UsageError(`two tenants given: ${given.join(' and ')}`, TENANT_HINT)
  }
  if (fromHeader.length > 0 && orgId?.origin.kind !== 'flag') return { value: fromHeader[0], from: `flag --header ${TENANT_HEADER_SHOWN}` }
  if (orgId)
    return {
      value: orgId.value,
      from: orgId.origin.kind === 'env' ? `env ${orgId.origin.name}` : orgId.origin.kind === 'profile' ? `profile ${orgId.origin.profile}` : 'flag --org-id',
    }
  const profileHeader = Object.entries(profile.headers ?? {}).find(([name]) => name.toLowerCase() === TENANT_HEADER)
  if (profileHeader && profileOrigin.kind === 'profile') return { value: String(profileHeader[1]).trim(), from: `profile ${profileOrigin.profile} (headers)` }
  return undefined
}

function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':')
  // The value may be a secret: messages name the header at most, never its value.
  if (colon <= 0) throw new UsageError('invalid --header: no ":" between name and value', "use --header 'Name: value'")
  const value = text.slice(colon + 1).trim()
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) throw new UsageError('invalid --header: the value holds a control character', "use --header 'Name: value'")
  return [checkHeaderName(text.slice(0, colon).trim()), value]
}

async function resolveAuth(flags: ConnectionFlags, env: NodeJS.ProcessEnv, profile: Profile, profileOrigin: Origin): Promise<string | undefined> {
  const read = (key: 'username' | 'password' | 'bearerToken' | 'bearerTokenFile') => setting(key, flags, env, profile, profileOrigin) as Given<string> | undefined
  const username = read('username')?.value
  const password = read('password')?.value
  const token = read('bearerToken')?.value
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
    const what = fileNamed('bearerTokenFile', tokenFile)
    // A trailing newline is how files end; one inside the token would split the Authorization header.
    const fileToken = (await readSetupFile('bearerTokenFile', tokenFile)).toString('utf8').trim()
    if (!fileToken) throw new UsageError(`${what} is empty`, 'put the token in the file')
    const problem = controlProblem(fileToken)
    if (problem) throw new UsageError(`${what} holds more than one line: ${problem.replace(/^it /, 'the token ')}`, 'put the token alone on one line')
    return `Bearer ${fileToken}`
  }
  return token === undefined ? undefined : `Bearer ${token}`
}

async function resolveTls(ca: Given<string> | undefined, cert: Given<string> | undefined, key: Given<string> | undefined, skipVerify: boolean): Promise<TlsFiles | undefined> {
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError('a client certificate needs both --cert and --key', 'give both, or neither')
  }
  if (ca === undefined && cert === undefined && !skipVerify) return undefined
  // All read before any is judged: a file that cannot be read is the first thing to fix.
  const files = {
    caCert: ca && { given: ca, data: await readSetupFile('caCert', ca) },
    cert: cert && { given: cert, data: await readSetupFile('cert', cert) },
    key: key && { given: key, data: await readSetupFile('key', key) },
  }
  for (const [name, file] of Object.entries(files) as [TlsFileKey, { given: Given<string>; data: Buffer } | undefined][]) {
    if (!file) continue
    const problem = pemProblem(file.data, PEM_WANTED[name].kind)
    if (problem) {
      const hint = problem.convert ? problem.convert(shellQuote(file.given.value)) : PEM_WANTED[name].hint
      throw new UsageError(`${fileNamed(name, file.given)} is not a PEM ${PEM_WANTED[name].kind}: it ${problem.what}`, hint)
    }
  }
  return { ca: files.caCert?.data, cert: files.cert?.data, key: files.key?.data, rejectUnauthorized: !skipVerify }
}

type FileKey = 'bearerTokenFile' | 'caCert' | 'cert' | 'key'
type TlsFileKey = Exclude<FileKey, 'bearerTokenFile'>

const KiB = 1024
const MiB = 1024 * KiB

/**
 * The most obs reads of each file a setting names. No token or PEM bundle
 * comes near (a system's whole CA bundle is about 200 KB); without a cap,
 * `--bearer-token-file /dev/zero` read for minutes into gigabytes. The flags'
 * descriptions (table.ts) state these; a unit test holds them to it.
 */
export const FILE_CAPS: Record<FileKey, number> = { bearerTokenFile: 64 * KiB, caCert: MiB, cert: MiB, key: MiB }

const FILE_NOUNS: Record<FileKey, string> = { bearerTokenFile: 'a token file', caCert: 'a CA certificate file', cert: 'a certificate file', key: 'a key file' }

export function capText(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`
}

/** How long obs waits for a file's content: a pipe that nobody writes to would hold it forever. */
const FILE_WAIT_MS = 10_000

/** "the --ca-cert file /x (from env LOKI_CA_CERT_PATH)": the file, the setting and where it was set. */
function fileNamed(key: FileKey, given: Given<string>): string {
  return `the --${SETTINGS[key].flag} file ${shown(given.value)}${whence(given.origin)}`
}

/**
 * A setting's file, read up to its cap and one byte more, never further:
 * /dev/zero or a file of gigabytes cost the cap and no more. Opened without
 * blocking and read from what was opened, without asking its size first: a
 * pipe (a token from `<(vault read …)`) works, and one that nobody writes to
 * ends in FILE_WAIT_MS instead of holding obs (and its exit) forever.
 */
async function readSetupFile(key: FileKey, given: Given<string>): Promise<Buffer> {
  const cap = FILE_CAPS[key]
  const what = fileNamed(key, given)
  const flag = `--${SETTINGS[key].flag}`
  const buffer = Buffer.alloc(cap + 1)
  let length = 0
  let handle: FileHandle | undefined
  try {
    handle = await open(given.value, constants.O_RDONLY | constants.O_NONBLOCK)
    const deadline = Date.now() + FILE_WAIT_MS
    // A named pipe read before its writer opened it reads as ended: wait for the writer as for its data.
    const fifo = (await handle.stat()).isFIFO()
    while (length <= cap) {
      let bytesRead: number
      try {
        ;({ bytesRead } = await handle.read(buffer, length, cap + 1 - length, null))
        if (bytesRead === 0 && fifo && length === 0) throw Object.assign(new Error('no writer yet'), { code: 'EAGAIN' })
      } catch (error) {
        // A pipe whose writer has not written yet.
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error
        if (Date.now() > deadline) {
          throw new UsageError(
            `${what} ${length === 0 ? 'gave nothing to read' : 'did not end'} within ${FILE_WAIT_MS / 1000}s`,
            `check the path given to ${flag}: a pipe that nobody ${length === 0 ? 'writes to' : 'closes'}?`,
          )
        }
        await sleep(20)
        continue
      }
      if (bytesRead === 0) break
      length += bytesRead
    }
  } catch (error) {
    if (error instanceof UsageError) throw error
    const code = (error as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable')
    throw new UsageError(`cannot read ${what}: ${reason}`, `check the path given to ${flag}`)
  } finally {
    await handle?.close()
  }
  if (length > cap) throw new UsageError(`${what} is larger than ${capText(cap)}, the most obs reads of ${FILE_NOUNS[key]}`, `check the path given to ${flag}`)
  return buffer.subarray(0, length)
}

/** What each TLS setting needs, and the fix when a file holds something else. */
const PEM_WANTED: Record<TlsFileKey, { kind: 'certificate' | 'private key'; hint: string }> = {
  caCert: { kind: 'certificate', hint: "give the CA's certificate in PEM (-----BEGIN CERTIFICATE-----)" },
  cert: { kind: 'certificate', hint: 'give the client certificate in PEM (-----BEGIN CERTIFICATE-----)' },
  key: { kind: 'private key', hint: "give the client certificate's private key in PEM (-----BEGIN PRIVATE KEY-----)" },
}

/** The PEM labels of a private key Node reads without a passphrase. */
const KEY_LABEL = /^(RSA |EC )?PRIVATE KEY$/

/**
 * What a TLS file holds when it is not PEM of the kind wanted; undefined when
 * it is. Node takes a CA file without a certificate in it (DER, a key, an
 * empty file) and then trusts nothing, which ended as "self-signed
 * certificate; use --ca-cert" with --ca-cert given.
 */
export function pemProblem(data: Buffer, wanted: 'certificate' | 'private key'): { what: string; convert?: (path: string) => string } | undefined {
  const text = data.toString('latin1')
  const labels = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((match) => match[1])
  if (wanted === 'certificate' ? labels.includes('CERTIFICATE') : labels.some((label) => KEY_LABEL.test(label))) return undefined
  if (text.trim() === '') return { what: 'is empty' }
  if (labels.length === 0) {
    // PEM is text; DER (an ASN.1 SEQUENCE, first byte 0x30) and other binaries are not.
    if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) {
      const tool = wanted === 'certificate' ? 'x509' : 'pkey'
      return {
        what: `holds binary data${data[0] === 0x30 ? ' (DER)' : ''}`,
        convert: (path) => `convert it to PEM: openssl ${tool} -inform der -in ${path} -out ${path}.pem`,
      }
    }
    return { what: `holds no PEM block (no -----BEGIN ${wanted === 'certificate' ? 'CERTIFICATE' : 'PRIVATE KEY'}-----)` }
  }
  if (wanted === 'private key' && labels.includes('ENCRYPTED PRIVATE KEY')) {
    return { what: 'holds an encrypted private key, and obs takes no passphrase', convert: (path) => `decrypt it: openssl pkey -in ${path} -out key.pem` }
  }
  const held = labels.some((label) => KEY_LABEL.test(label) || label === 'ENCRYPTED PRIVATE KEY')
    ? 'a private key'
    : labels.includes('CERTIFICATE')
      ? 'a certificate'
      : labels.includes('OPENSSH PRIVATE KEY')
        ? 'an OpenSSH key'
        : `a ${labels[0]}`
  return { what: `holds ${held}` }
}
