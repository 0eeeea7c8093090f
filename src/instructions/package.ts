// PACKAGE <name>[:<arch>][<op><version>]... [FILES <path>...]
// Debian packages by name: the dependency closure from the ARCHIVE lines'
// signed indices, pinned in the recipe's lockfile. Whole packages, or only
// some of their files plus the libraries those programs load. Maintainer
// scripts never run.
import type { InstructionSpec, Typed } from "./spec.ts";
import { readImagePath, readOptions } from "./args.ts";
import { packageNameProblem, type VersionConstraint } from "../debian/relations.ts";
import { versionProblem } from "../debian/version.ts";
import type { LockRequest } from "../debian/lockfile.ts";
// What lockfile.ts's lockRequestText is, taken from relations.ts: checking a recipe loads no lock code.
import { formatRelation as lockRequestText } from "../debian/relations.ts";
import { platformOfDebian } from "../image/platform.ts";
import type { Span } from "../core/source.ts";

export interface PackageInstruction extends Typed {
  kind: "PACKAGE";
  requests: LockRequest[];
  /** Only these paths (and the libraries the programs among them load); absent: whole packages. */
  files?: string[];
  /**
   * Where each request naming an architecture (`foo:arm64`) writes it, by request text: each
   * platform's build judges it (forPlatform). Left out of cache keys, as every span is.
   */
  qualifierSpan?: Record<string, Span>;
  /** Each request's word, by request text: a resolver error about it points there. Left out of cache keys too. */
  requestSpan: Record<string, Span>;
  /** Each FILES path's word, by path: a path the packages do not ship is shown there. Left out of cache keys too. */
  fileSpan?: Record<string, Span>;
}

const REQUEST = /^([^:<>=\s]+)(?::([a-z0-9-]+))?(?:(<<|<=|>=|>>|=)(.*))?$/;

/** Qualifiers every platform honours: Debian's `native` and `any`. An architecture's name is judged per platform. */
export const EVERY_PLATFORM: readonly string[] = ["native", "any"];

/** The span of `:arch` in a word written as it reads; the whole word when quoting or substitution moved it. */
function qualifierSpan(span: Span, text: string, name: string, arch: string): Span {
  if (span.start.line !== span.end.line || span.end.offset - span.start.offset !== text.length) return span;
  const from = name.length;
  const to = from + 1 + arch.length;
  return {
    start: { offset: span.start.offset + from, line: span.start.line, column: span.start.column + from },
    end: { offset: span.start.offset + to, line: span.start.line, column: span.start.column + to },
  };
}

export const packageSpec: InstructionSpec<PackageInstruction> = {
  keyword: "PACKAGE",
  layer: "base",
  summary:
    "Install Debian packages by name, with their Depends and Pre-Depends, from the ARCHIVE lines' suites; the lockfile beside the recipe pins every package by digest. With FILES, only those files and the shared libraries their programs load come from the closure. Maintainer scripts are never run.",
  syntax: ["PACKAGE <name>[:<arch>][<op><version>]... [FILES <path>...]"],
  editor: "packages",
  example: "PACKAGE dropbear-bin FILES /usr/sbin/dropbear /usr/bin/dropbearkey",
  check(ins, report, model) {
    const opts = readOptions(ins, report, { FILES: "list" });
    if (opts.positional.length === 0) {
      report.error(
        ins.keywordSpan,
        "NIFTY066",
        "PACKAGE needs at least one package name",
        `usage: ${this.syntax[0]}`,
      );
      return undefined;
    }
    if (model.archives.size === 0) {
      // The ARCHIVE line's own errors say what is wrong.
      if (model.archiveFailed) return undefined;
      report.error(
        ins.keywordSpan,
        "NIFTY068",
        "PACKAGE needs an ARCHIVE line before it",
        "declare where packages come from first, e.g. ARCHIVE debian bookworm",
      );
      return undefined;
    }
    const requests: LockRequest[] = [];
    const spans: Record<string, Span> = {};
    const requestSpan: Record<string, Span> = {};
    for (const word of opts.positional) {
      const request = readRequest(word.text);
      if (typeof request === "string") {
        const why = `bad package request ${JSON.stringify(word.text)}: ${request}`;
        report.error(word.span, "NIFTY067", why, requestHint(word.text));
        continue;
      }
      const arch = request.arch;
      if (arch !== undefined && !EVERY_PLATFORM.includes(arch) && platformOfDebian(arch) === undefined) {
        const why =
          arch === "all"
            ? "an Architecture: all package is installed as the image's own"
            : `${arch} is not the architecture of any platform niftyc builds`;
        report.error(
          qualifierSpan(word.span, word.text, request.name, arch),
          "NIFTY015",
          `PACKAGE cannot install ${request.name}:${arch}: ${why}`,
          `write ${request.name} without :${arch}: each platform resolves the name for itself`,
        );
        continue;
      }
      if (arch !== undefined && !EVERY_PLATFORM.includes(arch))
        spans[lockRequestText(request)] = qualifierSpan(word.span, word.text, request.name, arch);
      requestSpan[lockRequestText(request)] = word.span;
      requests.push(request);
    }
    const fileWords = opts.lists.get("FILES");
    const files: string[] = [];
    const fileSpan: Record<string, Span> = {};
    for (const word of fileWords ?? []) {
      const path = readImagePath(word, report);
      if (path === undefined) continue;
      files.push(path);
      fileSpan[path] = word.span;
    }
    if (requests.length !== opts.positional.length || files.length !== (fileWords?.length ?? 0))
      return undefined;
    if (fileWords === undefined) {
      model.opaquePackages = true;
      // A package may ship any path: what FILE wrote before may be replaced.
      model.fileTexts = new WeakMap();
    } else
      for (const path of files)
        model.tree.set(model.tree.placement(path), {
          type: "file",
          mode: 0o755,
          uid: 0,
          gid: 0,
          content: { digest: "", size: 0 },
        });
    const qualified = Object.keys(spans).length > 0 ? { qualifierSpan: spans } : {};
    return {
      kind: "PACKAGE",
      span: ins.span,
      requests,
      requestSpan,
      ...(fileWords ? { files, fileSpan } : {}),
      ...qualified,
    };
  },
  packages(t) {
    return { requests: t.requests, span: t.span, requestSpan: t.requestSpan };
  },
  async keyInputs(t, context) {
    // The closure, pinned by digest: a new lock entry rebuilds the step.
    const locked = context.packages(t.requests.map(lockRequestText), t.span);
    const closure = locked.map((p) => `${p.name} ${p.architecture} ${p.sha256}`);
    // FILES steps write status.d since it came: one recorded before must not be replayed.
    return t.files === undefined ? closure : ["files: with status.d", ...closure];
  },
  async apply(t, context) {
    const closure = context.packages(t.requests.map(lockRequestText), t.span);
    // Loaded when a package is installed (with ELF reading and the dpkg database), not for a replay.
    const { installFiles, installWhole } = await import("./package-install.ts");
    if (t.files === undefined) await installWhole(closure, context, t.span);
    else
      await installFiles(
        closure,
        t.requests.map((r) => r.name),
        t.files,
        context,
        t.span,
        t.fileSpan ?? {},
      );
  },
  sbom: { origin: (_typed, file, packageOf) => packageOf(file) },
};

/** NIFTY067's hint: the request with its name lower-cased when that alone makes it one (`Curl` → `curl`). */
function requestHint(text: string): string {
  const name = REQUEST.exec(text)?.[1];
  const fixed = name === undefined ? undefined : name.toLowerCase() + text.slice(name.length);
  if (fixed !== undefined && fixed !== text && typeof readRequest(fixed) !== "string")
    return `did you mean ${fixed}?`;
  return "write a package name, optionally with :arch and a version: busybox-static, libc6>=2.36, gawk=1:5.2.1-2";
}

/** `name[:arch][op version]`, or what is wrong with it. */
export function readRequest(text: string): LockRequest | string {
  const m = REQUEST.exec(text);
  if (m === null) return "expected name[:arch][op version]";
  const [, name, arch, op, version] = m;
  const nameProblem = packageNameProblem(name!);
  if (nameProblem) return nameProblem;
  // Debian's names are lower-case (Policy 5.6.1): dpkg-deb refuses to build one with a capital, so no
  // archive has it, and the request could only fail at resolve time.
  const capital = /[A-Z]/.exec(name!);
  if (capital) return `character '${capital[0]}' not allowed: Debian package names are lower-case`;
  const request: LockRequest = { name: name! };
  if (arch !== undefined) request.arch = arch;
  if (op !== undefined) {
    const problem = versionProblem(version ?? "");
    if (problem) return problem;
    request.constraint = { op, version: version! } as VersionConstraint;
  }
  return request;
}
