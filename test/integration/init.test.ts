/** obs init without a terminal: flags or defaults, a file obs reads back, never an overwrite without --force. */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { runObs } from '../support/cli.ts'

test('init writes a commented config that obs config reads; it refuses to overwrite without --force', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'obs-init-'))
  const path = join(cwd, 'obs.config.yaml')
  const first = await runObs(['init', '--dev-addr', 'http://127.0.0.1:3999', '--app', 'billing'], { cwd })
  assert.equal(first.code, 0, first.stderr)
  assert.match(first.stdout, /^wrote .*obs\.config\.yaml/)
  const text = readFileSync(path, 'utf8')
  assert.match(text, /^# obs\.config\.yaml, written by obs init/)
  assert.match(text, /^ {2}(dev|test|prod):$/m)
  assert.equal(statSync(path).mode & 0o777, 0o600)

  const config = JSON.parse((await runObs(['config', '--json'], { cwd })).stdout) as { profile: string; settings: { setting: string; value: string; from: string }[] }
  assert.equal(config.profile, 'dev')
  const get = (name: string) => config.settings.find((s) => s.setting === name)
  assert.deepEqual(get('addr'), { setting: 'addr', value: 'http://127.0.0.1:3999', from: 'profile dev' })
  assert.deepEqual(get('app'), { setting: 'app', value: 'billing', from: 'profile dev' })
  assert.equal(get('policy.forbiddenLabels')?.from, 'config file (policy)')
  const prod = JSON.parse((await runObs(['config', '--json', '--profile', 'prod'], { cwd })).stdout) as typeof config
  assert.equal(prod.settings.find((s) => s.setting === 'addr')?.value, 'https://loki.example.com')
  assert.equal(prod.settings.find((s) => s.setting === 'maxQueryBytes')?.value, '10GB')

  writeFileSync(path, 'mine: true\n')
  const again = await runObs(['init'], { cwd })
  assert.equal(again.code, 2)
  assert.equal(again.stderr.trim().split('\n').length, 1)
  assert.match(again.stderr, /not writing .*obs\.config\.yaml: it exists; add --force to replace it/)
  assert.equal(readFileSync(path, 'utf8'), 'mine: true\n')
  const forced = await runObs(['init', '--force'], { cwd })
  assert.equal(forced.code, 0, forced.stderr)
  assert.match(readFileSync(path, 'utf8'), /addr: "http:\/\/localhost:3100"/)
})
