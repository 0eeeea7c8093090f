// SLSA provenance v1 as an in-toto Statement v1: what was built (the image's
// manifest digest and rootfs.tar), from what (the recipe and its lock by
// digest, the --arg values, the names of the secrets used but never their
// values, the platform, niftyc's version and its package-lock.json) and with
// what (every FETCH and locked package by digest). A pure function of its
// input: sorted, no clock but SOURCE_DATE_EPOCH, so a build gives the same bytes.
import type { SbomInput } from "./sbom.ts";

export const PROVENANCE_MEDIA_TYPE = "application/vnd.in-toto+json";
export const PROVENANCE_PREDICATE = "https://slsa.dev/provenance/v1";
export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const BUILD_TYPE = "https://niftyc.dev/provenance/build/v1";

/** What the provenance says beside its subjects; its JSON is also the outputs' key's part for it. */
export interface ProvenanceInput {
  name: string;
  recipe: { path: string; sha256: string };
  lock?: { path: string; sha256: string };
  args: Record<string, string>;
  /** The ids of the secrets the recipe reads: that they were used, never what they were. */
  secrets: string[];
  platforms: string[];
  epoch: number;
  niftyc: { version: string; packageLockSha256: string };
  fetches: SbomInput["fetches"];
  packages: SbomInput["packages"];
}

export interface Subject {
  name: string;
  digest: string;
}

const hex = (digest: string) => digest.replace(/^sha256:/, "");
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function dependencies(input: ProvenanceInput): Array<Record<string, unknown>> {
  const fetches = [...input.fetches]
    .sort((a, b) => byText(a.name, b.name) || byText(a.digest, b.digest))
    .map((f) => ({
      name: f.name,
      ...(f.sources[0] !== undefined ? { uri: f.sources[0] } : {}),
      digest: { sha256: hex(f.digest) },
      annotations: { kind: "fetch", ...(f.extract !== undefined ? { extract: f.extract } : {}) },
    }));
  const packages = [...input.packages]
    .sort((a, b) => byText(a.filename, b.filename))
    .map((p) => ({
      name: `${p.name}_${p.version}_${p.architecture}.deb`,
      uri: p.url ?? `${p.archive}/${p.filename}`,
      digest: { sha256: hex(p.sha256) },
      annotations: {
        kind: "debian-package",
        package: p.name,
        version: p.version,
        architecture: p.architecture,
        suite: `${p.archive} ${p.suite} ${p.component}`,
      },
    }));
  const sources = [
    { name: "recipe", uri: input.recipe.path, digest: { sha256: hex(input.recipe.sha256) } },
    ...(input.lock
      ? [{ name: "lock", uri: input.lock.path, digest: { sha256: hex(input.lock.sha256) } }]
      : []),
  ];
  return [...sources, ...fetches, ...packages];
}

export function renderProvenance(input: ProvenanceInput, subjects: readonly Subject[]): string {
  const args = Object.fromEntries(Object.entries(input.args).sort(([a], [b]) => byText(a, b)));
  const statement = {
    _type: STATEMENT_TYPE,
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: hex(s.digest) } })),
    predicateType: PROVENANCE_PREDICATE,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          recipe: { path: input.recipe.path, digest: { sha256: hex(input.recipe.sha256) } },
          lock: input.lock ? { path: input.lock.path, digest: { sha256: hex(input.lock.sha256) } } : null,
          args,
          secrets: [...input.secrets].sort().map((name) => ({ name, used: true })),
          platforms: [...input.platforms].sort(),
          sourceDateEpoch: input.epoch,
        },
        internalParameters: {
          niftyc: {
            version: input.niftyc.version,
            packageLock: { sha256: hex(input.niftyc.packageLockSha256) },
          },
        },
        resolvedDependencies: dependencies(input),
      },
      runDetails: {
        builder: {
          id: `${BUILD_TYPE}#niftyc@${input.niftyc.version}`,
          version: { niftyc: input.niftyc.version },
        },
        metadata: {},
      },
    },
  };
  return JSON.stringify(statement, null, 2) + "\n";
}

/** One platform's provenance.json as written, and the directory its build went to (linux-arm64). */
export interface PlatformProvenance {
  dir: string;
  platform: string;
  text: string;
}

type Json = Record<string, unknown>;

/**
 * The provenance of a multi-platform build: its subjects the image index (named as each image is)
 * and every platform's own subjects under that platform's directory (linux-arm64/rootfs.tar);
 * every platform in `platforms`, each platform's lock in `locks`, and every platform's inputs.
 * The recipe, --arg values, secrets and epoch are the same for all platforms.
 */
export function renderIndexProvenance(
  index: string | undefined,
  parts: readonly PlatformProvenance[],
): string {
  const statements = parts.map((p) => JSON.parse(p.text) as Json);
  const first = statements[0]!;
  const own = first.subject as Array<{ name: string; digest: unknown }>;
  const name = own.find((x) => x.name !== "rootfs.tar")?.name ?? "image";
  const subject = [
    ...(index !== undefined ? [{ name, digest: { sha256: hex(index) } }] : []),
    ...statements.flatMap((s, i) =>
      (s.subject as Array<{ name: string; digest: unknown }>).map((x) => ({
        name: `${parts[i]!.dir}/${x.name}`,
        digest: x.digest,
      })),
    ),
  ];
  const definition = (s: Json) => (s.predicate as Json).buildDefinition as Json;
  const external = (s: Json) => definition(s).externalParameters as Json;
  const locks = statements.flatMap((s, i) => {
    const lock = external(s).lock as Json | null;
    return lock ? [{ platform: parts[i]!.platform, ...lock }] : [];
  });
  const seen = new Map<string, unknown>();
  for (const s of statements)
    for (const d of definition(s).resolvedDependencies as Json[]) seen.set(JSON.stringify(d), d);
  // In the first platform's order (the recipe and its lock first), then what other platforms add.
  const dependencies = [...seen.values()];
  const predicate = first.predicate as Json;
  const statement = {
    ...first,
    subject,
    predicate: {
      ...predicate,
      buildDefinition: {
        ...definition(first),
        externalParameters: {
          ...external(first),
          locks,
          platforms: parts.map((p) => p.platform).sort(byText),
        },
        resolvedDependencies: dependencies,
      },
    },
  };
  return JSON.stringify(statement, null, 2) + "\n";
}
