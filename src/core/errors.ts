// The one error class for user mistakes and environment problems: a stable
// code (documented in docs/diagnostics.md), a message, and a hint on what to do.
// Only the CLI prints these.
export class NiftyError extends Error {
  code: string;
  hint?: string;

  constructor(code: string, message: string, hint?: string) {
    super(message);
    this.name = "NiftyError";
    this.code = code;
    if (hint !== undefined) this.hint = hint;
  }
}

export function isNiftyError(err: unknown): err is NiftyError {
  return err instanceof NiftyError;
}
