/**
 * Every shell block of runbooks/*.md runs against the test Loki, so a runbook
 * cannot drift from the tool: its `obs` commands through the built CLI, its
 * curl equivalents against the same Loki.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { OBS, TEST_CACHE_DIR } from '../support/cli.ts'
import { deployScenario, scenarioStreams } from '../support/deploy-dataset.ts'
import { testLoki } from '../support/env.ts'
import { pushAll, REPO } from '../support/loki.ts'

const { addr } = testLoki()
const RUNBOOKS = join(REPO, 'runbooks')

/** Blocks that need a running Docker engine or Alloy, which the test machine does not have. */
const NEEDS_DOCKER_OR_ALLOY = /\bdocker\b|localhost:12345/

function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1])
}

function adapt(block: string): string {
  return (
    block
      .split('\n')
      .filter((line) => !/^export (LOKI_ADDR|ALLOY_ADDR)=/.test(line))
      .join('\n')
      .replaceAll('http://localhost:3100', addr)
      .replaceAll(' stack/', ` ${join(REPO, 'stack')}/`)
      // No Alloy runs beside the test Loki: its checks are skipped rather than failed.
      .replace(/\bobs (smoke|doctor)\b(?![^\n]*--no-alloy)/g, 'obs $1 --no-alloy')
      // The deploy gate compares the ten minutes before now-10m with the ten after: it runs on a deploy pushed just before it
      // (last in its runbook, after Query 4, which takes a reqId from the newest line of {service="app"}).
      .replace(/\bobs smoke\b(?=[^\n]*--deployed-at)/g, `obs smoke --app ${DEPLOY_APP} --env test`)
      // obs volume and patterns look at the same deploy.
      .replace(/\bobs volume --since/g, `obs volume --app ${DEPLOY_APP} --since`)
      .replaceAll('{app="cogni-template", service="app"}\' --since 20m', `{app="${DEPLOY_APP}", service="app"}' --since 20m`)
  )
}

const DEPLOY_APP = 'deploy-runbook'
let deployPushed = false

describe('runbooks', () => {
  for (const file of readdirSync(RUNBOOKS).filter((name) => name.endsWith('.md'))) {
    const blocks = shellBlocks(readFileSync(join(RUNBOOKS, file), 'utf8'))
    test(`${file}: every command runs`, async () => {
      assert.ok(blocks.length > 0, `${file} has shell blocks`)
      const cwd = mkdtempSync(join(tmpdir(), 'obs-runbook-'))
      let ran = 0
      for (const block of blocks) {
        if (NEEDS_DOCKER_OR_ALLOY.test(block)) continue
        if (/--deployed-at|obs (volume|patterns)/.test(block) && !deployPushed) {
          await pushAll(addr, [scenarioStreams(deployScenario(DEPLOY_APP, 'none', BigInt(Date.now()) * 1_000_000n))])
          deployPushed = true
        }
        const script = `set -euo pipefail\nobs() { "${process.execPath}" "${OBS}" "$@"; }\n${adapt(block)}`
        const result = spawnSync('bash', ['-c', script], {
          cwd,
          env: { ...process.env, LOKI_ADDR: addr, NO_COLOR: '1', REQID: 'req-42-00010', OBS_CACHE_DIR: TEST_CACHE_DIR },
          encoding: 'utf8',
          timeout: 120_000,
        })
        assert.equal(result.status, 0, `${file} block failed:\n${block}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`)
        const redirect = /> (\S+)\s*$/m.exec(block)?.[1]
        const output = redirect ? readFileSync(join(cwd, redirect), 'utf8') : result.stdout
        assert.notEqual(output.trim(), '', `${file} block printed nothing:\n${block}`)
        if (block.includes('curl') && block.includes('query')) assert.match(result.stdout, /"status":"success"/)
        ran++
      }
      assert.ok(ran > 0)
    })
  }
})
