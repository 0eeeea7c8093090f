// Scanners see every package of an image, also one that takes only some files of its
// packages (PACKAGE … FILES) and so has no dpkg database: status.d is read here the way
// syft and trivy document it for distroless images. Each file of
// /var/lib/dpkg/status.d/ but *.md5sums is one deb822 stanza (Package, Version,
// Architecture, Source…); <package>.md5sums lists "md5  path" for the files of it the
// image holds. A whole-package image is read by dpkg-query itself.
import test from "ava";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseLock } from "../../src/debian/lockfile.ts";
import { requireArchive } from "../support/debian-archive.ts";
import { buildAppRootfs, twoSuiteProject } from "../support/package-project.ts";

/** A deb822 stanza as the scanners read one: "Field: value", continuation lines folded in. */
function stanza(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last = "";
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (/^\s/.test(line)) fields.set(last, `${fields.get(last)}\n${line.trim()}`);
    else {
      const i = line.indexOf(":");
      last = line.slice(0, i);
      fields.set(last, line.slice(i + 1).trim());
    }
  }
  return fields;
}

async function buildImage(
  t: import("ava").ExecutionContext,
  body: string,
): Promise<{ dir: string; root: string }> {
  const { dir, archive } = await twoSuiteProject(t, "niftyc-status-d-", body);
  const r = await buildAppRootfs(dir, archive.view());
  t.is(r.code, 0, r.stderr);
  const root = join(dir, "root");
  mkdirSync(root);
  execFileSync("tar", ["-xf", join(dir, "o", "rootfs.tar"), "-C", root]);
  return { dir, root };
}

const md5 = (file: string) => createHash("md5").update(readFileSync(file)).digest("hex");

test("a FILES image lists in status.d every package it holds a file of, with its stanza and the MD5 of each such file", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, root } = await buildImage(
    t,
    "FILE /etc/os-release <<EOF\nID=test\nEOF\nPACKAGE busybox-static FILES /bin/busybox\nSYMLINK /usr/sbin ../bin\nPACKAGE dropbear-bin FILES /usr/sbin/dropbear /usr/bin/dropbearkey\n",
  );
  const lock = parseLock(readFileSync(join(dir, "app.nifty.lock"), "utf8"));
  if (!lock.ok) return t.fail("the lock does not parse");
  const locked = new Map(lock.lock.packages.map((p) => [p.name, p]));
  const statusD = join(root, "var/lib/dpkg/status.d");
  const names = readdirSync(statusD)
    .filter((n) => !n.endsWith(".md5sums"))
    .sort();
  t.true(
    names.includes("busybox-static") && names.includes("dropbear-bin") && names.includes("libc6"),
    names.join(" "),
  );
  const listed = new Map<string, string>();
  for (const name of names) {
    const fields = stanza(readFileSync(join(statusD, name), "utf8"));
    const pkg = locked.get(name);
    t.truthy(pkg, `${name} is a locked package`);
    t.is(fields.get("Package"), name);
    t.is(fields.get("Version"), pkg?.version);
    t.is(fields.get("Architecture"), pkg?.architecture);
    t.is(fields.get("Status"), "install ok installed");
    for (const line of readFileSync(join(statusD, `${name}.md5sums`), "utf8")
      .split("\n")
      .filter(Boolean)) {
      const [sum, path] = line.split("  ") as [string, string];
      t.true(lstatSync(join(root, path)).isFile(), `${path} of ${name} is a file of the image`);
      t.is(md5(join(root, path)), sum, `${path}'s MD5`);
      listed.set(path, name);
    }
  }
  t.is(
    stanza(readFileSync(join(statusD, "dropbear-bin"), "utf8")).get("Source"),
    "dropbear",
    "Source, for the scanners' advisories",
  );
  t.is(
    listed.get("bin/dropbear"),
    "dropbear-bin",
    "the program as the image holds it, through /usr/sbin → ../bin",
  );
  // Every file of the image but the recipe's own and the database itself belongs to a listed package.
  const files = execFileSync("tar", ["-tvf", join(dir, "o", "rootfs.tar")], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.startsWith("-"))
    .map((l) => l.split(/\s+/).at(-1)!.replace(/^\.\//, ""));
  const unlisted = files.filter(
    (f) => !listed.has(f) && f !== "etc/os-release" && !f.startsWith("var/lib/dpkg/status.d/"),
  );
  t.deepEqual(unlisted, []);
});

test("a whole-package image keeps dpkg's own database, which dpkg-query reads, and no status.d", async (t) => {
  if (!requireArchive(t)) return;
  const { root } = await buildImage(t, "PACKAGE nifty-pager\n");
  const admin = join(root, "var/lib/dpkg");
  const listed = execFileSync("dpkg-query", [`--admindir=${admin}`, "-W", "-f=${Package} ${Status}\n"], {
    encoding: "utf8",
  });
  t.regex(listed, /^nifty-pager install ok installed$/m);
  t.throws(() => lstatSync(join(admin, "status.d")));
});

interface SpdxDoc {
  packages: Array<{ SPDXID: string; name: string; externalRefs?: Array<{ referenceLocator: string }> }>;
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
}

test("the SBOMs of a FILES image claim exactly the packages status.d lists, not the locked ones it holds nothing of", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(
    t,
    "niftyc-status-d-sbom-",
    "PACKAGE busybox-static FILES /bin/busybox\nSYMLINK /usr/sbin ../bin\nPACKAGE dropbear-bin FILES /usr/sbin/dropbear /usr/bin/dropbearkey\n",
  );
  const r = await buildAppRootfs(dir, archive.view(), "--format", "rootfs,sbom,cyclonedx");
  t.is(r.code, 0, r.stderr);
  const root = join(dir, "root");
  mkdirSync(root);
  execFileSync("tar", ["-xf", join(dir, "o", "rootfs.tar"), "-C", root]);
  const statusD = join(root, "var/lib/dpkg/status.d");
  const sourceOf = new Map<string, string | undefined>();
  const installed = readdirSync(statusD)
    .filter((n) => !n.endsWith(".md5sums"))
    .map((n) => {
      const fields = stanza(readFileSync(join(statusD, n), "utf8"));
      sourceOf.set(fields.get("Package")!, fields.get("Source"));
      return `${fields.get("Package")}:${fields.get("Architecture")}`;
    })
    .sort();
  const lock = parseLock(readFileSync(join(dir, "app.nifty.lock"), "utf8"));
  if (!lock.ok) return t.fail("the lock does not parse");
  const locked = lock.lock.packages.map((p) => `${p.name}:${p.architecture}`);
  // libc6 pulls in libgcc-s1 (and it gcc-12-base), of which neither program loads anything.
  const absent = locked.filter((p) => !installed.includes(p));
  t.true(absent.includes("libgcc-s1:amd64"), `locked but not in the image: ${absent.join(" ")}`);

  const spdx = JSON.parse(readFileSync(join(dir, "o", "sbom.spdx.json"), "utf8")) as SpdxDoc;
  const byId = new Map(spdx.packages.map((p) => [p.SPDXID, p]));
  const debOf = (id: string) => {
    const purl = byId.get(id)?.externalRefs?.[0]?.referenceLocator ?? "";
    const m = /^pkg:deb\/debian\/([^@]+)@[^?]+\?arch=([^&]+)/.exec(purl);
    return m ? `${m[1]}:${m[2]}` : undefined;
  };
  const contained = spdx.relationships
    .filter((r) => r.spdxElementId === "SPDXRef-Image" && r.relationshipType === "CONTAINS")
    .map((r) => debOf(r.relatedSpdxElement))
    .filter((p) => p !== undefined)
    .sort();
  t.deepEqual(contained, installed, "the image CONTAINS the packages status.d lists");
  const listed = spdx.packages
    .map((p) => debOf(p.SPDXID))
    .filter((p) => p !== undefined)
    .sort();
  t.deepEqual(listed, installed, "no package of the image's SBOM is one it holds nothing of");
  // Each purl names the release as syft and trivy do, and the source package as syft does:
  // `Source: busybox (1:1.35.0-4+deb12u1)` is upstream=busybox@…, `Source: glibc` upstream=glibc.
  const upstreams: string[] = [];
  for (const p of spdx.packages.flatMap((p) => p.externalRefs ?? [])) {
    if (!p.referenceLocator.startsWith("pkg:deb/")) continue;
    const name = /^pkg:deb\/debian\/([^@]+)@/.exec(p.referenceLocator)![1]!;
    const source = /^(\S+)(?: \((\S+)\))?$/.exec(sourceOf.get(name) ?? "");
    const upstream = source
      ? `&upstream=${encodeURIComponent(source[2] ? `${source[1]}@${source[2]}` : source[1]!)}`
      : "";
    t.regex(
      p.referenceLocator,
      new RegExp(`\\?arch=amd64&distro=debian-12${upstream.replace(/[+.]/g, "\\$&")}$`),
      name,
    );
    if (upstream) upstreams.push(decodeURIComponent(upstream.slice("&upstream=".length)));
  }
  t.true(upstreams.includes("busybox@1:1.35.0-4+deb12u1"), upstreams.join(" "));
  t.true(upstreams.includes("glibc"), upstreams.join(" "));

  const cdx = JSON.parse(readFileSync(join(dir, "o", "sbom.cdx.json"), "utf8")) as {
    components: Array<{ type: string; name: string; purl?: string }>;
    dependencies: Array<{ ref: string; dependsOn?: string[] }>;
  };
  const libraries = cdx.components
    .filter((c) => c.type === "library")
    .map((c) => /^pkg:deb\/debian\/([^@]+)@[^?]+\?arch=([^&]+)/.exec(c.purl ?? ""))
    .map((m) => (m ? `${m[1]}:${m[2]}` : "?"))
    .sort();
  t.deepEqual(libraries, installed, "CycloneDX lists the same packages");
});
