// File and byte digests in the "sha256:<hex>" form used everywhere in niftyc.
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import sha256File from "sha256-file";

const hashFile = promisify(sha256File as (path: string, callback: (error: Error | null, hex: string | null) => void) => void);

/** Streams the file; never reads it whole. */
export async function fileDigest(path: string): Promise<string> {
  return `sha256:${(await hashFile(path)) as string}`;
}

export function bytesDigest(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
