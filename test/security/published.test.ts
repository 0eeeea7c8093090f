// What a build publishes: out/<name> readable by others (0755), like any
// directory a tool installs, not mkdtemp's 0700.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { tempDir, tryBuild } from "./helpers.ts";

test("the published output directory is mode 0755", async (t) => {
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const recipe = path.join(dir, "plain.nifty");
  await fsp.writeFile(recipe, "DIR /srv\n");
  const outcome = await tryBuild(recipe, dir);
  t.true(outcome.ok);
  t.is((await fsp.stat(path.join(dir, "out"))).mode & 0o777, 0o755);
});

test("an upper-case recipe name is NIFTY809 before any step runs, naming the recipe file", async (t) => {
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const recipe = path.join(dir, "Web.nifty");
  await fsp.writeFile(recipe, "DIR /srv\n");
  const outcome = await tryBuild(recipe, dir, { formats: ["rootfs", "docker-archive"] });
  t.false(outcome.ok);
  if (!outcome.ok) {
    t.deepEqual(
      outcome.errors.map((e) => e.code),
      ["NIFTY809"],
    );
    t.is(outcome.errors[0]!.source?.path, recipe);
  }
  // The rootfs alone needs no name.
  t.true((await tryBuild(recipe, dir)).ok);
});
