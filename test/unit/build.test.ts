/** The build (scripts/build.ts): dist/ runs alone, and a one-request command stays light. Needs `npm run build` first, as `npm test` does. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { REPO } from '../support/loki.ts'

const scratch = mkdtempSync(join(tmpdir(), 'obs-build-test-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

function run(args: string[], options: { cwd: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: options.cwd, env: { ...process.env, NO_COLOR: '1', OBS_CACHE_DIR: join(scratch, 'cache') } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    )
  })
}

test('the package runs from bin/ and dist/ alone: no library is loaded from node_modules', async () => {
  // What npm packs (package.json "files"), without node_modules beside it.
  const copy = join(scratch, 'package')
  for (const name of ['bin', 'dist', 'package.json', 'oclif.manifest.json']) cpSync(join(REPO, name), join(copy, name), { recursive: true })
  const cwd = join(scratch, 'work')
  mkdirSync(cwd)
  const obs = join(copy, 'bin/run.js')

  const help = await run([obs, 'ready', '--help'], { cwd })
  assert.equal(help.code, 0, help.stderr)
  assert.match(help.stdout, /Check that Loki is ready/)
  // undici: a refused connection is its error, turned into the contract's exit 3.
  const unreachable = await run([obs, 'ready', '--addr', 'http://127.0.0.1:1'], { cwd })
  assert.equal(unreachable.code, 3, unreachable.stderr)
  assert.match(unreachable.stderr, /cannot reach Loki at http:\/\/127\.0\.0\.1:1/)
  // yaml (init writes, config reads) and cli-table3 (config's table).
  assert.equal((await run([obs, 'init', '--app', 'billing'], { cwd })).code, 0)
  const config = await run([obs, 'config'], { cwd })
  assert.equal(config.code, 0, config.stderr)
  assert.match(config.stdout, /│ app .*│ billing/)
  // The LogQL grammar: a syntax error caught before any request.
  const bad = await run([obs, 'query', '{app="x"', '--addr', 'http://127.0.0.1:1'], { cwd })
  assert.equal(bad.code, 2, bad.stderr)
})

test("a one-request command does not load node:http2 or node:tls: undici's HTTP/2 client waits for a server that negotiates it", async () => {
  const probe = `await import(${JSON.stringify(pathToFileURL(join(REPO, 'dist/commands/ready.js')).href)}); console.log(JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (http2|tls)$/.test(m))))`
  const loaded = await run(['--input-type=module', '-e', probe], { cwd: scratch })
  assert.equal(loaded.code, 0, loaded.stderr)
  assert.deepEqual(JSON.parse(loaded.stdout), [])
  // The same import with the HTTP/2 client loaded shows the probe can see it.
  const seen = await run(['--input-type=module', '-e', `await import('node:http2'); ${probe.slice(probe.indexOf(';') + 1)}`], { cwd: scratch })
  assert.ok(JSON.parse(seen.stdout).includes('NativeModule http2'), seen.stdout)
})
