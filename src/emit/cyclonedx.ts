// The SBOM of an image as CycloneDX 1.6 JSON, built with the OWASP CycloneDX
// library from the same facts as the SPDX document (src/emit/sbom.ts): the
// image, every FETCH, every signed suite and Debian package of the lock, with
// the same digests, URLs and package URLs, and every file that came from one of
// them, nested in the component it came from (CycloneDX says "contains" by
// nesting). Reproducible: the serial number is a name-based UUID (version 5)
// of the image's digest, the time is SOURCE_DATE_EPOCH, and every list is sorted.
import { createHash } from "node:crypto";
import { Enums, Models, Serialize, Spec } from "@cyclonedx/cyclonedx-library";
import { debPurl, documentNamespace, genericPurl } from "./sbom.ts";
import type { SbomInput } from "./sbom.ts";

const hex = (digest: string) => digest.replace(/^sha256:/, "");
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** RFC 9562's namespace for names that are URLs. */
const NAMESPACE_URL = "6ba7b8119dad11d180b400c04fd430c8";

/** A version 5 UUID of `name` in the URL namespace: the same name gives the same UUID everywhere. */
export function uuidV5(name: string): string {
  const bytes = createHash("sha1")
    .update(Buffer.from(NAMESPACE_URL, "hex"))
    .update(name)
    .digest()
    .subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const h = bytes.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function sha256(component: Models.Component, digest: string): Models.Component {
  component.hashes.set(Enums.HashAlgorithm["SHA-256"], hex(digest));
  return component;
}

function distribution(url: string | undefined, comment?: string): Models.ExternalReference[] {
  if (url === undefined) return [];
  return [
    new Models.ExternalReference(url, Enums.ExternalReferenceType.Distribution, comment ? { comment } : {}),
  ];
}

function fetchComponent(f: SbomInput["fetches"][number]): Models.Component {
  const c = new Models.Component(Enums.ComponentType.File, f.name, {
    bomRef: genericPurl(f),
    purl: genericPurl(f),
  });
  for (const [i, url] of f.sources.entries())
    c.externalReferences.add(distribution(url, i > 0 ? "also at" : undefined)[0]!);
  if (f.extract) c.properties.add(new Models.Property("niftyc:extract", f.extract));
  return sha256(c, f.digest);
}

function archiveComponent(a: SbomInput["archives"][number]): Models.Component {
  const name = `${a.archive} ${a.suite} ${a.component}`;
  const c = new Models.Component(Enums.ComponentType.Data, name, {
    bomRef: `suite:${a.archive}/${a.suite}/${a.component}`,
    description: "the suite's signed InRelease, which pins the digests of its packages",
  });
  for (const ref of distribution(a.url && `${a.url}/dists/${a.suite}/InRelease`))
    c.externalReferences.add(ref);
  return sha256(c, a.inRelease);
}

function packageComponent(p: SbomInput["packages"][number]): Models.Component {
  const purl = debPurl(p);
  const c = new Models.Component(Enums.ComponentType.Library, p.name, {
    bomRef: purl,
    purl,
    version: p.version,
    supplier: new Models.OrganizationalEntity({ name: "Debian" }),
  });
  for (const ref of distribution(p.url)) c.externalReferences.add(ref);
  c.properties.add(new Models.Property("niftyc:suite", `${p.archive} ${p.suite} ${p.component}`));
  c.properties.add(new Models.Property("niftyc:filename", p.filename));
  return sha256(c, p.sha256);
}

function fileComponent(f: SbomInput["files"][number]): Models.Component {
  const c = new Models.Component(Enums.ComponentType.File, `.${f.path}`, { bomRef: `file:${f.path}` });
  c.hashes.set(Enums.HashAlgorithm["SHA-1"], f.sha1);
  return sha256(c, f.sha256);
}

/** The image's CycloneDX 1.6 document: a pure function of what the SPDX document is made from. */
export function renderCycloneDx(input: SbomInput): string {
  const image = new Models.Component(Enums.ComponentType.Container, input.name, {
    bomRef: "image",
    description: "the image's rootfs.tar",
  });
  sha256(image, input.rootfsDigest);
  const bom = new Models.Bom({
    serialNumber: `urn:uuid:${uuidV5(documentNamespace(input))}`,
    metadata: new Models.Metadata({ timestamp: new Date(input.epoch * 1000), component: image }),
  });
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, "niftyc", { version: input.niftycVersion }),
  );
  const inputs = new Map<string, Models.Component>();
  for (const f of input.fetches) inputs.set(`fetch ${f.name}@${f.digest}`, fetchComponent(f));
  for (const p of input.packages) inputs.set(`package ${p.name}:${p.architecture}`, packageComponent(p));
  for (const c of inputs.values()) {
    bom.components.add(c);
    image.dependencies.add(c.bomRef);
  }
  for (const a of input.archives) bom.components.add(archiveComponent(a));
  for (const f of [...input.files].sort((a, b) => byText(a.path, b.path))) {
    const key =
      "fetch" in f.from ? `fetch ${f.from.fetch}` : `package ${f.from.package}:${f.from.architecture}`;
    inputs.get(key)?.components.add(fileComponent(f));
  }
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  return serializer.serialize(bom, { sortLists: true, space: 2 }) + "\n";
}
