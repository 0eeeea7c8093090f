// A failed FETCH points at the word at fault: the digest for a mismatch or a
// blob missing offline, the sources when no source answers.
import test from "ava";
import path from "node:path";
import { buildNamed, jsonOf, niftyc, writeRecipe, useFixture } from "./helpers.ts";

const files = useFixture(test);

const WRONG = `sha256:${"0".repeat(64)}`;

async function failingBuild(name: string, line: string, extra: string[] = []) {
  const recipe = await writeRecipe(files.work, name, `${line}\n`);
  const result = await buildNamed(files.work, name, recipe, "--json", "--timeout", "2", ...extra);
  const diagnostic = jsonOf(result).diagnostics?.[0];
  return { result, diagnostic, column: (word: string) => line.indexOf(word) + 1 };
}

test("a digest mismatch points at the digest", async (t) => {
  const line = `FETCH busybox ${files.fixture.url}/files/busybox ${WRONG} TO /bin/busybox`;
  const { result, diagnostic, column } = await failingBuild("mismatch", line);
  t.is(result.code, 1);
  t.is(diagnostic?.code, "NIFTY101");
  t.is(diagnostic?.line, 1);
  t.is((diagnostic as { column?: number })?.column, column(WRONG));
  t.regex(diagnostic!.message, new RegExp(`expected ${WRONG}, got ${files.fixture.busybox.digest}`));
});

test("offline without the blob points at the digest", async (t) => {
  const line = `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox`;
  const { diagnostic, column } = await failingBuild("offline", line, ["--offline"]);
  t.is(diagnostic?.code, "NIFTY102");
  t.is((diagnostic as { column?: number })?.column, column(files.fixture.busybox.digest));
});

test("no source answering points at the sources", async (t) => {
  const dead = "http://127.0.0.1:9/busybox";
  const line = `FETCH busybox ${dead} ${files.fixture.busybox.digest} TO /bin/busybox`;
  const { diagnostic, column } = await failingBuild("unreachable", line);
  t.is(diagnostic?.code, "NIFTY103");
  t.is((diagnostic as { column?: number })?.column, column(dead));
});

test("two unreachable sources: each URL on its own line under the message, no literal \\n (text and --json)", async (t) => {
  const dead = ["http://127.0.0.1:9/busybox", "http://127.0.0.1:9/mirror/busybox"];
  const line = `FETCH busybox ${dead.join(" ")} ${files.fixture.busybox.digest} TO /bin/busybox`;
  const recipe = await writeRecipe(files.work, "two-dead", `${line}\n`);
  const args = [
    "build",
    recipe,
    "--cache",
    path.join(files.work, "cache-two-dead"),
    "--out",
    path.join(files.work, "out-two-dead"),
    "--timeout",
    "2",
  ];
  const shown = await niftyc(args);
  t.is(shown.code, 1);
  t.false(shown.stderr.includes("\\n"), shown.stderr);
  const lines = shown.stderr.split("\n");
  const first = lines.findIndex((l) => l.includes("[NIFTY103]"));
  t.regex(
    lines[first]!,
    /two-dead\.nifty:1:\d+: error: could not fetch busybox \(sha256:[0-9a-f]{64}\) from any source \[NIFTY103\]$/,
  );
  const tried = lines.filter((l) => /^  http:\/\/127\.0\.0\.1:9\//.test(l));
  t.deepEqual(
    tried.map((l) => l.slice(2, l.indexOf(": "))),
    dead,
  );
  const { diagnostic } = await failingBuild("two-dead-json", line);
  t.is(diagnostic?.code, "NIFTY103");
  t.deepEqual(
    diagnostic!.message
      .split("\n")
      .slice(1)
      .map((l) => l.slice(0, l.indexOf(": "))),
    dead,
  );
});

test("a digest already in the store, asked for from other sources, is warned about at the sources (an error with --strict)", async (t) => {
  const cache = path.join(files.work, "cache-moved");
  const first = await writeRecipe(
    files.work,
    "moved-a",
    `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\n`,
  );
  t.is(
    (
      await niftyc([
        "build",
        first,
        "--cache",
        cache,
        "--out",
        path.join(files.work, "out-moved-a"),
        "--format",
        "rootfs",
      ])
    ).code,
    0,
  );
  // The URL was bumped, the digest was not: this machine has the old file, a clean one would fetch the new.
  const line = `FETCH busybox ${files.fixture.url}/files/busybox-1.36 ${files.fixture.busybox.digest} TO /bin/busybox`;
  const moved = await writeRecipe(files.work, "moved-b", `${line}\n`);
  const warned = await niftyc([
    "build",
    moved,
    "--cache",
    cache,
    "--out",
    path.join(files.work, "out-moved-b"),
    "--format",
    "rootfs",
  ]);
  t.is(warned.code, 0, warned.stderr);
  t.regex(
    warned.stderr,
    new RegExp(
      `moved-b\\.nifty:1:${line.indexOf("http") + 1}: warning: ${files.fixture.busybox.digest} is taken from the store, where it came from ${files.fixture.url}/files/busybox, not from this line's sources \\[NIFTY105\\]`,
    ),
  );
  const strict = await niftyc([
    "build",
    moved,
    "--cache",
    cache,
    "--out",
    path.join(files.work, "out-moved-c"),
    "--format",
    "rootfs",
    "--strict",
  ]);
  t.is(strict.code, 1);
  t.regex(strict.stderr, /error: .*\[NIFTY105\]/);
});

test("a member missing from a cached archive names the archive's file, not its digest", async (t) => {
  const line = `FETCH hello ${files.fixture.url}/files/nifty-hello.deb ${files.fixture.deb.digest} EXTRACT usr/bin/nifty-bye TO /bin/bye`;
  const { diagnostic } = await failingBuild("member", line);
  t.is(diagnostic?.code, "NIFTY121");
  t.regex(diagnostic!.message, /^usr\/bin\/nifty-bye is not in nifty-hello\.deb \(sha256:[0-9a-f]{12}…\)$/);
});

test("a suite the archive does not have points at its ARCHIVE line, in build and in lock", async (t) => {
  // The fixture's server answers 404 for every dists/ path: no InRelease for this suite.
  const text = `ARCHIVE debian bookwrom URL ${files.fixture.url}/debian\nPACKAGE jq\n`;
  const recipe = await writeRecipe(files.work, "no-suite", text);
  const cache = path.join(files.work, "cache-no-suite");
  for (const command of ["build", "lock"]) {
    const result = await niftyc([command, recipe, "--cache", cache, "--timeout", "2"]);
    t.is(result.code, 1, result.stderr);
    t.regex(
      result.stderr,
      /no-suite\.nifty:1:1: error: could not fetch InRelease of debian bookwrom from any source \[NIFTY103\]\n {4}1 \| ARCHIVE debian bookwrom/,
      command,
    );
    t.regex(result.stderr, /dists\/bookwrom\/InRelease: HTTP 404/, command);
  }
});
