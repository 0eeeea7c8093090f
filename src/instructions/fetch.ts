// FETCH <name> <source>... sha256:<hex> [EXTRACT <member>] [TO <path>] [MODE <octal>]
// A pinned download (or one member of a downloaded archive) placed in the image.
import type { Span } from "../core/source.ts";
import type { Expanded, InstructionSpec, Typed } from "./spec.ts";
import type { Value } from "./scope.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { FetchError, type FetchBlame } from "../cache/fetch-error.ts";
import { StepError } from "./context.ts";
import { checkWritableSetuid, readImagePath, readMode, readOptions, spanOf } from "./args.ts";
import { ROOT } from "./files.ts";
import { readPlatform } from "./platform.ts";
import { sourceProblem } from "../fetch/sources.ts";

export interface FetchInstruction extends Typed {
  kind: "FETCH";
  name: string;
  sources: string[];
  digest: string;
  extract?: string;
  to: string;
  mode: number;
  /** The one platform this file is for (PLATFORM linux/arm64); without it, every platform's. */
  platform?: string;
  /** Where build-time failures point: the sources, the digest. */
  sourcesSpan: Span;
  digestSpan: Span;
}

/** The part of a FETCH line that a fetch error's blame names. */
const BLAMED: Record<FetchBlame, (t: FetchInstruction) => Span> = {
  digest: (t) => t.digestSpan,
  sources: (t) => t.sourcesSpan,
  member: (t) => t.span,
};

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const FETCH_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export const fetch: InstructionSpec<FetchInstruction> = {
  keyword: "FETCH",
  layer: "base",
  summary:
    "Download a file pinned by its sha256 (from the first source that works; the content store is asked first), or one member of a downloaded archive (.deb, .tar, .tar.gz, .tar.xz, .tar.zst), and place it in the image.",
  syntax: [
    "FETCH <name> <source>... sha256:<64 hex> [EXTRACT <member>] [TO <path>] [MODE <octal>] [PLATFORM <platform>]",
  ],
  example:
    "FETCH busybox debian:pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb \\\n    sha256:3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744 \\\n    EXTRACT bin/busybox TO /bin/busybox",
  check(ins, report, model) {
    const opts = readOptions(ins, report, {
      EXTRACT: "value",
      TO: "value",
      MODE: "value",
      PLATFORM: "value",
    });
    const platformWord = opts.values.get("PLATFORM");
    const platform = platformWord === undefined ? undefined : readPlatform(platformWord, report);
    if (platformWord !== undefined && platform === undefined) return undefined;
    const [nameWord, ...rest] = opts.positional;
    if (nameWord === undefined) {
      report.error(
        ins.keywordSpan,
        "NIFTY040",
        "FETCH needs a name, at least one source and a sha256 digest",
        `usage: ${this.syntax[0]}`,
      );
      return undefined;
    }
    const nameOk = checkName(nameWord, report);
    const { digestWord, sources, ok: digestOk } = readDigest(nameWord, rest, report, this.syntax[0]!);
    const sourcesOk = checkSources(sources, digestWord, report);
    const extract = opts.values.get("EXTRACT");
    const toWord = opts.values.get("TO");
    const { to, ok: placeOk } = readPlace(ins, extract, toWord, report);
    const modeWord = opts.values.get("MODE");
    const mode = modeWord === undefined ? 0o755 : readMode(modeWord, report);
    const ok = nameOk && digestOk && sourcesOk && placeOk;
    if (!ok || to === undefined || mode === undefined || digestWord === undefined) return undefined;
    if (modeWord && !checkWritableSetuid(modeWord, { path: to, mode, ...ROOT }, model, report))
      return undefined;
    try {
      model.tree.set(model.tree.placement(to), {
        type: "file",
        mode,
        ...ROOT,
        content: { digest: digestWord.text, size: 0 },
      });
    } catch (error) {
      report.error((toWord ?? ins).span, "NIFTY052", (error as Error).message);
      return undefined;
    }
    return {
      kind: "FETCH",
      span: ins.span,
      name: nameWord.text,
      sources: sources.map((s) => s.text),
      digest: digestWord.text,
      ...(extract ? { extract: extract.text } : {}),
      to,
      mode,
      ...(platform ? { platform: platform.name } : {}),
      sourcesSpan: spanOf(sources[0]!.span, sources[sources.length - 1]!.span),
      digestSpan: digestWord.span,
      ...(modeWord ? { modeSpan: modeWord.span } : {}),
    };
  },
  inputs(t) {
    return [
      { name: t.name, sources: t.sources, digest: t.digest, ...(t.extract ? { extract: t.extract } : {}) },
    ];
  },
  async apply(t, context) {
    let content;
    try {
      content = await context.fetch({
        name: t.name,
        sources: t.sources,
        digest: t.digest,
        span: t.span,
        sourcesSpan: t.sourcesSpan,
        ...(t.extract ? { extract: t.extract } : {}),
      });
    } catch (error) {
      // Point at the word the error blames: the digest (a mismatch, a blob missing offline), the
      // sources (no source answers, no mirror); the line has no word of its own for the member.
      if (error instanceof NiftyError && !(error instanceof StepError)) {
        const span = error instanceof FetchError ? BLAMED[error.blame](t) : t.span;
        throw new StepError(error.code, span, error.message, error.hint, error.details);
      }
      throw error;
    }
    context.tree.set(context.tree.placement(t.to), { type: "file", mode: t.mode, ...ROOT, content });
  },
  sbom: {
    inputs(typed, into) {
      const { name, digest, sources, extract } = typed;
      into.fetches.push({ name, digest, sources: [...sources], ...(extract ? { extract } : {}) });
    },
    origin: (typed) => ({ fetch: `${typed.name}@${typed.digest}` }),
  },
};

function checkName(nameWord: Value, report: Reporter): boolean {
  if (FETCH_NAME.test(nameWord.text)) return true;
  report.error(
    nameWord.span,
    "NIFTY044",
    `bad FETCH name ${JSON.stringify(nameWord.text)}`,
    "the name labels the download in messages; use letters, digits, . _ + -",
  );
  return false;
}

/** The digest word (the last word, sha256:<64 hex>) and the sources before it. */
function readDigest(nameWord: Value, rest: Value[], report: Reporter, usage: string) {
  const digestIndex = rest.findIndex(
    (w) => w.text.toLowerCase().startsWith("sha256:") || /^[0-9a-fA-F]{64}$/.test(w.text),
  );
  const digestWord = digestIndex < 0 ? undefined : rest[digestIndex];
  const sources = rest.slice(0, digestIndex < 0 ? rest.length : digestIndex);
  let ok = true;
  if (digestWord === undefined) {
    report.error(
      rest.length > 0 ? spanOf(rest[0]!.span, rest[rest.length - 1]!.span) : nameWord.span,
      "NIFTY045",
      "FETCH needs the sha256 digest of what it downloads",
      "add sha256:<64 hex digits>; `sha256sum FILE` or `niftyc cache import FILE` prints it",
    );
    ok = false;
  } else if (!DIGEST.test(digestWord.text)) {
    const hex = /^(?:sha256:)?([0-9a-fA-F]{64})$/i.exec(digestWord.text)?.[1];
    const hint =
      hex !== undefined
        ? `write sha256:${hex.toLowerCase()}`
        : "a digest is sha256: followed by 64 lower-case hex digits";
    report.error(digestWord.span, "NIFTY046", `malformed digest ${JSON.stringify(digestWord.text)}`, hint);
    ok = false;
  } else if (digestIndex !== rest.length - 1) {
    report.error(rest[digestIndex + 1]!.span, "NIFTY047", "sources go before the digest", `usage: ${usage}`);
    ok = false;
  }
  return { digestWord, sources, ok };
}

/** At least one source, each https://, http:// or debian:<path in the archive>. */
function checkSources(sources: Value[], digestWord: Value | undefined, report: Reporter): boolean {
  let ok = true;
  if (sources.length === 0 && digestWord !== undefined) {
    report.error(
      digestWord.span,
      "NIFTY048",
      "FETCH needs at least one source before the digest",
      "a source is https://…, http://… or debian:<path in the Debian archive>",
    );
    ok = false;
  }
  // The build's own rule (src/fetch/sources.ts), so a source check passes never fails to resolve.
  for (const source of sources) {
    const problem = sourceProblem(source.text);
    if (problem === undefined) continue;
    report.error(source.span, "NIFTY049", problem.message, problem.hint);
    ok = false;
  }
  return ok;
}

/** Where the file goes: TO, or the EXTRACTed member's own path; the member may not climb out. */
function readPlace(ins: Expanded, extract: Value | undefined, toWord: Value | undefined, report: Reporter) {
  let ok = true;
  let to: string | undefined;
  if (toWord !== undefined) to = readImagePath(toWord, report);
  else if (extract !== undefined) to = "/" + extract.text.replace(/^(\.\/|\/)+/, "");
  else {
    report.error(
      ins.keywordSpan,
      "NIFTY050",
      "FETCH needs TO <path> to place the file",
      "add TO /bin/<name>, or EXTRACT <member> to take a file out of an archive",
    );
    ok = false;
  }
  if (extract !== undefined && (extract.text.startsWith("/") || extract.text.split("/").includes(".."))) {
    report.error(
      extract.span,
      "NIFTY051",
      `archive member ${JSON.stringify(extract.text)} is absolute or climbs with ".."`,
      "name the member as the archive lists it, e.g. bin/busybox",
    );
    ok = false;
  }
  return { to, ok };
}
