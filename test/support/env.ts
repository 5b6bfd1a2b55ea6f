/** What the global setup prepared, for the integration test files. */
import { readFileSync } from 'node:fs'
import type { Dataset } from './dataset.ts'
import { type LokiConfigName, lokiConfigName } from './loki.ts'

export function testLoki(): { addr: string; dataset: Dataset; config: LokiConfigName } {
  const addr = process.env.OBS_TEST_LOKI_ADDR
  const truth = process.env.OBS_TEST_TRUTH
  if (!addr || !truth) {
    throw new Error('no test Loki: run the integration tests through `npm test` (its global setup starts Loki)')
  }
  return { addr, dataset: JSON.parse(readFileSync(truth, 'utf8')) as Dataset, config: lokiConfigName() }
}

/** What the pipeline suite's global setup started (pipeline-setup.ts), or undefined when it could not run here. */
export function livePipeline(): PipelineState | undefined {
  const file = process.env.OBS_TEST_PIPELINE
  return file ? (JSON.parse(readFileSync(file, 'utf8')) as PipelineState) : undefined
}

export interface PipelineState {
  dir: string
  recordDir: string
  env: Record<string, string>
  runId: string
  appEnv: string
  dockerSocket: string
}
