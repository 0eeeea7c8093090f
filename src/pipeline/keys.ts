// Cache keys: each step's key chains the key before it, the instruction as
// checked (after substitution, without source positions) and the digests of
// what it reads. The clock, the environment and secret values never join.
import { createHash } from "node:crypto";
import { NIFTYC_VERSION } from "../core/version.ts";
import type { Instruction } from "../instructions/index.ts";

/**
 * Bumped when the meaning of a recorded step changes between releases (v3: SERVICE enable follows
 * an alias to its unit and reads CRLF units as systemctl does); a release moves every key anyway.
 */
export const STEP_FORMAT = "niftyc-step-v3";

/** The instruction as data, without spans: equal meaning gives equal text. */
export function canonical(instruction: Instruction): string {
  return JSON.stringify(instruction, (key, value) =>
    key === "span" || key.endsWith("Span") ? undefined : value,
  );
}

export function stepKey(previous: string, instruction: Instruction, inputs: readonly string[]): string {
  const hash = createHash("sha256").update(previous).update("\n").update(canonical(instruction));
  for (const input of inputs) hash.update("\n").update(input);
  return hash.digest("hex");
}

/**
 * The key before the first step, so every step's key, the tarballs' and the outputs' keys after
 * it: the step format, niftyc's version (a release never replays records an older one made, from
 * this store or a registry's cache) and the platform, except for the default linux/amd64.
 */
export function firstKey(platform = "linux/amd64", version = NIFTYC_VERSION): string {
  const hash = createHash("sha256").update(STEP_FORMAT).update("\nniftyc ").update(version);
  if (platform !== "linux/amd64") hash.update("\nplatform ").update(platform);
  return hash.digest("hex");
}

export function hashText(...parts: string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex");
}
