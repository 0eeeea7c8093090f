// The one error class for user mistakes and environment problems: a stable
// code from the table in codes.ts, a message, and a hint on what to do.
// Only the CLI prints these. It lives here rather than in src/core because its
// code is typed by that table: a code that is not an error code in the table
// does not compile. Nothing in src/core raises one.
import type { ErrorCode } from "./codes.ts";

export class NiftyError extends Error {
  readonly code: ErrorCode;
  hint?: string;
  /** Lines under the message, one fact each (a URL tried and why it failed); shown each on its own line. */
  details?: string[];

  constructor(code: ErrorCode, message: string, hint?: string, details?: string[]) {
    super(message);
    this.name = "NiftyError";
    this.code = code;
    if (hint !== undefined) this.hint = hint;
    if (details !== undefined && details.length > 0) this.details = details;
  }
}

export function isNiftyError(err: unknown): err is NiftyError {
  return err instanceof NiftyError;
}
