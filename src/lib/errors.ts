/** Exit codes of the CLI contract. */
export const ExitCode = {
  ok: 0,
  /** A check failed, Loki is not ready, or nothing was found. */
  failed: 1,
  /** Bad input; nothing was sent. */
  usage: 2,
  /** Loki or Alloy unreachable, credentials refused, or failing after retries. */
  unreachable: 3,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * An error meant for the user: its message is one line naming the problem, the
 * hint names the fix. Commands print it without a stack trace.
 */
export class ObsError extends Error {
  readonly exitCode: ExitCodeValue
  readonly hint?: string

  constructor(message: string, exitCode: ExitCodeValue, hint?: string) {
    super(message)
    this.name = 'ObsError'
    this.exitCode = exitCode
    this.hint = hint
  }

  /** Text to print: the message, then the hint on the same line. */
  render(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message
  }
}

export class UsageError extends ObsError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.usage, hint)
    this.name = 'UsageError'
  }
}

/** Loki or Alloy could not be reached, refused us, or kept failing. */
export class UnreachableError extends ObsError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.unreachable, hint)
    this.name = 'UnreachableError'
  }
}

/**
 * Loki answered, but the feature asked for is switched off there (volumes,
 * the pattern ingester): exit 1, as for a check that failed. Nothing was
 * wrong with the input (2) and the server is reachable (3); what the user
 * needs is the setting that turns it on, which the hint names.
 */
export class UnavailableError extends ObsError {
  /** The feature, for notes that mention it ("volumes", "patterns"). */
  readonly feature: string

  constructor(feature: string, message: string, hint?: string) {
    super(message, ExitCode.failed, hint)
    this.name = 'UnavailableError'
    this.feature = feature
  }
}
