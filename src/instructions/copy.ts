// COPY <path-relative-to-recipe> <dest> [MODE <octal>] [OWNER <u>:<g>]
import type { Hash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { posix, resolve, sep } from "node:path";
import type { Span } from "../core/source.ts";
import type { CheckModel, InstructionSpec, Typed } from "./spec.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import type { Value } from "./scope.ts";
import {
  checkWritableSetuid,
  expectCount,
  readImagePath,
  readMode,
  readOptions,
  readOwner,
  type Owner,
} from "./args.ts";
import { newHash } from "../core/hash.ts";
import { StepError } from "./context.ts";
import type { BuildContext } from "./context.ts";
import { ROOT } from "./files.ts";
import type { TreeNode } from "../image/tree.ts";
import { HostWalkError, walkHost, type HostEntry } from "./host-files.ts";

export interface CopyInstruction extends Typed {
  kind: "COPY";
  /** Relative to the recipe's directory, with / separators. */
  source: string;
  /** The source's word, where the source's own errors point. */
  sourceSpan: Span;
  dest: string;
  /** undefined: 0755 for executables and directories, 0644 otherwise (the host's other mode bits depend on its umask). */
  mode?: number;
  owner: Owner;
}

export const copy: InstructionSpec<CopyInstruction> = {
  keyword: "COPY",
  summary:
    "Copy a file or directory from beside the recipe into the image. Sources may not leave the recipe's directory. A destination ending in / receives the source under its own name. Modes are normalised (0755 if executable, else 0644) unless MODE is given, so the host's umask never reaches the image.",
  names: { uses: { OWNER: "owner" } },
  syntax: ["COPY <source> <dest> [MODE <octal>] [OWNER <user|uid>:<group|gid>]"],
  example: "COPY files/index.html /srv/www/index.html",
  check(ins, report, model) {
    const opts = readOptions(ins, report, { MODE: "value", OWNER: "value" });
    if (!expectCount(ins, opts.positional, report, 2, 2, this.syntax[0]!)) return undefined;
    const [srcWord, destWord] = opts.positional as [
      (typeof opts.positional)[0] & {},
      (typeof opts.positional)[0] & {},
    ];
    const host = checkSource(srcWord, report, model);
    if (host === undefined) return undefined;
    const { hostPath, kind } = host;
    let dest = readImagePath(destWord, report);
    if (dest !== undefined && destWord.text.endsWith("/")) dest = posix.join(dest, posix.basename(hostPath));
    const modeWord = opts.values.get("MODE");
    const ownerWord = opts.values.get("OWNER");
    const mode = modeWord ? readMode(modeWord, report) : undefined;
    const owner = ownerWord ? readOwner(ownerWord, report, model) : ROOT;
    if (dest === undefined || (modeWord && mode === undefined) || owner === undefined) return undefined;
    const copied = kind === "dir" ? posix.join(dest, "…") : dest;
    if (modeWord && !checkWritableSetuid(modeWord, { path: copied, mode: mode!, ...owner }, model, report))
      return undefined;
    if (kind === "dir" && mode !== undefined && (directoryMode(mode) & 0o100) === 0) {
      report.warn(
        modeWord!.span,
        "NIFTY018",
        `MODE ${mode.toString(8).padStart(4, "0")} makes the copied directories untraversable, even for their owner`,
        "give the owner read permission (e.g. MODE 0640: files 0640, directories 0750)",
      );
    }
    try {
      // A directory's contents land under dest, where later lines may use them.
      if (kind === "dir") declareDirectory(model, hostPath, dest, owner);
      else
        declareFile(model, hostPath, dest, {
          type: "file",
          mode: mode ?? 0o644,
          ...owner,
          content: NO_CONTENT,
        });
    } catch (error) {
      report.error(destWord.span, "NIFTY052", (error as Error).message);
      return undefined;
    }
    const source = posix.normalize(srcWord.text.split(sep).join("/"));
    return {
      kind: "COPY",
      span: ins.span,
      source,
      sourceSpan: srcWord.span,
      dest,
      ...(mode !== undefined ? { mode, modeSpan: modeWord!.span } : {}),
      owner,
    };
  },
  async keyInputs(t, context) {
    return [await sourceDigest(t, context)];
  },
  async apply(t, context) {
    // The entries are read again from descriptors: what lands in the image must be what the key named.
    const found = await readSource(t, context, async (entry, hash) => {
      const path = entry.relative === "" ? t.dest : posix.join(t.dest, entry.relative);
      const where = entry.kind === "dir" ? context.tree.mkdirp(path) : context.tree.placement(path);
      if (entry.kind === "dir")
        context.tree.set(where, {
          type: "dir",
          mode: t.mode === undefined ? 0o755 : directoryMode(t.mode),
          ...t.owner,
        });
      else if (entry.kind === "symlink")
        context.tree.set(where, { type: "symlink", mode: 0o777, ...t.owner, target: entry.target! });
      else {
        const content = await context.importFile(entry.handle!);
        hash.update(content.digest);
        context.tree.set(where, {
          type: "file",
          mode: t.mode ?? (entry.executable ? 0o755 : 0o644),
          ...t.owner,
          content,
        });
      }
    });
    if (found !== (await sourceDigest(t, context))) {
      throw new StepError(
        "NIFTY800",
        t.span,
        `COPY source ${t.source} changed while it was read`,
        "something changed the files while niftyc built; build again when nothing writes to them",
      );
    }
  },
};

/** The source's checks: where it is on the host and what it is, or undefined after an error at its word. */
function checkSource(
  srcWord: Value,
  report: Reporter,
  model: CheckModel,
): { hostPath: string; kind: "file" | "dir" } | undefined {
  if (srcWord.text === "") {
    // resolve() would make it the recipe's whole directory, its secret files too.
    report.error(
      srcWord.span,
      "NIFTY305",
      "COPY source is empty",
      "name a file or directory beside the recipe (an ARG that is empty here gives this too); `.` copies the recipe's whole directory",
    );
    return undefined;
  }
  const hostPath = resolve(model.recipeDir, srcWord.text);
  if (
    srcWord.text.startsWith("/") ||
    !(hostPath === model.recipeDir || hostPath.startsWith(model.recipeDir + sep))
  ) {
    report.error(
      srcWord.span,
      "NIFTY057",
      `COPY source ${JSON.stringify(srcWord.text)} is outside the recipe's directory`,
      "COPY reads only files beside the recipe (a relative path that stays inside its directory)",
    );
    return undefined;
  }
  const kind = model.hostKind(hostPath);
  if (kind === undefined) {
    report.error(
      srcWord.span,
      "NIFTY058",
      `COPY source ${JSON.stringify(srcWord.text)} does not exist`,
      `looked for ${hostPath}`,
    );
    return undefined;
  }
  if (kind === "unreadable") {
    report.error(
      srcWord.span,
      "NIFTY216",
      `COPY source ${srcWord.text} cannot be read: permission denied`,
      "make it readable by the user who builds (chmod), or move it out of what COPY reads",
    );
    return undefined;
  }
  const special =
    kind === "other"
      ? ""
      : kind === "dir"
        ? model.hostEntries(hostPath).find((e) => e.kind === "other")?.relative
        : undefined;
  if (special !== undefined) {
    const what = special === "" ? srcWord.text : `${srcWord.text}: ${special}`;
    report.error(
      srcWord.span,
      "NIFTY203",
      `COPY cannot copy ${what}: not a file, directory or symbolic link`,
      "an image holds files, directories and symbolic links: leave the device, socket or FIFO out of what COPY reads",
    );
    return undefined;
  }
  return { hostPath, kind: kind === "dir" ? "dir" : "file" };
}

/**
 * MODE as directories take it: each read bit brings its execute bit (as
 * `chmod -R u=rwX`), so MODE 0640 gives files 0640 and directories 0750.
 */
export function directoryMode(mode: number): number {
  return mode | ((mode & 0o444) >> 2);
}

/** Placeholders for a copied directory's entries, so later checks see them. */
function declareDirectory(model: CheckModel, hostPath: string, dest: string, owner: Owner): void {
  model.tree.mkdirp(dest);
  for (const entry of model.hostEntries(hostPath)) {
    const path = posix.join(dest, entry.relative);
    if (entry.kind === "dir") model.tree.mkdirp(path);
    else if (entry.kind === "symlink")
      model.tree.set(model.tree.placement(path), {
        type: "symlink",
        mode: 0o777,
        ...owner,
        target: entry.target,
      });
    else
      declareFile(model, posix.join(hostPath, entry.relative), path, {
        type: "file",
        mode: 0o644,
        ...owner,
        content: NO_CONTENT,
      });
  }
}

const NO_CONTENT = { digest: "", size: 0 };

/** A copied file's placeholder, whose text a later check may read from the host. */
function declareFile(model: CheckModel, hostPath: string, dest: string, node: TreeNode): void {
  model.tree.set(model.tree.placement(dest), node);
  model.fileTexts.set(node, () => model.hostText(hostPath));
}

/** The digest of the source's entries (names, kinds, modes, link targets, file digests), taken once per build. */
function sourceDigest(t: CopyInstruction, context: BuildContext): Promise<string> {
  return context.memo(`COPY ${t.span.start.offset}`, () =>
    readSource(t, context, async (entry, hash) => {
      if (entry.kind === "file") hash.update(await handleDigest(entry.handle!));
    }),
  );
}

/** Walk the source, hashing each entry's description and whatever `visit` adds; host failures become the recipe line's errors. */
async function readSource(
  t: CopyInstruction,
  context: BuildContext,
  visit: (entry: HostEntry, hash: Hash) => Promise<void>,
): Promise<string> {
  const hash = newHash("sha256");
  try {
    await walkHost(
      context.recipeDir,
      t.source,
      async (entry) => {
        hash.update(`${entry.relative}\0${entry.kind}\0${entry.executable}\0${entry.target ?? ""}\0`);
        await visit(entry, hash);
      },
      context.hostInputs,
    );
  } catch (error) {
    if (!(error instanceof HostWalkError)) throw error;
    const code = (
      {
        missing: "NIFTY201",
        outside: "NIFTY202",
        special: "NIFTY203",
        unreadable: "NIFTY216",
        changed: "NIFTY800",
      } as const
    )[error.reason];
    const hints: Partial<Record<HostWalkError["reason"], string>> = {
      changed: "something changed the files while niftyc built; build again when nothing writes to them",
      unreadable: "make it readable by the user who builds (chmod), or move it out of what COPY reads",
    };
    throw new StepError(
      code,
      t.sourceSpan,
      `COPY source ${error.message.startsWith(t.source) ? "" : `${t.source}: `}${error.message}`,
      hints[error.reason],
    );
  }
  return `sha256:${hash.digest("hex")}`;
}

/** sha256 of an open file, read from its descriptor from the start. */
async function handleDigest(handle: FileHandle): Promise<string> {
  const hash = newHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 16);
  for (let position = 0; ; ) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return `sha256:${hash.digest("hex")}`;
}
