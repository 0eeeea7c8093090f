// The SBOM of an image as SPDX 2.3 JSON: the image, every fetched input
// (FETCH), every signed suite (ARCHIVE) and Debian package (PACKAGE) with its
// digest, source URL, version and package URL, and every file of the image
// that came from one of them, with the relationship that says which. A pure
// function of its input: sorted, with IDs from positions and the time from
// SOURCE_DATE_EPOCH, so a build gives the same bytes every time.
import { debianDistro } from "../debian/releases.ts";

export interface SbomInput {
  name: string;
  /** sha256 of rootfs.tar: the image's identity. */
  rootfsDigest: string;
  /** SOURCE_DATE_EPOCH, seconds. */
  epoch: number;
  niftycVersion: string;
  fetches: Array<{ name: string; digest: string; sources: string[]; extract?: string }>;
  archives: Array<{ archive: string; suite: string; component: string; inRelease: string; url?: string }>;
  packages: Array<{
    name: string;
    version: string;
    architecture: string;
    sha256: string;
    archive: string;
    suite: string;
    component: string;
    filename: string;
    url?: string;
    /** The source package, from the .deb's `Source` field: absent when it is the package's own name. */
    source?: { name: string; version?: string };
  }>;
  /** `from.fetch` is the FETCH's name and digest, as "name@sha256:…". */
  files: Array<{
    path: string;
    sha256: string;
    sha1: string;
    from: { fetch: string } | { package: string; architecture: string };
  }>;
}

export const SPDX_MEDIA_TYPE = "application/spdx+json";
/** CycloneDX JSON (src/emit/cyclonedx.ts): its media type, pushed as a referrer's artifactType. */
export const CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json";

const hex = (digest: string) => digest.replace(/^sha256:/, "");
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** purl's percent-encoding of a version: Debian's epoch colon and plus signs. */
function purlPart(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * A Debian package's purl. `distro` names the release (`debian-12`) as syft and trivy write it and
 * read it back to pick the advisories to match, never the suite it came from: syft would read
 * `bookworm-security` as a distribution "bookworm" at version "security". `upstream` names the
 * source package (`name` or `name@version`), as syft writes it: Debian's advisories are filed
 * against source packages, and grype matches a binary package such as libssl3 by it.
 */
export function debPurl(p: {
  name: string;
  version: string;
  architecture: string;
  suite: string;
  source?: { name: string; version?: string };
}): string {
  // Qualifier keys in the purl spec's canonical order: sorted.
  const qualifiers = [`arch=${purlPart(p.architecture)}`, `distro=${purlPart(debianDistro(p.suite))}`];
  if (p.source !== undefined) {
    const upstream = p.source.version === undefined ? p.source.name : `${p.source.name}@${p.source.version}`;
    qualifiers.push(`upstream=${purlPart(upstream)}`);
  }
  return `pkg:deb/debian/${purlPart(p.name)}@${purlPart(p.version)}?${qualifiers.join("&")}`;
}

export function genericPurl(f: { name: string; digest: string; sources: string[] }): string {
  const url = f.sources[0];
  return `pkg:generic/${purlPart(f.name)}?checksum=sha256:${hex(f.digest)}${url ? `&download_url=${purlPart(url)}` : ""}`;
}

/** The image's SBOM namespace: unique per image name and rootfs digest, the same on every build. */
export function documentNamespace(input: { name: string; rootfsDigest: string }): string {
  return `https://spdx.niftyc.invalid/image/${encodeURIComponent(input.name)}/${hex(input.rootfsDigest)}`;
}

/** SPDX IDs allow letters, digits, "." and "-". */
function spdxId(kind: string, text: string): string {
  return `SPDXRef-${kind}-${text.replace(/[^A-Za-z0-9.-]+/g, "-")}`;
}

const IMAGE_ID = "SPDXRef-Image";

/** The SBOM's inputs in their one order, each with its SPDX ID. */
function spdxElements(input: SbomInput) {
  const fetches = [...input.fetches].sort((a, b) => byText(a.name, b.name) || byText(a.digest, b.digest));
  const archives = [...input.archives].sort((a, b) =>
    byText(`${a.archive} ${a.suite} ${a.component}`, `${b.archive} ${b.suite} ${b.component}`),
  );
  const packages = [...input.packages].sort((a, b) =>
    byText(`${a.name}:${a.architecture}`, `${b.name}:${b.architecture}`),
  );
  const files = [...input.files].sort((a, b) => byText(a.path, b.path));
  const fetchIds = new Map(
    fetches.map((f, i) => [`${f.name}@${f.digest}`, spdxId("Fetch", `${i}-${f.name}`)]),
  );
  const archiveIds = archives.map((a, i) => spdxId("Archive", `${i}-${a.archive}-${a.suite}-${a.component}`));
  const packageIds = new Map(
    packages.map((p, i) => [
      `${p.name}:${p.architecture}`,
      spdxId("Package", `${i}-${p.name}-${p.architecture}`),
    ]),
  );
  return { fetches, archives, packages, files, fetchIds, archiveIds, packageIds };
}

type SpdxElements = ReturnType<typeof spdxElements>;

export function renderSpdx(input: SbomInput): string {
  const created = new Date(input.epoch * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const el = spdxElements(input);
  const doc = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: input.name,
    // Unique per image and reproducible: named by the image's digest.
    documentNamespace: documentNamespace(input),
    creationInfo: { created, creators: [`Tool: niftyc-${input.niftycVersion}`] },
    documentDescribes: [IMAGE_ID],
    packages: spdxPackages(input, el),
    files: el.files.map((f, i) => ({
      SPDXID: spdxId("File", String(i)),
      fileName: `.${f.path}`,
      checksums: [
        { algorithm: "SHA1", checksumValue: f.sha1 },
        { algorithm: "SHA256", checksumValue: hex(f.sha256) },
      ],
    })),
    relationships: spdxRelationships(el),
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/** The image, then every FETCH, signed suite and Debian package. */
function spdxPackages(input: SbomInput, el: SpdxElements) {
  const image = {
    SPDXID: IMAGE_ID,
    name: input.name,
    downloadLocation: "NOASSERTION",
    filesAnalyzed: false,
    primaryPackagePurpose: "CONTAINER",
    checksums: [{ algorithm: "SHA256", checksumValue: hex(input.rootfsDigest) }],
    comment: "the image's rootfs.tar",
  };
  const fetches = el.fetches.map((f) => {
    const also = [
      f.sources.length > 1 ? `also at ${f.sources.slice(1).join(" ")}` : "",
      f.extract ? `member ${f.extract} extracted` : "",
    ].filter(Boolean);
    return {
      SPDXID: el.fetchIds.get(`${f.name}@${f.digest}`)!,
      name: f.name,
      downloadLocation: f.sources[0] ?? "NOASSERTION",
      filesAnalyzed: false,
      primaryPackagePurpose: "FILE",
      checksums: [{ algorithm: "SHA256", checksumValue: hex(f.digest) }],
      externalRefs: [
        { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: genericPurl(f) },
      ],
      ...(also.length > 0 ? { comment: also.join("; ") } : {}),
    };
  });
  const archives = el.archives.map((a, i) => ({
    SPDXID: el.archiveIds[i]!,
    name: `${a.archive} ${a.suite} ${a.component}`,
    downloadLocation: a.url ? `${a.url}/dists/${a.suite}/InRelease` : "NOASSERTION",
    filesAnalyzed: false,
    primaryPackagePurpose: "SOURCE",
    checksums: [{ algorithm: "SHA256", checksumValue: hex(a.inRelease) }],
    comment: "the suite's signed InRelease, which pins the digests of its packages",
  }));
  const packages = el.packages.map((p) => ({
    SPDXID: el.packageIds.get(`${p.name}:${p.architecture}`)!,
    name: p.name,
    versionInfo: p.version,
    supplier: "Organization: Debian",
    downloadLocation: p.url ?? "NOASSERTION",
    filesAnalyzed: false,
    primaryPackagePurpose: "LIBRARY",
    checksums: [{ algorithm: "SHA256", checksumValue: hex(p.sha256) }],
    externalRefs: [
      { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: debPurl(p) },
    ],
    comment: `${p.archive} ${p.suite} ${p.component}: ${p.filename}`,
  }));
  return [image, ...fetches, ...archives, ...packages];
}

/** The document describes the image; the image contains its inputs; suites pin packages; inputs contain files. */
function spdxRelationships(el: SpdxElements) {
  const relationships: Array<{
    spdxElementId: string;
    relationshipType: string;
    relatedSpdxElement: string;
    comment?: string;
  }> = [{ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: IMAGE_ID }];
  const contains = (from: string, id: string) =>
    relationships.push({ spdxElementId: from, relationshipType: "CONTAINS", relatedSpdxElement: id });
  for (const id of el.fetchIds.values()) contains(IMAGE_ID, id);
  for (const id of el.packageIds.values()) contains(IMAGE_ID, id);
  for (const p of el.packages) {
    const a = el.archives.findIndex(
      (s) => s.archive === p.archive && s.suite === p.suite && s.component === p.component,
    );
    if (a >= 0)
      relationships.push({
        spdxElementId: el.archiveIds[a]!,
        relationshipType: "OTHER",
        relatedSpdxElement: el.packageIds.get(`${p.name}:${p.architecture}`)!,
        comment: "lists and pins the package",
      });
  }
  for (const [i, f] of el.files.entries()) {
    const from =
      "fetch" in f.from
        ? el.fetchIds.get(f.from.fetch)
        : el.packageIds.get(`${f.from.package}:${f.from.architecture}`);
    if (from) contains(from, spdxId("File", String(i)));
  }
  return relationships;
}

/** Where an archive's packages are published, when the recipe names no URL: Debian's own. */
export function canonicalArchiveUrl(archive: string): string | undefined {
  if (archive === "debian") return "https://deb.debian.org/debian";
  if (archive === "debian-security") return "https://security.debian.org/debian-security";
  return undefined;
}
