// The required fields of an SPDX 2.3 JSON document (spdx-spec 2.3, clauses 6–11),
// checked field by field: there is no SPDX validator in Debian or on npm to run.
import type { ExecutionContext } from "ava";

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: string;
  filesAnalyzed?: boolean;
  checksums?: Array<{ algorithm: string; checksumValue: string }>;
  externalRefs?: Array<{ referenceCategory: string; referenceType: string; referenceLocator: string }>;
}

export interface SpdxDocument {
  spdxVersion: string;
  dataLicense: string;
  SPDXID: string;
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  documentDescribes?: string[];
  packages: SpdxPackage[];
  files: Array<{
    SPDXID: string;
    fileName: string;
    checksums: Array<{ algorithm: string; checksumValue: string }>;
  }>;
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
}

const ID = /^SPDXRef-[A-Za-z0-9.-]+$/;
const RELATIONSHIPS = new Set([
  "DESCRIBES",
  "DESCRIBED_BY",
  "CONTAINS",
  "CONTAINED_BY",
  "DEPENDS_ON",
  "DEPENDENCY_OF",
  "GENERATED_FROM",
  "GENERATES",
  "OTHER",
  "DISTRIBUTION_ARTIFACT",
  "PACKAGE_OF",
  "VARIANT_OF",
  "DESCENDANT_OF",
  "ANCESTOR_OF",
  "COPY_OF",
  "FILE_ADDED",
  "FILE_MODIFIED",
  "FILE_DELETED",
]);
const HEX = { SHA1: /^[0-9a-f]{40}$/, SHA256: /^[0-9a-f]{64}$/ } as Record<string, RegExp>;

export function checkSpdx(t: ExecutionContext, text: string): SpdxDocument {
  const doc = JSON.parse(text) as SpdxDocument;
  t.is(doc.spdxVersion, "SPDX-2.3");
  t.is(doc.dataLicense, "CC0-1.0");
  t.is(doc.SPDXID, "SPDXRef-DOCUMENT");
  t.true(typeof doc.name === "string" && doc.name !== "");
  t.regex(doc.documentNamespace, /^https?:\/\/[^#\s]+$/, "documentNamespace is an absolute URI without #");
  t.regex(doc.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.true(
    doc.creationInfo.creators.length > 0 &&
      doc.creationInfo.creators.every((c) => /^(Tool|Organization|Person): .+/.test(c)),
  );
  const ids = new Set<string>(["SPDXRef-DOCUMENT"]);
  for (const p of doc.packages) {
    t.regex(p.SPDXID, ID);
    t.false(ids.has(p.SPDXID), `unique ${p.SPDXID}`);
    ids.add(p.SPDXID);
    t.true(typeof p.name === "string" && p.name !== "");
    t.true(
      p.downloadLocation === "NOASSERTION" ||
        p.downloadLocation === "NONE" ||
        /^[a-z+]+:/.test(p.downloadLocation),
      p.downloadLocation,
    );
    // filesAnalyzed defaults to true, which would require a verification code.
    t.is(p.filesAnalyzed, false);
    for (const c of p.checksums ?? [])
      t.regex(c.checksumValue, HEX[c.algorithm] ?? /^$/, `${p.SPDXID} ${c.algorithm}`);
  }
  for (const f of doc.files) {
    t.regex(f.SPDXID, ID);
    t.false(ids.has(f.SPDXID), `unique ${f.SPDXID}`);
    ids.add(f.SPDXID);
    t.regex(f.fileName, /^\.\//);
    // SPDX 2.3 §8.4: a file's checksums must include SHA1.
    t.true(
      f.checksums.some((c) => c.algorithm === "SHA1" && HEX.SHA1!.test(c.checksumValue)),
      f.fileName,
    );
  }
  t.true(
    doc.relationships.some(
      (r) => r.spdxElementId === "SPDXRef-DOCUMENT" && r.relationshipType === "DESCRIBES",
    ),
  );
  for (const r of doc.relationships) {
    t.true(RELATIONSHIPS.has(r.relationshipType), r.relationshipType);
    t.true(
      ids.has(r.spdxElementId) && ids.has(r.relatedSpdxElement),
      `${r.spdxElementId} → ${r.relatedSpdxElement}`,
    );
  }
  return doc;
}

/** What a package or file is tied to: the IDs that CONTAIN it. */
export function containers(doc: SpdxDocument, id: string): string[] {
  return doc.relationships
    .filter((r) => r.relatedSpdxElement === id && r.relationshipType === "CONTAINS")
    .map((r) => r.spdxElementId);
}
