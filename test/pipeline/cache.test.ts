// The build engine over the store: two builds at once on one cache, a build
// killed mid-download and rebuilt, and --offline with and without the blobs.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { halfThenStall, serve } from "../fetch/helpers/server.ts";
import {
  busyboxRecipe,
  collect,
  fileSha256,
  jsonOf,
  listTree,
  niftyc,
  spawnCli,
  writeRecipe,
  useFixture,
} from "./helpers.ts";

const files = useFixture(test);

async function dirFor(name: string): Promise<string> {
  const dir = path.join(files.work, name);
  await fsp.mkdir(dir);
  return dir;
}

/** Every blob in the store hashes to its own name: nothing half-written under a final name. */
async function assertBlobsWhole(t: import("ava").ExecutionContext, cache: string): Promise<number> {
  const blobs = path.join(cache, "blobs/sha256");
  const names = await fsp.readdir(blobs).catch(() => [] as string[]);
  for (const name of names) t.is(await fileSha256(path.join(blobs, name)), `sha256:${name}`, `blob ${name}`);
  return names.length;
}

test("two builds at once on one cache both succeed with the same digest", async (t) => {
  const dir = await dirFor("concurrent");
  const recipe = await writeRecipe(
    dir,
    "pair",
    busyboxRecipe(files.fixture, `FILE /etc/motd <<EOF\nhello\nEOF\n`),
  );
  const cache = path.join(dir, "cache");
  const [a, b] = await Promise.all(
    ["a", "b"].map((n) =>
      niftyc(["build", recipe, "--cache", cache, "--out", path.join(dir, `out-${n}`), "--json", "-q"]),
    ),
  );
  t.is(a!.code, 0, a!.stderr);
  t.is(b!.code, 0, b!.stderr);
  t.is(jsonOf(a!).digest, jsonOf(b!).digest);
  t.is(
    await fileSha256(path.join(dir, "out-a/rootfs.tar")),
    await fileSha256(path.join(dir, "out-b/rootfs.tar")),
  );
  t.is(await fileSha256(path.join(dir, "out-a/rootfs.tar")), jsonOf(a!).digest);
  t.true((await assertBlobsWhole(t, cache)) > 0);
  t.deepEqual(
    (await fsp.readdir(dir)).filter((n) => n.includes("staging")),
    [],
  );
});

test("two builds at once into one output directory both succeed and leave it whole", async (t) => {
  const dir = await dirFor("same-out");
  const recipe = await writeRecipe(dir, "same", busyboxRecipe(files.fixture));
  const cache = path.join(dir, "cache");
  const out = path.join(dir, "out");
  const runs = await Promise.all(
    [0, 1].map(() => niftyc(["build", recipe, "--cache", cache, "--out", out, "--json", "-q"])),
  );
  for (const r of runs) t.is(r.code, 0, r.stderr);
  t.is(jsonOf(runs[0]!).digest, jsonOf(runs[1]!).digest);
  t.is(await fileSha256(path.join(out, "rootfs.tar")), jsonOf(runs[0]!).digest);
  t.deepEqual(
    (await fsp.readdir(dir)).filter((n) => n !== "cache" && n !== "out" && n !== "same.nifty"),
    [],
  );
});

test("a build killed with SIGKILL mid-download leaves no output and no partial blob; the rebuild is clean", async (t) => {
  const dir = await dirFor("killed");
  // Its own route, so the stall cannot slow the other tests of this file.
  const route = "/stall/busybox";
  const recipe = await writeRecipe(
    dir,
    "killed",
    busyboxRecipe(files.fixture).replace("${BASE}/busybox", `${files.fixture.url}${route}`),
  );
  const cache = path.join(dir, "cache");
  const out = path.join(dir, "out");
  let halfSent!: () => void;
  const stalled = new Promise<void>((resolve) => (halfSent = resolve));
  files.fixture.server.routes.set(
    route,
    halfThenStall(files.fixture.busybox.bytes, () => halfSent()),
  );
  try {
    const child = spawnCli(["build", recipe, "--cache", cache, "--out", out, "-q"]);
    const done = collect(child);
    await stalled;
    // The half that was sent has reached the store's temp file before the kill.
    const tmp = path.join(cache, "tmp");
    for (;;) {
      const sizes = await Promise.all(
        (await fsp.readdir(tmp).catch(() => [] as string[])).map((n) =>
          fsp.stat(path.join(tmp, n)).then(
            (s) => s.size,
            () => 0,
          ),
        ),
      );
      if (sizes.some((s) => s >= files.fixture.busybox.bytes.length >> 1)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill("SIGKILL");
    const killed = await done;
    t.is(killed.signal, "SIGKILL");
  } finally {
    files.fixture.server.routes.set(route, serve(files.fixture.busybox.bytes));
  }
  await t.throwsAsync(fsp.stat(out), { code: "ENOENT" });
  await t.throwsAsync(fsp.stat(path.join(cache, "blobs/sha256", files.fixture.busybox.digest.slice(7))), {
    code: "ENOENT",
  });
  await assertBlobsWhole(t, cache);
  t.deepEqual(
    (await fsp.readdir(dir)).filter((n) => n.includes("staging")),
    [],
  );

  const again = await niftyc(["build", recipe, "--cache", cache, "--out", out, "--json", "-q"]);
  t.is(again.code, 0, again.stderr);
  t.is(await fileSha256(path.join(out, "rootfs.tar")), jsonOf(again).digest);
  t.true((await assertBlobsWhole(t, cache)) > 0);
  t.true((await listTree(out)).includes("build.json"));
  // The same recipe on a fresh cache gives the same bytes: the kill left nothing behind that matters.
  const fresh = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(dir, "cache2"),
    "--out",
    path.join(dir, "out2"),
    "--json",
    "-q",
  ]);
  t.is(jsonOf(fresh).digest, jsonOf(again).digest);
});

test("--offline builds from the blobs in the cache, and fails naming the input when they are missing", async (t) => {
  const dir = await dirFor("offline");
  const recipe = await writeRecipe(
    dir,
    "offline",
    busyboxRecipe(files.fixture, `FILE /etc/motd <<EOF\noffline\nEOF\n`),
  );
  const cache = path.join(dir, "cache");
  const first = await niftyc([
    "build",
    recipe,
    "--cache",
    cache,
    "--out",
    path.join(dir, "out1"),
    "--json",
    "-q",
  ]);
  t.is(first.code, 0, first.stderr);

  const hits = files.fixture.server.hits(files.fixture.busybox.route);
  const offline = await niftyc([
    "build",
    recipe,
    "--cache",
    cache,
    "--out",
    path.join(dir, "out2"),
    "--offline",
    "--json",
    "-q",
  ]);
  t.is(offline.code, 0, offline.stderr);
  t.is(jsonOf(offline).digest, jsonOf(first).digest);
  t.is(files.fixture.server.hits(files.fixture.busybox.route), hits);

  // A changed recipe must run its steps again, still without the network.
  const changed = await writeRecipe(
    dir,
    "offline",
    busyboxRecipe(files.fixture, `FILE /etc/motd <<EOF\nchanged\nEOF\n`),
  );
  const rerun = await niftyc([
    "build",
    changed,
    "--cache",
    cache,
    "--out",
    path.join(dir, "out3"),
    "--offline",
    "--json",
    "-q",
  ]);
  t.is(rerun.code, 0, rerun.stderr);
  t.not(jsonOf(rerun).digest, jsonOf(first).digest);
  t.is(files.fixture.server.hits(files.fixture.busybox.route), hits);

  const empty = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(dir, "empty-cache"),
    "--out",
    path.join(dir, "out4"),
    "--offline",
    "--json",
  ]);
  t.is(empty.code, 1);
  t.regex(empty.stderr, /busybox/);
  t.regex(empty.stderr, /NIFTY102/);
  t.regex(empty.stderr, /offline/);
  t.deepEqual(
    jsonOf(empty).diagnostics?.map((d) => d.code),
    ["NIFTY102"],
  );
  await t.throwsAsync(fsp.stat(path.join(dir, "out4")), { code: "ENOENT" });
  t.is(files.fixture.server.hits(files.fixture.busybox.route), hits);
});

test("staging left by a killed build is swept by the next build; a live build's staging is left alone", async (t) => {
  const dir = await dirFor("sweep");
  const recipe = await writeRecipe(dir, "sweep", busyboxRecipe(files.fixture));
  // A PID that has certainly exited: a process we started and waited for.
  const gone = spawnSync("true").pid!;
  const abandoned = path.join(dir, `.out.staging-${gone}-x1`);
  const live = path.join(dir, `.out.staging-${process.pid}-x2`);
  for (const d of [abandoned, live]) await fsp.mkdir(path.join(d, "oci"), { recursive: true });
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(dir, "cache"),
    "--out",
    path.join(dir, "out"),
    "-q",
  ]);
  t.is(result.code, 0, result.stderr);
  await t.throwsAsync(fsp.stat(abandoned), { code: "ENOENT" });
  t.true((await fsp.stat(live)).isDirectory());
});
