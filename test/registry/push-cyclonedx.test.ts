// The CycloneDX SBOM (--format …,cyclonedx) pushed to a real registry on loopback as a referrer
// of the image beside the SPDX one and the provenance: artifactType application/vnd.cyclonedx+json,
// its layer sbom.cdx.json's bytes; of each platform's image for a multi-platform build. A build
// without the format pushes none.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { NODE, NIFTYC, baseEnv, tempDir } from "../pipeline/helpers.ts";
import { registryUnavailable, requireTools, run, startRegistry, type Registry } from "./helpers.ts";

const unavailable = registryUnavailable(["docker-registry"]);
const CYCLONEDX = "application/vnd.cyclonedx+json";
let registry: Registry | undefined;
let work: string;

const niftyc = (args: string[]) =>
  run(NODE, [NIFTYC, ...args], { env: baseEnv({ SOURCE_DATE_EPOCH: "1700000000" }), timeoutMs: 180_000 });

test.before(async () => {
  if (unavailable) return;
  work = await tempDir("niftyc-push-cyclonedx-");
  registry = await startRegistry(work);
  await fsp.writeFile(path.join(work, "app.nifty"), "FILE /etc/os-release <<EOF\nID=cdx\nEOF\n");
});

test.after.always(async () => {
  await registry?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

async function buildAndPush(out: string, tag: string, extra: string[]) {
  const built = await niftyc([
    "build",
    path.join(work, "app.nifty"),
    "--cache",
    path.join(work, "cache"),
    "--out",
    path.join(work, out),
    "-q",
    ...extra,
  ]);
  if (built.code !== 0) throw new Error(built.stderr);
  const pushed = await niftyc([
    "push",
    path.join(work, out),
    `${registry!.host}/app:${tag}`,
    "--insecure",
    "--json",
  ]);
  if (pushed.code !== 0) throw new Error(pushed.stderr);
  return JSON.parse(pushed.stdout) as {
    digest: string;
    referrers: Array<{ digest: string; artifactType: string }>;
  };
}

/** What the registry lists for `subject` (distribution 2.8: the sha256-<hex> tag). */
async function listed(subject: string): Promise<Array<{ digest: string; artifactType: string }>> {
  const res = await fetch(`http://${registry!.host}/v2/app/manifests/${subject.replace(":", "-")}`, {
    headers: { accept: "application/vnd.oci.image.index.v1+json" },
  });
  return res.status === 200 ? ((await res.json()) as { manifests: [] }).manifests : [];
}

async function cyclonedxOf(subject: string): Promise<{ subject: string; mediaType: string; body: string }> {
  const entry = (await listed(subject)).find((m) => m.artifactType === CYCLONEDX)!;
  const manifest = (await (
    await fetch(`http://${registry!.host}/v2/app/manifests/${entry.digest}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    })
  ).json()) as { subject: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
  const blob = await fetch(`http://${registry!.host}/v2/app/blobs/${manifest.layers[0]!.digest}`);
  return {
    subject: manifest.subject.digest,
    mediaType: manifest.layers[0]!.mediaType,
    body: await blob.text(),
  };
}

test.serial(
  "push of a build with --format …,cyclonedx: the CycloneDX SBOM is a referrer of the image beside the SPDX one; without the format, none",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const r = await buildAndPush("with", "cdx", ["--format", "oci,sbom,provenance,cyclonedx"]);
    t.deepEqual(
      r.referrers.map((x) => x.artifactType),
      ["application/spdx+json", "application/vnd.in-toto+json", CYCLONEDX],
    );
    t.deepEqual(
      (await listed(r.digest)).map((m) => m.artifactType),
      ["application/spdx+json", "application/vnd.in-toto+json", CYCLONEDX],
    );
    const cdx = await cyclonedxOf(r.digest);
    t.is(cdx.subject, r.digest);
    t.is(cdx.mediaType, CYCLONEDX);
    t.is(cdx.body, await fsp.readFile(path.join(work, "with", "sbom.cdx.json"), "utf8"));
    t.is((JSON.parse(cdx.body) as { bomFormat: string }).bomFormat, "CycloneDX");

    const without = await buildAndPush("without", "plain", []);
    t.false(without.referrers.some((x) => x.artifactType === CYCLONEDX));
  },
);

test.serial(
  "a linux/amd64,linux/arm64 build with cyclonedx: each platform's image has its own CycloneDX referrer",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const r = await buildAndPush("multi", "multi", [
      "--format",
      "oci,sbom,provenance,cyclonedx",
      "--platform",
      "linux/amd64,linux/arm64",
    ]);
    const index = (await (
      await fetch(`http://${registry!.host}/v2/app/manifests/${r.digest}`, {
        headers: { accept: "application/vnd.oci.image.index.v1+json" },
      })
    ).json()) as { manifests: Array<{ digest: string }> };
    t.is(index.manifests.length, 2);
    for (const [i, dir] of ["linux-amd64", "linux-arm64"].entries()) {
      const image = index.manifests[i]!.digest;
      const cdx = await cyclonedxOf(image);
      t.is(cdx.subject, image);
      t.is(cdx.body, await fsp.readFile(path.join(work, "multi", dir, "sbom.cdx.json"), "utf8"));
    }
    // The index itself has the build's provenance, not an SBOM.
    t.deepEqual(
      (await listed(r.digest)).map((m) => m.artifactType),
      ["application/vnd.in-toto+json"],
    );
  },
);
