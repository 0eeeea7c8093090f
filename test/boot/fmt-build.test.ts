// fmt never changes what a recipe builds, shown by a real build: a shipped
// recipe laid out badly, and the same after niftyc fmt, give the rootfs
// digest of the recipe as shipped.
import test from "ava";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { parseNiftyfile } from "../../grammar/parse.ts";
import { runMain } from "../support/cli.ts";
import { buildRecipe, debianMirror, ROOT, tempDir } from "./harness.ts";

test("awk.nifty: the shipped, a badly laid out and its formatted copy build the same rootfs", async (t) => {
  const mirror = await debianMirror(t);
  const shipped = join(ROOT, "recipes/awk.nifty");
  const text = await readFile(shipped, "utf8");
  let messy = text;
  for (const ins of [...parseNiftyfile({ path: "awk.nifty", text }).tree.instructions].reverse()) {
    if (ins.heredocs.length > 0) continue;
    const line = `\n\n  ${ins.keyword.toLowerCase()}   ${ins.args.map((a) => a.raw).join(" \\\n\t ")}   `;
    messy = messy.slice(0, ins.span.start.offset) + line + messy.slice(ins.span.end.offset);
  }
  const dir = tempDir(t, "fmt-build");
  const copy = join(dir, "awk.nifty");
  await writeFile(copy, messy);
  await copyFile(`${shipped}.lock`, `${copy}.lock`);
  const before = await buildRecipe(t, relative(ROOT, copy), mirror.url, {});
  t.is((await runMain(["fmt", copy], dir)).code, 0);
  t.not(await readFile(copy, "utf8"), messy);
  const after = await buildRecipe(t, relative(ROOT, copy), mirror.url, {});
  const original = await buildRecipe(t, "recipes/awk.nifty", mirror.url, {});
  t.is(before.digest, original.digest);
  t.is(after.digest, original.digest);
});
