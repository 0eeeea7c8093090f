// The image's filesystem tree, in memory: paths, types, owners, modes and
// content references (never the content of large files). Every change goes
// through `set`, so a build step's effect can be recorded and replayed.
import { posix } from "node:path";

/** File bytes: a blob in the content store, or (for small generated files) inline. */
export interface Content {
  /** "sha256:<hex>" of the bytes. */
  digest: string;
  size: number;
  /** Base64 bytes for small generated files; absent means "read the blob from the store". */
  inline?: string;
}

export type TreeNode =
  | { type: "dir"; mode: number; uid: number; gid: number }
  | { type: "file"; mode: number; uid: number; gid: number; content: Content }
  | { type: "symlink"; mode: number; uid: number; gid: number; target: string };

/** One recorded change: a path and what it now is. */
export type TreeChange = [path: string, node: TreeNode];

/** The root and what init and every runtime mount over: a file or link there would break every boot. */
const MOUNT_POINTS = new Set(["/", "/dev", "/proc", "/sys", "/run", "/tmp"]);

export class TreeError extends Error {
  readonly path: string;
  /** What usually causes it, where that is known. */
  readonly hint?: string;
  constructor(path: string, message: string, hint?: string) {
    super(message);
    this.path = path;
    if (hint !== undefined) this.hint = hint;
  }
}

const LOOP_HINT =
  "a link here leads back to itself: often a package's link (/sbin/ip → /bin/ip) laid through a directory link an earlier line made (SYMLINK /sbin bin) onto the very file it names; put that SYMLINK line after the PACKAGE line, or take the file from its other path";

const MAX_SYMLINK_HOPS = 40;

/** Normalise an absolute image path: "/a//b/./c" → "/a/b/c"; refuses to climb above "/". */
export function imagePath(path: string): string {
  if (!path.startsWith("/")) throw new TreeError(path, `path ${path} is not absolute`);
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw new TreeError(path, `path ${path} climbs out of the image with ".."`);
    parts.push(part);
  }
  return "/" + parts.join("/");
}

/** Where a walk ended (undefined: a directory on the way is missing or not one) and the links it met. */
export interface WalkResult {
  path: string | undefined;
  links: string[];
}

export const DEFAULT_DIR: TreeNode = { type: "dir", mode: 0o755, uid: 0, gid: 0 };

export class Tree {
  readonly nodes = new Map<string, TreeNode>([["/", DEFAULT_DIR]]);
  /** Changes since the last `takeChanges`, in order. */
  private changes: TreeChange[] = [];

  get(path: string): TreeNode | undefined {
    return this.nodes.get(path);
  }

  /**
   * Resolve symlinks in every component of `path` (the last one too when
   * `followLast`), inside the image, the way the kernel would inside it: an
   * absolute target restarts at the image root (never the host's), a relative
   * one at the link's directory, and `..` goes to the parent of the directory
   * reached so far (a link's target's parent, not the link's), never above the
   * root. Returns undefined when a component before the last is missing or not
   * a directory; a loop (more than 40 links) is a TreeError.
   */
  resolve(path: string, followLast = true): string | undefined {
    return this.walk(path, { followLast }).path;
  }

  /** The symbolic links met, in order, on the way to `path` (the last component's too). */
  linksOn(path: string): string[] {
    return this.walk(path, { followLast: true }).links;
  }

  /**
   * The one walk every lookup goes through. With `create`, a missing directory on
   * the way (a link's target too) is made as a 0755 root directory; the last
   * component is never made.
   */
  walk(path: string, options: { followLast: boolean; create?: boolean }): WalkResult {
    // ".." is taken as the kernel takes it, at its place in the walk (RUNPATH's $ORIGIN/../lib).
    if (!path.startsWith("/")) throw new TreeError(path, `path ${path} is not absolute`);
    let pending = path.split("/").filter(Boolean);
    let current = "/";
    const links: string[] = [];
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === ".") continue;
      if (name === "..") {
        current = posix.dirname(current);
        continue;
      }
      const next = current === "/" ? `/${name}` : `${current}/${name}`;
      let node = this.nodes.get(next);
      if (node === undefined) {
        if (pending.length === 0) return { path: next, links };
        if (!options.create) return { path: undefined, links };
        this.set(next, DEFAULT_DIR);
        node = DEFAULT_DIR;
      }
      if (node.type === "symlink" && (options.followLast || pending.length > 0)) {
        if (links.length >= MAX_SYMLINK_HOPS)
          throw new TreeError(path, `too many levels of symbolic links in ${path}`, LOOP_HINT);
        links.push(next);
        if (node.target.startsWith("/")) current = "/";
        pending = [...node.target.split("/").filter(Boolean), ...pending];
        continue;
      }
      if (node.type !== "dir" && pending.length > 0) return { path: undefined, links };
      current = next;
    }
    return { path: current, links };
  }

  /** The node a path leads to after following symlinks, if any. */
  lookup(path: string): { path: string; node: TreeNode } | undefined {
    const resolved = this.resolve(path);
    if (resolved === undefined) return undefined;
    const node = this.nodes.get(resolved);
    return node ? { path: resolved, node } : undefined;
  }

  /**
   * Where a new entry at `path` lands: the parent's symlinks are followed
   * (so FILE /sbin/x writes /bin/x when /sbin → bin), missing parents are
   * created as 0755 root directories.
   */
  placement(path: string): string {
    const clean = imagePath(path);
    if (clean === "/") return "/";
    const parent = posix.dirname(clean);
    const base = posix.basename(clean);
    const dir = this.mkdirp(parent);
    return dir === "/" ? `/${base}` : `${dir}/${base}`;
  }

  /** Create a directory and its parents where missing; returns its resolved path. */
  mkdirp(path: string): string {
    let current = "/";
    for (const name of imagePath(path).split("/").filter(Boolean)) {
      let next = current === "/" ? `/${name}` : `${current}/${name}`;
      let node = this.nodes.get(next);
      if (node?.type === "symlink") {
        // A link to a directory not made yet leads where it will be (merged /usr: /sbin → usr/sbin).
        const target = this.walk(next, { followLast: true, create: true }).path;
        if (target === undefined) throw new TreeError(path, `${next} is a symbolic link through a file`);
        next = target;
        node = this.nodes.get(target);
      }
      if (node === undefined) this.set(next, DEFAULT_DIR);
      else if (node.type !== "dir") throw new TreeError(path, `${next} is a ${node.type}, not a directory`);
      current = next;
    }
    return current;
  }

  /** Put a node at an exact, already-resolved path and record the change. */
  set(path: string, node: TreeNode): void {
    if (node.type !== "dir" && MOUNT_POINTS.has(path)) {
      throw new TreeError(
        path,
        path === "/"
          ? `the image's root / is always a directory; it cannot become a ${node.type}`
          : `${path} must stay a directory: every runtime mounts over it when the image runs; it cannot become a ${node.type}`,
      );
    }
    const existing = this.nodes.get(path);
    if (existing?.type === "dir" && node.type !== "dir" && this.hasChildren(path)) {
      throw new TreeError(path, `${path} is a directory with contents; it cannot become a ${node.type}`);
    }
    this.nodes.set(path, node);
    this.changes.push([path, node]);
  }

  private hasChildren(path: string): boolean {
    const prefix = path === "/" ? "/" : path + "/";
    for (const key of this.nodes.keys()) if (key !== path && key.startsWith(prefix)) return true;
    return false;
  }

  /** Replay changes recorded by an earlier run of a step. */
  apply(changes: readonly TreeChange[]): void {
    for (const [path, node] of changes) this.set(path, node);
  }

  takeChanges(): TreeChange[] {
    const taken = this.changes;
    this.changes = [];
    return taken;
  }

  /**
   * Paths in archive order: bytewise sort, so every parent precedes its contents. Kept until a path
   * is added (no path is ever removed, so the count says whether the list is stale): the image's
   * checks and the tarballs ask for it several times over the same tree.
   */
  sortedPaths(): readonly string[] {
    if (this.#sorted?.length !== this.nodes.size) {
      this.#sorted = [...this.nodes.keys()]
        .map((path) => ({ path, bytes: Buffer.from(path) }))
        .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
        .map((entry) => entry.path);
    }
    return this.#sorted;
  }
  #sorted: readonly string[] | undefined;
}
