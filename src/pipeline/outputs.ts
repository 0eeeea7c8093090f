// The output formats, as one table: the files each writes and how. A build
// assembles the chosen ones in staging from the store's tarballs; reproducible
// outputs are kept in the store by their fingerprint, so a fresh --out copies
// them instead of compressing and packing the layers again.
import { chmod, lstat, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobWriter, Store } from "../cache/store.ts";
import type { Writable } from "node:stream";
import type { ImageConfig, LayerFile } from "../image/config.ts";
import { NIFTYC_VERSION } from "../core/version.ts";
import { DEFAULT_PLATFORM, findPlatform, platformDir } from "../image/platform.ts";
import { hashText } from "./keys.ts";
import {
  assembledBlobs,
  copyBlobChecked,
  DamagedBlob,
  restoreEntries,
  type AssembledRecord,
} from "../cache/assembled.ts";

export { assembledBlobs, type AssembledRecord };

/** What a format's writer is given: the staging directory and the image. */
export interface EmitInput {
  dir: string;
  name: string;
  config: ImageConfig;
  layers: LayerFile[];
  digest: string;
  /** rootfs.tar in staging: always written first, since several formats read it. */
  rootfsTar: string;
  /** The SPDX SBOM (src/emit/sbom.ts), for the sbom file and the OCI layout. */
  sbom?: string;
  /** The CycloneDX SBOM (src/emit/cyclonedx.ts), of the same facts, for the cyclonedx file. */
  cyclonedx?: string;
  /** What provenance.json says beside its subjects (src/emit/provenance.ts). */
  provenance?: import("../emit/provenance.ts").ProvenanceInput;
  /** A store writer for a file the format writes (path relative to `dir`), when outputs are kept in the store. */
  keep?: (rel: string) => Writable;
}

interface Emitter {
  /** Output name → path relative to the output directory. */
  files(name: string): Record<string, string>;
  write(input: EmitInput): Promise<void>;
}

/** Whether any of the formats reads the layer tarballs (the OCI layout and the docker-archive); the others take rootfs.tar alone. */
export function takesLayers(formats: ReadonlySet<Format>): boolean {
  return formats.has("oci") || formats.has("docker-archive");
}

/** Whether any of the formats copies the layers' gzip (the OCI layout's layer blobs); the others never read it. */
export function takesGzippedLayers(formats: ReadonlySet<Format>): boolean {
  return formats.has("oci");
}

const MACHINES_DIR = "/var/lib/machines";
/**
 * The docker-archive's and docker-run.sh's tag: `name:<rootfs digest, 12 hex>`, and for a platform
 * other than linux/amd64 its name after a dash (`ssh:…-arm64`, `ssh:…-arm-v7`), so two platforms
 * loaded into one engine keep a tag each even when their trees are the same (a recipe of files).
 */
function repoTag(
  name: string,
  digest: string,
  config: Pick<ImageConfig, "architecture" | "variant">,
): string {
  const platform = findPlatform(["linux", config.architecture, config.variant].filter(Boolean).join("/"));
  const suffix =
    platform === undefined || platform === DEFAULT_PLATFORM ? "" : `-${platformDir(platform).slice(6)}`;
  return `${name}:${digest.slice(7, 19)}${suffix}`;
}
const tagOf = (input: EmitInput) => repoTag(input.name, input.digest, input.config);

/** In the order they are written. */
const EMITTERS = {
  rootfs: { files: () => ({ rootfs: "rootfs.tar" }), async write() {} },
  nspawn: {
    files: (name) => ({ nspawn: `${name}.nspawn` }),
    async write(input) {
      const { renderNspawnFile } = await import("../emit/nspawn.ts");
      await writeFile(join(input.dir, `${input.name}.nspawn`), renderNspawnFile(input.config, {}));
    },
  },
  systemd: {
    files: (name) => ({ service: `${name}.service`, template: `${name}@.service` }),
    async write(input) {
      const { renderServiceUnit, renderTemplateUnit } = await import("../emit/systemd.ts");
      await writeFile(
        join(input.dir, `${input.name}.service`),
        renderServiceUnit(input.config, { machinesDir: MACHINES_DIR }),
      );
      await writeFile(
        join(input.dir, `${input.name}@.service`),
        renderTemplateUnit(input.config, { machinesDir: MACHINES_DIR }),
      );
    },
  },
  docker: {
    files: () => ({ dockerfile: "Dockerfile", dockerRun: "docker-run.sh" }),
    async write(input) {
      const { renderDockerfile, renderDockerRun } = await import("../emit/docker.ts");
      await writeFile(join(input.dir, "Dockerfile"), renderDockerfile(input.config, tagOf(input)));
      await writeFile(join(input.dir, "docker-run.sh"), renderDockerRun(input.config, tagOf(input)), {
        mode: 0o755,
      });
    },
  },
  oci: {
    files: () => ({ oci: "oci" }),
    async write(input) {
      const { writeOciLayout } = await import("../emit/oci-layout.ts");
      await writeOciLayout(join(input.dir, "oci"), {
        config: input.config,
        layers: input.layers,
        refName: "latest",
        ...(input.sbom !== undefined ? { sbom: input.sbom } : {}),
      });
    },
  },
  "docker-archive": {
    files: () => ({ dockerArchive: "image.tar" }),
    async write(input) {
      const { writeDockerArchive } = await import("../emit/docker-archive.ts");
      // Kept in the store while written, so recordAssembled need not read and hash it again.
      const copyTo = input.keep?.("image.tar");
      await writeDockerArchive(join(input.dir, "image.tar"), {
        config: input.config,
        layers: input.layers,
        repoTag: tagOf(input),
        ...(copyTo ? { copyTo } : {}),
      });
    },
  },
  sbom: {
    files: () => ({ sbom: "sbom.spdx.json" }),
    async write(input) {
      if (input.sbom !== undefined) await writeFile(join(input.dir, "sbom.spdx.json"), input.sbom);
    },
  },
  cyclonedx: {
    files: () => ({ cyclonedx: "sbom.cdx.json" }),
    async write(input) {
      if (input.cyclonedx !== undefined) await writeFile(join(input.dir, "sbom.cdx.json"), input.cyclonedx);
    },
  },
  provenance: {
    files: () => ({ provenance: "provenance.json" }),
    async write(input) {
      if (input.provenance === undefined) return;
      const { renderProvenance } = await import("../emit/provenance.ts");
      // The subjects: the OCI image's manifest when the layout was written (just before), and rootfs.tar.
      type Index = { manifests?: Array<{ digest: string; artifactType?: string }> };
      const index = await readFile(join(input.dir, "oci", "index.json"), "utf8").then(
        (t) => JSON.parse(t) as Index,
        () => undefined,
      );
      const images = (index?.manifests ?? []).filter((m) => m.artifactType === undefined);
      const subjects = [
        ...images.map((m) => ({ name: input.name, digest: m.digest })),
        { name: "rootfs.tar", digest: input.digest },
      ];
      await writeFile(join(input.dir, "provenance.json"), renderProvenance(input.provenance, subjects));
    },
  },
  bundle: {
    files: () => ({ bundle: "bundle" }),
    async write(input) {
      const { writeRuntimeBundle } = await import("../emit/runtime-bundle.ts");
      await writeRuntimeBundle(join(input.dir, "bundle"), {
        config: input.config,
        rootfsTar: input.rootfsTar,
      });
    },
  },
} as const satisfies Record<string, Emitter>;

export type Format = keyof typeof EMITTERS;
export const FORMATS = Object.keys(EMITTERS) as Format[];
/**
 * Everything but the runtime bundle, which unpacks the whole rootfs, and the CycloneDX SBOM,
 * asked for beside the SPDX one (`--format …,cyclonedx`), so the default outputs stay as they were.
 */
export const DEFAULT_FORMATS: readonly Format[] = FORMATS.filter((f) => f !== "bundle" && f !== "cyclonedx");

export function outputFiles(
  outDir: string,
  name: string,
  formats: ReadonlySet<Format>,
): Record<string, string> {
  const files: Record<string, string> = {};
  for (const format of FORMATS) {
    if (!formats.has(format)) continue;
    for (const [key, rel] of Object.entries((EMITTERS[format] as Emitter).files(name)))
      files[key] = join(outDir, rel);
  }
  return files;
}

/**
 * The key of the assembled output files: everything that shapes them. The config holds the
 * recipe's name, which names the files and is written in them (units, docker-run.sh, the SBOM,
 * image.tar's tag) though it never reaches the tree; `finalKey`, the last step's key, says which
 * line last wrote each path, which the SBOM tells and the tree's digest does not.
 */
export function outputsFingerprint(
  finalKey: string,
  digest: string,
  config: ImageConfig,
  formats: ReadonlySet<Format>,
  layers: ReadonlyArray<{ digest: string; gzip?: { digest: string } }>,
  inputs = "",
): string {
  // The gzip digests too: out/ written with another compression is not up to date.
  // `inputs`: what the SBOM says beside the tree (source URLs do not change a step's key).
  const layerDigests = JSON.stringify(layers.map((l) => [l.digest, l.gzip?.digest ?? null]));
  // v5: the SBOMs' purls name each package's source (upstream=).
  return hashText(
    "assembled-v5",
    NIFTYC_VERSION,
    finalKey,
    digest,
    JSON.stringify(config),
    [...formats].sort().join(","),
    layerDigests,
    inputs,
  );
}

/**
 * What out/ must have been built from to be up to date (build.json's fingerprint): the assembled
 * files' key and what build.json says beside them, the recipe as shown and each step's line,
 * text and key (a moved line or a renamed recipe keeps the files but changes build.json).
 */
export function outDirFingerprint(
  assembledKey: string,
  shownRecipe: string,
  steps: ReadonlyArray<readonly [number, string, string]>,
): string {
  return hashText("out-v1", assembledKey, shownRecipe, JSON.stringify(steps));
}

export async function upToDateOutputs(
  outDir: string,
  fingerprint: string,
  rootfsSize: number,
  formats?: ReadonlySet<Format>,
): Promise<boolean> {
  try {
    const previous = JSON.parse(await readFile(join(outDir, "build.json"), "utf8")) as {
      fingerprint?: string;
    };
    if (previous.fingerprint !== fingerprint) return false;
    const { stat } = await import("node:fs/promises");
    // A bundle an older niftyc left open to every user (0755, its setuid programs reachable) is written again.
    if (formats?.has("bundle") === true && ((await stat(join(outDir, "bundle"))).mode & 0o077) !== 0)
      return false;
    return (await stat(join(outDir, "rootfs.tar"))).size === rootfsSize;
  } catch {
    return false;
  }
}

/**
 * Write every chosen format into `dir`; rootfs.tar is removed again when not
 * asked for. Returns the written files that are copies of store blobs (path
 * relative to `dir` → digest), which recordAssembled need not hash again.
 */
export async function writeOutputs(
  store: Store,
  input: Omit<EmitInput, "rootfsTar" | "keep">,
  formats: ReadonlySet<Format>,
  keepInStore = false,
): Promise<Map<string, string>> {
  const rootfsTar = join(input.dir, "rootfs.tar");
  // Set aside by a restore a moment ago, or by `niftyc cache verify`: the next build writes it anew.
  if (!(await store.has(input.digest))) throw await store.setAsideDamaged(input.digest);
  copyBlobChecked(store.blobPath(input.digest), rootfsTar, input.digest);
  await chmod(rootfsTar, 0o644);
  const kept = new Map<string, BlobWriter>();
  const keep = (rel: string): Writable => {
    const writer = store.createWriter();
    kept.set(rel, writer);
    return writer;
  };
  const copies = new Map<string, string>();
  try {
    for (const format of FORMATS)
      if (formats.has(format))
        await (EMITTERS[format] as Emitter).write({ ...input, rootfsTar, ...(keepInStore ? { keep } : {}) });
    for (const [rel, writer] of kept) copies.set(rel, (await writer.commit()).digest);
  } catch (error) {
    await Promise.all([...kept.values()].map((w) => w.abort()));
    throw error;
  }
  if (formats.has("rootfs")) copies.set("rootfs.tar", input.digest);
  else await rm(rootfsTar);
  if (formats.has("oci"))
    for (const layer of input.layers)
      if (layer.gzip)
        copies.set(`oci/blobs/sha256/${layer.gzip.digest.slice("sha256:".length)}`, layer.gzip.digest);
  return copies;
}

/**
 * Record what staging holds, or undefined when it holds what a record cannot
 * restore exactly (files owned by another user, devices, hard links): such
 * outputs are written afresh each time instead.
 */
export async function recordAssembled(
  staging: string,
  store: Store,
  copies: ReadonlyMap<string, string> = new Map(),
): Promise<AssembledRecord | undefined> {
  const record: AssembledRecord = { entries: [] };
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const visit = async (rel: string): Promise<boolean> => {
    const names = (await readdir(join(staging, rel))).sort();
    for (const name of names) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const st = await lstat(join(staging, path));
      if (st.uid !== uid || st.gid !== gid) return false;
      if (st.isDirectory()) {
        record.entries.push({ path, type: "dir", mode: st.mode & 0o7777 });
        if (!(await visit(path))) return false;
      } else if (st.isSymbolicLink()) {
        record.entries.push({ path, type: "symlink", target: await readlink(join(staging, path)) });
      } else if (st.isFile() && st.nlink === 1) {
        const digest = copies.get(path) ?? (await store.putFile(join(staging, path))).digest;
        record.entries.push({ path, type: "file", mode: st.mode & 0o7777, digest });
      } else {
        return false;
      }
    }
    return true;
  };
  return (await visit("")) ? record : undefined;
}

export async function restoreAssembled(
  staging: string,
  store: Store,
  record: AssembledRecord,
): Promise<boolean> {
  if (!(await store.hasAll(assembledBlobs(record)))) return false;
  try {
    restoreEntries(staging, record.entries, (digest) => store.blobPath(digest), true);
    return true;
  } catch (error) {
    if (!(error instanceof DamagedBlob)) throw error;
    // Set aside; the outputs are written afresh from the layers, into an emptied staging directory.
    await store.setAsideDamaged(error.digest);
    for (const name of await readdir(staging))
      await rm(join(staging, name), { recursive: true, force: true });
    return false;
  }
}
