// COPY while another process flips a file of its source between a regular
// file and a symbolic link to a file outside the recipe's directory: no image
// may hold the outside file's bytes, and no build may end in an internal error.
import test from "ava";
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { tempDir, tarMember, tryBuild } from "./helpers.ts";

test("a file flipped to a symbolic link during COPY never brings the link's target into the image", async (t) => {
  t.timeout(120_000);
  const root = await tempDir();
  t.teardown(() => fsp.rm(root, { recursive: true, force: true }));
  const recipeDir = path.join(root, "recipe");
  const secret = path.join(root, "host-secret");
  await fsp.writeFile(secret, "HOST SECRET\n");
  await fsp.mkdir(path.join(recipeDir, "ctx/dir"), { recursive: true });
  await fsp.writeFile(path.join(recipeDir, "ctx/dir/f"), "inside\n");
  await fsp.writeFile(path.join(recipeDir, "ctx/dir/g"), "also inside\n");
  const recipe = path.join(recipeDir, "race.nifty");
  await fsp.writeFile(recipe, "COPY ctx/dir /srv/dir\n");

  // Renames swap the entry atomically; the removals leave moments with none.
  const f = path.join(recipeDir, "ctx/dir/f");
  const flipper = spawn(
    "bash",
    [
      "-c",
      `while :; do ln -sfn "$S" "$F.l"; mv -Tf "$F.l" "$F"; printf 'inside\\n' > "$F.n"; mv -Tf "$F.n" "$F"; rm -f "$F"; ln -s "$S" "$F"; rm -f "$F"; printf 'inside\\n' > "$F"; done`,
    ],
    {
      env: { ...process.env, S: secret, F: f },
      stdio: "ignore",
    },
  );
  const stop = setTimeout(() => flipper.kill("SIGKILL"), 110_000);
  t.teardown(() => {
    clearTimeout(stop);
    flipper.kill("SIGKILL");
  });

  const outcomes = { built: 0, refused: 0 };
  for (let i = 0; i < 40; i++) {
    const dir = path.join(root, `b${i}`);
    const outcome = await tryBuild(recipe, dir);
    if (!outcome.ok) {
      outcomes.refused++;
      for (const e of outcome.errors) {
        t.true(["NIFTY800", "NIFTY201", "NIFTY058", "NIFTY052"].includes(e.code), `${e.code} ${e.message}`);
        if (e.code === "NIFTY800") t.regex(e.message, /changed while it was read/);
      }
      continue;
    }
    outcomes.built++;
    const member = await tarMember(outcome.result.rootfs, "srv/dir/f");
    // A regular file as it was at one moment: whole, or empty while the flipper's `>` had just
    // created it; never the link's target.
    if (member?.type === "-") {
      const bytes = member.bytes.toString();
      t.not(bytes, "HOST SECRET\n", `build ${i} copied the link's target`);
      t.true(["inside\n", ""].includes(bytes), `build ${i}: ${JSON.stringify(bytes)}`);
    }
    const g = await tarMember(outcome.result.rootfs, "srv/dir/g");
    t.is(g?.bytes.toString(), "also inside\n");
    await fsp.rm(dir, { recursive: true, force: true });
  }
  t.log(outcomes);
  t.true(outcomes.built + outcomes.refused === 40);
});

test("the source directory itself flipped to a symbolic link to a directory outside never copies from there", async (t) => {
  t.timeout(120_000);
  const root = await tempDir();
  t.teardown(() => fsp.rm(root, { recursive: true, force: true }));
  const recipeDir = path.join(root, "recipe");
  const outside = path.join(root, "outside");
  await fsp.mkdir(outside);
  await fsp.writeFile(path.join(outside, "f"), "HOST SECRET\n");
  await fsp.mkdir(path.join(recipeDir, "ctx/dir"), { recursive: true });
  await fsp.writeFile(path.join(recipeDir, "ctx/dir/f"), "inside\n");
  const recipe = path.join(recipeDir, "race.nifty");
  await fsp.writeFile(recipe, "COPY ctx/dir /srv/dir\n");
  const d = path.join(recipeDir, "ctx/dir");
  const flipper = spawn(
    "bash",
    [
      "-c",
      `mkdir -p "$D.real"; printf 'inside\\n' > "$D.real/f"; while :; do ln -sfn "$O" "$D.l"; mv -Tf "$D.l" "$D"; ln -sfn "$D.real" "$D.r"; mv -Tf "$D.r" "$D"; done`,
    ],
    {
      env: { ...process.env, O: outside, D: d },
      stdio: "ignore",
    },
  );
  const stop = setTimeout(() => flipper.kill("SIGKILL"), 110_000);
  t.teardown(() => {
    clearTimeout(stop);
    flipper.kill("SIGKILL");
  });
  let built = 0;
  for (let i = 0; i < 20; i++) {
    const dir = path.join(root, `b${i}`);
    const outcome = await tryBuild(recipe, dir);
    if (!outcome.ok) {
      for (const e of outcome.errors)
        t.true(
          ["NIFTY800", "NIFTY201", "NIFTY202", "NIFTY058", "NIFTY052"].includes(e.code),
          `${e.code} ${e.message}`,
        );
      continue;
    }
    built++;
    const member = await tarMember(outcome.result.rootfs, "srv/dir/f");
    if (member?.type === "-") t.is(member.bytes.toString(), "inside\n", `build ${i} copied from outside`);
    await fsp.rm(dir, { recursive: true, force: true });
  }
  t.log({ built });
  t.pass();
});
