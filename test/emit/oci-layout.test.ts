// The OCI image layout as skopeo and umoci read it.
import test from "ava";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeOciLayout } from "../../src/emit/oci-layout.ts";
import { expectedTree, fixtureConfig, listTree, makeFixture, type Fixture } from "./fixture.ts";
import { hashFiles, run, sortedRecord, tempDir } from "./helpers.ts";

let work: { path: string; remove: () => Promise<void> };
let fixture: Fixture;

test.before(async () => {
  work = await tempDir("oci");
  fixture = await makeFixture(work.path);
});

test.after.always(async () => {
  await work?.remove();
});

test.serial("skopeo reads the tag, the layers and the config as given", async (t) => {
  const dir = join(work.path, "layout");
  const config = fixtureConfig();
  const result = await writeOciLayout(dir, { config, layers: fixture.layers, refName: "latest" });
  t.deepEqual(
    result.layers.map((l) => l.diffId),
    fixture.layers.map((l) => l.digest),
  );

  const inspect = await run("skopeo", ["inspect", `oci:${dir}:latest`]);
  t.is(inspect.code, 0, inspect.stderr);
  const image = JSON.parse(inspect.stdout) as {
    Digest: string;
    Layers: string[];
    Env: string[];
    Labels: Record<string, string>;
    Architecture: string;
    Os: string;
    Created: string;
  };
  t.is(image.Digest, result.manifestDigest);
  t.deepEqual(
    image.Layers,
    result.layers.map((l) => l.digest),
  );
  t.deepEqual(image.Env, ["GREETING=hello world", "PORT=2200"]);
  t.deepEqual(image.Labels, { maintainer: "niftyc tests", "org.opencontainers.image.title": "nifty" });
  t.is(image.Architecture, "amd64");
  t.is(image.Os, "linux");
  t.is(image.Created, "2023-11-14T22:13:20Z");

  const raw = await run("skopeo", ["inspect", "--config", `oci:${dir}:latest`]);
  t.is(raw.code, 0, raw.stderr);
  const cfg = JSON.parse(raw.stdout) as {
    config: Record<string, unknown>;
    rootfs: { type: string; diff_ids: string[] };
    history: Array<{ comment: string }>;
  };
  t.is(cfg.config.StopSignal, "SIGUSR2");
  t.deepEqual(cfg.config.Env, ["GREETING=hello world", "PORT=2200"]);
  t.deepEqual(cfg.config.ExposedPorts, { "22/tcp": {} });
  t.deepEqual(cfg.config.Cmd, ["/sbin/init"]);
  t.deepEqual(cfg.config.Labels, { maintainer: "niftyc tests", "org.opencontainers.image.title": "nifty" });
  t.deepEqual(cfg.rootfs, { type: "layers", diff_ids: fixture.layers.map((l) => l.digest) });
  t.deepEqual(
    cfg.history.map((h) => h.comment),
    ["busybox and applet links", "configuration and mount points"],
  );

  // Only the layout's files, no staging leftovers beside it.
  t.deepEqual(
    (await readdir(work.path)).filter((n) => n.includes("staging")),
    [],
  );
});

test.serial("umoci unpacks it (checking diff_ids) into exactly the fixture tree", async (t) => {
  const dir = join(work.path, "layout-umoci");
  await writeOciLayout(dir, { config: fixtureConfig(), layers: fixture.layers, refName: "v1" });
  const bundle = join(work.path, "umoci-bundle");
  const result = await run("umoci", ["unpack", "--image", `${dir}:v1`, bundle], { timeoutMs: 120_000 });
  t.is(result.code, 0, result.stderr);
  t.deepEqual(sortedRecord(await listTree(join(bundle, "rootfs"))), sortedRecord(await expectedTree()));
  const runtime = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as {
    annotations: Record<string, string>;
    process: { args: string[] };
  };
  t.is(runtime.annotations["org.opencontainers.image.stopSignal"], "SIGUSR2");
  t.deepEqual(runtime.process.args, ["/sbin/init"]);
});

test.serial("same input, same bytes; a shared base layer keeps its blob digest", async (t) => {
  const a = join(work.path, "det-a");
  const b = join(work.path, "det-b");
  const c = join(work.path, "det-c");
  const ra = await writeOciLayout(a, { config: fixtureConfig(), layers: fixture.layers, refName: "latest" });
  const rb = await writeOciLayout(b, { config: fixtureConfig(), layers: fixture.layers, refName: "latest" });
  t.deepEqual(ra, rb);
  t.deepEqual(await hashFiles(a), await hashFiles(b));

  // Writing over an existing layout replaces it whole.
  await writeOciLayout(b, { config: fixtureConfig(), layers: fixture.layers, refName: "latest" });
  t.deepEqual(await hashFiles(a), await hashFiles(b));

  const other = fixtureConfig({ env: [["GREETING", "other"]], labels: [] });
  const rc = await writeOciLayout(c, {
    config: other,
    layers: fixture.layers.slice(0, 1),
    refName: "latest",
  });
  t.is(rc.layers[0]?.digest, ra.layers[0]?.digest);
  t.not(rc.configDigest, ra.configDigest);

  // gzip header: mtime 0, OS byte 3 (Unix), whatever the platform's zlib writes.
  const handle = await open(join(a, "blobs", "sha256", (ra.layers[0]?.digest ?? "").slice(7)));
  const header = Buffer.alloc(10);
  await handle.read(header, 0, 10, 0);
  await handle.close();
  t.deepEqual([...header.subarray(0, 3)], [0x1f, 0x8b, 8]);
  t.deepEqual([...header.subarray(4, 8)], [0, 0, 0, 0]);
  t.is(header[9], 3);
});

test.serial("a layer that does not match its digest fails and leaves the old layout untouched", async (t) => {
  const dir = join(work.path, "guarded");
  await writeOciLayout(dir, { config: fixtureConfig(), layers: fixture.layers, refName: "latest" });
  const before = await hashFiles(dir);
  const wrong = fixture.layers.map((l, i) => (i === 1 ? { ...l, digest: `sha256:${"0".repeat(64)}` } : l));
  await t.throwsAsync(writeOciLayout(dir, { config: fixtureConfig(), layers: wrong, refName: "latest" }), {
    code: "NIFTY505",
  });
  t.deepEqual(await hashFiles(dir), before);
  t.deepEqual(
    (await readdir(work.path)).filter((n) => n.includes("staging")),
    [],
  );
  await t.throwsAsync(
    writeOciLayout(dir, { config: fixtureConfig(), layers: fixture.layers, refName: "bad ref" }),
    { code: "NIFTY504" },
  );
});
