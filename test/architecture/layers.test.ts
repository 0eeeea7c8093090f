// The pipeline's shape, checked from the code's own imports: every module may
// import only from its own layer or the layers below it. The order is written
// once, in docs/architecture.md, and read from there.
import test from "ava";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { imports, ROOT, sources } from "./imports.ts";

/** Layers from the top down, as the ```layers block of docs/architecture.md lists them. */
export function readLayers(doc: string): string[] {
  const block = /```layers\n([\s\S]*?)```/.exec(doc)?.[1];
  if (block === undefined) throw new Error("docs/architecture.md has no ```layers block");
  return block
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

const layers = readLayers(readFileSync(join(ROOT, "docs/architecture.md"), "utf8"));
const rank = (file: string): number =>
  layers.findIndex((layer) => file === layer || file.startsWith(layer + "/"));

test("every source file belongs to a layer", (t) => {
  const orphans = [...sources("src"), ...sources("grammar")].filter((f) => rank(f) < 0);
  t.deepEqual(orphans, [], "add the folder to the ```layers block of docs/architecture.md");
});

function upward(file: string, targets: readonly string[]): string[] {
  return targets
    .filter((target) => rank(target) >= 0 && rank(target) < rank(file))
    .map(
      (target) =>
        `${file} imports ${relative(ROOT, join(ROOT, target))} (${layers[rank(file)]} may not use ${layers[rank(target)]})`,
    );
}

test("imports only go down the layers", (t) => {
  t.deepEqual(
    [...sources("src"), ...sources("grammar")].flatMap((file) => upward(file, imports(file))),
    [],
  );
});

test("an import from a lower layer to a higher one is caught", (t) => {
  t.is(upward("src/core/hash.ts", ["src/cli/main.ts"]).length, 1);
  t.is(
    upward("src/instructions/user.ts", [
      "src/pipeline/build.ts",
      "src/image/tree.ts",
      "src/instructions/spec.ts",
    ]).length,
    1,
  );
  t.is(upward("grammar/parse.ts", ["src/diagnostics/diagnostic.ts"]).length, 0);
});
