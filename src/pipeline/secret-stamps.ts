// Secret stamps: a local record beside the output directory that lets a
// rebuild recognise an unchanged secret file without recomputing what is
// derived from it (the SHA-512 crypt of a password, thousands of rounds),
// the way make and ninja recognise unchanged inputs. It maps a hash of the
// file's identity (device, inode, size, mtime, ctime, path) and the use to
// the step-key input derived from it: a digest of the crypt hash, which is in
// the image anyway. Never the secret, never a fast hash of it; never in the
// content store, so no cache entry can serve as an oracle for guesses.
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../core/atomic.ts";
import { hashText } from "./keys.ts";

const FORMAT = 1;

interface StampFile {
  format: number;
  inputs: Record<string, string>;
}

export class SecretStamps {
  readonly file: string;
  #known: Record<string, string>;
  #used: Record<string, string> = {};
  #stamps: ReadonlyMap<string, string>;

  constructor(file: string, known: Record<string, string>, stamps: ReadonlyMap<string, string>) {
    this.file = file;
    this.#known = known;
    this.#stamps = stamps;
  }

  /** The recorded input for this use of the secret, when its file is unchanged; else `make()`, recorded. */
  async input(use: string, id: string, make: () => Promise<string>): Promise<string> {
    const stamp = this.#stamps.get(id);
    if (stamp === undefined) return make();
    const key = hashText("secret-stamp", use, id, stamp);
    const value = this.#known[key] ?? (await make());
    this.#used[key] = value;
    return value;
  }

  /** Keep the entries this build used (and only those), when they differ from the file's. */
  async save(): Promise<void> {
    const used = Object.keys(this.#used).sort();
    if (
      used.length === Object.keys(this.#known).length &&
      used.every((k) => this.#known[k] === this.#used[k])
    )
      return;
    const inputs = Object.fromEntries(used.map((k) => [k, this.#used[k]!]));
    await writeFileAtomic(this.file, JSON.stringify({ format: FORMAT, inputs } satisfies StampFile) + "\n", {
      mode: 0o600,
    });
  }
}

/** The stamps beside `outDir` (`.<name>.secret-stamps.json` in its parent); none when unreadable. */
export async function readSecretStamps(
  outDir: string,
  stamps: ReadonlyMap<string, string>,
): Promise<SecretStamps> {
  const file = join(dirname(outDir), `.${basename(outDir)}.secret-stamps.json`);
  let known: Record<string, string> = {};
  try {
    // Synchronous, as the store's records: a small local file.
    const parsed = JSON.parse(readFileSync(file, "utf8")) as StampFile;
    if (parsed.format === FORMAT && typeof parsed.inputs === "object" && parsed.inputs !== null)
      known = parsed.inputs;
  } catch {
    // Absent or unreadable: every secret-derived input is computed again.
  }
  return new SecretStamps(file, known, stamps);
}
