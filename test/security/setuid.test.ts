// A recipe can put setuid and setgid programs in an image, and a tree root unpacks keeps them:
// the build lists every one in a warning, and refuses one every user may write unless asked.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { tempDir, tryBuild } from "./helpers.ts";

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
  t.regex(listed[0]?.message ?? "", /, \/usr\/bin\/b \(0:0 2755, line 5\)$/);
  t.is(listed[0]?.span?.start.line, 4);
});
