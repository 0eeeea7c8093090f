// What a line sees when it is checked: the ARG and ENV values declared above
// it, and each word after substitution. Part of the instruction contract; the
// substitution itself is the checker's (src/check/substitute.ts).
import type { Span } from "../core/source.ts";

/** A word after substitution. */
export interface Value {
  /** Full build-time value: quotes removed, ARG and ENV replaced. */
  text: string;
  /** The word as written, ARG replaced, ENV references kept: for shell commands. */
  shell: string;
  span: Span;
}

export class Scope {
  /** ARG name → value (undefined: declared without a value). */
  readonly args = new Map<string, string | undefined>();
  readonly env = new Map<string, string>();
  /** Values given with --arg; they override ARG defaults. */
  readonly overrides: ReadonlyMap<string, string>;

  constructor(overrides: ReadonlyMap<string, string>) {
    this.overrides = overrides;
  }

  declareArg(name: string, fallback: string | undefined): void {
    this.args.set(name, this.overrides.get(name) ?? fallback);
  }

  declareEnv(name: string, value: string): void {
    this.env.set(name, value);
  }
}
