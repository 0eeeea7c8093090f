// niftyc verify's pure parts: a provenance read back (in-toto v1, SLSA v1, as
// src/emit/provenance.ts writes it), and the comparison of two images' files
// (a rebuilt rootfs.tar against the original's tarball or layers), which names
// the first path that differs by type, size, mode, link or digest.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { pipeline } from "node:stream/promises";
import { NiftyError } from "../diagnostics/errors.ts";
import { MAX_EPOCH } from "../core/limits.ts";
import { PROVENANCE_PREDICATE, STATEMENT_TYPE } from "../emit/provenance.ts";

export interface ReadProvenance {
  subjects: Array<{ name: string; digest: string }>;
  recipe: { path: string; digest: string };
  lock: { path: string; digest: string } | undefined;
  /** A multi-platform build's lock of each platform (its `lock` is the first platform's). */
  locks: Array<{ platform: string; path: string; digest: string }>;
  /** The platforms built (linux/amd64): one for a plain build, each of an image index. */
  platforms: string[];
  args: Record<string, string>;
  secrets: string[];
  epoch: number;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
const digestOf = (v: unknown): string | undefined => {
  const hex = obj(obj(v)?.digest)?.sha256;
  return typeof hex === "string" && /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
};

export function parseProvenance(bytes: Buffer, where: string): ReadProvenance {
  const bad = (why: string): never => {
    throw new NiftyError(
      "NIFTY735",
      `the provenance ${where} cannot be read: ${why}`,
      "give a build directory niftyc wrote, or an image pushed by niftyc push (its provenance is a referrer)",
    );
  };
  let statement: Json | undefined;
  try {
    statement = obj(JSON.parse(bytes.toString("utf8")));
  } catch {}
  if (statement === undefined) return bad("not a JSON object");
  if (statement._type !== STATEMENT_TYPE) return bad(`its _type is not ${STATEMENT_TYPE}`);
  if (statement.predicateType !== PROVENANCE_PREDICATE)
    return bad(`its predicateType is not ${PROVENANCE_PREDICATE}`);
  const subjects = (Array.isArray(statement.subject) ? statement.subject : []).flatMap((s) => {
    const digest = digestOf(s);
    const name = obj(s)?.name;
    return digest !== undefined && typeof name === "string" ? [{ name, digest }] : [];
  });
  if (subjects.length === 0) return bad("it names no subject");
  const params = obj(obj(obj(statement.predicate)?.buildDefinition)?.externalParameters);
  if (params === undefined) return bad("it has no buildDefinition.externalParameters");
  const recipe = obj(params.recipe);
  const recipeDigest = digestOf(recipe);
  if (typeof recipe?.path !== "string" || recipeDigest === undefined)
    return bad("it names no recipe with a digest");
  const lockJson = obj(params.lock);
  const lockDigest = digestOf(lockJson);
  const lock =
    typeof lockJson?.path === "string" && lockDigest !== undefined
      ? { path: lockJson.path, digest: lockDigest }
      : undefined;
  const args = obj(params.args) ?? {};
  if (!Object.values(args).every((v) => typeof v === "string")) return bad("an --arg value is not a string");
  const secrets = (Array.isArray(params.secrets) ? params.secrets : [])
    .map((s) => obj(s)?.name)
    .filter((n): n is string => typeof n === "string");
  const locks = (Array.isArray(params.locks) ? params.locks : []).flatMap((l) => {
    const digest = digestOf(l);
    const { platform, path } = obj(l) ?? {};
    return digest !== undefined && typeof platform === "string" && typeof path === "string"
      ? [{ platform, path, digest }]
      : [];
  });
  const platforms = Array.isArray(params.platforms) ? params.platforms : [];
  if (platforms.length === 0 || !platforms.every((p) => typeof p === "string"))
    return bad("it names no platform");
  const epoch = params.sourceDateEpoch;
  if (typeof epoch !== "number" || !Number.isSafeInteger(epoch) || epoch < 0)
    return bad("it has no sourceDateEpoch");
  if (epoch > MAX_EPOCH) return bad(`its sourceDateEpoch is later than ${MAX_EPOCH}, which no build makes`);
  return {
    subjects,
    recipe: { path: recipe.path, digest: recipeDigest },
    lock,
    locks,
    platforms: platforms as string[],
    args: args as Record<string, string>,
    secrets,
    epoch,
  };
}

export interface FileEntry {
  type: string;
  size: number;
  mode: number;
  digest: string;
  link: string;
}

/** Every entry of tarballs (gzip or not): a later entry of a path replaces an earlier one, as unpacking does. */
export async function tarEntries(
  files: readonly string[],
  into = new Map<string, FileEntry>(),
): Promise<Map<string, FileEntry>> {
  const tarStream = (await import("tar-stream")).default;
  for (const file of files) {
    const extract = tarStream.extract();
    extract.on("entry", (header, stream, next) => {
      const hash = createHash("sha256");
      let size = 0;
      stream.on("data", (chunk) => {
        size += (chunk as Buffer).length;
        hash.update(chunk as Buffer);
      });
      stream.on("end", () => {
        const path = `/${header.name.replace(/^\.?\/+/, "").replace(/\/+$/, "")}`;
        into.set(path, {
          type: header.type ?? "file",
          size,
          mode: (header.mode ?? 0) & 0o7777,
          digest: `sha256:${hash.digest("hex")}`,
          link: header.linkname ?? "",
        });
        next();
      });
      stream.resume();
    });
    const head = Buffer.alloc(2);
    const fd = await import("node:fs/promises").then((f) => f.open(file));
    await fd.read(head, 0, 2, 0);
    await fd.close();
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    if (gzip) await pipeline(createReadStream(file), createGunzip(), extract);
    else await pipeline(createReadStream(file), extract);
  }
  return into;
}

/** The first path (in byte order) whose entry differs between original and rebuild, described; else undefined. */
export function firstDifference(
  original: ReadonlyMap<string, FileEntry>,
  rebuilt: ReadonlyMap<string, FileEntry>,
): string | undefined {
  const paths = [...new Set([...original.keys(), ...rebuilt.keys()])].sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  const show = (e: FileEntry | undefined) =>
    e === undefined
      ? "absent"
      : `${e.type}, ${e.size} bytes, mode ${e.mode.toString(8).padStart(4, "0")}, ${e.link ? `-> ${e.link}` : e.digest}`;
  // The root: rootfs.tar has it, the layers do not; it is always a 0755 directory.
  for (const path of paths.filter((p) => p !== "/")) {
    const a = original.get(path);
    const b = rebuilt.get(path);
    if (
      a &&
      b &&
      a.type === b.type &&
      a.size === b.size &&
      a.mode === b.mode &&
      a.digest === b.digest &&
      a.link === b.link
    )
      continue;
    return `${path}: the original is ${show(a)}; the rebuild is ${show(b)}`;
  }
  return undefined;
}
