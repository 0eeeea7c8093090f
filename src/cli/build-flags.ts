// The flags of `niftyc build`, as data: the command line parses them, and so
// does the up-to-date short cut (src/cli/build-stamp.ts) before anything else loads.
import type { OptionSpec } from "./common.ts";

/** The options `niftyc build` shares with commands that build first (instances, run, push). */
export const BUILD_FLAGS = {
  cache: { type: "string" },
  arg: { type: "string", multiple: true },
  secret: { type: "string", multiple: true },
  offline: { type: "boolean" },
  locked: { type: "boolean" },
  mirror: { type: "string", multiple: true },
  timeout: { type: "string" },
  limit: { type: "string", multiple: true },
  strict: { type: "boolean" },
  "allow-writable-setuid": { type: "boolean" },
  "allow-system-binds": { type: "boolean" },
  platform: { type: "string" },
} as const satisfies OptionSpec;

/** Registry access, for push, build --push and the shared cache. */
export const PUSH_FLAGS = {
  username: { type: "string" },
  "password-stdin": { type: "boolean" },
  "ca-file": { type: "string" },
  insecure: { type: "boolean" },
  "cache-to": { type: "string" },
  "cache-from": { type: "string" },
  /** A signing key: the pushed manifest is signed the way cosign and containers/image read. */
  sign: { type: "string" },
  "key-passphrase": { type: "string" },
} as const satisfies OptionSpec;

/** Everything `niftyc build` takes. */
export const BUILD_COMMAND_FLAGS = {
  ...BUILD_FLAGS,
  ...PUSH_FLAGS,
  push: { type: "string" },
  out: { type: "string" },
  format: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const satisfies OptionSpec;
