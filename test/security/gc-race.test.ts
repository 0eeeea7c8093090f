// `cache gc --days 0` in a loop in another process while builds share its
// store: every build succeeds (its lease keeps gc from removing blobs), and
// gc removes blobs again once no build runs.
import test from "ava";
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { execFileP, tempDir, tryBuild } from "./helpers.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const NODE = path.join(ROOT, "node_modules/.bin/node");
const NIFTYC = path.join(ROOT, "bin/niftyc");

test("builds running beside a looping gc --days 0 all succeed; gc frees the blobs afterwards", async (t) => {
  t.timeout(180_000);
  const root = await tempDir();
  t.teardown(() => fsp.rm(root, { recursive: true, force: true }));
  const cache = path.join(root, "cache");
  await fsp.mkdir(path.join(root, "recipe/files"), { recursive: true });
  // Files over the inline limit, so their bytes are blobs gc could take.
  for (let i = 0; i < 8; i++)
    await fsp.writeFile(path.join(root, `recipe/files/f${i}`), Buffer.alloc(64 * 1024, i));
  const recipe = path.join(root, "recipe/gc.nifty");
  await fsp.writeFile(recipe, "COPY files /srv/files\nDIR /srv/data\n");
  // Warm the store, so the builds below replay records whose blobs gc would remove.
  t.true((await tryBuild(recipe, path.join(root, "warm"), { cacheDir: cache })).ok);

  const gc = spawn(
    "bash",
    ["-c", `while :; do "$NODE" "$NIFTYC" cache gc --days 0 --cache "$CACHE" >/dev/null 2>&1; done`],
    { env: { ...process.env, NODE, NIFTYC, CACHE: cache }, stdio: "ignore", detached: true },
  );
  // The loop and the gc it is running, as one process group: a gc left running would race the checks below.
  const killLoop = () => {
    try {
      process.kill(-gc.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const stop = setTimeout(killLoop, 170_000);
  t.teardown(() => {
    clearTimeout(stop);
    killLoop();
  });
  for (let round = 0; round < 4; round++) {
    const outcomes = await Promise.all(
      [0, 1, 2, 3].map((i) => tryBuild(recipe, path.join(root, `b${round}-${i}`), { cacheDir: cache })),
    );
    for (const o of outcomes)
      t.true(o.ok, o.ok ? "" : o.errors.map((e) => `${e.code} ${e.message}`).join("; "));
  }
  const exited = new Promise((resolve) => gc.once("exit", resolve));
  killLoop();
  await exited;
  // The loop may have emptied the store between rounds: one more build, then gc with no build running.
  t.true((await tryBuild(recipe, path.join(root, "last"), { cacheDir: cache })).ok);
  const { stdout } = await execFileP(
    NODE,
    [NIFTYC, "cache", "gc", "--days", "0", "--cache", cache, "--json"],
    { timeout: 60_000, killSignal: "SIGKILL" },
  );
  const report = JSON.parse(stdout) as { runningBuilds: number; removed: unknown[] };
  t.is(report.runningBuilds, 0);
  t.true(report.removed.length > 0);
});
