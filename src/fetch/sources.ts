// What a FETCH source may be, told without a mirror or the network: the one rule that
// `niftyc check` (NIFTY049, at the source's word) and the build (resolveSources) both apply.
import type { ErrorCode } from "../diagnostics/codes.ts";

/** Schemes resolved against mirrors, besides plain http(s) URLs. */
export const MIRROR_SCHEMES = ["debian"] as const;
export type MirrorScheme = (typeof MIRROR_SCHEMES)[number];

/** Why a source or URL cannot be used, with the code the build raises for it. */
export interface SourceProblem {
  code: Extract<ErrorCode, "NIFTY110" | "NIFTY112" | "NIFTY113">;
  message: string;
  hint: string;
}

/** A source split into its scheme (lower case) and the rest; undefined without a scheme. */
export function splitSource(src: string): { scheme: string; rest: string } | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(src);
  return m ? { scheme: m[1]!.toLowerCase(), rest: m[2]! } : undefined;
}

/** An absolute http(s) URL with a host, or why not. */
export function httpUrlProblem(url: string, what: string): SourceProblem | undefined {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (u && (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "") return undefined;
  return {
    code: "NIFTY112",
    message: `invalid URL for ${what}: ${JSON.stringify(url)}`,
    hint: "give an absolute http:// or https:// URL",
  };
}

/**
 * What is wrong with a source, or undefined: http(s) must parse as a URL with a host; a mirror
 * scheme takes a path inside the archive, relative (no leading `/`), not empty, without `..`.
 */
export function sourceProblem(src: string): SourceProblem | undefined {
  const split = splitSource(src);
  if (split?.scheme === "http" || split?.scheme === "https") return httpUrlProblem(src, "source");
  if (split !== undefined && (MIRROR_SCHEMES as readonly string[]).includes(split.scheme)) {
    const { scheme, rest } = split;
    if (rest === "" || rest.startsWith("/") || rest.split("/").includes("..")) {
      return {
        code: "NIFTY113",
        message: `invalid path in source ${JSON.stringify(src)}`,
        hint: `write ${scheme}:<path inside the archive, relative, without ..>, e.g. ${scheme}:pool/main/b/busybox/<file>.deb`,
      };
    }
    return undefined;
  }
  return {
    code: "NIFTY110",
    message: `unsupported source ${JSON.stringify(src)}`,
    hint: `supported sources: http://…, https://…, ${MIRROR_SCHEMES.map((s) => `${s}:<path>`).join(", ")}`,
  };
}
