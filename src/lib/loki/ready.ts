import { UnreachableError } from '../errors.ts'
import { sleep } from '../time.ts'
import type { LokiClient, ReadyState } from './client.ts'

export interface WaitOptions {
  /** How long to keep polling; 0 asks once. */
  waitMs: number
  intervalMs: number
  /** Called after each attempt that was not ready, with what Loki said or why it could not be reached. */
  onWaiting?: (reason: string, elapsedMs: number) => void
}

export interface ReadyOutcome extends ReadyState {
  address: string
  waitedMs: number
}

/**
 * Asks Loki's /ready, polling until it is ready or the wait is over. While
 * waiting, an unreachable Loki counts as "still starting"; once the time is
 * up, the last answer decides: not ready, or unreachable (exit 3).
 */
export async function waitForReady(client: LokiClient, options: WaitOptions): Promise<ReadyOutcome> {
  const started = Date.now()
  const elapsed = () => Date.now() - started
  for (;;) {
    let reason: string
    try {
      const state = await client.ready()
      if (state.ready || elapsed() >= options.waitMs) return { ...state, address: client.address, waitedMs: elapsed() }
      reason = state.message
    } catch (error) {
      if (!(error instanceof UnreachableError) || elapsed() >= options.waitMs) throw error
      reason = error.message
    }
    options.onWaiting?.(reason, elapsed())
    const pause = Math.max(0, Math.min(options.intervalMs, options.waitMs - elapsed()))
    await sleep(pause)
  }
}
