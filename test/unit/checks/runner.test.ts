/** The check runner: concurrency, dependencies, retries and the exit code the contract gives a pipeline. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type Check, type CheckResult, checksExitCode, runChecks } from '../../../src/lib/checks/runner.ts'
import { ExitCode, UnreachableError, UsageError } from '../../../src/lib/errors.ts'

const result = (id: string, status: CheckResult['status'], unreachable?: boolean): CheckResult => ({ id, title: id, status, detail: '', durationMs: 0, unreachable })

describe('runChecks', () => {
  test('independent checks run at once; a dependent one waits and gets what its dependency handed on', async () => {
    const started: string[] = []
    const slow = (id: string): Check => ({
      id,
      title: id,
      run: async () => {
        started.push(id)
        await new Promise((resolve) => setTimeout(resolve, 50))
        return { status: 'pass', detail: id, data: { from: id } }
      },
    })
    const dependent: Check = { id: 'c', title: 'c', dependsOn: ['a'], run: async (inputs) => ({ status: 'pass', detail: JSON.stringify(inputs) }) }
    const at = performance.now()
    const results = await runChecks([slow('a'), slow('b'), dependent], { waitMs: 0, intervalMs: 0 })
    assert.ok(performance.now() - at < 140, 'a and b ran concurrently, c after a')
    assert.deepEqual(started, ['a', 'b'])
    assert.deepEqual(
      results.map((r) => [r.id, r.status, r.detail]),
      [
        ['a', 'pass', 'a'],
        ['b', 'pass', 'b'],
        ['c', 'pass', '{"a":{"from":"a"}}'],
      ],
    )
  })

  test('a check whose dependency failed is skipped, naming it', async () => {
    const failing: Check = { id: 'a', title: 'a', run: async () => ({ status: 'fail', detail: 'no' }) }
    const dependent: Check = { id: 'b', title: 'b', dependsOn: ['a'], run: async () => assert.fail('must not run') }
    const [, skipped] = await runChecks([failing, dependent], { waitMs: 0, intervalMs: 0 })
    assert.equal(skipped?.status, 'skip')
    assert.equal(skipped?.detail, 'skipped: a did not pass')
  })

  test('--wait: failing checks run again until they pass; passing ones are not repeated; progress is reported', async () => {
    let tries = 0
    let passingRuns = 0
    const flaky: Check = { id: 'late', title: 'late', run: async () => (++tries < 3 ? { status: 'fail', detail: `try ${tries}` } : { status: 'pass', detail: 'arrived' }) }
    const steady: Check = {
      id: 'steady',
      title: 'steady',
      run: async () => {
        passingRuns++
        return { status: 'pass', detail: 'ok' }
      },
    }
    const retries: string[][] = []
    const results = await runChecks([flaky, steady], { waitMs: 5000, intervalMs: 10, onRetry: (failing) => retries.push(failing) })
    assert.deepEqual(
      results.map((r) => r.status),
      ['pass', 'pass'],
    )
    assert.equal(tries, 3)
    assert.equal(passingRuns, 1)
    assert.deepEqual(retries, [['late'], ['late']])
  })

  test("obs's own errors become failures (unreachable ones marked); any other error is a bug and propagates", async () => {
    const down: Check = {
      id: 'down',
      title: 'down',
      run: async () => {
        throw new UnreachableError('cannot reach Loki at http://127.0.0.1:9', 'start Loki')
      },
    }
    const [failed] = await runChecks([down], { waitMs: 0, intervalMs: 0 })
    assert.deepEqual([failed?.status, failed?.detail, failed?.hint, failed?.unreachable], ['fail', 'cannot reach Loki at http://127.0.0.1:9', 'start Loki', true])
    const bug: Check = {
      id: 'bug',
      title: 'bug',
      run: async () => {
        throw new TypeError('x is undefined')
      },
    }
    await assert.rejects(runChecks([bug], { waitMs: 0, intervalMs: 0 }), TypeError)
  })
})

describe('checksExitCode', () => {
  test('0 all pass (warnings and skips included), 1 a check failed, 3 a failure was an unreachable server', () => {
    assert.equal(checksExitCode([result('a', 'pass'), result('b', 'warn'), result('c', 'skip')]), ExitCode.ok)
    assert.equal(checksExitCode([result('a', 'pass'), result('b', 'fail')]), ExitCode.failed)
    assert.equal(checksExitCode([result('a', 'fail'), result('b', 'fail', true)]), ExitCode.unreachable)
  })

  test('a report that could not be written turns a pass into its own code, never a failure into a pass', () => {
    const unwritable = new UsageError('cannot write the JUnit report', 'check the path')
    assert.equal(checksExitCode([result('a', 'pass')], unwritable), ExitCode.usage)
    assert.equal(checksExitCode([result('a', 'fail')], unwritable), ExitCode.failed)
  })
})
