// FetchError on its own, apart from the store: instructions/fetch.ts blames
// a FETCH line's words by it, and `niftyc check`, which loads that module,
// need not load the store (and node:stream) for a class it never meets.
import type { ErrorCode } from "../diagnostics/codes.ts";
import { NiftyError } from "../diagnostics/errors.ts";

/**
 * Which part of a request for a blob is at fault: the digest that names the
 * bytes, the sources they come from, or the member taken out of them. A FETCH
 * line points at the matching word; the code only says what went wrong.
 */
export type FetchBlame = "digest" | "sources" | "member";

/**
 * A failure to get the blob a request names, and the part of the request to
 * blame. Raised by the store, the lowest layer that raises one (a digest that
 * is malformed or does not match), and by src/fetch/.
 */
export class FetchError extends NiftyError {
  readonly blame: FetchBlame;

  constructor(code: ErrorCode, blame: FetchBlame, message: string, hint?: string, details?: string[]) {
    super(code, message, hint, details);
    this.blame = blame;
  }
}
