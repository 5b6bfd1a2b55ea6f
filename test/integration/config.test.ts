/** obs config: every setting's value and source, by the contract's precedence, with secrets masked. */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { runObs } from '../support/cli.ts'

const SECRETS = ['s3cret-pass', 'k-secret-value']

test('obs config names each source (flag > env > profile > default) and never prints a secret', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'obs-config-'))
  writeFileSync(
    join(cwd, 'obs.config.yaml'),
    [
      'defaultProfile: ops',
      'profiles:',
      '  ops:',
      '    addr: http://profile-loki:3100',
      '    timeout: 45s',
      '    app: billing',
      '    maxQueryBytes: 5GB',
      '    headers:',
      '      X-Api-Key: k-secret-value',
      '      X-Team: sre',
      '    policy:',
      '      maxValuesPerLabel: 50',
      '',
    ].join('\n'),
    { mode: 0o600 },
  )
  const env = { LOKI_ADDR: 'http://env-loki:3100', LOKI_USERNAME: 'alice', LOKI_PASSWORD: 's3cret-pass' }
  const result = await runObs(['config', '--json', '--retries', '5'], { cwd, env })
  assert.equal(result.code, 0, result.stderr)
  for (const secret of SECRETS) assert.ok(!result.stdout.includes(secret) && !result.stderr.includes(secret), `${secret} printed`)
  const document = JSON.parse(result.stdout) as { configFile: string; profile: string; settings: { setting: string; value: string; from: string }[] }
  assert.equal(document.profile, 'ops')
  assert.equal(document.configFile, join(cwd, 'obs.config.yaml'))
  const get = (name: string) => {
    const found = document.settings.find((s) => s.setting === name)
    return found && `${found.value} <- ${found.from}`
  }
  assert.equal(get('addr'), 'http://env-loki:3100 <- env LOKI_ADDR')
  assert.equal(get('username'), 'alice <- env LOKI_USERNAME')
  assert.equal(get('password'), '*** <- env LOKI_PASSWORD')
  assert.equal(get('retries'), '5 <- flag --retries')
  assert.equal(get('timeout'), '45s <- profile ops')
  assert.equal(get('header'), 'X-Api-Key: ***; X-Team: sre <- profile ops')
  assert.equal(get('profile'), 'ops <- config file (defaultProfile)')
  assert.equal(get('alloy-addr'), 'http://localhost:12345 <- default')
  assert.equal(get('org-id'), ' <- unset')
  assert.equal(get('app'), 'billing <- profile ops')
  assert.equal(get('service'), 'app <- default')
  assert.equal(get('maxQueryBytes'), '5GB <- profile ops')
  assert.equal(get('policy.maxValuesPerLabel'), '50 <- profile ops')
  assert.equal(get('policy.allowedLabels'), 'app, env, service, stream <- default')

  const table = await runObs(['config'], { cwd, env })
  assert.equal(table.code, 0, table.stderr)
  assert.match(table.stdout, /password\s.*\*\*\*.*env LOKI_PASSWORD/)
  assert.match(table.stdout, /config file: .*obs\.config\.yaml; profile: ops/)
  for (const secret of SECRETS) assert.ok(!table.stdout.includes(secret), `${secret} printed`)
})
