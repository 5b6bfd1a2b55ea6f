/**
 * Once per test run: start a real Loki, load it with the dataset through the
 * push API, and tell the test files where it is (OBS_TEST_LOKI_ADDR) and
 * where the ground truth is (OBS_TEST_TRUTH).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateDataset, toPushBatches } from './dataset.ts'
import { type LokiProcess, pushAll, startLoki, stopAndRemove } from './loki.ts'

let loki: LokiProcess | undefined
let truthDir: string | undefined

export async function globalSetup(): Promise<void> {
  const started = Date.now()
  loki = await startLoki()
  const endNs = BigInt(Date.now() - 60_000) * 1_000_000n
  const dataset = generateDataset({ seed: 42, endNs, spanMs: 45 * 60_000, requests: 4600 })
  const batches = toPushBatches(dataset.entries)
  if (loki.config === 'stock') {
    // Loki shards a stream only once its rate store, refreshed every second,
    // knows the stream is fast: the first batches teach it, the rest arrive
    // split into __stream_shard__ streams, as on a busy production Loki.
    await pushAll(loki.addr, batches.slice(0, 2))
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await pushAll(loki.addr, batches.slice(2))
  } else {
    await pushAll(loki.addr, batches)
  }
  truthDir = mkdtempSync(join(tmpdir(), 'obs-truth-'))
  const truthFile = join(truthDir, 'truth.json')
  writeFileSync(truthFile, JSON.stringify(dataset))
  process.env.OBS_TEST_LOKI_ADDR = loki.addr
  process.env.OBS_TEST_TRUTH = truthFile
  process.stderr.write(`test Loki (${loki.config} config) ${loki.addr} (log ${loki.logFile}) loaded with ${dataset.entries.length} lines in ${Date.now() - started}ms\n`)
}

export async function globalTeardown(): Promise<void> {
  if (loki) await stopAndRemove(loki)
  if (truthDir) rmSync(truthDir, { recursive: true, force: true })
}
