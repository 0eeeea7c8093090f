// Small helpers shared by the fetch and cache tests.
import { createHash, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export function sha256(buf: Uint8Array): string {
  return `sha256:${createHash("sha256").update(buf).digest("hex")}`;
}

/** Deterministic pseudo-random bytes, so failures reproduce. */
export function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let h = createHash("sha256").update(String(seed)).digest();
  for (let off = 0; off < n; off += h.length) {
    h.copy(out, off);
    h = createHash("sha256").update(h).digest();
  }
  return out;
}

const created: string[] = [];
// Temp dirs go when the test process does, whatever the tests' outcome.
process.once("exit", () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

export async function tempDir(prefix = "niftyc-test-"): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** Poll until `check` holds; bounded, so a broken test fails instead of hanging. */
export async function waitFor(check: () => Promise<boolean>, what: string, tries = 2000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`gave up waiting for ${what}`);
}

export function uniqueName(): string {
  return randomBytes(4).toString("hex");
}
