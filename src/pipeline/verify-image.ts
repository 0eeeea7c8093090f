// Checks on the finished tree, before anything is written: every program init
// starts exists, and every ELF program finds its loader and libraries inside
// the image (the "not found" of a binary whose library is missing, caught at
// build time instead of at boot).
import { START_OF_FILE, type Span } from "../core/source.ts";
import type { Recipe } from "../instructions/recipe.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import {
  describeMachine,
  missingLibraries,
  readElfInfo,
  treeView,
  type ElfInfo,
  type ImageView,
} from "../image/elf.ts";
import { DEFAULT_PLATFORM, describePlatform, libraryDirs, runsOn, type Platform } from "../image/platform.ts";
import { TreeError, type Tree, type TreeNode } from "../image/tree.ts";
import { specFor } from "../instructions/index.ts";
import { writableSetuid } from "../image/setuid.ts";
import { detectInit } from "./image-config.ts";

export async function verifyImage(
  recipe: Recipe,
  tree: Tree,
  origins: ReadonlyMap<string, Span>,
  blobPath: (digest: string) => string,
  report: Reporter,
  options: {
    allowWritableSetuid?: boolean;
    platform?: Platform;
    /** The MODE word of the line that last wrote a path, where it had one: NIFTY233 points there. */
    modeSpans?: ReadonlyMap<string, Span>;
  } = {},
): Promise<void> {
  const platform = options.platform ?? DEFAULT_PLATFORM;
  // A path no line put there (the root directory): shown at the first line, or at the start of an empty recipe.
  const fallback = recipe.instructions[0]?.span ?? START_OF_FILE;
  await verifyPrograms(tree, { platform, blobPath, report, spanOf: (path) => origins.get(path) ?? fallback });
  verifyBootable(tree, report);
  verifySystemd(tree, origins, report);
  const modeSpans = options.modeSpans ?? new Map<string, Span>();
  verifySetuid(tree, origins, modeSpans, report, options.allowWritableSetuid === true, fallback);
  for (const ins of recipe.instructions) specFor(ins).verify?.(ins, tree, report);
}

interface ProgramCheck {
  platform: Platform;
  blobPath: (digest: string) => string;
  report: Reporter;
  /** The line that put a path in the image. */
  spanOf: (path: string) => Span;
}

/** Every program runs on the platform and finds its loader and libraries inside the image. */
async function verifyPrograms(tree: Tree, check: ProgramCheck): Promise<void> {
  const { platform, report } = check;
  const dirs = libraryDirs(platform);
  const elfCache = new Map<string, Promise<ElfInfo | null>>();
  const elfOf = (node: Extract<TreeNode, { type: "file" }>): Promise<ElfInfo | null> => {
    const key = node.content.digest;
    let info = elfCache.get(key);
    if (info === undefined) {
      const source =
        node.content.inline !== undefined
          ? Buffer.from(node.content.inline, "base64")
          : check.blobPath(node.content.digest);
      info = readElfInfo(source).catch(() => null);
      elfCache.set(key, info);
    }
    return info;
  };
  const view = {
    ...resolvedOnce(treeView(tree, elfOf)),
    platform: { libraryDirs: dirs, triplet: platform.triplet },
  };
  for (const path of tree.sortedPaths()) {
    const node = tree.get(path);
    if (node?.type !== "file" || (node.mode & 0o111) === 0) continue;
    const info = await elfOf(node);
    if (info === null) continue;
    const span = check.spanOf(path);
    // Every program is one the platform's kernel runs: its machine, class and byte order.
    if (!runsOn(platform, info)) {
      const hint =
        `fetch the ${platform.debian} build of it (Debian's _${platform.debian}.deb, or the ` +
        `${platform.triplet.split("-")[0]} release file; FETCH … PLATFORM ${platform.name} for one file per platform)`;
      report.error(
        span,
        "NIFTY215",
        `${path} is a program for ${describeMachine(info)}, not for this image's ${describePlatform(platform)}`,
        hint,
      );
      continue;
    }
    if (!info.isStatic) await verifyLinks(path, info, view, { span, dirs, check });
  }
}

/**
 * The finished tree does not change while it is checked, and every program's search tries the same
 * library paths: each path is resolved through the tree's links once.
 */
function resolvedOnce(view: ImageView): ImageView {
  const exists = new Map<string, boolean>();
  const infos = new Map<string, Promise<ElfInfo | null>>();
  return {
    exists: (path) => exists.get(path) ?? exists.set(path, view.exists(path)).get(path)!,
    elfInfo: (path) => infos.get(path) ?? infos.set(path, view.elfInfo(path)).get(path)!,
  };
}

/** A dynamic program's loader and libraries: each must be in the image (through its links). */
async function verifyLinks(
  path: string,
  info: ElfInfo,
  view: Parameters<typeof missingLibraries>[2],
  at: { span: Span; dirs: readonly string[]; check: ProgramCheck },
): Promise<void> {
  const { span, dirs, check } = at;
  const { platform, report } = check;
  let result: Awaited<ReturnType<typeof missingLibraries>>;
  try {
    result = await missingLibraries(path, info, view);
  } catch (error) {
    if (!(error instanceof TreeError)) throw error;
    const hint = "fix the SYMLINK that leads back to itself (merged /usr: SYMLINK /lib64 usr/lib64)";
    report.error(span, "NIFTY250", `${path}: ${error.message}`, hint);
    return;
  }
  if (result.interpreter !== undefined) {
    const loader = `libc6's ${platform.loader.split("/").pop()}, and SYMLINK ${platform.loader} to it`;
    report.error(
      span,
      "NIFTY220",
      `${path} needs its program loader ${result.interpreter}, which is not in the image`,
      `FETCH it too (for Debian binaries: ${loader})`,
    );
  }
  for (const miss of result.missing) {
    const via = miss.neededBy === path ? "" : ` (through ${miss.neededBy})`;
    report.error(
      span,
      "NIFTY221",
      `${path} needs ${miss.library}${via}, which is not in the image`,
      `FETCH it into one of ${dirs.slice(0, 2).join(" or ")}`,
    );
  }
}

/** What a container manager needs to boot the image at all. */
function verifyBootable(tree: Tree, report: Reporter): void {
  if (!["/etc/os-release", "/usr/lib/os-release"].some((p) => tree.lookup(p)?.node.type === "file")) {
    report.warn(
      undefined,
      "NIFTY224",
      "the image has no /etc/os-release: systemd-nspawn --boot refuses to start it",
      "add FILE /etc/os-release <<EOF with NAME= and ID= lines (an empty file is enough)",
    );
  }
  if (
    tree.lookup("/sbin/init")?.node.type !== "file" &&
    !["/lib/systemd/systemd", "/usr/lib/systemd/systemd"].some((p) => tree.lookup(p)?.node.type === "file")
  ) {
    report.warn(
      undefined,
      "NIFTY225",
      "the image has no /sbin/init: it cannot boot as a container",
      "with BusyBox: LINK /bin/busybox APPLETS and SYMLINK /sbin bin",
    );
  }
}

/**
 * setuid and setgid files run with their owner's or group's rights for whoever runs them, in
 * every container and in every tree root unpacks: one warning lists them all (path, owner,
 * mode, the line that wrote each), at the line of the first. One every user may write is a
 * program anyone could replace: an error at its line unless the build allows it.
 */
function verifySetuid(
  tree: Tree,
  origins: ReadonlyMap<string, Span>,
  modeSpans: ReadonlyMap<string, Span>,
  report: Reporter,
  allowWritable: boolean,
  recipeSpan: Span,
): void {
  const found: string[] = [];
  let first: Span | undefined;
  for (const path of tree.sortedPaths()) {
    const node = tree.get(path);
    if (node?.type !== "file" || (node.mode & 0o6000) === 0) continue;
    const span = origins.get(path);
    first ??= span;
    const mode = (node.mode & 0o7777).toString(8).padStart(4, "0");
    found.push(
      `${path} (${node.uid}:${node.gid} ${mode}${span === undefined ? "" : `, line ${span.start.line}`})`,
    );
    const writable = allowWritable ? undefined : writableSetuid(path, node);
    if (writable !== undefined) {
      report.error(modeSpans.get(path) ?? span ?? recipeSpan, "NIFTY233", writable.message, writable.hint);
    }
  }
  if (found.length === 0) return;
  const files = `${found.length} setuid or setgid file${found.length === 1 ? "" : "s"}`;
  report.warn(
    first,
    "NIFTY232",
    `the image has ${files}, which ${found.length === 1 ? "runs" : "run"} with ${found.length === 1 ? "its" : "their"} owner's rights for any user: ${found.join(", ")}`,
    "keep only those the image needs (COPY … MODE 0755 drops the bit); " +
      "niftyc run, instances, install and bundles keep their trees in 0700 directories",
  );
}

/** What systemd as PID 1 needs of the tree (docs/systemd.md), beyond os-release. */
/** Each warning points at the line that wrote the path at fault, or (undefined) at the recipe as a whole. */
function verifySystemd(tree: Tree, origins: ReadonlyMap<string, Span>, report: Reporter): void {
  const hasSystemd = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"].some(
    (p) => tree.lookup(p)?.node.type === "file",
  );
  if (!hasSystemd) return;
  const init = tree.lookup("/sbin/init");
  if (init !== undefined && detectInit(tree).kind !== "systemd") {
    report.warn(
      origins.get("/sbin/init"),
      "NIFTY226",
      `systemd is in the image, but /sbin/init leads to ${init.path}: that boots instead of systemd`,
      "SYMLINK /sbin/init /lib/systemd/systemd (what systemd-sysv ships)",
    );
    // The rest matters only when systemd is what boots.
    return;
  }
  const machineId = tree.lookup("/etc/machine-id");
  if (machineId?.node.type === "file" && machineId.node.content.size > 0) {
    report.warn(
      origins.get(machineId.path),
      "NIFTY227",
      "/etc/machine-id is not empty: every container made from this image gets the same machine ID",
      "ship it empty (FILE /etc/machine-id with an empty heredoc): systemd makes one per container at boot",
    );
  }
  for (const dir of ["/run", "/tmp"]) {
    const inside = tree.sortedPaths().filter((p) => p.startsWith(`${dir}/`));
    if (inside.length === 0) continue;
    report.warn(
      origins.get(inside[0]!),
      "NIFTY228",
      `${inside[0]} is under ${dir}, which every run config of a systemd image mounts a tmpfs over: it is hidden at boot`,
      "make it at boot instead (a tmpfiles.d line, or RuntimeDirectory= in the unit)",
    );
  }
}
