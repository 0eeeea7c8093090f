// A recipe can put setuid and setgid programs in an image, and a tree root unpacks keeps them:
// the build lists every one in a warning, and refuses one every user may write unless asked.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { tempDir, tryBuild } from "./helpers.ts";
import { checkSource } from "../../src/check/source.ts";
import { Reporter } from "../../src/diagnostics/reporter.ts";
import { Tree } from "../../src/image/tree.ts";
import { verifyImage } from "../../src/pipeline/verify-image.ts";
import type { Span } from "../../src/core/source.ts";

/** A span of the first line, by offsets. */
function span(start: number, end: number): Span {
  return {
    start: { offset: start, line: 1, column: start + 1 },
    end: { offset: end, line: 1, column: end + 1 },
  };
}

async function recipeWith(lines: string): Promise<{ dir: string; recipe: string }> {
  const dir = await tempDir("niftyc-setuid-");
  await fsp.writeFile(path.join(dir, "prog"), "#!/bin/sh\nexec /bin/sh\n");
  const recipe = path.join(dir, "suid.nifty");
  await fsp.writeFile(recipe, `FILE /etc/os-release <<EOF\nID=nifty\nEOF\n${lines}`);
  return { dir, recipe };
}

test(
  "a world-writable setuid program is refused at its line; allowed only with allowWritableSetuid, " +
    "which no later build inherits",
  async (t) => {
    const { dir, recipe } = await recipeWith("COPY prog /usr/bin/rootme MODE 4777\n");
    t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
    const refused = await tryBuild(recipe, dir);
    t.false(refused.ok, "the build must fail");
    if (refused.ok) return;
    const error = refused.errors.find((e) => e.code === "NIFTY233");
    t.truthy(error, JSON.stringify(refused.errors.map((e) => e.code)));
    t.is(error?.span?.start.line, 4, "at the COPY line");
    t.regex(error?.message ?? "", /\/usr\/bin\/rootme is setuid and every user may write it \(mode 4777\)/);

    const allowed = await tryBuild(recipe, dir, { allowWritableSetuid: true });
    t.true(allowed.ok, allowed.ok ? "" : JSON.stringify(allowed.errors));
    const listed = allowed.ok ? allowed.result.warnings.filter((w) => w.code === "NIFTY232") : [];
    t.true(listed.some((w) => w.message.includes("/usr/bin/rootme (0:0 4777, line 4)")));

    // The tarballs of the allowed build are in the store now: a build without the flag still refuses.
    const again = await tryBuild(recipe, dir);
    t.false(again.ok, "a cached tree is checked again without the flag");
    if (!again.ok) t.true(again.errors.some((e) => e.code === "NIFTY233"));
  },
);

test("every setuid or setgid file is listed once, with owner, mode and line", async (t) => {
  const lines =
    "COPY prog /usr/bin/a MODE 4755\nCOPY prog /usr/bin/b MODE 2755\nCOPY prog /usr/bin/c MODE 0755\n";
  const { dir, recipe } = await recipeWith(lines);
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const built = await tryBuild(recipe, dir);
  t.true(built.ok, built.ok ? "" : JSON.stringify(built.errors));
  if (!built.ok) return;
  const listed = built.result.warnings.filter((w) => w.code === "NIFTY232");
  t.is(listed.length, 1, "one warning for all of them");
  t.regex(listed[0]?.message ?? "", /has 2 setuid or setgid files.*\/usr\/bin\/a \(0:0 4755, line 4\), /);
  t.regex(listed[0]?.message ?? "", /files, which run with their owner's rights/);
  t.regex(listed[0]?.message ?? "", /, \/usr\/bin\/b \(0:0 2755, line 5\)$/);
  t.is(listed[0]?.span?.start.line, 4);
});

test("niftyc check refuses the MODE word the build would refuse, and the build points there too", async (t) => {
  const { dir, recipe } = await recipeWith("COPY prog /usr/bin/rootme MODE 4777\n");
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const text = await fsp.readFile(recipe, "utf8");
  const checked = await checkSource({ path: recipe, text }, { args: new Map(), strict: false });
  const error = checked.diagnostics.find((d) => d.code === "NIFTY233");
  t.deepEqual([error?.span?.start.line, error?.span?.start.column], [4, 32], "at the MODE word's value");
  const allowed = await checkSource(
    { path: recipe, text },
    { args: new Map(), strict: false, allowWritableSetuid: true },
  );
  t.false(allowed.diagnostics.some((d) => d.code === "NIFTY233"));
  const refused = await tryBuild(recipe, dir);
  const built = refused.ok ? undefined : refused.errors.find((e) => e.code === "NIFTY233");
  t.deepEqual([built?.span?.start.line, built?.span?.start.column], [4, 32]);
});

test("the finished image's check points NIFTY233 at the MODE word of the line that wrote the file", async (t) => {
  const tree = new Tree();
  tree.set("/usr/bin/x", { type: "file", mode: 0o4777, uid: 0, gid: 0, content: { digest: "", size: 0 } });
  const source = { path: "r.nifty", text: "FILE /usr/bin/x MODE 4777 <<EOF\nEOF\n" };
  const line = span(0, 31);
  const word = span(21, 25);
  const report = new Reporter(source);
  const recipe = { name: "r", path: "r.nifty", dir: "/", instructions: [] };
  await verifyImage(recipe, tree, new Map([["/usr/bin/x", line]]), () => "/nonexistent", report, {
    modeSpans: new Map([["/usr/bin/x", word]]),
  });
  const error = report.diagnostics.find((d) => d.code === "NIFTY233");
  t.is(error?.span?.start.column, 22);
});
