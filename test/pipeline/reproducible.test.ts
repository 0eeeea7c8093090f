// Same recipe and inputs ⇒ same bytes, whatever the clock, time zone, umask,
// locale, working directory or cache state; each build is the real CLI in a
// child process. Wall clocks differ through faketime (Debian's faketime package).
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import {
  busyboxRecipe,
  fileSha256,
  jsonOf,
  niftyc,
  readBuildJson,
  startFixture,
  tempDir,
  writeRecipe,
  type CliOptions,
  type Fixture,
} from "./helpers.ts";

let fixture: Fixture;
let work: string;
let recipeDir: string;

const tail = (motd: string): string => `GROUP staff GID 50
USER luser UID 1000 SHELL /bin/sh GROUPS staff PASSWORD secret:pw
COPY site /srv/site
DIR /srv/upload MODE 0770 OWNER luser:staff
FILE /etc/motd MODE 0644 <<EOF
${motd}
EOF
ENV PORT=2200
HOSTNAME repro
LABEL purpose=reproducibility
`;

test.before(async () => {
  fixture = await startFixture();
  work = await tempDir();
  recipeDir = path.join(work, "recipe");
  await fsp.mkdir(path.join(recipeDir, "site/css"), { recursive: true });
  await fsp.writeFile(path.join(recipeDir, "site/index.html"), "<h1>nifty</h1>\n");
  await fsp.writeFile(path.join(recipeDir, "site/css/site.css"), "h1 { color: teal }\n");
  await fsp.writeFile(path.join(work, "pw"), "hunter2\n");
  await fsp.mkdir(path.join(work, "elsewhere/deeper"), { recursive: true });
});

test.after.always(async () => {
  await fixture?.close();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

async function buildWith(
  recipe: string,
  cache: string,
  out: string,
  options: CliOptions,
): Promise<{ digest: string; file: string }> {
  const result = await niftyc(
    [
      "build",
      recipe,
      "--cache",
      cache,
      "--out",
      out,
      "--secret",
      `pw=${path.join(work, "pw")}`,
      "--json",
      "-q",
    ],
    options,
  );
  if (result.code !== 0) throw new Error(`build failed (${result.code}):\n${result.stderr}`);
  return { digest: jsonOf(result).digest, file: await fileSha256(path.join(out, "rootfs.tar")) };
}

test("different TZ, umask, locale, cwd, wall clock and cold or warm cache give the same digest", async (t) => {
  const recipe = await writeRecipe(recipeDir, "repro", busyboxRecipe(fixture, tail("welcome")));
  const cacheA = path.join(work, "cache-a");
  const cacheB = path.join(work, "cache-b");
  const runs = [
    // cold cache A
    await buildWith(recipe, cacheA, path.join(work, "out-1"), {
      cwd: recipeDir,
      umask: "022",
      env: { TZ: "UTC", LANG: "C" },
      faketime: "2001-02-03 04:05:06",
    }),
    // warm cache A, everything else different
    await buildWith(recipe, cacheA, path.join(work, "out-2"), {
      cwd: path.join(work, "elsewhere/deeper"),
      umask: "077",
      env: { TZ: "Pacific/Chatham", LANG: "tr_TR.UTF-8", LC_ALL: "tr_TR.UTF-8" },
      faketime: "2038-06-07 08:09:10",
    }),
    // cold cache B, the recipe named relative to another cwd
    await buildWith(path.relative(work, recipe), cacheB, path.join(work, "out-3"), {
      cwd: work,
      umask: "002",
      env: { TZ: "Asia/Kolkata", LANG: "de_DE.UTF-8" },
      faketime: "1999-12-31 23:59:59",
    }),
    // warm cache B, the real clock
    await buildWith(recipe, cacheB, path.join(work, "out-4"), {
      cwd: "/",
      umask: "027",
      env: { TZ: "America/St_Johns" },
    }),
  ];
  for (const run of runs) {
    t.is(run.digest, runs[0]!.digest);
    t.is(run.file, runs[0]!.digest);
  }
  t.true(
    (await readBuildJson(path.join(work, "out-2"))).steps.every((s) => s.reused),
    "the warm build replays every step",
  );
  t.false(
    (await readBuildJson(path.join(work, "out-3"))).steps.some((s) => s.reused),
    "the cold build runs every step",
  );
});

test("faketime reaches Node: the clocks of those builds really differ", async (t) => {
  const { execFileP, NODE } = await import("./helpers.ts");
  const { stdout } = await execFileP(
    "faketime",
    ["2038-06-07 08:09:10", NODE, "-e", "process.stdout.write(String(new Date().getUTCFullYear()))"],
    { env: { PATH: process.env.PATH, TZ: "UTC" } },
  );
  t.is(stdout, "2038");
});

test("changing one byte of a FILE changes the digest", async (t) => {
  const cache = path.join(work, "cache-byte");
  const a = await buildWith(
    await writeRecipe(recipeDir, "byte", busyboxRecipe(fixture, tail("welcome"))),
    cache,
    path.join(work, "out-byte-a"),
    {},
  );
  const b = await buildWith(
    await writeRecipe(recipeDir, "byte", busyboxRecipe(fixture, tail("welcomf"))),
    cache,
    path.join(work, "out-byte-b"),
    {},
  );
  t.not(a.digest, b.digest);
});

test("SOURCE_DATE_EPOCH: a malformed value is a usage error, another valid one changes the digest", async (t) => {
  const recipe = await writeRecipe(recipeDir, "epoch", busyboxRecipe(fixture, tail("epoch")));
  const cache = path.join(work, "cache-epoch");
  for (const bad of ["yesterday", "12abc", "-5", "1.5", "0x10"]) {
    const result = await niftyc(
      [
        "build",
        recipe,
        "--cache",
        cache,
        "--out",
        path.join(work, "out-epoch-bad"),
        "--secret",
        `pw=${path.join(work, "pw")}`,
      ],
      { env: { SOURCE_DATE_EPOCH: bad } },
    );
    t.is(result.code, 2, bad);
    t.regex(result.stderr, /SOURCE_DATE_EPOCH/);
    await t.throwsAsync(fsp.stat(path.join(work, "out-epoch-bad")), { code: "ENOENT" });
  }
  const unset = await buildWith(recipe, cache, path.join(work, "out-epoch-0"), {});
  const zero = await buildWith(recipe, cache, path.join(work, "out-epoch-00"), {
    env: { SOURCE_DATE_EPOCH: "0" },
  });
  const later = await buildWith(recipe, cache, path.join(work, "out-epoch-1"), {
    env: { SOURCE_DATE_EPOCH: "1700000000" },
  });
  t.is(unset.digest, zero.digest);
  t.not(later.digest, zero.digest);
  t.is((await readBuildJson(path.join(work, "out-epoch-1"))).epoch, 1700000000);
});

test("with Debian packages: once locked, the same digest whatever the clock, TZ, umask, locale, cwd and cache", async (t) => {
  const { debianArchive, mirrorFlags, requireArchive } = await import("../support/debian-archive.ts");
  const { twoSuiteArchives } = await import("../support/package-project.ts");
  if (!requireArchive(t)) return;
  const archive = await debianArchive();
  const view = archive.view();
  const mirrors = mirrorFlags(view);
  const dir = path.join(work, "packages");
  await fsp.mkdir(dir);
  const recipe = await writeRecipe(
    dir,
    "pkgs",
    `${twoSuiteArchives(archive.keyring)}PACKAGE busybox-static FILES /bin/busybox
LINK /bin/busybox APPLETS
PACKAGE nifty-app
FILE /etc/os-release <<EOF
ID=repro
EOF
`,
  );
  // Resolution reads the archive's signed dates against the real clock; the lock then frees every build from it.
  const locked = await niftyc(["lock", recipe, "--cache", path.join(work, "cache-lock"), ...mirrors]);
  t.is(locked.code, 0, locked.stderr);
  const build = async (cache: string, out: string, options: CliOptions): Promise<string> => {
    const result = await niftyc(
      [
        "build",
        recipe,
        "--cache",
        path.join(work, cache),
        "--out",
        path.join(work, out),
        "--locked",
        "--json",
        "-q",
        ...mirrors,
      ],
      options,
    );
    if (result.code !== 0) throw new Error(`build failed (${result.code}):\n${result.stderr}`);
    return jsonOf(result).digest;
  };
  const digests = [
    await build("cache-p1", "out-p1", {
      cwd: dir,
      umask: "022",
      env: { TZ: "UTC", LANG: "C" },
      faketime: "2001-02-03 04:05:06",
    }),
    await build("cache-p1", "out-p2", {
      cwd: path.join(work, "elsewhere/deeper"),
      umask: "077",
      env: { TZ: "Pacific/Chatham", LC_ALL: "tr_TR.UTF-8" },
      faketime: "2038-06-07 08:09:10",
    }),
    await build("cache-p2", "out-p3", { cwd: "/", umask: "027", env: { TZ: "America/St_Johns" } }),
  ];
  t.is(new Set(digests).size, 1, digests.join(" "));
  t.is(await fileSha256(path.join(work, "out-p2", "rootfs.tar")), digests[0]!);
});
