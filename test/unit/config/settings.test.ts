import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, describe, test } from 'node:test'
import { DEFAULT_DEPLOY_THRESHOLDS } from '../../../src/lib/config/deploy-thresholds.ts'
import {
  type ConnectionFlags,
  capText,
  DEFAULT_IDENTITY,
  DEFAULT_POLICY,
  FILE_CAPS,
  findConfigFile,
  pemProblem,
  type ResolveOptions,
  resolveSettings,
  type Settings,
} from '../../../src/lib/config/settings.ts'
import { flagDescription, SETTINGS } from '../../../src/lib/config/table.ts'
import { ExitCode, UsageError } from '../../../src/lib/errors.ts'

const PASSWORD = 'hunter2-Pa55word'
const TOKEN = 'tok-3xq9-SECRET-bearer'
const VERSION = '1.2.3'

const roots: string[] = []
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true })
})

interface Sandbox {
  root: string
  /** The working directory obs runs in: root/work/project. */
  cwd: string
  env: NodeJS.ProcessEnv
  /** Writes a file relative to root and returns its absolute path. */
  write(relative: string, text: string): string
}

/** A temp dir with HOME and XDG_CONFIG_HOME inside it, so the real home is never read. */
function sandbox(files: Record<string, string> = {}, env: NodeJS.ProcessEnv = {}): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'obs-config-test-'))
  roots.push(root)
  const cwd = join(root, 'work', 'project')
  mkdirSync(cwd, { recursive: true })
  mkdirSync(join(root, 'home'), { recursive: true })
  const write = (relative: string, text: string): string => {
    const path = join(root, relative)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
    return path
  }
  for (const [relative, text] of Object.entries(files)) write(relative, text)
  return { root, cwd, env: { HOME: join(root, 'home'), XDG_CONFIG_HOME: join(root, 'xdg'), ...env }, write }
}

function resolve(box: Sandbox, flags: ConnectionFlags = {}, extra: Partial<ResolveOptions> = {}): Promise<Settings> {
  return resolveSettings({ flags, env: box.env, cwd: box.cwd, version: VERSION, ...extra })
}

/** Asserts a UsageError (exit 2) whose message and hint hold no secret. */
async function rejectsUsage(promise: Promise<unknown>, text: RegExp | string): Promise<UsageError> {
  let caught: unknown
  try {
    await promise
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof UsageError, `expected a UsageError, got ${String(caught)}`)
  assert.equal(caught.exitCode, ExitCode.usage)
  if (typeof text === 'string') assert.ok(caught.message.includes(text), `"${caught.message}" lacks "${text}"`)
  else assert.match(caught.message, text)
  assertNoSecret(caught.render())
  return caught
}

/** A PEM block of that label around the text (base64 of it): the shape obs checks, not a key anyone could use. */
function pem(label: string, body: string): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(body).toString('base64')}\n-----END ${label}-----\n`
}

function assertNoSecret(text: string): void {
  for (const secret of [PASSWORD, TOKEN, Buffer.from(`admin:${PASSWORD}`).toString('base64')]) {
    assert.equal(text.includes(secret), false, `a secret leaked into: ${text}`)
  }
}

const PROFILES_YAML = `
defaultProfile: dev
profiles:
  dev:
    addr: http://loki-dev:3100
    orgId: dev-tenant
    timeout: 10s
    retries: 5
    alloyAddr: http://alloy-dev:12345
    app: dev-app
    service: dev-service
    env: dev
  prod:
    addr: https://loki.prod.example.com/loki-prefix/
    orgId: prod-tenant
    timeout: 1m
    retries: 1
`

describe('resolveSettings: defaults', () => {
  test('with no config, no env and no flags', async () => {
    const box = sandbox()
    const settings = await resolve(box)
    assert.equal(settings.configPath, undefined, 'a stray obs.config.* above the temp dir would break these tests')
    assert.equal(settings.profile, undefined)
    assert.equal(settings.loki.baseUrl, 'http://localhost:3100')
    assert.equal(settings.loki.timeoutMs, 30_000)
    assert.equal(settings.loki.retries, 3)
    assert.equal(settings.loki.peer, 'Loki')
    assert.equal(settings.loki.tls, undefined)
    assert.deepEqual(settings.loki.headers, { 'user-agent': `obs/${VERSION}` })
    assert.equal(settings.alloy.baseUrl, 'http://localhost:12345')
    assert.equal(settings.alloy.peer, 'Alloy')
    assert.deepEqual(settings.identity, { ...DEFAULT_IDENTITY, env: undefined })
    assert.deepEqual(settings.policy, DEFAULT_POLICY)
    assert.deepEqual(settings.warnings, [])
  })

  test("the default label policy is the contract's", () => {
    assert.deepEqual(DEFAULT_POLICY.allowedLabels, ['app', 'env', 'service', 'stream'])
    assert.equal(DEFAULT_POLICY.maxValuesPerLabel, 100)
    assert.deepEqual(DEFAULT_POLICY.forbiddenLabels, ['reqId', 'userId', 'billingAccountId', 'attemptId'])
    assert.deepEqual(DEFAULT_IDENTITY, { app: 'cogni-template', service: 'app' })
  })
})

describe('resolveSettings: precedence flag > env > profile > default', () => {
  const cases: {
    name: string
    flags: ConnectionFlags
    env: NodeJS.ProcessEnv
    read: (s: Settings) => unknown
    profile: unknown
    fromEnv: unknown
    fromFlag: unknown
  }[] = [
    {
      name: 'addr',
      flags: { addr: 'http://from-flag:3100/' },
      env: { LOKI_ADDR: 'http://from-env:3100' },
      read: (s) => s.loki.baseUrl,
      profile: 'http://loki-dev:3100',
      fromEnv: 'http://from-env:3100',
      fromFlag: 'http://from-flag:3100',
    },
    {
      name: 'timeout',
      flags: { timeout: '2s' },
      env: { OBS_TIMEOUT: '45s' },
      read: (s) => s.loki.timeoutMs,
      profile: 10_000,
      fromEnv: 45_000,
      fromFlag: 2_000,
    },
    {
      name: 'retries',
      flags: { retries: 0 },
      env: { OBS_RETRIES: '7' },
      read: (s) => s.loki.retries,
      profile: 5,
      fromEnv: 7,
      fromFlag: 0,
    },
    {
      name: 'org id',
      flags: { 'org-id': 'flag-tenant' },
      env: { LOKI_ORG_ID: 'env-tenant' },
      read: (s) => s.loki.headers['x-scope-orgid'],
      profile: 'dev-tenant',
      fromEnv: 'env-tenant',
      fromFlag: 'flag-tenant',
    },
    {
      name: 'alloy addr',
      flags: { 'alloy-addr': 'http://alloy-flag:1' },
      env: { ALLOY_ADDR: 'http://alloy-env:2' },
      read: (s) => s.alloy.baseUrl,
      profile: 'http://alloy-dev:12345',
      fromEnv: 'http://alloy-env:2',
      fromFlag: 'http://alloy-flag:1',
    },
  ]
  for (const c of cases) {
    test(`${c.name}: profile, then env over profile, then flag over env`, async () => {
      const box = sandbox({ 'work/project/obs.config.yaml': PROFILES_YAML })
      assert.deepEqual(c.read(await resolve(box)), c.profile)
      const withEnv = { ...box, env: { ...box.env, ...c.env } }
      assert.deepEqual(c.read(await resolve(withEnv)), c.fromEnv)
      assert.deepEqual(c.read(await resolve(withEnv, c.flags)), c.fromFlag)
    })
  }

  test('an empty environment variable falls through to the profile', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': PROFILES_YAML }, { LOKI_ADDR: '', LOKI_ORG_ID: '', OBS_TIMEOUT: '' })
    const settings = await resolve(box)
    assert.equal(settings.loki.baseUrl, 'http://loki-dev:3100')
    assert.equal(settings.loki.headers['x-scope-orgid'], 'dev-tenant')
    assert.equal(settings.loki.timeoutMs, 10_000)
  })

  test('the profile: defaultProfile, then OBS_PROFILE, then --profile', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': PROFILES_YAML })
    assert.equal((await resolve(box)).profile, 'dev')
    const prodEnv = { ...box, env: { ...box.env, OBS_PROFILE: 'prod' } }
    const prod = await resolve(prodEnv)
    assert.equal(prod.profile, 'prod')
    assert.equal(prod.loki.baseUrl, 'https://loki.prod.example.com/loki-prefix')
    assert.equal(prod.loki.timeoutMs, 60_000)
    assert.equal((await resolve(prodEnv, { profile: 'dev' })).profile, 'dev')
  })

  test('identity: flags over profile over default', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': PROFILES_YAML })
    assert.deepEqual((await resolve(box)).identity, { app: 'dev-app', service: 'dev-service', env: 'dev' })
    assert.deepEqual((await resolve(box, {}, { identity: { app: 'cli-app' } })).identity, { app: 'cli-app', service: 'dev-service', env: 'dev' })
    assert.deepEqual((await resolve(box, { profile: 'prod' })).identity, { app: 'cogni-template', service: 'app', env: undefined })
  })

  test('policy: profile over top level over default', async () => {
    const box = sandbox({
      'work/project/obs.config.yaml': `
policy:
  maxValuesPerLabel: 50
  allowedLabels: [app, env]
profiles:
  dev:
    policy:
      maxValuesPerLabel: 20
`,
    })
    const top = await resolve(box)
    assert.deepEqual(top.policy, { ...DEFAULT_POLICY, maxValuesPerLabel: 50, allowedLabels: ['app', 'env'] })
    const dev = await resolve(box, { profile: 'dev' })
    assert.deepEqual(dev.policy, { ...DEFAULT_POLICY, maxValuesPerLabel: 20, allowedLabels: ['app', 'env'] })
  })
})

describe('resolveSettings: the deploy thresholds', () => {
  test("the profile's deploy: over the defaults, sizes as text; shown by obs config with their source", async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles:\n  prod:\n    deploy:\n      errorRateRatio: 3\n      volumeFloorBytes: 50kB\n' })
    assert.deepEqual((await resolve(box)).deploy, DEFAULT_DEPLOY_THRESHOLDS)
    const prod = await resolve(box, { profile: 'prod' })
    assert.deepEqual(prod.deploy, { ...DEFAULT_DEPLOY_THRESHOLDS, errorRateRatio: 3, volumeFloorBytes: 50_000 })
    assert.deepEqual(
      prod.sources.filter((s) => s.setting.startsWith('deploy.')).map((s) => `${s.setting}=${s.value} <- ${s.from}`),
      [
        'deploy.errorRateRatio=3 <- profile prod',
        'deploy.errorRateFloor=1 <- default',
        'deploy.newPatternMinCount=1 <- default',
        'deploy.volumeMinRatio=0.25 <- default',
        'deploy.volumeMaxRatio=4 <- default',
        'deploy.volumeFloorBytes=50000 <- profile prod',
      ],
    )
  })

  test('unknown keys, wrong types and a band that excludes no change are usage errors naming the profile', async () => {
    const config = (body: string) => sandbox({ 'work/project/obs.config.yaml': `profiles:\n  prod:\n    deploy:\n${body}` })
    await rejectsUsage(resolve(config('      errorRatio: 2\n'), { profile: 'prod' }), 'profile "prod": deploy has unknown key "errorRatio"')
    await rejectsUsage(resolve(config('      errorRateFloor: lots\n'), { profile: 'prod' }), 'deploy.errorRateFloor must be a number of 0 or more')
    await rejectsUsage(resolve(config('      volumeFloorBytes: big\n'), { profile: 'prod' }), 'or a size such as "10kB"')
    await rejectsUsage(resolve(config('      volumeMinRatio: 2\n'), { profile: 'prod' }), 'volumeMinRatio must be at most 1')
    await rejectsUsage(resolve(config('      errorRateRatio: 0.5\n'), { profile: 'prod' }), 'errorRateRatio must be 1 or more')
  })
})

describe('resolveSettings: profiles', () => {
  test('an unknown profile is a usage error naming the known ones', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': PROFILES_YAML })
    const error = await rejectsUsage(resolve(box, { profile: 'staging' }), 'unknown profile "staging"')
    assert.match(error.hint ?? '', /dev, prod/)
  })

  test('an unknown profile from OBS_PROFILE is a usage error too', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': PROFILES_YAML }, { OBS_PROFILE: 'nope' })
    await rejectsUsage(resolve(box), 'unknown profile "nope"')
  })

  test('a profile without any config file is a usage error', async () => {
    await rejectsUsage(resolve(sandbox(), { profile: 'dev' }), 'unknown profile "dev"')
  })

  // Profile names are looked up in a plain object: inherited names must not count as profiles.
  for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    test(`--profile ${name} is an unknown profile`, async () => {
      const box = sandbox({ 'work/project/obs.config.yaml': PROFILES_YAML })
      await rejectsUsage(resolve(box, { profile: name }), `unknown profile "${name}"`)
    })
  }

  test('defaultProfile "constructor" is not among the profiles', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'defaultProfile: constructor\nprofiles:\n  dev: {}\n' })
    await rejectsUsage(resolve(box), /constructor/)
  })
})

const foundPath = (cwd: string, env: NodeJS.ProcessEnv): string | undefined => findConfigFile(cwd, env).found?.path

describe('findConfigFile', () => {
  test('finds obs.config.yaml in the working directory', () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles: {}\n' })
    assert.equal(foundPath(box.cwd, box.env), join(box.cwd, 'obs.config.yaml'))
  })

  test('finds obs.config.json in a parent directory', () => {
    const box = sandbox({ 'work/obs.config.json': '{}' })
    assert.equal(foundPath(box.cwd, box.env), join(box.root, 'work', 'obs.config.json'))
  })

  test('the nearest directory wins over a parent and over XDG', () => {
    const box = sandbox({ 'work/obs.config.yaml': '{}', 'work/project/obs.config.yaml': '{}', 'xdg/obs/config.yaml': '{}' })
    assert.equal(foundPath(box.cwd, box.env), join(box.cwd, 'obs.config.yaml'))
  })

  test('falls back to $XDG_CONFIG_HOME/obs/config.yaml', () => {
    const box = sandbox({ 'xdg/obs/config.yaml': '{}' })
    assert.equal(foundPath(box.cwd, box.env), join(box.root, 'xdg', 'obs', 'config.yaml'))
  })

  test('without XDG_CONFIG_HOME, falls back to $HOME/.config/obs/config.yaml', () => {
    const box = sandbox({ 'home/.config/obs/config.yaml': '{}' })
    const env = { HOME: box.env.HOME }
    assert.equal(foundPath(box.cwd, env), join(box.root, 'home', '.config', 'obs', 'config.yaml'))
  })

  test('none: undefined', () => {
    const box = sandbox()
    assert.equal(foundPath(box.cwd, box.env), undefined)
  })

  test('a profile from the XDG config is used', async () => {
    const box = sandbox({ 'xdg/obs/config.yaml': 'defaultProfile: home\nprofiles:\n  home:\n    addr: http://xdg-loki:3100\n' })
    const settings = await resolve(box)
    assert.equal(settings.loki.baseUrl, 'http://xdg-loki:3100')
    assert.equal(settings.configPath, join(box.root, 'xdg', 'obs', 'config.yaml'))
  })

  test('a JSON config works like YAML', async () => {
    const box = sandbox({ 'work/project/obs.config.json': JSON.stringify({ defaultProfile: 'j', profiles: { j: { addr: 'http://json:1', retries: 2 } } }) })
    const settings = await resolve(box)
    assert.equal(settings.loki.baseUrl, 'http://json:1')
    assert.equal(settings.loki.retries, 2)
  })
})

describe('findConfigFile: trust', () => {
  const asRoot = process.getuid?.() === 0

  test('a file writable by others is passed over with a warning naming it and why; the next one is used', () => {
    const box = sandbox({ 'work/obs.config.yaml': '{}' })
    const planted = box.write('work/project/obs.config.yaml', '{}')
    chmodSync(planted, 0o666)
    const search = findConfigFile(box.cwd, box.env)
    assert.equal(search.found?.path, join(box.root, 'work', 'obs.config.yaml'))
    assert.equal(search.warnings.length, 1)
    assert.match(search.warnings[0], new RegExp(`^ignoring the config file ${planted}: it is writable by its group and others; run chmod go-w `))
  })

  test('a group-writable file is passed over too', () => {
    const box = sandbox()
    chmodSync(box.write('work/project/obs.config.yaml', '{}'), 0o620)
    const search = findConfigFile(box.cwd, box.env)
    assert.equal(search.found, undefined)
    assert.match(search.warnings[0], /: it is writable by its group; run chmod go-w /)
  })

  test('a file owned by another user is passed over', { skip: !asRoot && 'chown needs root' }, () => {
    const box = sandbox()
    const planted = box.write('work/project/obs.config.yaml', '{}')
    chownSync(planted, 65534, 65534)
    const search = findConfigFile(box.cwd, box.env)
    assert.equal(search.found, undefined)
    assert.deepEqual(search.warnings, [`ignoring the config file ${planted}: it is owned by another user (uid 65534); obs reads only config files owned by you or root`])
  })

  test('a FIFO or a directory under a config file name is passed over, without hanging', () => {
    const box = sandbox({ 'work/obs.config.yaml': '{}' })
    execFileSync('mkfifo', [join(box.cwd, 'obs.config.yaml')])
    mkdirSync(join(box.cwd, 'obs.config.yml'))
    const search = findConfigFile(box.cwd, box.env)
    assert.equal(search.found?.path, join(box.root, 'work', 'obs.config.yaml'))
    assert.equal(search.warnings.filter((line) => line.endsWith('it is not a regular file')).length, 2)
  })

  test('the search stops at the home directory', () => {
    const box = sandbox({ 'obs.config.yaml': '{}' })
    assert.equal(foundPath(box.cwd, { ...box.env, HOME: join(box.root, 'work') }), undefined)
    assert.equal(foundPath(box.cwd, box.env), join(box.root, 'obs.config.yaml'), 'outside home it goes on')
  })

  test('the search stops at the repository root, the directory holding .git', () => {
    const box = sandbox({ 'obs.config.yaml': '{}', 'work/.git/HEAD': 'ref: refs/heads/main\n' })
    assert.equal(foundPath(box.cwd, box.env), undefined)
    box.write('work/obs.config.yaml', '{}')
    assert.equal(foundPath(box.cwd, box.env), join(box.root, 'work', 'obs.config.yaml'), 'the repository root itself is searched')
  })

  test('the XDG config is checked the same way', () => {
    const box = sandbox()
    chmodSync(box.write('xdg/obs/config.yaml', '{}'), 0o646)
    const search = findConfigFile(box.cwd, box.env)
    assert.equal(search.found, undefined)
    assert.equal(search.warnings.length, 1)
  })

  test('the warnings reach the settings, and the planted profile does not', async () => {
    const box = sandbox()
    chmodSync(box.write('work/project/obs.config.yaml', 'defaultProfile: p\nprofiles:\n  p:\n    addr: http://planted:3100\n'), 0o666)
    const settings = await resolve(box, { username: 'admin', password: PASSWORD })
    assert.equal(settings.loki.baseUrl, 'http://localhost:3100')
    assert.equal(settings.configPath, undefined)
    assert.match(settings.warnings.join('\n'), /ignoring the config file .*obs\.config\.yaml: it is writable by its group and others/)
  })

  for (const [what, yaml] of [
    ['a password', `profiles:\n  p:\n    username: admin\n    password: ${PASSWORD}\n`],
    ['a bearer token', `profiles:\n  p:\n    bearerToken: ${TOKEN}\n`],
    ['an Authorization header', `profiles:\n  p:\n    headers:\n      Authorization: Bearer ${TOKEN}\n`],
  ]) {
    test(`a config file holding ${what} readable by others warns, naming the fix; mode 600 does not`, async () => {
      const box = sandbox()
      const path = box.write('work/project/obs.config.yaml', yaml)
      chmodSync(path, 0o644)
      const warnings = (await resolve(box)).warnings
      assert.deepEqual(warnings, [`the config file ${path} holds a password or token and is readable by others; run chmod 600 ${path}`])
      assertNoSecret(warnings.join('\n'))
      chmodSync(path, 0o600)
      assert.deepEqual((await resolve(box)).warnings, [])
    })
  }

  test('a config file without secrets may be readable by all', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles:\n  p:\n    addr: http://a:1\n' })
    chmodSync(join(box.cwd, 'obs.config.yaml'), 0o644)
    assert.deepEqual((await resolve(box)).warnings, [])
  })
})

describe('resolveSettings: malformed config files', () => {
  test('a YAML alias bomb is a usage error on one line, not a crash', async () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x]']
    for (let i = 0; i < 9; i++)
      lines.push(
        `l${i}: &l${i} [${Array(9)
          .fill(i === 0 ? '*a' : `*l${i - 1}`)
          .join(', ')}]`,
      )
    const box = sandbox()
    const path = box.write('work/project/obs.config.yaml', `${lines.join('\n')}\n`)
    const error = await rejectsUsage(resolve(box), `malformed config file ${path}: its YAML aliases expand to more than 100 nodes`)
    assert.equal(error.render().includes('\n'), false)
  })

  test('a few YAML aliases are fine', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles:\n  a: &base\n    addr: http://a:1\n  b: *base\n' })
    assert.equal((await resolve(box, { profile: 'b' })).loki.baseUrl, 'http://a:1')
  })

  test('malformed YAML names the file and the line', async () => {
    const box = sandbox()
    const path = box.write('work/project/obs.config.yaml', 'profiles:\n  dev:\n    addr: http://a:3100\n    orgId: [unclosed\n  prod:\n    addr: x\n')
    const error = await rejectsUsage(resolve(box), `malformed config file ${path}`)
    assert.match(error.message, /line \d+/)
    assert.equal(error.message.includes('\n'), false, 'one line')
  })

  test('duplicate YAML keys are rejected, naming the file', async () => {
    const box = sandbox()
    const path = box.write('work/project/obs.config.yaml', 'profiles:\n  dev:\n    addr: http://a\n    addr: http://b\n')
    await rejectsUsage(resolve(box), `malformed config file ${path}`)
  })

  // JSON.parse's message quotes the text around the error: a short secret fits in it whole.
  test('malformed JSON names the file, stays one line and does not echo the password', async () => {
    const box = sandbox()
    const path = box.write('work/project/obs.config.json', '{\n"profiles": {\n"dev": {\n"password": s3cr3t\n}\n}\n}\n')
    const error = await rejectsUsage(resolve(box), `malformed config file ${path}`)
    assert.equal(error.message.includes('s3cr3t'), false, `the password leaked: ${JSON.stringify(error.message)}`)
    assert.equal(error.message.includes('\n'), false, `one line: ${JSON.stringify(error.message)}`)
  })

  test('malformed JSON names the line', async () => {
    const box = sandbox()
    box.write('work/project/obs.config.json', '{\n  "profiles": {\n    "dev": {\n      "addr": "http://x",,\n    }\n  }\n}\n')
    await rejectsUsage(resolve(box), /line 4/)
  })

  const invalid: [string, string | RegExp][] = [
    ['profilez:\n  dev: {}\n', 'unknown key "profilez"'],
    ['- a\n- b\n', 'the top level must be a mapping'],
    ['profiles:\n  dev:\n    adress: http://x\n', 'profile "dev" has unknown key "adress"'],
    ['profiles:\n  dev:\n    constructor: x\n', 'profile "dev" has unknown key "constructor"'],
    ['profiles:\n  dev:\n    retries: three\n', 'retries must be a number'],
    ['profiles:\n  dev:\n    tlsSkipVerify: "yes"\n', 'tlsSkipVerify must be a boolean'],
    ['profiles:\n  dev:\n    headers: [a, b]\n', 'headers must be a object'],
    ['profiles:\n  dev: 3\n', 'profile "dev" must be a mapping'],
    ['profiles: [dev]\n', 'profiles must be a mapping'],
    ['defaultProfile: prod\nprofiles:\n  dev: {}\n', 'defaultProfile "prod" is not among the profiles'],
    ['defaultProfile: 3\n', 'defaultProfile must be a string'],
    ['policy:\n  maxValuesPerLabel: 0\n', 'maxValuesPerLabel must be a positive integer'],
    ['policy:\n  allowedLabels: app\n', 'allowedLabels must be a list'],
    ['policy:\n  colour: red\n', 'policy has unknown key "colour"'],
    ['profiles:\n  dev:\n    policy:\n      forbidden: [a]\n', 'profile "dev": policy has unknown key "forbidden"'],
  ]
  for (const [yaml, message] of invalid) {
    test(`rejects ${JSON.stringify(yaml)}`, async () => {
      const box = sandbox()
      const path = box.write('work/project/obs.config.yaml', yaml)
      const error = await rejectsUsage(resolve(box), message)
      assert.ok(error.message.includes(path), 'names the file')
    })
  }

  test('a wrongly typed password is reported without its value', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': `profiles:\n  dev:\n    username: admin\n    password: [${PASSWORD}]\n` })
    await rejectsUsage(resolve(box), 'password must be a string')
  })

  test('an empty config file is fine', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': '' })
    const settings = await resolve(box)
    assert.equal(settings.loki.baseUrl, 'http://localhost:3100')
  })
})

describe('resolveSettings: credentials', () => {
  test('basic auth from flags', async () => {
    const settings = await resolve(sandbox(), { username: 'admin', password: PASSWORD })
    assert.equal(settings.loki.headers.authorization, `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`)
  })

  test('basic auth from env, username alone sends an empty password', async () => {
    const settings = await resolve(sandbox({}, { LOKI_USERNAME: 'only' }))
    assert.equal(settings.loki.headers.authorization, `Basic ${Buffer.from('only:').toString('base64')}`)
  })

  test('basic auth from a profile', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': `profiles:\n  p:\n    username: admin\n    password: ${PASSWORD}\n` })
    const settings = await resolve(box, { profile: 'p' })
    assert.equal(settings.loki.headers.authorization, `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`)
  })

  test('a bearer token', async () => {
    const settings = await resolve(sandbox({}, { LOKI_BEARER_TOKEN: TOKEN }))
    assert.equal(settings.loki.headers.authorization, `Bearer ${TOKEN}`)
  })

  test('a bearer token file is read and trimmed', async () => {
    const box = sandbox()
    const file = box.write('secrets/token', `\n  ${TOKEN}  \n\n`)
    const settings = await resolve(box, { 'bearer-token-file': file })
    assert.equal(settings.loki.headers.authorization, `Bearer ${TOKEN}`)
  })

  test('an empty bearer token file is a usage error', async () => {
    const box = sandbox()
    const file = box.write('secrets/empty', ' \n')
    await rejectsUsage(resolve(box, { 'bearer-token-file': file }), `the --bearer-token-file file ${file} is empty`)
  })

  test('a missing bearer token file is a usage error naming the path', async () => {
    const box = sandbox()
    const file = join(box.root, 'secrets', 'missing')
    await rejectsUsage(resolve(box, { 'bearer-token-file': file }), `cannot read the --bearer-token-file file ${file}: no such file`)
  })

  test('basic auth and a bearer token conflict, wherever they come from', async () => {
    await rejectsUsage(resolve(sandbox(), { username: 'admin', password: PASSWORD, 'bearer-token': TOKEN }), 'cannot be used together')
    await rejectsUsage(resolve(sandbox({}, { LOKI_USERNAME: 'admin', LOKI_PASSWORD: PASSWORD }), { 'bearer-token': TOKEN }), 'cannot be used together')
    const box = sandbox({ 'work/project/obs.config.yaml': `profiles:\n  p:\n    bearerToken: ${TOKEN}\n` })
    await rejectsUsage(resolve(box, { profile: 'p', username: 'admin', password: PASSWORD }), 'cannot be used together')
  })

  test('a bearer token and a bearer token file conflict', async () => {
    const box = sandbox()
    const file = box.write('secrets/token', TOKEN)
    await rejectsUsage(resolve(box, { 'bearer-token': TOKEN, 'bearer-token-file': file }), 'cannot be used together')
  })

  test('a password without a username is a usage error', async () => {
    await rejectsUsage(resolve(sandbox(), { password: PASSWORD }), 'a password was given without a username')
    await rejectsUsage(resolve(sandbox({}, { LOKI_PASSWORD: PASSWORD })), 'a password was given without a username')
  })

  test('credentials never go to Alloy', async () => {
    const settings = await resolve(sandbox({}, { LOKI_ORG_ID: 't' }), { username: 'admin', password: PASSWORD, header: ['X-Extra: 1'] })
    assert.deepEqual(settings.alloy.headers, { 'user-agent': `obs/${VERSION}` })
  })
})

describe('resolveSettings: warnings', () => {
  for (const addr of ['http://loki.example.com:3100', 'http://10.0.0.5:3100', 'http://127.example.com:3100']) {
    test(`credentials over plain http to ${addr} warn, without the secret`, async () => {
      for (const flags of [{ username: 'admin', password: PASSWORD }, { 'bearer-token': TOKEN }] as ConnectionFlags[]) {
        const settings = await resolve(sandbox(), { addr, ...flags })
        assert.equal(settings.warnings.length, 1, `${addr}: ${JSON.stringify(settings.warnings)}`)
        assert.match(settings.warnings[0], /plain http/)
        assert.ok(settings.warnings[0].includes(new URL(addr).host))
        assertNoSecret(settings.warnings[0])
      }
    })
  }

  for (const addr of ['http://localhost:3100', 'http://127.0.0.1:3100', 'http://127.1.2.3:3100', 'http://[::1]:3100', 'https://loki.example.com']) {
    test(`credentials to ${addr} do not warn`, async () => {
      const settings = await resolve(sandbox(), { addr, 'bearer-token': TOKEN })
      assert.deepEqual(settings.warnings, [])
    })
  }

  test('plain http without credentials does not warn', async () => {
    const settings = await resolve(sandbox(), { addr: 'http://loki.example.com:3100' })
    assert.deepEqual(settings.warnings, [])
  })

  test('--tls-skip-verify warns and turns off verification', async () => {
    const settings = await resolve(sandbox(), { 'tls-skip-verify': true, addr: 'https://loki.example.com' })
    assert.equal(settings.warnings.length, 1)
    assert.match(settings.warnings[0], /tls-skip-verify/)
    assert.equal(settings.loki.tls?.rejectUnauthorized, false)
  })

  test('LOKI_TLS_SKIP_VERIFY=true warns; --no-tls-skip-verify overrides it', async () => {
    const box = sandbox({}, { LOKI_TLS_SKIP_VERIFY: 'true' })
    const fromEnv = await resolve(box)
    assert.equal(fromEnv.loki.tls?.rejectUnauthorized, false)
    assert.equal(fromEnv.warnings.length, 1)
    const overridden = await resolve(box, { 'tls-skip-verify': false })
    assert.equal(overridden.loki.tls, undefined)
    assert.deepEqual(overridden.warnings, [])
  })

  test('tlsSkipVerify in a profile warns', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles:\n  p:\n    tlsSkipVerify: true\n' })
    const settings = await resolve(box, { profile: 'p' })
    assert.equal(settings.warnings.length, 1)
  })

  test('an unreadable LOKI_TLS_SKIP_VERIFY is a usage error', async () => {
    await rejectsUsage(resolve(sandbox({}, { LOKI_TLS_SKIP_VERIFY: 'maybe' })), 'invalid LOKI_TLS_SKIP_VERIFY "maybe"')
  })
})

describe('resolveSettings: TLS files', () => {
  test('CA, certificate and key are read', async () => {
    const box = sandbox()
    const ca = box.write('tls/ca.pem', pem('CERTIFICATE', 'CA'))
    const cert = box.write('tls/cert.pem', pem('CERTIFICATE', 'CERT'))
    const key = box.write('tls/key.pem', pem('PRIVATE KEY', 'KEY'))
    const settings = await resolve(box, { 'ca-cert': ca, cert, key })
    assert.equal(settings.loki.tls?.ca?.toString(), pem('CERTIFICATE', 'CA'))
    assert.equal(settings.loki.tls?.cert?.toString(), pem('CERTIFICATE', 'CERT'))
    assert.equal(settings.loki.tls?.key?.toString(), pem('PRIVATE KEY', 'KEY'))
    assert.equal(settings.loki.tls?.rejectUnauthorized, true)
  })

  test('the environment names the files too', async () => {
    const box = sandbox()
    const ca = box.write('tls/ca.pem', pem('CERTIFICATE', 'CA-ENV'))
    box.env.LOKI_CA_CERT_PATH = ca
    const settings = await resolve(box)
    assert.equal(settings.loki.tls?.ca?.toString(), pem('CERTIFICATE', 'CA-ENV'))
  })

  for (const flag of ['ca-cert', 'cert', 'key'] as const) {
    test(`a missing --${flag} file is a usage error naming the flag and the path`, async () => {
      const box = sandbox()
      const missing = join(box.root, 'tls', 'nope.pem')
      const other = box.write('tls/other.pem', 'X')
      const flags: ConnectionFlags = { [flag]: missing }
      if (flag === 'cert') flags.key = other
      if (flag === 'key') flags.cert = other
      await rejectsUsage(resolve(box, flags), `cannot read the --${flag} file ${missing}: no such file`)
    })
  }

  test('a certificate without a key (or a key without a certificate) is a usage error', async () => {
    const box = sandbox()
    const cert = box.write('tls/cert.pem', 'CERT')
    await rejectsUsage(resolve(box, { cert }), 'needs both --cert and --key')
    await rejectsUsage(resolve(box, { key: cert }), 'needs both --cert and --key')
  })
})

describe('resolveSettings: address, headers, timeout, retries', () => {
  test('a path prefix is kept and trailing slashes dropped', async () => {
    const settings = await resolve(sandbox(), { addr: 'https://gw.example.com/loki///' })
    assert.equal(settings.loki.baseUrl, 'https://gw.example.com/loki')
  })

  for (const [addr, message] of [
    ['localhost:3100', /only http:\/\/ and https:\/\/|not a URL/],
    ['ftp://loki:21', 'only http:// and https:// are supported'],
    ['not a url', 'not a URL'],
    ['http://loki:3100/?x=1', 'no query or fragment'],
    ['http://loki:3100/#frag', 'no query or fragment'],
  ] as const) {
    test(`--addr ${addr} is a usage error`, async () => {
      await rejectsUsage(resolve(sandbox(), { addr }), message)
    })
  }

  test('credentials inside --addr are refused without echoing them', async () => {
    await rejectsUsage(resolve(sandbox(), { addr: `http://admin:${PASSWORD}@loki:3100` }), '--addr must not carry credentials')
  })

  test('an unparseable --addr holding credentials does not echo the password', async () => {
    await rejectsUsage(resolve(sandbox(), { addr: `http://admin:${PASSWORD}@bad host:3100` }), 'invalid --addr')
  })

  // A "/", "?" or "#" in the password ends the authority early: the text is no URL, and the password sits after the "//".
  for (const password of [`pa/${PASSWORD}`, `${PASSWORD}?x`, `p#${PASSWORD}`, `${PASSWORD}/@x`]) {
    test(`--addr and LOKI_ADDR with the password ${JSON.stringify(password.replace(PASSWORD, '…'))} are refused without echoing it`, async () => {
      const addr = `http://admin:${password}@loki:3100/prefix`
      const error = await rejectsUsage(resolve(sandbox(), { addr }), 'invalid --addr')
      assert.match(error.message, /"http:\/\/…@/)
      await rejectsUsage(resolve(sandbox({}, { LOKI_ADDR: addr })), 'invalid --addr')
      await rejectsUsage(resolve(sandbox(), { 'alloy-addr': addr }), 'invalid --alloy-addr')
    })
  }

  test('an --addr without a scheme holding a password is refused without echoing it', async () => {
    await rejectsUsage(resolve(sandbox(), { addr: `admin:${PASSWORD}@loki:3100` }), 'invalid --addr')
    await rejectsUsage(resolve(sandbox(), { addr: `admin:x/${PASSWORD}@loki:3100` }), 'invalid --addr')
  })

  test('extra headers: profile headers, then --header, names lower-cased', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles:\n  p:\n    headers:\n      X-Team: core\n      X-Env: profile\n' })
    const settings = await resolve(box, { profile: 'p', header: ['X-Env: flag', 'X-Extra:  spaced value  '] })
    assert.equal(settings.loki.headers['x-team'], 'core')
    assert.equal(settings.loki.headers['x-env'], 'flag')
    assert.equal(settings.loki.headers['x-extra'], 'spaced value')
    assert.equal(settings.loki.headers['user-agent'], `obs/${VERSION}`)
  })

  test('a header value may contain colons', async () => {
    const settings = await resolve(sandbox(), { header: ['X-Url: http://a:b/c'] })
    assert.equal(settings.loki.headers['x-url'], 'http://a:b/c')
  })

  for (const header of ['NoColon', ': value', 'Bad Name: v', 'X-Crlf: a\r\nInjected: 1']) {
    test(`--header ${JSON.stringify(header)} is a usage error`, async () => {
      await rejectsUsage(resolve(sandbox(), { header: [header] }), /--header|header name/)
    })
  }

  test('a malformed --header carrying a token does not echo the token', async () => {
    await rejectsUsage(resolve(sandbox(), { header: [`Authorization Bearer ${TOKEN}`] }), /--header/)
  })

  test('a malformed --header value with a line break does not echo the value', async () => {
    await rejectsUsage(resolve(sandbox(), { header: [`Authorization: Bearer ${TOKEN}\r\nX: y`] }), /control character/)
  })

  test('an invalid timeout names --timeout', async () => {
    await rejectsUsage(resolve(sandbox(), { timeout: '30' }), 'invalid --timeout "30"')
    await rejectsUsage(resolve(sandbox({}, { OBS_TIMEOUT: 'soon' })), 'invalid --timeout (from env OBS_TIMEOUT) "soon"')
  })

  test('a sub-millisecond timeout does not become a zero timeout', async () => {
    let timeoutMs: number | undefined
    try {
      timeoutMs = (await resolve(sandbox(), { timeout: '500us' })).loki.timeoutMs
    } catch (error) {
      assert.ok(error instanceof UsageError, String(error))
      return
    }
    assert.ok(timeoutMs > 0, `timeoutMs is ${timeoutMs}: every request would time out at once`)
  })

  for (const value of ['abc', '-1', '21', '1.5']) {
    test(`OBS_RETRIES=${value} is a usage error`, async () => {
      await rejectsUsage(resolve(sandbox({}, { OBS_RETRIES: value })), `invalid --retries (from env OBS_RETRIES) "${value}"`)
    })
  }

  for (const value of [' ', '0x3', '1e1']) {
    test(`OBS_RETRIES=${JSON.stringify(value)} is not a whole number and is refused`, async () => {
      await rejectsUsage(resolve(sandbox({}, { OBS_RETRIES: value })), 'invalid --retries (from env OBS_RETRIES)')
    })
  }

  test('the debug sink is passed on to both clients', async () => {
    const debug = (): void => {}
    const settings = await resolve(sandbox(), {}, { debug })
    assert.equal(settings.loki.debug, debug)
    assert.equal(settings.alloy.debug, debug)
  })
})

describe('files a setting names: capped, and PEM of their kind', () => {
  test("each capped file's flag states its cap", () => {
    for (const [key, cap] of Object.entries(FILE_CAPS)) {
      const row = SETTINGS[key as keyof typeof FILE_CAPS]
      assert.ok(flagDescription(row).includes(`at most ${capText(cap)}`), `--${row.flag}: "${flagDescription(row)}" does not state ${capText(cap)}`)
    }
    assert.equal(capText(FILE_CAPS.bearerTokenFile), '64 KiB')
    assert.equal(capText(FILE_CAPS.caCert), '1 MiB')
  })

  test('a token file at the cap is read; one byte more is refused, naming the file, the setting and its source', async () => {
    const box = sandbox()
    const atCap = box.write('secrets/at-cap', 't'.repeat(FILE_CAPS.bearerTokenFile))
    const settings = await resolve(box, { 'bearer-token-file': atCap })
    assert.equal(settings.loki.headers.authorization.length, 'Bearer '.length + FILE_CAPS.bearerTokenFile)
    const over = box.write('secrets/over', 't'.repeat(FILE_CAPS.bearerTokenFile + 1))
    box.env.LOKI_BEARER_TOKEN_FILE = over
    await rejectsUsage(resolve(box), `the --bearer-token-file file ${over} (from env LOKI_BEARER_TOKEN_FILE) is larger than 64 KiB`)
  })

  test('/dev/zero as any file is refused at its cap, at once', async () => {
    const started = performance.now()
    await rejectsUsage(resolve(sandbox(), { 'bearer-token-file': '/dev/zero' }), 'the --bearer-token-file file /dev/zero is larger than 64 KiB')
    await rejectsUsage(resolve(sandbox(), { 'ca-cert': '/dev/zero' }), 'the --ca-cert file /dev/zero is larger than 1 MiB')
    assert.ok(performance.now() - started < 5000)
  })

  test('a file from a profile is named with the profile and the config file', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    caCert: /dev/zero\n' })
    await rejectsUsage(resolve(box), new RegExp(`the --ca-cert file /dev/zero \\(from profile "dev" in ${box.cwd}/obs\\.config\\.yaml\\) is larger than 1 MiB`))
  })

  test('a token file: its trailing newline is dropped, a line break inside it refused', async () => {
    const box = sandbox()
    const crlf = box.write('secrets/crlf', `${TOKEN}\r\n`)
    assert.equal((await resolve(box, { 'bearer-token-file': crlf })).loki.headers.authorization, `Bearer ${TOKEN}`)
    const inner = box.write('secrets/inner', `${TOKEN}\nX-Injected: 1\n`)
    await rejectsUsage(resolve(box, { 'bearer-token-file': inner }), `the --bearer-token-file file ${inner} holds more than one line`)
  })

  const block = (label: string) => Buffer.from(`-----BEGIN ${label}-----\nMIIB\n-----END ${label}-----\n`)
  for (const [name, data, wanted, says] of [
    ['a certificate', block('CERTIFICATE'), 'certificate', undefined],
    ['a chain after text', Buffer.concat([Buffer.from('subject=CN=ca\n'), block('CERTIFICATE'), block('CERTIFICATE')]), 'certificate', undefined],
    ['a PKCS#8 key', block('PRIVATE KEY'), 'private key', undefined],
    ['an RSA key', block('RSA PRIVATE KEY'), 'private key', undefined],
    ['an EC key', block('EC PRIVATE KEY'), 'private key', undefined],
    ['a key and its certificate, as a key', Buffer.concat([block('CERTIFICATE'), block('EC PRIVATE KEY')]), 'private key', undefined],
    ['an empty file', Buffer.alloc(0), 'certificate', 'is empty'],
    ['blank lines', Buffer.from('\n\n  \n'), 'private key', 'is empty'],
    ['DER', Buffer.from([0x30, 0x82, 0x03, 0x0a, 0x30, 0x82, 0x01]), 'certificate', 'holds binary data (DER)'],
    ['other binary', Buffer.from([0x01, 0x02, 0x03, 0x00]), 'private key', 'holds binary data'],
    ['a key as a certificate', block('PRIVATE KEY'), 'certificate', 'holds a private key'],
    ['a certificate as a key', block('CERTIFICATE'), 'private key', 'holds a certificate'],
    ['an encrypted key', block('ENCRYPTED PRIVATE KEY'), 'private key', 'holds an encrypted private key, and obs takes no passphrase'],
    ['an OpenSSH key', block('OPENSSH PRIVATE KEY'), 'private key', 'holds an OpenSSH key'],
    ['a public key', block('PUBLIC KEY'), 'certificate', 'holds a PUBLIC KEY'],
    ['text', Buffer.from('hello\n'), 'certificate', 'holds no PEM block (no -----BEGIN CERTIFICATE-----)'],
  ] as const) {
    test(`pemProblem: ${name} wanted as a ${wanted} ${says ? `${says}` : 'is fine'}`, () => {
      assert.equal(pemProblem(data, wanted)?.what, says)
    })
  }
})

describe('control characters in settings, from every source', () => {
  for (const [name, env] of [
    ['LOKI_ORG_ID', 'orgId'],
    ['LOKI_BEARER_TOKEN', 'bearerToken'],
    ['LOKI_USERNAME', 'username'],
    ['LOKI_ADDR', 'addr'],
  ] as const) {
    test(`${name} with a CR/LF is refused naming --${SETTINGS[env].flag} and the variable`, async () => {
      await rejectsUsage(resolve(sandbox({}, { [name]: 'value\r\nX-Injected: 1' })), `invalid --${SETTINGS[env].flag} (from env ${name}): it holds a line break (CR or LF)`)
    })
  }

  test('a secret with a line break is refused without being echoed', async () => {
    const error = await rejectsUsage(resolve(sandbox(), { username: 'admin', password: `${PASSWORD}\n` }), 'invalid --password: it holds a line break')
    assert.equal(error.render().includes(PASSWORD), false)
  })

  test('a profile value with a line break names the file and the profile', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles:\n  prod:\n    orgId: "a\\nb"\n' })
    await rejectsUsage(resolve(box), /malformed config file .*obs\.config\.yaml: profile "prod": orgId holds a line break/)
  })
})

describe('one tenant rule', () => {
  const header = (value: string) => `X-Scope-OrgID: ${value}`

  test('--org-id and an X-Scope-OrgID --header that agree are fine', async () => {
    const settings = await resolve(sandbox(), { 'org-id': 'a', header: [header('a')] })
    assert.equal(settings.loki.headers['x-scope-orgid'], 'a')
  })

  test('--org-id and an X-Scope-OrgID --header that disagree are refused', async () => {
    await rejectsUsage(resolve(sandbox(), { 'org-id': 'a', header: [header('b')] }), 'two tenants given: --org-id "a" and --header "X-Scope-OrgID: b"')
  })

  test('a --header tenant is a flag: it wins over LOKI_ORG_ID and the profile', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    orgId: from-profile\n' }, { LOKI_ORG_ID: 'from-env' })
    const settings = await resolve(box, { header: [header('from-header')] })
    assert.equal(settings.loki.headers['x-scope-orgid'], 'from-header')
    assert.deepEqual(
      settings.sources.find((s) => s.setting === 'org-id'),
      { setting: 'org-id', value: 'from-header', from: 'flag --header X-Scope-OrgID' },
    )
  })

  test("LOKI_ORG_ID wins over a profile's X-Scope-OrgID header", async () => {
    const box = sandbox(
      { 'work/project/obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    headers:\n      X-Scope-OrgID: from-profile\n' },
      { LOKI_ORG_ID: 'from-env' },
    )
    const settings = await resolve(box)
    assert.equal(settings.loki.headers['x-scope-orgid'], 'from-env')
    assert.equal(settings.sources.find((s) => s.setting === 'org-id')?.from, 'env LOKI_ORG_ID')
  })

  test("a profile's X-Scope-OrgID header is its tenant", async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'defaultProfile: dev\nprofiles:\n  dev:\n    headers:\n      x-scope-orgid: t1\n' })
    const settings = await resolve(box)
    assert.equal(settings.loki.headers['x-scope-orgid'], 't1')
    assert.equal(settings.sources.find((s) => s.setting === 'org-id')?.from, 'profile dev (headers)')
  })

  test('a profile whose orgId and X-Scope-OrgID header disagree is refused, naming file and profile', async () => {
    const box = sandbox({ 'work/project/obs.config.yaml': 'profiles:\n  dev:\n    orgId: a\n    headers:\n      X-Scope-OrgID: b\n' })
    await rejectsUsage(resolve(box), /obs\.config\.yaml: profile "dev": orgId "a" and the X-Scope-OrgID header "b" name two tenants/)
  })
})
