// niftyc push to a real registry over plain http on loopback: what skopeo and
// podman pull back is what niftyc printed; a second push uploads nothing; a
// second repository mounts the blobs; a dropped chunk is resumed; a registry
// killed mid-upload gives a clear error and no manifest, and the next push
// finishes. One registry for the file, behind a proxy that can cut
// connections; its access log counts the upload requests.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { pushImage, type PushEvent } from "../../src/registry/push.ts";
import { parseReference } from "../../src/registry/reference.ts";
import {
  NODE,
  NIFTYC,
  baseEnv,
  busyboxRecipe,
  startFixture,
  tempDir,
  writeRecipe,
  type Fixture,
} from "../pipeline/helpers.ts";
import { checkSpdx, containers } from "./spdx.ts";
import {
  registryUnavailable,
  requireTools,
  run,
  startProxy,
  startRegistry,
  type RegistryProxy,
  type Registry,
} from "./helpers.ts";

const unavailable = registryUnavailable(["docker-registry", "skopeo"]);
let fixture: Fixture | undefined;
let registry: Registry;
let proxy: RegistryProxy;
let work: string;
let recipe: string;
let outDir: string;

const niftyc = (args: string[]) =>
  run(NODE, [NIFTYC, ...args], { env: baseEnv({ SOURCE_DATE_EPOCH: "1700000000" }), timeoutMs: 180_000 });

test.before(async () => {
  if (unavailable) return;
  fixture = await startFixture();
  work = await tempDir("niftyc-push-");
  registry = await startRegistry(work);
  proxy = await startProxy(registry.host);
  recipe = await writeRecipe(work, "app", busyboxRecipe(fixture));
  outDir = path.join(work, "out-app");
  const built = await niftyc(["build", recipe, "--cache", path.join(work, "cache"), "--out", outDir, "-q"]);
  if (built.code !== 0) throw new Error(built.stderr);
});

test.after.always(async () => {
  await proxy?.close();
  await registry?.stop();
  await fixture?.close();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

interface Pushed {
  pushed: string;
  referrers: Array<{ digest: string; artifactType: string; via: string }>;
  digest: string;
  config: string;
  layers: string[];
  uploaded: number;
  mounted: number;
  existing: number;
}

async function push(
  ref: string,
  extra: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string; json?: Pushed }> {
  const r = await niftyc([
    "push",
    outDir,
    ref,
    "--insecure",
    "--json",
    "--cache",
    path.join(work, "cache"),
    ...extra,
  ]);
  return { ...r, ...(r.code === 0 ? { json: JSON.parse(r.stdout) as Pushed } : {}) };
}

async function manifestStatus(repo: string, tag: string): Promise<number> {
  const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  return res.status;
}

test.serial(
  "push: skopeo inspect and skopeo copy give back the manifest and layer digests niftyc printed",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const before = registry.uploads().length;
    const r = await push(`${proxy.host}/app:v1`);
    t.is(r.code, 0, r.stderr);
    const pushed = r.json!;
    t.regex(pushed.pushed, new RegExp(`^${proxy.host}/app@sha256:[0-9a-f]{64}$`));
    // The config, the layers, and the SBOM's empty config and document.
    t.is(pushed.uploaded, 1 + pushed.layers.length + 2);
    t.true(registry.uploads().length > before);
    // Progress went to stderr, the result alone to stdout.
    t.regex(r.stderr, /uploaded/);
    t.regex(r.stderr, /manifest [0-9a-f]{12} {2}pushed/);

    // The layout's own digests: nothing was rewritten on the way.
    const index = JSON.parse(await fsp.readFile(path.join(outDir, "oci/index.json"), "utf8")) as {
      manifests: Array<{ digest: string }>;
    };
    t.is(pushed.digest, index.manifests[0]!.digest);

    const inspect = await run("skopeo", [
      "inspect",
      "--tls-verify=false",
      `docker://${registry.host}/app:v1`,
    ]);
    t.is(inspect.code, 0, inspect.stderr);
    const image = JSON.parse(inspect.stdout) as { Digest: string; Layers: string[] };
    t.is(image.Digest, pushed.digest);
    t.deepEqual(image.Layers, pushed.layers);

    const copy = path.join(work, "copied");
    const copied = await run("skopeo", [
      "copy",
      "--src-tls-verify=false",
      `docker://${registry.host}/app:v1`,
      `oci:${copy}:v1`,
    ]);
    t.is(copied.code, 0, copied.stderr);
    const back = await run("skopeo", ["inspect", `oci:${copy}:v1`]);
    t.is(back.code, 0, back.stderr);
    const local = JSON.parse(back.stdout) as { Digest: string; Layers: string[] };
    t.is(local.Digest, pushed.digest);
    t.deepEqual(local.Layers, pushed.layers);
  },
);

test.serial("a second push of the same build uploads nothing and leaves the manifest alone", async (t) => {
  if (!requireTools(t, unavailable)) return;
  const uploads = registry.uploads().length;
  const seen = proxy.requests.length;
  const r = await push(`${proxy.host}/app:v1`);
  t.is(r.code, 0, r.stderr);
  t.is(r.json!.uploaded, 0);
  t.is(r.json!.existing, 1 + r.json!.layers.length + 2);
  t.is(registry.uploads().length, uploads, "no upload request reached the registry");
  const sent = proxy.requests.slice(seen);
  // Only looks: HEADs, and GETs of the referrer list.
  t.deepEqual(
    sent.filter((s) => !s.startsWith("HEAD ") && !s.startsWith("GET ")),
    [],
    "nothing written",
  );
  t.regex(r.stderr, /already tagged/);
});

test.serial("another repository of the registry gets the blobs by cross-repository mount", async (t) => {
  if (!requireTools(t, unavailable)) return;
  const seen = proxy.requests.length;
  const r = await push(`${proxy.host}/team/mirror:latest`);
  t.is(r.code, 0, r.stderr);
  t.is(r.json!.mounted, 1 + r.json!.layers.length + 2);
  t.is(r.json!.uploaded, 0);
  const posts = proxy.requests.slice(seen).filter((s) => s.startsWith("POST "));
  t.true(
    posts.length > 0 && posts.every((s) => /\?mount=sha256:[0-9a-f]{64}&from=app$/.test(s)),
    posts.join("\n"),
  );
  t.false(
    proxy.requests
      .slice(seen)
      .some((s) => s.startsWith("PATCH ") || (s.startsWith("PUT ") && s.includes("/blobs/"))),
  );
  const inspect = await run("skopeo", [
    "inspect",
    "--tls-verify=false",
    `docker://${registry.host}/team/mirror:latest`,
  ]);
  t.is(inspect.code, 0, inspect.stderr);
  t.is((JSON.parse(inspect.stdout) as { Digest: string }).Digest, r.json!.digest);
});

test.serial(
  "a chunked upload whose connection drops mid-chunk asks the registry where it stands and finishes",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const events: PushEvent[] = [];
    proxy.drop((m, u) => m === "PATCH" && u.includes("/chunked/blobs/uploads/"), 1, 20_000);
    const seen = proxy.requests.length;
    const result = await pushImage({
      layout: path.join(outDir, "oci"),
      target: parseReference(`${proxy.host}/chunked:v1`),
      insecure: true,
      chunkSize: 64 * 1024,
      retryDelayMs: 50,
      onEvent: (e) => events.push(e),
    });
    const patches = proxy.requests.slice(seen).filter((s) => s.startsWith("PATCH "));
    t.true(patches.length > 3, `several chunks: ${patches.length}`);
    t.true(
      events.some((e) => e.type === "retry"),
      "the dropped chunk was retried",
    );
    // After the drop the upload was asked where it stood, not started again.
    t.true(
      proxy.requests.slice(seen).some((s) => s.startsWith("GET ") && s.includes("/chunked/blobs/uploads/")),
    );
    t.is(result.uploaded, 1 + result.layers.length + 2);
    // skopeo copy checks every blob's digest on the way.
    const copied = await run("skopeo", [
      "copy",
      "--src-tls-verify=false",
      `docker://${registry.host}/chunked:v1`,
      `oci:${path.join(work, "chunked")}:v1`,
    ]);
    t.is(copied.code, 0, copied.stderr);
    const back = JSON.parse(
      (await run("skopeo", ["inspect", `oci:${path.join(work, "chunked")}:v1`])).stdout,
    ) as { Digest: string; Layers: string[] };
    t.is(back.Digest, result.digest);
    t.deepEqual(back.Layers, result.layers);
  },
);

test.serial(
  "a registry killed mid-upload: a clear error and no manifest; the next push finishes",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(120_000);
    proxy.drop(
      (m, u) => m === "PUT" && u.includes("/killed/blobs/uploads/"),
      1,
      1,
      () => registry.stop(),
    );
    const r = await niftyc([
      "push",
      outDir,
      `${proxy.host}/killed:v1`,
      "--insecure",
      "--cache",
      path.join(work, "cache-killed"),
    ]);
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, /failed after 5 attempts/);
    t.regex(r.stderr, /NIFTY701/);
    t.regex(r.stderr, /retrying \(1\)/);
    t.is(r.stdout, "");
    await registry.start();
    t.is(await manifestStatus("killed", "v1"), 404, "no manifest was written");
    const again = await niftyc([
      "push",
      outDir,
      `${proxy.host}/killed:v1`,
      "--insecure",
      "--cache",
      path.join(work, "cache-killed"),
    ]);
    t.is(again.code, 0, again.stderr);
    t.is(await manifestStatus("killed", "v1"), 200);
  },
);

test.serial("niftyc push of a recipe builds it first; build --push prints the pushed digest", async (t) => {
  if (!requireTools(t, unavailable)) return;
  const cache = path.join(work, "cache");
  const out = path.join(work, "out-recipe");
  const viaPush = await niftyc([
    "push",
    recipe,
    `${proxy.host}/fromrecipe:v1`,
    "--insecure",
    "--cache",
    cache,
    "--out",
    out,
    "-q",
  ]);
  t.is(viaPush.code, 0, viaPush.stderr);
  t.regex(viaPush.stdout, new RegExp(`pushed ${proxy.host}/fromrecipe@sha256:[0-9a-f]{64}`));
  const viaBuild = await niftyc([
    "build",
    recipe,
    "--push",
    `${proxy.host}/frombuild:v1`,
    "--insecure",
    "--cache",
    cache,
    "--out",
    out,
    "--json",
    "-q",
  ]);
  t.is(viaBuild.code, 0, viaBuild.stderr);
  const json = JSON.parse(viaBuild.stdout) as { pushed: Pushed };
  t.is(json.pushed.pushed.split("@")[1], viaPush.stdout.match(/@(sha256:[0-9a-f]{64})/)![1]);
  t.is(json.pushed.uploaded, 0, "every blob was mounted from fromrecipe");
  const bad = await niftyc(["build", recipe, "--push", "app:v1", "--cache", cache, "--out", out, "-q"]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /NIFTY700/);
  const notOci = await niftyc([
    "build",
    recipe,
    "--push",
    `${proxy.host}/x:v1`,
    "--format",
    "rootfs",
    "--cache",
    cache,
    "--out",
    out,
    "-q",
  ]);
  t.is(notOci.code, 2);
  t.regex(notOci.stderr, /add oci to --format/);
});

test.serial("podman pulls the pushed image and runs it with runc", async (t) => {
  if (
    !requireTools(
      t,
      unavailable ??
        registryUnavailable(["podman", "runc"]) ??
        (process.getuid?.() !== 0 ? "podman here needs root" : undefined),
    )
  )
    return;
  t.timeout(180_000);
  const image = `${registry.host}/app:v1`;
  const pulled = await run("podman", ["pull", "--tls-verify=false", image], { timeoutMs: 120_000 });
  t.is(pulled.code, 0, pulled.stderr);
  try {
    const ran = await run(
      "podman",
      [
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network=host",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=4096:4096",
        image,
        "cat",
        "/etc/os-release",
      ],
      { timeoutMs: 120_000 },
    );
    t.is(ran.code, 0, ran.stderr);
    t.regex(ran.stdout, /^ID=nifty$/m);
  } finally {
    await run("podman", ["rmi", "-f", image], { timeoutMs: 60_000 });
  }
});

test.serial(
  "the SBOM lists the FETCH with its digest, URL and purl, ties /bin/busybox to it, and is the same bytes from another cache",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const text = await fsp.readFile(path.join(outDir, "sbom.spdx.json"), "utf8");
    const doc = checkSpdx(t, text);
    const busybox = doc.packages.find((p) => p.name === "busybox")!;
    t.truthy(busybox, "the FETCH is listed");
    t.is(busybox.downloadLocation, `${fixture!.url}/files/busybox`);
    t.deepEqual(busybox.checksums, [
      { algorithm: "SHA256", checksumValue: fixture!.busybox.digest.slice(7) },
    ]);
    t.regex(
      busybox.externalRefs![0]!.referenceLocator,
      /^pkg:generic\/busybox\?checksum=sha256:[0-9a-f]{64}&download_url=/,
    );
    const file = doc.files.find((f) => f.fileName === "./bin/busybox")!;
    t.truthy(file);
    t.deepEqual(containers(doc, file.SPDXID), [busybox.SPDXID]);
    t.deepEqual(containers(doc, busybox.SPDXID), ["SPDXRef-Image"]);
    // Only files that came from an input: FILE lines made /etc/os-release.
    t.false(doc.files.some((f) => f.fileName === "./etc/os-release"));

    const again = path.join(work, "out-again");
    const r = await niftyc([
      "build",
      recipe,
      "--cache",
      path.join(work, "cache-again"),
      "--out",
      again,
      "-q",
    ]);
    t.is(r.code, 0, r.stderr);
    t.is(await fsp.readFile(path.join(again, "sbom.spdx.json"), "utf8"), text);
  },
);

test.serial(
  "the SBOM is pushed as a referrer of the image: distribution 2.8 has no referrers API, so the sha256-<hex> tag lists it",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const r = await push(`${proxy.host}/app:v1`);
    t.is(r.code, 0, r.stderr);
    const [referrer] = r.json!.referrers;
    t.is(referrer?.artifactType, "application/spdx+json");
    t.is(referrer?.via, "tag-schema");
    const api = await fetch(`http://${registry.host}/v2/app/referrers/${r.json!.digest}`);
    t.is(api.status, 404, "distribution 2.8 does not serve the referrers API");
    const index = await fetch(
      `http://${registry.host}/v2/app/manifests/${r.json!.digest.replace(":", "-")}`,
      { headers: { accept: "application/vnd.oci.image.index.v1+json" } },
    );
    t.is(index.status, 200);
    const listed = (await index.json()) as { manifests: Array<{ digest: string; artifactType: string }> };
    t.deepEqual(
      listed.manifests.map((m) => [m.digest, m.artifactType]),
      [[referrer!.digest, "application/spdx+json"]],
    );
    const manifest = (await (
      await fetch(`http://${registry.host}/v2/app/manifests/${referrer!.digest}`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      })
    ).json()) as { subject: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
    t.is(manifest.subject.digest, r.json!.digest);
    t.is(manifest.layers[0]!.mediaType, "application/spdx+json");
    const blob = await fetch(`http://${registry.host}/v2/app/blobs/${manifest.layers[0]!.digest}`);
    t.is(await blob.text(), await fsp.readFile(path.join(outDir, "sbom.spdx.json"), "utf8"));
  },
);

test.serial(
  "--cache-to on one machine, --cache-from --offline on another with an empty store: the same digest, every step run from the pulled blobs, nothing downloaded",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(180_000);
    const cacheRef = `${proxy.host}/app-cache:main`;
    const a = await niftyc([
      "build",
      recipe,
      "--cache",
      path.join(work, "cache-a"),
      "--out",
      path.join(work, "out-a"),
      "--cache-to",
      cacheRef,
      "--insecure",
      "--json",
    ]);
    t.is(a.code, 0, a.stderr);
    t.regex(a.stderr, /cache to 127\.0\.0\.1:\d+\/app-cache@sha256:[0-9a-f]{64}: \d+ blobs\n/);
    const hits = fixture!.server.hits();
    const b = await niftyc([
      "build",
      recipe,
      "--cache",
      path.join(work, "cache-b"),
      "--out",
      path.join(work, "out-b"),
      "--cache-from",
      cacheRef,
      "--insecure",
      "--offline",
      "--json",
    ]);
    t.is(b.code, 0, b.stderr);
    t.regex(b.stderr, /cache from .*: \d+ blobs downloaded, 0 already here\n/);
    const built = (r: typeof a) =>
      JSON.parse(r.stdout) as { digest: string; steps: Array<{ reused: boolean }> };
    t.is(built(b).digest, built(a).digest);
    t.true(
      built(b).steps.every((s) => !s.reused),
      "every step ran here: a shared cache gives blobs, not records",
    );
    t.is(fixture!.server.hits(), hits, "nothing fetched from the inputs' server");
    t.is(
      await fsp.readFile(path.join(work, "out-b/sbom.spdx.json"), "utf8"),
      await fsp.readFile(path.join(work, "out-a/sbom.spdx.json"), "utf8"),
    );

    // A cache not pushed yet is only noted; an image is not a cache.
    const missing = await niftyc([
      "build",
      recipe,
      "--cache",
      path.join(work, "cache-b"),
      "--out",
      path.join(work, "out-b"),
      "--cache-from",
      `${proxy.host}/app-cache:none`,
      "--insecure",
      "-q",
    ]);
    t.is(missing.code, 0, missing.stderr);
    const image = await niftyc([
      "build",
      recipe,
      "--cache",
      path.join(work, "cache-b"),
      "--out",
      path.join(work, "out-b"),
      "--cache-from",
      `${proxy.host}/app:v1`,
      "--insecure",
    ]);
    t.is(image.code, 1);
    t.regex(image.stderr, /is not a niftyc cache .*NIFTY709/);
  },
);
