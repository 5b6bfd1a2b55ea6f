import { ExitCode, type ExitCodeValue, ObsError, UnreachableError } from '../errors.ts'
import { DeadlineError } from '../http.ts'
import type { LokiClient } from '../loki/client.ts'
import { sleep } from '../time.ts'

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip'

export interface CheckOutcome {
  status: CheckStatus
  detail: string
  hint?: string
  /** Handed to the checks that depend on this one. */
  data?: unknown
  /** The limits the check held the measurement to (the deploy checks'), for --json and JUnit. */
  thresholds?: Record<string, number>
}

export interface CheckResult {
  id: string
  title: string
  status: CheckStatus
  detail: string
  hint?: string
  durationMs: number
  thresholds?: Record<string, number>
  /** The check failed because Loki or Alloy could not be reached. */
  unreachable?: boolean
}

export interface Check {
  id: string
  title: string
  dependsOn?: string[]
  run(inputs: Record<string, unknown>): Promise<CheckOutcome>
}

/**
 * Runs the checks concurrently, each as soon as the checks it depends on are
 * done. A check whose dependency did not pass is skipped.
 */
async function runRound(checks: Check[], kept: Map<string, { result: CheckResult; data?: unknown }>) {
  const done = new Map<string, Promise<{ result: CheckResult; data?: unknown }>>()
  const runOne = async (check: Check): Promise<{ result: CheckResult; data?: unknown }> => {
    const previous = kept.get(check.id)
    if (previous && previous.result.status !== 'fail' && previous.result.status !== 'skip') return previous
    const inputs: Record<string, unknown> = {}
    for (const id of check.dependsOn ?? []) {
      const dependency = await done.get(id)
      if (!dependency || (dependency.result.status !== 'pass' && dependency.result.status !== 'warn')) {
        return { result: { id: check.id, title: check.title, status: 'skip', detail: `skipped: ${id} did not pass`, durationMs: 0 } }
      }
      inputs[id] = dependency.data
    }
    const started = performance.now()
    try {
      const outcome = await check.run(inputs)
      const durationMs = Math.round(performance.now() - started)
      const result: CheckResult = { id: check.id, title: check.title, status: outcome.status, detail: outcome.detail, hint: outcome.hint, durationMs }
      if (outcome.thresholds) result.thresholds = outcome.thresholds
      return { result, data: outcome.data }
    } catch (error) {
      const durationMs = Math.round(performance.now() - started)
      if (!(error instanceof ObsError)) throw error
      // The wait ran out during a retry: the round before says more than a request cut short.
      if (error instanceof DeadlineError && previous) return previous
      return {
        result: {
          id: check.id,
          title: check.title,
          status: 'fail',
          detail: error.message,
          hint: error.hint,
          durationMs,
          unreachable: error instanceof UnreachableError,
        },
      }
    }
  }
  for (const check of checks) done.set(check.id, runOne(check))
  const results = new Map<string, { result: CheckResult; data?: unknown }>()
  for (const check of checks) results.set(check.id, await done.get(check.id)!)
  return results
}

export interface RunOptions {
  /** Retry failing checks this long; 0 runs them once. */
  waitMs: number
  intervalMs: number
  onRetry?: (failing: string[], elapsedMs: number) => void
}

/** Runs the checks, retrying the failing ones until they pass or the wait is over. */
export async function runChecks(checks: Check[], options: RunOptions): Promise<CheckResult[]> {
  const started = Date.now()
  let kept = new Map<string, { result: CheckResult; data?: unknown }>()
  for (;;) {
    kept = await runRound(checks, kept)
    const failing = [...kept.values()].filter((r) => r.result.status === 'fail').map((r) => r.result.id)
    const elapsed = Date.now() - started
    if (failing.length === 0 || elapsed >= options.waitMs) break
    options.onRetry?.(failing, elapsed)
    await sleep(Math.min(options.intervalMs, options.waitMs - elapsed))
  }
  return checks.map((check) => kept.get(check.id)!.result)
}

/** Loki's /ready as a check: the first item of both smoke and doctor. */
export function lokiReadyCheck(loki: LokiClient): Check {
  return {
    id: 'loki-ready',
    title: 'Loki responds to /ready',
    async run() {
      const state = await loki.ready()
      return state.ready
        ? { status: 'pass', detail: `ready at ${loki.address}` }
        : {
            status: 'fail',
            detail: `not ready: ${state.message} — queries and pushes may fail`,
            hint: 'wait for Loki to finish starting (obs ready --wait 60s), then read its log (runbooks/TROUBLESHOOTING.md#loki-not-ready)',
          }
    },
  }
}

/**
 * 0 when nothing failed; 3 when a failure was an unreachable server; else 1.
 * A report that could not be written (`reportFailure`) turns a pass into its
 * own code, never a failed check into a pass: the checks' verdict is what a
 * pipeline acts on (3 retry, 1 roll back), the report comes second.
 */
export function checksExitCode(results: CheckResult[], reportFailure?: ObsError): ExitCodeValue {
  const failed = results.filter((r) => r.status === 'fail')
  if (failed.length === 0) return reportFailure?.exitCode ?? ExitCode.ok
  return failed.some((r) => r.unreachable) ? ExitCode.unreachable : ExitCode.failed
}
