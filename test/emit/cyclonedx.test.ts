// The CycloneDX 1.6 SBOM, end to end against the local signed Debian archive:
// valid by the CycloneDX library's strict validator (the 1.6 JSON schema it
// ships), the same packages, purls, digests and files as the SPDX document of
// the same build, and the same bytes from an empty store.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import { runMain } from "../support/cli.ts";
import { mirrorFlags, requireArchive } from "../support/debian-archive.ts";
import { twoSuiteProject } from "../support/package-project.ts";
import { uuidV5 } from "../../src/emit/cyclonedx.ts";

interface Cdx {
  serialNumber: string;
  metadata: {
    timestamp: string;
    component: { name: string; hashes: Array<{ alg: string; content: string }> };
  };
  components: CdxComponent[];
}
interface CdxComponent {
  type: string;
  name: string;
  version?: string;
  purl?: string;
  hashes?: Array<{ alg: string; content: string }>;
  components?: CdxComponent[];
}
interface Spdx {
  documentNamespace: string;
  packages: Array<{
    SPDXID: string;
    name: string;
    versionInfo?: string;
    checksums: Array<{ algorithm: string; checksumValue: string }>;
    externalRefs?: Array<{ referenceLocator: string }>;
  }>;
  files: Array<{
    SPDXID: string;
    fileName: string;
    checksums: Array<{ algorithm: string; checksumValue: string }>;
  }>;
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
}

const hashOf = (hashes: Array<{ alg: string; content: string }> | undefined, alg: string) =>
  hashes?.find((h) => h.alg === alg)?.content;

/** Each document's packages: name, version, purl and the .deb's sha256. */
function packagesOf(spdx: Spdx, cdx: Cdx): { spdx: string[]; cdx: string[] } {
  const fromSpdx = spdx.packages
    .filter((p) => p.SPDXID.startsWith("SPDXRef-Package-"))
    .map((p) => [
      p.name,
      p.versionInfo,
      p.externalRefs?.[0]?.referenceLocator,
      p.checksums[0]!.checksumValue,
    ]);
  const fromCdx = cdx.components
    .filter((c) => c.type === "library")
    .map((c) => [c.name, c.version, c.purl, hashOf(c.hashes, "SHA-256")]);
  return { spdx: fromSpdx.map((p) => p.join(" ")).sort(), cdx: fromCdx.map((p) => p.join(" ")).sort() };
}

/** Each document's files: the purl of what contains it, its path, SHA-1 and SHA-256. */
function filesOf(spdx: Spdx, cdx: Cdx): { spdx: string[]; cdx: string[] } {
  const spdxIds = new Map(spdx.packages.map((p) => [p.SPDXID, p.externalRefs?.[0]?.referenceLocator]));
  const spdxFiles = new Map(spdx.files.map((f) => [f.SPDXID, f]));
  const fromSpdx = spdx.relationships
    .filter((r) => r.relationshipType === "CONTAINS" && spdxFiles.has(r.relatedSpdxElement))
    .map((r) => {
      const f = spdxFiles.get(r.relatedSpdxElement)!;
      return `${spdxIds.get(r.spdxElementId)} ${f.fileName} ${f.checksums.map((c) => c.checksumValue).join(" ")}`;
    });
  const fromCdx = cdx.components.flatMap((c) =>
    (c.components ?? []).map(
      (f) => `${c.purl} ${f.name} ${hashOf(f.hashes, "SHA-1")} ${hashOf(f.hashes, "SHA-256")}`,
    ),
  );
  return { spdx: fromSpdx.sort(), cdx: fromCdx.sort() };
}

test("the CycloneDX SBOM is valid CycloneDX 1.6, says what the SPDX SBOM says, and is the same bytes from an empty store", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(
    t,
    "niftyc-cdx-",
    "FILE /etc/os-release <<EOF\nID=test\nEOF\nPACKAGE nifty-app\nPACKAGE dropbear-bin FILES /usr/sbin/dropbear\n",
  );
  const mirrors = mirrorFlags(archive.view());
  const build = (cache: string, out: string) =>
    runMain(
      ["build", "app.nifty", "--cache", cache, "--out", out, "--format", "rootfs,sbom,cyclonedx", ...mirrors],
      dir,
      { SOURCE_DATE_EPOCH: "1700000000" },
    );
  const r = await build("c", "o");
  t.is(r.code, 0, r.stderr);
  const text = readFileSync(join(dir, "o", "sbom.cdx.json"), "utf8");
  const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text);
  t.is(errors, null, JSON.stringify(errors));

  const cdx = JSON.parse(text) as Cdx;
  const spdx = JSON.parse(readFileSync(join(dir, "o", "sbom.spdx.json"), "utf8")) as Spdx;
  const buildJson = JSON.parse(readFileSync(join(dir, "o", "build.json"), "utf8")) as { digest: string };
  t.is(
    cdx.serialNumber,
    `urn:uuid:${uuidV5(spdx.documentNamespace)}`,
    "the serial number is named by the image",
  );
  t.is(cdx.metadata.timestamp, "2023-11-14T22:13:20.000Z", "the time is SOURCE_DATE_EPOCH");
  t.is(hashOf(cdx.metadata.component.hashes, "SHA-256"), buildJson.digest.slice(7));

  const packages = packagesOf(spdx, cdx);
  t.true(packages.spdx.length >= 5, packages.spdx.join("\n"));
  t.deepEqual(packages.cdx, packages.spdx, "the same names, versions, purls and .deb digests");
  t.true(
    packages.cdx.some((p) => p.startsWith("dropbear-bin ") && p.includes("pkg:deb/debian/dropbear-bin@")),
  );
  const files = filesOf(spdx, cdx);
  t.true(
    files.spdx.some((f) => f.includes(" ./usr/sbin/dropbear ")),
    files.spdx.join("\n"),
  );
  t.deepEqual(files.cdx, files.spdx, "the same paths and digests, each in the package that contains it");

  const again = await build("c2", "o2");
  t.is(again.code, 0, again.stderr);
  t.is(readFileSync(join(dir, "o2", "sbom.cdx.json"), "utf8"), text, "the same bytes from an empty store");
});

test("the serial number is a version 5 UUID of the name: as Python's uuid module makes it", (t) => {
  // Python: uuid.uuid5(uuid.NAMESPACE_URL, "http://python.org/").
  t.is(uuidV5("http://python.org/"), "4c565f0d-3f5a-5890-b41b-20cf47701c5e");
});
