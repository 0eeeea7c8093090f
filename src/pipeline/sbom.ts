// What the SBOM says, gathered from the finished build: the recipe's FETCH
// inputs, the lock's suites, the locked packages the image's dpkg database
// lists (status, status.d), and the image's files whose last
// writer was a FETCH or PACKAGE step, each tied to the input it came from
// (a package's file by its path and bytes in that package's .deb).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Span } from "../core/source.ts";
import type { Store } from "../cache/store.ts";
import type { Tree } from "../image/tree.ts";
import type { BuildContext } from "../instructions/context.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { specFor } from "../instructions/index.ts";
import type { PackageOfFile, SbomInputs } from "../instructions/spec.ts";
import { NIFTYC_VERSION } from "../core/version.ts";
import type { SbomInput } from "../emit/sbom.ts";
import { canonicalArchiveUrl } from "../emit/sbom.ts";
import { ADMIN_DIR, installedNames, STATUS_D } from "../debian/dpkg-db.ts";
import { sourcePackage } from "../debian/fields.ts";
import type { ResolvedPackages } from "./packages.ts";

export interface SbomSources {
  recipe: Recipe;
  tree: Tree;
  /** Each path's last writer, by the span of its instruction. */
  origins: ReadonlyMap<string, Span>;
  packages: ResolvedPackages | undefined;
  context: BuildContext;
  store: Store;
  epoch: number;
  rootfsDigest: string;
}

/** The inputs alone (no files): what decides the SBOM beside the tree, for the outputs' fingerprint. */
export function sbomInputs(
  recipe: Recipe,
  packages: ResolvedPackages | undefined,
): Pick<SbomInput, "fetches" | "archives" | "packages"> {
  const named: SbomInputs = { fetches: [], archiveUrls: new Map() };
  for (const ins of recipe.instructions) specFor(ins).sbom?.inputs?.(ins, named);
  const { fetches } = named;
  const root = (archive: string) => named.archiveUrls.get(archive) ?? canonicalArchiveUrl(archive);
  const lock = packages?.lock;
  return {
    fetches,
    archives: (lock?.suites ?? []).map((s) => {
      const url = root(s.archive);
      return {
        archive: s.archive,
        suite: s.suite,
        component: s.component,
        inRelease: s.inRelease,
        ...(url ? { url } : {}),
      };
    }),
    packages: (lock?.packages ?? []).map((p) => {
      const url = root(p.from.archive);
      return {
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        sha256: p.sha256,
        archive: p.from.archive,
        suite: p.from.suite,
        component: p.from.component,
        filename: p.filename,
        ...(url ? { url: `${url}/${p.filename}` } : {}),
      };
    }),
  };
}

async function sha1Of(store: Store, content: { digest: string; inline?: string }): Promise<string> {
  const hash = createHash("sha1");
  if (content.inline !== undefined) return hash.update(Buffer.from(content.inline, "base64")).digest("hex");
  for await (const chunk of createReadStream(store.blobPath(content.digest))) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * The locked packages the image holds, as its dpkg database says: `status` for packages
 * installed whole, `status.d/` for those a FILES line took files of. A locked package none of whose
 * files is in the image (a dependency of a FILES line's package that no program loads) is in
 * neither, and so not in the SBOM: scanners take every package an SBOM lists as installed.
 */
async function installedKeys(s: SbomSources): Promise<Set<string>> {
  const texts: Array<{ path: string; text: string }> = [];
  const status = await s.context.readText(`${ADMIN_DIR}/status`);
  if (status !== undefined) texts.push({ path: `${ADMIN_DIR}/status`, text: status });
  const dir = s.tree.resolve(STATUS_D);
  if (dir !== undefined && s.tree.get(dir)?.type === "dir")
    for (const [path, node] of s.tree.nodes) {
      const name = path.startsWith(`${dir}/`) ? path.slice(dir.length + 1) : "";
      if (node.type !== "file" || name === "" || name.includes("/") || name.endsWith(".md5sums")) continue;
      const text = await s.context.readText(path);
      if (text !== undefined) texts.push({ path, text });
    }
  return new Set(installedNames(texts).map((p) => `${p.name}:${p.architecture}`));
}

export async function collectSbom(s: SbomSources): Promise<SbomInput> {
  const locked = sbomInputs(s.recipe, s.packages);
  const installed = await installedKeys(s);
  const held = (p: { name: string; architecture: string }) => installed.has(`${p.name}:${p.architecture}`);
  const bySpan = new Map(s.recipe.instructions.map((i) => [i.span, i]));
  // Every file of the image's packages, by its bytes, and each package's source: a .deb the store
  // no longer holds is skipped rather than downloaded, so writing an SBOM never needs the network.
  const inDebs = new Map<string, Array<{ path: string; name: string; architecture: string }>>();
  const sources = new Map<string, { name: string; version?: string }>();
  for (const pkg of (s.packages?.lock.packages ?? []).filter(held)) {
    if (!(await s.store.has(pkg.sha256))) continue;
    const contents = await s.context.debContents(pkg, s.recipe.instructions[0]!.span);
    const source = sourcePackage(contents.control);
    if (source !== undefined) sources.set(`${pkg.name}:${pkg.architecture}`, source);
    for (const e of contents.entries) {
      if (e.type !== "file" || e.digest === undefined) continue;
      const list = inDebs.get(e.digest) ?? [];
      list.push({ path: `/${e.path}`, name: pkg.name, architecture: pkg.architecture });
      inDebs.set(e.digest, list);
    }
  }
  const packageOf: PackageOfFile = ({ path, digest }) => {
    const candidates = inDebs.get(digest) ?? [];
    const base = path.slice(path.lastIndexOf("/"));
    // The same path first (an image with merged /usr moves /lib/… to /usr/lib/…), then the same name.
    const hit =
      candidates.find((c) => c.path === path) ??
      candidates.find((c) => path.endsWith(c.path)) ??
      candidates.find((c) => c.path.endsWith(base));
    return hit ? { package: hit.name, architecture: hit.architecture } : undefined;
  };
  const packages = locked.packages.filter(held).map((p) => {
    const source = sources.get(`${p.name}:${p.architecture}`);
    return source === undefined ? p : { ...p, source };
  });
  const files: SbomInput["files"] = [];
  for (const [path, node] of s.tree.nodes) {
    if (node.type !== "file") continue;
    const span = s.origins.get(path);
    const ins = span ? bySpan.get(span) : undefined;
    const from = ins && specFor(ins).sbom?.origin?.(ins, { path, digest: node.content.digest }, packageOf);
    if (from)
      files.push({ path, sha256: node.content.digest, sha1: await sha1Of(s.store, node.content), from });
  }
  return {
    name: s.recipe.name,
    rootfsDigest: s.rootfsDigest,
    epoch: s.epoch,
    niftycVersion: NIFTYC_VERSION,
    ...locked,
    packages,
    files,
  };
}
