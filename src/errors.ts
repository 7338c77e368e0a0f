/**
 * Typed errors. Only bin/kubecano turns them into exit codes; everything else
 * throws or returns them. A KubecanoError is a problem the user can fix and
 * is printed as one line plus a hint, never with a stack trace.
 */

/** Documented exit codes (README "Exit codes"). */
export const ExitCode = {
  OK: 0,
  /** The command ran but what it checked or did failed (a delivery, a validation). */
  FAILURE: 1,
  /** Bad usage, bad config or bad input: nothing was attempted. */
  USAGE: 2,
  /** A bug in kubecano: please report it. */
  INTERNAL: 70,
  /** Stopped by SIGINT before finishing. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class KubecanoError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;
  constructor(message: string, opts: { hint?: string | undefined; exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? ExitCode.USAGE;
  }
}

/** Config file missing, unreadable or invalid. `problems` are "file: key.path: what is wrong". */
export class ConfigError extends KubecanoError {
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[] = [], hint?: string) {
    super(message, { hint, exitCode: ExitCode.USAGE });
    this.problems = problems;
  }
}

/** Input the user gave us (a file, an argument) is not what we need. */
export class InputError extends KubecanoError {
  constructor(message: string, hint?: string) {
    super(message, { hint, exitCode: ExitCode.USAGE });
  }
}

/** A runtime operation failed for a reason outside kubecano (port in use, a destination down). */
export class OperationError extends KubecanoError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { hint, exitCode: ExitCode.FAILURE, cause });
  }
}

/** The message of anything thrown, without a stack. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}
