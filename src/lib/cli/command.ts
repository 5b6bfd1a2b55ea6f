import { Command } from '@oclif/core/command'
import { renderChecklist } from '../checks/report.ts'
import { type CheckResult, checksExitCode } from '../checks/runner.ts'
import { type AppIdentity, type ConnectionFlags, resolveSettings, type Settings } from '../config/settings.ts'
import { ExitCode, ObsError } from '../errors.ts'
import { LokiClient } from '../loki/client.ts'
import { type Fitted, withinQueryLength } from '../loki/query-length.ts'
import { chalkFor, guardStdout } from '../render/terminal.ts'
import { redactWrites } from '../secrets.ts'
import { neutralize, oneLine } from '../text.ts'
import type { TimeRange } from '../time.ts'
import { connectionFlags } from './flags.ts'

/**
 * The base of every obs command: connection flags, settings resolution,
 * clients, and one place that turns errors into a line on stderr and the
 * contract's exit code.
 */
export abstract class ObsCommand extends Command {
  static override baseFlags = connectionFlags

  private clients: { close(): Promise<void> }[] = []

  override async init(): Promise<void> {
    guardStdout()
    await super.init()
  }

  protected get stderrChalk() {
    return chalkFor(process.stderr)
  }

  protected get stdoutChalk() {
    return chalkFor(process.stdout)
  }

  protected async resolveSettings(flags: ConnectionFlags, identity?: Partial<AppIdentity>): Promise<Settings> {
    const settings = await resolveSettings({
      flags,
      env: process.env,
      cwd: process.cwd(),
      version: this.config.version,
      identity,
      command: this.id,
      debug: process.env.OBS_DEBUG ? (line) => process.stderr.write(`${this.stderrChalk.dim(`debug: ${line}`)}\n`) : undefined,
      onRetry: process.stderr.isTTY ? (line) => process.stderr.write(`${this.stderrChalk.dim(line)}\n`) : undefined,
    })
    // From here on, whatever obs prints passes the one redactor: what servers send back, errors, debug lines.
    redactWrites(process.stdout, settings.redactor)
    redactWrites(process.stderr, settings.redactor)
    for (const warning of settings.warnings) this.warn(warning)
    return settings
  }

  protected async lokiClient(flags: ConnectionFlags): Promise<LokiClient> {
    const settings = await this.resolveSettings(flags)
    return this.track(new LokiClient(settings.loki))
  }

  protected track<T extends { close(): Promise<void> }>(client: T): T {
    this.clients.push(client)
    return client
  }

  /** Asks Loki over the range, cut to its max_query_length with a note on stderr when longer (query-length.ts). */
  protected withinQueryLength<T>(client: LokiClient, range: TimeRange, ask: (range: TimeRange) => Promise<T>): Promise<Fitted<T>> {
    return withinQueryLength(client, range, ask, (line) => this.note(line))
  }

  /** A diagnostic line on stderr. */
  protected note(message: string): void {
    process.stderr.write(`${message}\n`)
  }

  override warn(input: string | Error): string | Error {
    const message = typeof input === 'string' ? input : input.message
    process.stderr.write(`${this.stderrChalk.yellow('warning:')} ${message}\n`)
    return input
  }

  protected async writeJson(document: unknown): Promise<void> {
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`)
  }

  /** Prints check results (checklist, or the contract's JSON document) and exits with their code. */
  /** Prints the checks; a report that could not be written (--junit) is said after them. */
  protected async reportChecks(results: CheckResult[], json: boolean | undefined, reportFailure?: ObsError): Promise<void> {
    const ok = results.every((r) => r.status !== 'fail')
    if (json) await this.writeJson({ ok, checks: results.map(({ unreachable: _, ...result }) => result) })
    else process.stdout.write(renderChecklist(results, this.stdoutChalk))
    if (reportFailure) process.stderr.write(`${this.stderrChalk.red('error:')} ${reportFailure.render()}\n`)
    const code = checksExitCode(results, reportFailure)
    if (code !== ExitCode.ok) this.exit(code)
  }

  override async finally(error: Error | undefined): Promise<void> {
    await Promise.allSettled(this.clients.map((client) => client.close()))
    await super.finally(error)
  }

  override async catch(error: Error & { oclif?: { exit?: number }; code?: unknown }): Promise<void> {
    const chalk = this.stderrChalk
    // this.exit() throws to unwind; it is not an error to report.
    if (error.code === 'EEXIT') throw error
    if (error instanceof ObsError) {
      process.stderr.write(`${chalk.red('error:')} ${error.render()}\n`)
      this.exit(error.exitCode)
    }
    const exit = error.oclif?.exit
    if (exit === ExitCode.ok) throw error
    if (typeof exit === 'number') {
      // oclif's own parse errors: bad flags or arguments, exit 2 per the contract.
      const reason = error.message
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('See more help'))
        .join(' ')
        .replace(/:\s*;/g, ':')
      process.stderr.write(`${chalk.red('error:')} ${neutralize(reason)}; see obs ${this.id ?? ''} --help\n`)
      this.exit(exit === 1 ? ExitCode.usage : exit)
    }
    if (process.env.OBS_DEBUG) throw error
    process.stderr.write(`${chalk.red('error:')} unexpected: ${oneLine(error.message)}; this is a bug in obs: run it again with OBS_DEBUG=1 and report what it prints\n`)
    this.exit(ExitCode.failed)
  }
}
