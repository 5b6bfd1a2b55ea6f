import { UnreachableError } from '../errors.ts'
import { DeadlineError } from '../http.ts'
import { sleep } from '../time.ts'
import type { LokiClient, ReadyState } from './client.ts'

export interface WaitOptions {
  /** How long to keep polling; 0 asks once. The client's deadline (HttpSettings.deadline) ends it, a request in flight included. */
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
 * up, the last answer decides: not ready, or unreachable (exit 3). A request
 * the deadline cuts is no answer: the one before it decides, and with none
 * before it, Loki never answered (exit 3).
 */
export async function waitForReady(client: LokiClient, options: WaitOptions): Promise<ReadyOutcome> {
  const started = Date.now()
  const elapsed = () => Date.now() - started
  let last: { state: ReadyState } | { error: UnreachableError } | undefined
  const settle = (): ReadyOutcome => {
    if (last && 'state' in last) return { ...last.state, address: client.address, waitedMs: elapsed() }
    throw last!.error
  }
  for (;;) {
    let reason: string
    try {
      const state = await client.ready()
      if (state.ready || elapsed() >= options.waitMs) return { ...state, address: client.address, waitedMs: elapsed() }
      last = { state }
      reason = state.message
    } catch (error) {
      if (error instanceof DeadlineError && last) return settle()
      // The deadline ends the wait whatever this clock says: it started first, so on a busy machine it may fire a few ms before elapsed() reaches waitMs.
      if (error instanceof DeadlineError || !(error instanceof UnreachableError) || elapsed() >= options.waitMs) throw error
      last = { error }
      reason = error.message
    }
    options.onWaiting?.(reason, elapsed())
    const pause = Math.max(0, Math.min(options.intervalMs, options.waitMs - elapsed()))
    await sleep(pause)
  }
}
