// Cache keys: each step's key chains the key before it, the instruction as
// checked (after substitution, without source positions) and the digests of
// what it reads. The clock, the environment and secret values never join.
import { createHash } from "node:crypto";
import type { Instruction } from "../instructions/index.ts";

/** Bumped when the meaning of a recorded step changes. */
export const STEP_FORMAT = "niftyc-step-v2";

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

export function firstKey(): string {
  return createHash("sha256").update(STEP_FORMAT).digest("hex");
}

export function hashText(...parts: string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex");
}
