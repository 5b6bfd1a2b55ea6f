/**
 * Records test/fixtures/alloy-v1.1.1 from the live pipeline (a real dockerd,
 * a real Alloy v1.1.1 on the stack's config, a real Loki): Alloy's answers in
 * the states the unit tests read, states no unit test could stage itself.
 *
 *   npm run record:alloy     # about 10 minutes: Alloy drops a batch only after its retries run out
 *
 * The states, in order, one Alloy process (its counters carry over), are
 * described in the fixtures' README.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from '../test/support/loki.ts'
import { type Pipeline, startPipeline } from '../test/support/pipeline.ts'
import { waitForServices } from '../test/support/pipeline-setup.ts'

const OUT = join(REPO, 'test/fixtures/alloy-v1.1.1')
const COMPONENTS = ['discovery.docker.containers', 'loki.source.docker.default', 'loki.write.loki_endpoint']
/** The metric families the checks read, with their HELP and TYPE lines. */
const KEPT =
  /^(# (HELP|TYPE) )?(loki_write_|loki_source_docker_|prometheus_sd_refresh_failures_total|alloy_config_last_load_successful|alloy_component_controller_|alloy_build_info)/

const log = (text: string) => process.stderr.write(`[record] ${text}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function get(pipeline: Pipeline, path: string): Promise<string> {
  return (await fetch(`${pipeline.alloy.addr}${path}`)).text()
}

async function record(pipeline: Pipeline, state: string): Promise<void> {
  const pretty = (text: string) => `${JSON.stringify(JSON.parse(text), null, 2)}\n`
  writeFileSync(join(OUT, `${state}.components.json`), pretty(await get(pipeline, '/api/v0/web/components')))
  for (const id of COMPONENTS) writeFileSync(join(OUT, `${state}.component.${id}.json`), pretty(await get(pipeline, `/api/v0/web/components/${id}`)))
  const metrics = (await get(pipeline, '/metrics')).split('\n').filter((line) => KEPT.test(line))
  writeFileSync(join(OUT, `${state}.metrics.txt`), `${metrics.join('\n')}\n`)
  log(`recorded ${state}`)
}

async function metric(pipeline: Pipeline, name: string): Promise<number> {
  const lines = (await get(pipeline, '/metrics')).split('\n').filter((line) => line.startsWith(name))
  return lines.reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true })
  const pipeline = await startPipeline({ appEnv: 'test' })
  try {
    await pipeline.startContainer('app')
    await pipeline.startContainer('worker')
    await waitForServices(pipeline, ['app', 'worker'])
    await sleep(30_000)
    await record(pipeline, 'healthy')

    await pipeline.docker.stopDaemon()
    await sleep(40_000)
    await record(pipeline, 'docker-gone')

    await pipeline.docker.startDaemon()
    await sleep(25_000)
    await pipeline.loki.stop()
    await sleep(45_000)
    await record(pipeline, 'loki-down')

    log('waiting for Alloy to drop a batch (its retries run out after about 6 minutes)')
    const deadline = Date.now() + 12 * 60_000
    while ((await metric(pipeline, 'loki_write_dropped_entries_total')) === 0 && Date.now() < deadline) await sleep(10_000)
    await record(pipeline, 'loki-down-dropped')

    await pipeline.loki.restart()
    await sleep(30_000)
    await record(pipeline, 'loki-back')

    const ids = (await pipeline.docker.docker(['ps', '-aq'])).split('\n').filter(Boolean)
    await pipeline.docker.docker(['rm', '-f', ...ids])
    await sleep(25_000)
    await record(pipeline, 'no-containers')
  } finally {
    await pipeline.stop()
  }
}

await main()
