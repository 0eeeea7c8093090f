// One recipe, several platforms: one build per platform (each with its own keys, lock section and
// outputs under out/<name>/<os>-<arch>[-<variant>]/), the same version of every package on
// each, and an OCI image index at out/<name>/oci/ naming each platform's manifest.
// One platform alone is the plain build: out/<name>/ as it always was.
import { copyFile, link, mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { replaceDir, stagingDir, writeExact } from "../core/atomic.ts";
import { treeIdentities } from "../core/host-inputs.ts";
import { DEFAULT_PLATFORM, platformDir, type Platform } from "../image/platform.ts";
import type { BuildEvent, BuildOptions, BuildResult } from "./types.ts";

const INDEX = "application/vnd.oci.image.index.v1+json";

export interface PlatformsResult extends BuildResult {
  /** Each platform's build, in the order asked (only for several platforms). */
  platforms?: Array<{ platform: string; outDir: string; digest: string; manifest: string }>;
  /** The image index's digest: what a registry tag names (only for several platforms). */
  index?: string;
  /** Each platform's steps and image config, in the order built: what a no-op build says of each again. */
  each?: Array<Pick<BuildResult, "steps" | "config">>;
  /** The notes given once every platform was built (how another platform's run configs boot). */
  closingNotes?: string[];
}

/** Build the recipe for every platform of `options.platforms` (or the one `options.platform`). */
export async function buildPlatforms(options: BuildOptions): Promise<PlatformsResult> {
  const { build, refuseOutDir, resolveBuildLock } = await import("./build.ts");
  const platforms = options.platforms ?? [options.platform ?? DEFAULT_PLATFORM];
  if (platforms.length === 1) return build({ ...options, platform: platforms[0]! });
  // Every platform's packages first, so versions that differ stop the build before any image is
  // made or the lock is written; then every section written at once, as `niftyc lock` does. The
  // platforms' locks are checked (their .debs downloaded and read), then their images built, all at
  // once: each build's bytes depend on its own inputs only, and what they say is shown in order.
  const { sameVersions, writeResolvedSections } = await import("./packages.ts");
  // The builds read the lock again, as written below (so an up-to-date stamp records the file they
  // built from; its lock check is a stored record by then): what its reading said here is not said twice.
  const said = new Set<string>();
  const resolving = options.onEvent && noting(options.onEvent, said);
  const found = await allInOrder(platforms, resolving, (platform, onEvent) =>
    resolveBuildLock({ ...options, platform, ...onEvent }),
  );
  const resolved = platforms.flatMap((platform, i) => {
    const packages = found[i];
    return packages === undefined ? [] : [{ platform, packages, lock: packages.lock }];
  });
  sameVersions(resolved, options.shownPath ?? options.recipePath);
  await writeResolvedSections(
    resolved.map((r) => r.packages),
    options.onEvent ?? (() => {}),
  );
  let top = "";
  const building = options.onEvent && unsaid(options.onEvent, said);
  const results = await allInOrder(platforms, building, (platform, onEvent) =>
    build({
      ...options,
      platform,
      ...onEvent,
      outDir: (name) => {
        top = options.outDir(name);
        refuseOutDir(top, options);
        return join(top, platformDir(platform));
      },
    }),
  );
  await mkdir(top, { recursive: true });
  const built = results.map((result, i) => ({ platform: platforms[i]!.name, result, manifest: "" }));
  const index = await writeIndex(top, built, platforms);
  const provenance = await writeProvenance(top, index, built, platforms);
  const kept = [
    ...platforms.map(platformDir),
    ...(index ? ["oci"] : []),
    ...(provenance ? ["provenance.json"] : []),
  ];
  await pruneOutDir(top, kept);
  // The run configs are each platform's; the first platform's are the ones to use here.
  const closingNotes = platforms
    .slice(1)
    .map(
      (p) =>
        `${platformDir(p)}/'s .nspawn file and units boot ${p.name}: on another machine, through qemu-user ` +
        `(binfmt_misc handler qemu-${p.qemu}, docs/outputs.md#several-platforms)`,
    );
  for (const message of closingNotes) options.onEvent?.({ type: "note", message });
  const first = built[0]!.result;
  const { recall: _, ...rest } = first;
  const recall = recallAll(top, built, options);
  // What the steps of every platform need, for --cache-to.
  const used = [...new Set(built.flatMap((b) => b.result.used))].sort();
  const platformsOut = built.map((b) => ({
    platform: b.platform,
    outDir: b.result.outDir,
    digest: b.result.digest,
    manifest: b.manifest,
  }));
  return {
    ...rest,
    used,
    outDir: top,
    platforms: platformsOut,
    each: built.map((b) => ({ steps: b.result.steps, config: b.result.config })),
    closingNotes,
    ...(index ? { index } : {}),
    ...(recall ? { recall } : {}),
  };
}

/**
 * What a later run needs to answer this build from its stamp (src/cli/build-stamp.ts), when every
 * platform's build could be recalled: the whole out/<name>/ as written now (each platform's
 * directory, the index, the provenance) and every platform's use record.
 */
function recallAll(
  top: string,
  built: ReadonlyArray<{ result: BuildResult }>,
  options: BuildOptions,
): BuildResult["recall"] {
  const recalls = built.map((b) => b.result.recall);
  if (options.hostInputs === undefined || recalls.some((r) => r === undefined)) return undefined;
  const outputs = treeIdentities(top);
  if (outputs === undefined) return undefined;
  const [first, ...others] = recalls.map((r) => r!.useRecord);
  return { useRecord: first!, outputs, otherUseRecords: others };
}

/**
 * Run `work` for every platform at once, and answer their results in the platforms' order. What
 * each says (its events) is shown as if they ran one after another: the first platform's as it
 * comes, each later one's held until those before it are done (a live download's progress is not
 * held: it is over by then). A failure is the first platform's, in order, once all have ended.
 */
async function allInOrder<T>(
  platforms: readonly Platform[],
  onEvent: BuildOptions["onEvent"],
  work: (platform: Platform, events: Pick<BuildOptions, "onEvent">) => Promise<T>,
): Promise<T[]> {
  const held: BuildEvent[][] = platforms.map(() => []);
  const ended = platforms.map(() => false);
  let shown = 0;
  // After a platform fails, the later ones say nothing: one after another, they would not have run.
  let failed = platforms.length;
  const sink = (i: number) => (event: BuildEvent) => {
    if (i > failed) return;
    if (i === shown) onEvent!(event);
    else if (event.type !== "fetch-progress") held[i]!.push(event);
  };
  const end = (i: number, ok: boolean) => {
    ended[i] = true;
    if (!ok) failed = Math.min(failed, i);
    while (ended[shown] && shown < failed && shown + 1 < platforms.length)
      for (const e of held[++shown]!.splice(0)) onEvent!(e);
  };
  const settled = await Promise.allSettled(
    platforms.map((platform, i) =>
      work(platform, onEvent ? { onEvent: sink(i) } : {}).then(
        (value) => {
          end(i, true);
          return value;
        },
        (error: unknown) => {
          end(i, false);
          throw error;
        },
      ),
    ),
  );
  return settled.map((s) => {
    if (s.status === "rejected") throw s.reason;
    return s.value;
  });
}

/**
 * out/<name>/ holds what this build wrote and nothing else, as a one-platform build's does: what an
 * earlier build left there (its rootfs.tar, another platform's directory) goes. Dot files stay
 * (the secret stamps of each platform's build, staging directories of builds under way).
 */
async function pruneOutDir(top: string, keep: readonly string[]): Promise<void> {
  for (const name of await readdir(top)) {
    if (name.startsWith(".") || keep.includes(name)) continue;
    await rm(join(top, name), { recursive: true, force: true });
  }
}

/**
 * out/<name>/provenance.json: the index and every platform's subjects, every platform's inputs
 * (src/emit/provenance.ts), when every platform wrote its own; what niftyc verify rebuilds from.
 */
async function writeProvenance(
  top: string,
  index: string | undefined,
  built: ReadonlyArray<{ platform: string; result: BuildResult }>,
  platforms: readonly Platform[],
): Promise<boolean> {
  const parts = [];
  for (const [i, b] of built.entries()) {
    const text = await readFile(join(b.result.outDir, "provenance.json"), "utf8").catch(() => undefined);
    if (text === undefined) return false;
    parts.push({ dir: platformDir(platforms[i]!), platform: b.platform, text });
  }
  const { renderIndexProvenance } = await import("../emit/provenance.ts");
  await writeExact(join(top, "provenance.json"), renderIndexProvenance(index, parts));
  return true;
}

async function addBlob(blobs: string, from: string, hex: string): Promise<void> {
  await link(join(from, hex), join(blobs, hex)).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code === "EEXIST") return;
    await copyFile(join(from, hex), join(blobs, hex));
  });
}

/** out/<name>/oci/: every platform's blobs, and an image index (tagged latest) of their manifests. */
async function writeIndex(
  top: string,
  built: Array<{ platform: string; result: BuildResult; manifest: string }>,
  platforms: readonly Platform[],
): Promise<string | undefined> {
  const dir = join(top, "oci");
  // Without the oci format there is no manifest to index.
  const layoutOf = (b: (typeof built)[number]) =>
    stat(join(b.result.outDir, "oci", "index.json")).catch(() => undefined);
  if ((await Promise.all(built.map(layoutOf))).some((s) => s === undefined)) return undefined;
  const staging = await stagingDir(dir);
  try {
    const blobs = join(staging, "blobs", "sha256");
    await mkdir(blobs, { recursive: true, mode: 0o755 });
    const entries: Array<Record<string, unknown>> = [];
    // Each platform's SBOM artifact (its subject that platform's manifest), listed after the index.
    const artifacts: Array<Record<string, unknown>> = [];
    for (const [i, b] of built.entries()) {
      const from = join(b.result.outDir, "oci");
      const own = JSON.parse(await readFile(join(from, "index.json"), "utf8")) as {
        manifests: Array<Record<string, unknown>>;
      };
      const image = own.manifests.find((m) => m.artifactType === undefined);
      if (image === undefined) throw new Error(`${from}/index.json names no image`);
      artifacts.push(...own.manifests.filter((m) => m.artifactType !== undefined));
      const p = platforms[i]!;
      const ownBlobs = join(from, "blobs", "sha256");
      for (const hex of await readdir(ownBlobs)) await addBlob(blobs, ownBlobs, hex);
      b.manifest = image.digest as string;
      entries.push({
        mediaType: image.mediaType,
        digest: image.digest,
        size: image.size,
        platform: { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}) },
      });
    }
    const indexJson = JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: entries });
    const hex = createHash("sha256").update(indexJson).digest("hex");
    await writeExact(join(blobs, hex), indexJson);
    const layoutIndex = {
      schemaVersion: 2,
      mediaType: INDEX,
      manifests: [
        {
          mediaType: INDEX,
          digest: `sha256:${hex}`,
          size: Buffer.byteLength(indexJson),
          annotations: { "org.opencontainers.image.ref.name": "latest" },
        },
        ...artifacts,
      ],
    };
    await writeExact(join(staging, "index.json"), JSON.stringify(layoutIndex));
    await writeExact(join(staging, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await replaceDir(staging, dir, true);
    return `sha256:${hex}`;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

type OnEvent = NonNullable<BuildOptions["onEvent"]>;

/** Passes every event on, keeping the notes' words. */
function noting(onEvent: OnEvent, said: Set<string>): OnEvent {
  return (event) => {
    if (event.type === "note") said.add(event.message);
    onEvent(event);
  };
}

/** Passes every event on but the notes already said. */
function unsaid(onEvent: OnEvent, said: ReadonlySet<string>): OnEvent {
  return (event) => {
    if (event.type !== "note" || !said.has(event.message)) onEvent(event);
  };
}
