/**
 * Once per pipeline test run: the live pipeline (pipeline.ts) with the app's
 * two compose services logging, until Loki has lines of both. The test files
 * find it through OBS_TEST_PIPELINE (livePipeline()).
 *
 * Without a Docker Engine, Alloy or root the suite cannot run; outside CI it
 * says why and its tests skip, in CI (CI=true) that is a failure.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dockerUnavailable } from './docker-engine.ts'
import { type Pipeline, startPipeline } from './pipeline.ts'

let pipeline: Pipeline | undefined

export async function globalSetup(): Promise<void> {
  const missing = dockerUnavailable()
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`the live pipeline cannot run: ${missing}`)
    process.stderr.write(`live pipeline skipped: ${missing}\n`)
    return
  }
  const started = Date.now()
  pipeline = await startPipeline()
  await pipeline.startContainer('app')
  await pipeline.startContainer('worker')
  await waitForServices(pipeline, ['app', 'worker'])
  const state = join(pipeline.dir, 'pipeline.json')
  writeFileSync(
    state,
    JSON.stringify({ dir: pipeline.dir, recordDir: pipeline.recordDir, env: pipeline.env, runId: pipeline.runId, appEnv: pipeline.appEnv, dockerSocket: pipeline.docker.socket }),
  )
  process.env.OBS_TEST_PIPELINE = state
  process.stderr.write(`live pipeline up in ${Date.now() - started}ms: Loki ${pipeline.loki.addr}, Alloy ${pipeline.alloy.addr}, Docker ${pipeline.docker.host}\n`)
}

export async function globalTeardown(): Promise<void> {
  await pipeline?.stop()
}

/** Waits until Loki has lines of every service (Alloy discovers containers every 10 s). */
export async function waitForServices(pipeline: Pick<Pipeline, 'env'>, services: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let seen: string[] = []
  while (Date.now() < deadline) {
    const params = new URLSearchParams({ query: '{app="cogni-template"}', start: String((Date.now() - 600_000) * 1e6) })
    const answer = await fetch(`${pipeline.env.LOKI_ADDR}/loki/api/v1/label/service/values?${params}`).then((r) => r.json() as Promise<{ data?: string[] }>)
    seen = answer.data ?? []
    if (services.every((service) => seen.includes(service))) return
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`Loki has no lines of ${services.filter((s) => !seen.includes(s)).join(', ')} after ${timeoutMs}ms`)
}
