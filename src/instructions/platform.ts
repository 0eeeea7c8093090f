// PLATFORM <platform>...
// The platforms the recipe supports: --platform may ask for these only. Without the line, any.
import type { Span } from "../core/source.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import type { Value } from "./scope.ts";
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";
import { findPlatform, PLATFORM_NAMES, type Platform } from "../image/platform.ts";
import { suggest } from "../diagnostics/suggest.ts";

export interface PlatformInstruction extends Typed {
  kind: "PLATFORM";
  /** Canonical names, in the line's order. */
  platforms: string[];
  /** Each platform's word, for errors. */
  spans: Span[];
}

/** A platform word of a PLATFORM line or a FETCH's PLATFORM option: its canonical name, or NIFTY027. */
export function readPlatform(word: Value, report: Reporter): Platform | undefined {
  const p = findPlatform(word.text);
  if (p === undefined) {
    const near = suggest(word.text, PLATFORM_NAMES);
    const hint = `${near !== undefined ? `did you mean ${near}? ` : ""}platforms: ${PLATFORM_NAMES.join(", ")}`;
    report.error(word.span, "NIFTY027", `unknown platform ${JSON.stringify(word.text)}`, hint);
  }
  return p;
}

export const platform: InstructionSpec<PlatformInstruction> = {
  keyword: "PLATFORM",
  summary:
    "The platforms the recipe supports (Docker's names: linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le, linux/riscv64, linux/386, linux/s390x). `--platform` may ask only for these (a build without it makes linux/amd64). Without the line, any platform may be asked for.",
  syntax: ["PLATFORM <platform>..."],
  example: "PLATFORM linux/amd64 linux/arm64 linux/arm/v7",
  check(ins, report) {
    if (!expectCount(ins, ins.args, report, 1, 16, this.syntax[0]!)) return undefined;
    const platforms: string[] = [];
    const spans: Span[] = [];
    for (const word of ins.args) {
      const p = readPlatform(word, report);
      if (p === undefined) return undefined;
      if (!platforms.includes(p.name)) {
        platforms.push(p.name);
        spans.push(word.span);
      }
    }
    return { kind: "PLATFORM", span: ins.span, platforms, spans };
  },
};
