// Hand-built package records for the Debian tests, and a small reader of real
// Packages indices (the production reader streams; this one only needs to be right).
import { createHash } from "node:crypto";
import type { PackageRecord, SuiteRef } from "../../src/debian/types.ts";
import { buildUniverse, type SuiteIndex, type Universe } from "../../src/debian/universe.ts";
import { parseStanzas } from "../../src/debian/deb822.ts";

export const MAIN: SuiteRef = { archive: "debian", suite: "bookworm", component: "main" };
export const UPDATES: SuiteRef = { archive: "debian", suite: "bookworm-updates", component: "main" };
export const SECURITY: SuiteRef = {
  archive: "debian-security",
  suite: "bookworm-security",
  component: "main",
};

export type Extra = Partial<Omit<PackageRecord, "name" | "version">>;

/** A record with plausible pool path, size and digest derived from its identity. */
export function pkg(name: string, version: string, extra: Extra = {}): PackageRecord {
  const architecture = extra.architecture ?? "amd64";
  const from = extra.from ?? MAIN;
  const file = `${name}_${version.replace(/^\d+:/, "")}_${architecture}.deb`;
  const digest = createHash("sha256").update(`${from.suite}/${file}`).digest("hex");
  return {
    name,
    version,
    architecture,
    depends: "",
    preDepends: "",
    provides: "",
    filename: `pool/${from.component}/${name.startsWith("lib") ? name.slice(0, 4) : name[0]}/${name}/${file}`,
    size: 1000 + (parseInt(digest.slice(0, 4), 16) % 9000),
    sha256: `sha256:${digest}`,
    ...extra,
    from,
  };
}

/** A record as a parsed index in the store holds it, where only its name, version and description matter. */
export function indexRecord(
  from: SuiteRef,
  name: string,
  version: string,
  description?: string,
): PackageRecord {
  return {
    name,
    version,
    architecture: "amd64",
    depends: "",
    preDepends: "",
    provides: "",
    filename: `pool/main/x/${name}.deb`,
    size: 1,
    sha256: `sha256:${"b".repeat(64)}`,
    from,
    ...(description ? { description } : {}),
  };
}

/** Records grouped by their suite, suites in the order given (the tie-break order). */
export function universeOf(
  records: readonly PackageRecord[],
  suites: readonly SuiteRef[] = [MAIN, UPDATES, SECURITY],
): Universe {
  const indices: SuiteIndex[] = suites.map((suite) => ({
    suite,
    records: records.filter((r) => r.from === suite),
  }));
  return buildUniverse(indices);
}

function parseMultiArch(v: string | undefined): PackageRecord["multiArch"] {
  return v === "same" || v === "foreign" || v === "allowed" || v === "no" ? v : undefined;
}

/** A Packages index's text as records (fields niftyc uses only). */
export function readPackagesText(text: string, from: SuiteRef): PackageRecord[] {
  const { stanzas } = parseStanzas(text);
  const out: PackageRecord[] = [];
  for (const stanza of stanzas) {
    const f = new Map(stanza.fields.map((x) => [x.name.toLowerCase(), x.value]));
    const record: PackageRecord = {
      name: f.get("package") ?? "",
      version: f.get("version") ?? "",
      architecture: f.get("architecture") ?? "",
      depends: f.get("depends") ?? "",
      preDepends: f.get("pre-depends") ?? "",
      provides: f.get("provides") ?? "",
      filename: f.get("filename") ?? "",
      size: Number(f.get("size") ?? "0"),
      sha256: `sha256:${f.get("sha256") ?? ""}`,
      from,
    };
    const multiArch = parseMultiArch(f.get("multi-arch"));
    if (multiArch !== undefined) record.multiArch = multiArch;
    if (f.get("essential") === "yes") record.essential = true;
    const priority = f.get("priority");
    if (priority !== undefined) record.priority = priority;
    const installedSize = f.get("installed-size");
    if (installedSize !== undefined && /^\d+$/.test(installedSize))
      record.installedSize = Number(installedSize);
    out.push(record);
  }
  return out;
}
