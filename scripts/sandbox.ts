/**
 * The main job on a fresh machine: a real local Loki loaded with a realistic
 * app's logs (or the Loki that LOKI_ADDR names), then `obs smoke`, `obs trace`
 * on a request it found, and what to try next.
 *
 *   npm run sandbox          # start (or reuse) the sandbox and run the checks
 *   npm run sandbox -- stop  # stop the sandbox's Loki
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { generateDataset, toPushBatches } from '../test/support/dataset.ts'
import { freePort, pushAll, REPO, startLoki, waitReady } from '../test/support/loki.ts'

const home = join(process.env.OBS_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'obs'), 'sandbox')
const pidFile = join(home, 'loki.pid')
const addrFile = join(home, 'loki.addr')
const say = (text: string) => process.stdout.write(`${text}\n`)
const step = (text: string) => process.stdout.write(`\n\u001b[1m== ${text}\u001b[0m\n`)

function obs(args: string[], env: Record<string, string>): { status: number | null; stdout: string } {
  say(`$ obs ${args.map((a) => (/^[\w./:=-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`)
  const result = spawnSync(process.execPath, [join(REPO, 'bin/run.js'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  })
  process.stdout.write(result.stdout)
  return { status: result.status, stdout: result.stdout }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function sandboxLoki(): Promise<string> {
  if (existsSync(pidFile) && alive(Number(readFileSync(pidFile, 'utf8')))) {
    const addr = readFileSync(addrFile, 'utf8').trim()
    say(`reusing the sandbox Loki at ${addr} (pid ${readFileSync(pidFile, 'utf8').trim()})`)
    return addr
  }
  rmSync(home, { recursive: true, force: true })
  mkdirSync(home, { recursive: true })
  const port = (await isFree(3100)) ? 3100 : await freePort()
  const loki = await startLoki({ port, dataDir: home, detached: true, noWait: true })
  writeFileSync(pidFile, String(loki.child.pid))
  writeFileSync(addrFile, loki.addr)
  say(`started Loki 3.6.2 at ${loki.addr} (data and log in ${home})`)
  await waitReady(loki)
  const dataset = generateDataset({ seed: Date.now() % 100_000, endNs: BigInt(Date.now() - 5_000) * 1_000_000n, spanMs: 30 * 60_000, requests: 3000 })
  await pushAll(loki.addr, toPushBatches(dataset.entries))
  say(`loaded ${dataset.entries.length} pino JSON lines from services gateway, app and worker over the last 30 minutes`)
  return loki.addr
}

async function isFree(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/`)
    return false
  } catch {
    return true
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'stop') {
    if (existsSync(pidFile) && alive(Number(readFileSync(pidFile, 'utf8')))) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM')
    rmSync(home, { recursive: true, force: true })
    say('sandbox stopped')
    return
  }
  step('Loki')
  const addr = process.env.LOKI_ADDR ?? (await sandboxLoki())
  if (process.env.LOKI_ADDR) say(`using the Loki that LOKI_ADDR names: ${addr}`)
  const env = { LOKI_ADDR: addr }
  obs(['ready', '--wait', '60s'], env)

  step('smoke checks (Alloy is not part of the sandbox)')
  const smoke = obs(['smoke', '--since', '1h', '--no-alloy'], env)

  step('one request across services')
  const found = obs(['query-range', '{service="worker"} |= "reqId"', '--since', '1h', '--limit', '1', '-o', 'raw'], env)
  const reqId = /"reqId":"([^"]+)"/.exec(found.stdout)?.[1]
  if (reqId) obs(['trace', reqId], env)
  else say('no request found to trace')

  step('try next')
  say(`export LOKI_ADDR=${addr}`)
  say(`npx obs query-range '{app="cogni-template"} | json | level="error"' --since 30m`)
  say(`npx obs query 'sum by (service) (count_over_time({app="cogni-template"}[5m]))'`)
  say(`npx obs series '{app="cogni-template"}' --analyze-labels`)
  say(`npx obs query-range '{app="cogni-template"}' --since 1h --limit 0 -o jsonl > export.jsonl`)
  if (!process.env.LOKI_ADDR) say('npm run sandbox -- stop     # stop the sandbox Loki')
  process.exitCode = smoke.status === 0 ? 0 : 1
}

await main()
