// File and byte digests in the "sha256:<hex>" form used everywhere in niftyc.

type Sha256File = (path: string, callback: (error: Error | null, hex: string | null) => void) => void;

/** Streams the file; never reads it whole. */
export async function fileDigest(path: string): Promise<string> {
  // Loaded here, not at the top: builds import this module for bytesDigest
  // and need not load a CommonJS package (and node:util) they do not call.
  const sha256File = (await import("sha256-file")).default as Sha256File;
  const hex = await new Promise<string | null>((done, fail) =>
    sha256File(path, (error, sum) => (error ? fail(error) : done(sum))),
  );
  return `sha256:${hex as string}`;
}

/**
 * A hash of node:crypto's, which is taken only when a digest is made: `niftyc check` loads the
 * modules that hash (instructions, this one) and makes none.
 */
export function newHash(algorithm: "sha256" | "md5"): import("node:crypto").Hash {
  return process.getBuiltinModule("node:crypto").createHash(algorithm);
}

export function bytesDigest(bytes: Buffer | string): string {
  return `sha256:${newHash("sha256").update(bytes).digest("hex")}`;
}
