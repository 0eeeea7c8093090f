// Each stage of the build names what it was doing when it failed. A recipe's
// mistake already says where it is; an I/O failure of the host (a damaged
// store, a full disk) is told as such, with what to do, instead of surfacing
// as an internal error.
import { NiftyError } from "../diagnostics/errors.ts";
import { BuildFailed } from "./failure.ts";
import { STORE_DAMAGED_HINT as STORE_HINT } from "../cache/store.ts";

const HINTS: Record<string, string> = {
  ENOSPC:
    "the disk is full: free space (`niftyc cache gc` removes blobs no recent build used) and build again",
  EDQUOT: "the disk quota is used up: free space and build again",
  EACCES: "niftyc may not write there: check the permissions of the cache and output directories",
  EROFS: "the cache or output directory is on a read-only file system",
};

export async function stage<T>(doing: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw explain(doing, error);
  }
}

function explain(doing: string, error: unknown): unknown {
  if (error instanceof NiftyError || error instanceof BuildFailed) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = (error as Error | undefined)?.message ?? String(error);
  if (typeof code === "string" && /^E[A-Z]+$/.test(code))
    return new NiftyError("NIFTY230", `${doing} failed: ${message}`, HINTS[code] ?? STORE_HINT);
  return error;
}
