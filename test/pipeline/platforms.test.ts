// Several platforms from one recipe, without an emulator: FETCH … PLATFORM gives a file per
// platform, PACKAGE resolves each platform's index of the same signed suites into its own lock,
// every cached result is keyed by its platform, and what cannot be built for a platform is an
// error at its line: a platform the recipe does not support, a FETCH with no file for it, a
// package its index lacks, a program of another machine, a platform nobody knows.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { busyboxes } from "../support/platform-busybox.ts";
import { BUSYBOX_ARM64, cachedForeignDeb } from "../support/foreign-debs.ts";
import { serve, startServer } from "../fetch/helpers/server.ts";
import { requireArchive, mirrorFlags, type Variant } from "../support/debian-archive.ts";
import { scratchDir, twoSuiteArchives, twoSuiteProject } from "../support/package-project.ts";
import { parseLock, serializeLock } from "../../src/debian/lockfile.ts";
import { sameVersions } from "../../src/pipeline/packages.ts";
import type { BuildFailed } from "../../src/pipeline/failure.ts";
import { findPlatform } from "../../src/image/platform.ts";
import { requireParts } from "../support/skip.ts";

const workDir = (t: import("ava").ExecutionContext) => scratchDir(t, "niftyc-platforms-");

const HEAD = "FILE /etc/os-release <<EOF\nID=t\nEOF\n";
const TAIL = "LINK /bin/busybox APPLETS\nSYMLINK /sbin bin\n";

function machine(dir: string, tar: string, path: string): string {
  const root = join(dir, `root-${Math.random().toString(36).slice(2)}`);
  execFileSync("mkdir", ["-p", root]);
  execFileSync("tar", ["-xf", tar, "-C", root, path]);
  return /Machine:\s+(.*)/
    .exec(execFileSync("readelf", ["-h", join(root, path)], { encoding: "utf8" }))![1]!
    .trim();
}

test("FETCH … PLATFORM: each platform gets its own file, its own keys in one store, and its own image in the index", async (t) => {
  const lines = await busyboxes(t);
  if (lines === undefined) return;
  const dir = workDir(t);
  writeFileSync(join(dir, "bb.nifty"), `${HEAD}${lines.amd64}\n${lines.arm64}\n${TAIL}`);
  const build = (out: string, platform: string) =>
    runMain(
      [
        "build",
        "bb.nifty",
        "--cache",
        "c",
        "--out",
        out,
        "--format",
        "rootfs,oci",
        "--json",
        "-q",
        "--platform",
        platform,
      ],
      dir,
    );
  const amd = await build("amd", "linux/amd64");
  t.is(amd.code, 0, amd.stderr);
  // The same recipe for arm64 into the same store: none of amd64's steps or outputs is taken for it.
  const arm = await build("arm", "linux/arm64");
  t.is(arm.code, 0, arm.stderr);
  const amdJson = JSON.parse(amd.stdout) as {
    digest: string;
    steps: Array<{ reused: boolean; instruction: string }>;
  };
  const armJson = JSON.parse(arm.stdout) as typeof amdJson;
  t.deepEqual(
    armJson.steps.map((s) => s.reused),
    armJson.steps.map(() => false),
    "no step of the arm64 build was reused from amd64's",
  );
  t.not(armJson.digest, amdJson.digest);
  t.is(machine(dir, join(dir, "amd", "rootfs.tar"), "bin/busybox"), "Advanced Micro Devices X86-64");
  t.is(machine(dir, join(dir, "arm", "rootfs.tar"), "bin/busybox"), "AArch64");
  const config = (out: string) => {
    const layout = join(dir, out, "oci");
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as {
      manifests: Array<{ digest: string }>;
    };
    const manifest = JSON.parse(
      readFileSync(join(layout, "blobs/sha256", index.manifests[0]!.digest.slice(7)), "utf8"),
    ) as { config: { digest: string } };
    return JSON.parse(
      readFileSync(join(layout, "blobs/sha256", manifest.config.digest.slice(7)), "utf8"),
    ) as { architecture: string; variant?: string };
  };
  t.like(config("amd"), { architecture: "amd64" });
  t.like(config("arm"), { architecture: "arm64", variant: "v8" });
  // Both in one build: each under its platform's directory, the index naming both; the images are the ones built alone.
  const both = await build("both", "linux/amd64,linux/arm64");
  t.is(both.code, 0, both.stderr);
  t.is(JSON.parse(both.stdout).digest, amdJson.digest);
  t.is(machine(dir, join(dir, "both", "linux-arm64", "rootfs.tar"), "bin/busybox"), "AArch64");
  const skopeo = execFileSync("skopeo", ["inspect", "--raw", `oci:${join(dir, "both", "oci")}:latest`], {
    encoding: "utf8",
  });
  const platforms = (
    JSON.parse(skopeo) as { manifests: Array<{ platform: { architecture: string } }> }
  ).manifests.map((m) => m.platform.architecture);
  t.deepEqual(platforms, ["amd64", "arm64"]);
  // Into the directory a one-platform build wrote: what that build left there goes, as --out promises.
  const over = await build("amd", "linux/amd64,linux/arm64");
  t.is(over.code, 0, over.stderr);
  const left = readdirSync(join(dir, "amd")).filter((n) => !n.startsWith("."));
  t.deepEqual(left.sort(), ["linux-amd64", "linux-arm64", "oci"]);
});

test("errors at their lines: no FETCH for the platform, a platform the recipe does not support, a program of another machine, an unknown platform", async (t) => {
  const lines = await busyboxes(t);
  if (lines === undefined) return;
  const dir = workDir(t);
  writeFileSync(join(dir, "bb.nifty"), `${HEAD}${lines.amd64}\n${lines.arm64}\n${TAIL}`);
  const riscv = await runMain(
    ["build", "bb.nifty", "--cache", "c", "--out", "o", "--platform", "linux/riscv64"],
    dir,
  );
  t.is(riscv.code, 1, riscv.stderr);
  t.true(
    riscv.stderr.includes(
      "bb.nifty:4:1: error: FETCH busybox has no source and digest for platform linux/riscv64 (it has linux/amd64, linux/arm64) [NIFTY255]",
    ),
    riscv.stderr,
  );

  writeFileSync(join(dir, "only.nifty"), `PLATFORM linux/amd64 linux/arm/v7\n${HEAD}${lines.amd64}\n${TAIL}`);
  const unsupported = await runMain(
    ["build", "only.nifty", "--cache", "c", "--out", "o", "--platform", "linux/arm64"],
    dir,
  );
  t.is(unsupported.code, 1, unsupported.stderr);
  t.true(
    unsupported.stderr.includes(
      "only.nifty:1:1: error: the recipe does not support platform linux/arm64 (its PLATFORM line lists linux/amd64, linux/arm/v7) [NIFTY256]",
    ),
    unsupported.stderr,
  );

  // The host's amd64 BusyBox, for every platform: in an arm64 image it is the wrong machine.
  const everywhere = lines.amd64.replace(" PLATFORM linux/amd64", "");
  writeFileSync(join(dir, "wrong.nifty"), `${HEAD}${everywhere}\n${TAIL}`);
  const wrong = await runMain(
    ["build", "wrong.nifty", "--cache", "c", "--out", "o", "--format", "rootfs", "--platform", "linux/arm64"],
    dir,
  );
  t.is(wrong.code, 1, wrong.stderr);
  t.true(
    wrong.stderr.includes(
      "wrong.nifty:4:1: error: /bin/busybox is a program for x86-64, 64-bit, not for this image's linux/arm64 (aarch64, 64-bit) [NIFTY215]",
    ),
    wrong.stderr,
  );

  const unknown = await runMain(["build", "bb.nifty", "--platform", "linux/amd64,linux/arm65"], dir);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown platform "linux\/arm65" \(did you mean linux\/arm64\?/);
});

/** A recipe asking for nifty-data (Architecture: all, in the fixture's amd64 and arm64 indices), and how to run niftyc on it. */
async function packageProject(
  t: import("ava").ExecutionContext,
  body = "PACKAGE nifty-data\n",
  variant: Variant = "good",
) {
  const { dir, archive } = await twoSuiteProject(t, "niftyc-platforms-", `${HEAD}${body}`);
  const view = archive.view(variant);
  const head = `${twoSuiteArchives(archive.keyring)}${HEAD}`;
  const niftyc = (command: string, ...extra: string[]) =>
    runMain([command, "app.nifty", ...mirrorFlags(view), ...extra], dir);
  const build = (...extra: string[]) =>
    niftyc("build", "--cache", "c", "--out", "o", "--format", "rootfs,oci", "-q", ...extra);
  const lockText = () => readFileSync(join(dir, "app.nifty.lock"), "utf8");
  const sections = () => {
    const parsed = parseLock(lockText());
    if (!parsed.ok) throw new Error(`app.nifty.lock does not parse: ${JSON.stringify(parsed.errors)}`);
    return parsed.sections.map((s) => s.lock);
  };
  // The same project against another state of the archive (its own view).
  const against = (other: Variant) => {
    const flags = mirrorFlags(archive.view(other));
    return (command: string, ...extra: string[]) => runMain([command, "app.nifty", ...flags, ...extra], dir);
  };
  return { dir, head, niftyc, build, lockText, sections, against, viewRequests: view.requests };
}

const BOTH = ["--platform", "linux/amd64,linux/arm64"];

test("PACKAGE on several platforms: one lock file with a section each, the same bytes again and from a fresh store, its amd64 section an amd64-only lock", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, niftyc, build, lockText, sections } = await packageProject(t);
  const first = await build(...BOTH);
  t.is(first.code, 0, first.stderr);
  t.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith(".lock")),
    ["app.nifty.lock"],
    "no lock file of its own per platform",
  );
  const [amd64, arm64] = sections();
  t.deepEqual(
    sections().map((l) => l.architecture),
    ["amd64", "arm64"],
  );
  t.deepEqual(
    arm64!.packages.map((p) => [p.name, p.version, p.sha256]),
    amd64!.packages.map((p) => [p.name, p.version, p.sha256]),
  );
  const text = lockText();
  // The arm64 section's header holds only what differs: its architecture.
  t.regex(text, /\nRequested-By: nifty-data\n\nArchitecture: arm64\n\nPackage: nifty-data\n/);
  // Again, and from a fresh store with no lock: the same bytes.
  const again = await niftyc("lock", "--cache", "c", "--update", ...BOTH);
  t.is(again.code, 0, again.stderr);
  t.is(lockText(), text);
  rmSync(join(dir, "app.nifty.lock"));
  const fresh = await niftyc("lock", "--cache", "fresh", ...BOTH);
  t.is(fresh.code, 0, fresh.stderr);
  t.is(lockText(), text, "a fresh store resolves to the same bytes");
  // An amd64-only lock is the file's first section, byte for byte.
  rmSync(join(dir, "app.nifty.lock"));
  const alone = await niftyc("lock", "--cache", "c", "--platform", "linux/amd64");
  t.is(alone.code, 0, alone.stderr);
  const amd64Only = lockText();
  t.is(serializeLock(amd64!), amd64Only);
  t.true(text.startsWith(amd64Only), "the amd64 section comes first, as an amd64-only lock");
  // Adding arm64 appends its section and leaves amd64's bytes as they were.
  const added = await build("--platform", "linux/arm64");
  t.is(added.code, 0, added.stderr);
  t.is(lockText(), text);
});

test("--locked, outdated and lock --update per platform of the one lock; a platform the lock lacks is NIFTY641 under --locked; a package one platform lacks is an error at its word", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, head, niftyc, build, lockText } = await packageProject(t);
  const amd64 = await niftyc("lock", "--cache", "c");
  t.is(amd64.code, 0, amd64.stderr);
  const amd64Text = lockText();
  const missing = await build("--locked", ...BOTH);
  t.is(missing.code, 1, missing.stderr);
  t.true(
    missing.stderr.includes(
      "app.nifty:6:1: error: --locked, but app.nifty.lock has no section for linux/arm64 (it has linux/amd64) [NIFTY641]",
    ),
    missing.stderr,
  );
  t.true(missing.stderr.includes("niftyc lock app.nifty --platform linux/arm64"), missing.stderr);
  t.is(lockText(), amd64Text, "--locked wrote nothing");
  const added = await niftyc("lock", "--cache", "c", "--platform", "linux/arm64");
  t.is(added.code, 0, added.stderr);
  t.true(lockText().startsWith(amd64Text));
  const locked = await build("--locked", ...BOTH);
  t.is(locked.code, 0, locked.stderr);
  // Without --platform, outdated and lock cover every platform the lock has.
  const outdated = await niftyc("outdated", "--cache", "c");
  t.is(outdated.code, 0, outdated.stderr);
  t.regex(outdated.stdout, /all 2 locked packages are current/);
  const whole = lockText();
  const update = await niftyc("lock", "--cache", "c", "--update", "nifty-data");
  t.is(update.code, 0, update.stderr);
  t.regex(
    update.stdout,
    /^app\.nifty\.lock \(linux\/amd64\) is up to date: 1 package\n[\s\S]*^app\.nifty\.lock \(linux\/arm64\) is up to date: 1 package$/m,
  );
  t.is(lockText(), whole, "re-resolved to the same sections, the file is as it was");
  const one = await niftyc("lock", "--cache", "c", "--update", "nifty-data", "--platform", "linux/arm64");
  t.is(one.code, 0, one.stderr);
  t.regex(one.stdout, /^app\.nifty\.lock is up to date: 1 package$/m);
  const unknown = await niftyc("lock", "--cache", "c", "--update", "nifty-lib");
  t.is(unknown.code, 1, unknown.stderr);
  t.regex(unknown.stderr, /nifty-lib is not in app\.nifty\.lock/);

  writeFileSync(join(dir, "app.nifty"), `${head}PACKAGE nifty-data\nPACKAGE nifty-app\n`);
  const lacking = await build(...BOTH);
  t.is(lacking.code, 1, lacking.stderr);
  t.regex(lacking.stderr, /app\.nifty:7:9: error: linux\/arm64 \(arm64\): .*nifty-app.* \[NIFTY600\]/);
});

test("lock --update PKG on a 2-platform lock moves PKG on both platforms and keeps every other package, though the suite has newer ones", async (t) => {
  if (!requireArchive(t)) return;
  const body = "PACKAGE nifty-tool nifty-pal nifty-data\n";
  const { niftyc, against, lockText, sections } = await packageProject(t, body, "later");
  const locked = await niftyc("lock", "--cache", "c", ...BOTH);
  t.is(locked.code, 0, locked.stderr);
  const versions = () =>
    sections().map((l) => [
      l.architecture,
      l.packages.map((p) => `${p.name} ${p.version} ${p.architecture}`),
    ]);
  t.deepEqual(versions(), [
    ["amd64", ["nifty-data 1.0-1 all", "nifty-pal 1.0-1 amd64", "nifty-tool 1.0-1 amd64"]],
    ["arm64", ["nifty-data 1.0-1 all", "nifty-pal 1.0-1 arm64", "nifty-tool 1.0-1 arm64"]],
  ]);
  const before = sections();
  // The suite a while later has 1.1-1 of all three, on both architectures.
  const update = await against("latest")("lock", "--cache", "c", "--update", "nifty-tool");
  t.is(update.code, 0, update.stderr);
  t.deepEqual(versions(), [
    ["amd64", ["nifty-data 1.0-1 all", "nifty-pal 1.0-1 amd64", "nifty-tool 1.1-1 amd64"]],
    ["arm64", ["nifty-data 1.0-1 all", "nifty-pal 1.0-1 arm64", "nifty-tool 1.1-1 arm64"]],
  ]);
  for (const [i, section] of sections().entries()) {
    const tool = section.packages.find((p) => p.name === "nifty-tool")!;
    t.is(tool.filename, `pool/main/n/nifty-tool/nifty-tool_1.1-1_${section.architecture}.deb`);
    t.not(tool.sha256, before[i]!.packages.find((p) => p.name === "nifty-tool")!.sha256);
    // Every other stanza as it was, to the byte of its digest.
    const others = (l: typeof section) => l.packages.filter((p) => p.name !== "nifty-tool");
    t.deepEqual(others(section), others(before[i]!));
  }
  t.regex(update.stderr, /updated app\.nifty\.lock \(amd64\)[\s\S]*updated app\.nifty\.lock \(arm64\)/);
  // Moved on both, the file passes the same-version rule and builds for both, --locked.
  const built = await against("latest")(
    "build",
    "--cache",
    "c",
    "--out",
    "o",
    "--format",
    "rootfs",
    "-q",
    "--locked",
    ...BOTH,
  );
  t.is(built.code, 0, built.stderr);
  t.true(lockText().includes("Architecture: arm64\n"));
});

test("a multi-platform build whose platforms resolve different versions (NIFTY640) leaves the lock byte for byte as it was", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, niftyc, against, lockText } = await packageProject(t, "PACKAGE nifty-tool\n", "later");
  const amd64 = await niftyc("lock", "--cache", "c");
  t.is(amd64.code, 0, amd64.stderr);
  const before = lockText();
  // amd64's section holds 1.0-1; arm64, resolved now against the later suite, would get 1.1-1.
  const both = await against("latest")("build", "--cache", "c", "--out", "o", "--format", "rootfs", ...BOTH);
  t.is(both.code, 1, both.stderr);
  t.regex(
    both.stderr,
    /nifty-tool has another version on each platform: 1\.0-1 on linux\/amd64; 1\.1-1 on linux\/arm64 \[NIFTY640\]/,
  );
  t.is(lockText(), before, "nothing written when the platforms disagree");
  t.false(existsSync(join(dir, "o")));
  // Agreeing, the build writes every platform's section at once.
  const moved = await against("latest")("lock", "--cache", "c", "--update", "--platform", "linux/amd64");
  t.is(moved.code, 0, moved.stderr);
  const agreed = await against("latest")(
    "build",
    "--cache",
    "c",
    "--out",
    "o",
    "--format",
    "rootfs",
    ...BOTH,
  );
  t.is(agreed.code, 0, agreed.stderr);
  t.regex(lockText(), /\nArchitecture: arm64\n[\s\S]*nifty-tool_1\.1-1_arm64\.deb/);
});

test("cache gc after a 2-platform build keeps every platform's blobs and its stamp: a warm rebuild of both downloads nothing and reuses every step", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, build, viewRequests } = await packageProject(t, "PACKAGE nifty-tool nifty-data\n", "later");
  const first = await build(...BOTH);
  t.is(first.code, 0, first.stderr);
  // Resolved against the archive, the first build leaves no stamp; the same build again does, once
  // the lock it wrote is past the second a file changed within is not trusted (src/core/host-inputs.ts).
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const again = await build(...BOTH, "--json");
  t.is(again.code, 0, again.stderr);
  const stamps = () => readdirSync(join(dir, "c/stamps"));
  t.is(stamps().length, 1, "the build left its stamp");
  // Every blob looks 40 days old: only what a use record names is kept.
  const blobs = join(dir, "c/blobs/sha256");
  const old = new Date(Date.now() - 40 * 86_400_000);
  for (const name of readdirSync(blobs)) utimesSync(join(blobs, name), old, old);
  const gc = await runMain(["cache", "gc", "--cache", "c", "--days", "30"], dir);
  t.is(gc.code, 0, gc.stderr);
  // Each platform's rootfs tarball (named by its digest) is kept by that platform's use record.
  for (const p of (JSON.parse(again.stdout) as { platforms: Array<{ platform: string; digest: string }> })
    .platforms)
    t.true(existsSync(join(blobs, p.digest.slice(7))), `${p.platform}'s rootfs.tar is kept`);
  t.is(stamps().length, 1, "gc kept the stamp: its use records are there");
  // Into a new out/: each platform's outputs come from what the store kept, nothing downloaded.
  const asked = viewRequests().length;
  rmSync(join(dir, "o"), { recursive: true });
  const warm = await build(...BOTH, "--json");
  t.is(warm.code, 0, warm.stderr);
  type Answer = { platforms: Array<{ digest: string }>; steps: Array<{ reused: boolean }> };
  const [was, now] = [again, warm].map((r) => JSON.parse(r.stdout) as Answer);
  t.deepEqual(now!.platforms, was!.platforms);
  t.true(now!.steps.every((s) => s.reused));
  t.deepEqual(viewRequests().slice(asked), [], "the warm rebuild downloaded nothing");
  t.true(existsSync(join(dir, "o/linux-arm64/rootfs.tar")));
  t.true(existsSync(join(dir, "o/linux-amd64/rootfs.tar")));
});

test("a tampered stanza in the arm64 section is refused at its line of the one lock", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, niftyc, build, lockText } = await packageProject(t);
  const locked = await niftyc("lock", "--cache", "c", ...BOTH);
  t.is(locked.code, 0, locked.stderr);
  const lines = lockText().split("\n");
  const section = lines.indexOf("Architecture: arm64");
  const version = lines.findIndex((l, i) => i > section && l.startsWith("Version: "));
  lines[version] = "Version: 1.0-2";
  writeFileSync(join(dir, "app.nifty.lock"), lines.join("\n"));
  // A fresh store: nothing remembers the lock as checked.
  const refused = await build("--cache", "fresh", "--locked", "--platform", "linux/arm64");
  t.is(refused.code, 1, refused.stderr);
  t.regex(
    refused.stderr,
    new RegExp(`app\\.nifty\\.lock:${version + 1}:1: error: .*1\\.0-2.* \\[NIFTY629\\]`),
  );
  // amd64's section is untouched, and still builds.
  const amd64 = await build("--cache", "fresh", "--locked", "--platform", "linux/amd64");
  t.is(amd64.code, 0, amd64.stderr);
});

test("an old per-platform lock (app.nifty.arm64.lock) is read as its platform's section; niftyc lock merges it into app.nifty.lock and removes it", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, niftyc, lockText, sections } = await packageProject(t);
  const both = await niftyc("lock", "--cache", "c", ...BOTH);
  t.is(both.code, 0, both.stderr);
  const whole = lockText();
  const [amd64, arm64] = sections();
  writeFileSync(join(dir, "app.nifty.lock"), serializeLock(amd64!));
  writeFileSync(join(dir, "app.nifty.arm64.lock"), serializeLock(arm64!));
  const built = await niftyc(
    "build",
    "--cache",
    "c",
    "--out",
    "o",
    "--format",
    "rootfs",
    "--locked",
    ...BOTH,
  );
  t.is(built.code, 0, built.stderr);
  const said = built.stderr.match(
    /note: read app\.nifty\.arm64\.lock as linux\/arm64's section of app\.nifty\.lock/g,
  );
  t.is(
    said?.length,
    1,
    `said once, though the build reads the lock before and while it builds:\n${built.stderr}`,
  );
  t.is(lockText(), serializeLock(amd64!), "a build only reads it");
  const merged = await niftyc("lock", "--cache", "c", ...BOTH);
  t.is(merged.code, 0, merged.stderr);
  t.regex(merged.stderr, /merged app\.nifty\.arm64\.lock into app\.nifty\.lock and removed it/);
  t.is(lockText(), whole);
  t.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith(".lock")),
    ["app.nifty.lock"],
  );
});

test("PACKAGE x:arm64 builds for linux/arm64, and a build that also makes linux/amd64 refuses it at the qualifier, naming that platform", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, build } = await packageProject(t, "PACKAGE nifty-data:arm64\n");
  const arm64 = await build("--platform", "linux/arm64");
  t.is(arm64.code, 0, arm64.stderr);
  const both = await build(...BOTH);
  t.is(both.code, 1, both.stderr);
  t.true(
    both.stderr.includes(
      "app.nifty:6:19: error: PACKAGE nifty-data:arm64 cannot go in the linux/amd64 image (amd64): an image holds its own architecture's packages and Architecture: all ones [NIFTY642]",
    ),
    both.stderr,
  );
  t.regex(both.stderr, /hint: write nifty-data without :arm64/);
  t.true(existsSync(join(dir, "app.nifty.lock")));
});

test("a package at another version on one platform is NIFTY640, naming the package, each version and its platforms", (t) => {
  const pkg = (architecture: string, version: string) => ({
    name: "libfoo1",
    version,
    architecture,
    from: { archive: "debian", suite: "bookworm", component: "main" },
    filename: `pool/main/f/foo/libfoo1_${version}_${architecture}.deb`,
    size: 1,
    sha256: `sha256:${"0".repeat(64)}`,
    requestedBy: ["libfoo1"],
  });
  const lock = (architecture: string, version: string) => ({
    architecture,
    suites: [],
    requests: [{ name: "libfoo1" }],
    packages: [pkg(architecture, version)],
  });
  const [amd64, arm64, armhf] = ["linux/amd64", "linux/arm64", "linux/arm/v7"].map((n) => findPlatform(n)!);
  t.notThrows(() =>
    sameVersions(
      [
        { platform: amd64!, lock: lock("amd64", "1.0-1") },
        { platform: arm64!, lock: lock("arm64", "1.0-1") },
      ],
      "app.nifty",
    ),
  );
  const error = t.throws(() =>
    sameVersions(
      [
        { platform: amd64!, lock: lock("amd64", "1.0-1") },
        { platform: arm64!, lock: lock("arm64", "1.0-1+b1") },
        { platform: armhf!, lock: lock("armhf", "1.0-1") },
      ],
      "app.nifty",
    ),
  ) as BuildFailed;
  t.deepEqual(
    error.diagnostics.map((d) => [d.code, d.message]),
    [
      [
        "NIFTY640",
        "libfoo1 has another version on each platform: 1.0-1 on linux/amd64, linux/arm/v7; 1.0-1+b1 on linux/arm64",
      ],
    ],
  );
  t.regex(
    error.diagnostics[0]!.hint!,
    /niftyc lock app\.nifty --platform linux\/amd64,linux\/arm64,linux\/arm\/v7 --update libfoo1/,
  );
});

test.serial(
  "each platform's docker-archive has a tag of its own (…-arm64, …-arm-v7): loaded into one podman, no platform's tag replaces another's, even for the same tree",
  async (t) => {
    const podman = spawnSync("sh", ["-c", "command -v podman"]).status === 0;
    if (!requireParts(t, "podman load", podman ? undefined : "podman is not installed")) return;
    const dir = workDir(t);
    // Files only: the three trees are the same bytes, so the rootfs digest alone could not tell them apart.
    const name = `nifty-tags-${process.pid}`;
    writeFileSync(join(dir, `${name}.nifty`), `${HEAD}DIR /tmp MODE 1777\n`);
    const built = await runMain(
      [
        "build",
        `${name}.nifty`,
        "--cache",
        "c",
        "--out",
        "o",
        "--format",
        "rootfs,docker,docker-archive",
        "--json",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64,linux/arm/v7",
      ],
      dir,
    );
    t.is(built.code, 0, built.stderr);
    const digest = (JSON.parse(built.stdout) as { digest: string }).digest.slice(7, 19);
    const platforms = { "linux-amd64": "amd64", "linux-arm64": "arm64", "linux-arm-v7": "arm" };
    const tags: string[] = [];
    for (const sub of Object.keys(platforms)) {
      const archive = join(dir, "o", sub, "image.tar");
      const manifest = JSON.parse(
        execFileSync("tar", ["-xOf", archive, "manifest.json"], { encoding: "utf8" }),
      ) as Array<{
        RepoTags: string[];
      }>;
      tags.push(manifest[0]!.RepoTags[0]!);
      t.true(
        readFileSync(join(dir, "o", sub, "docker-run.sh"), "utf8").includes(manifest[0]!.RepoTags[0]!),
        `${sub}/docker-run.sh runs its own platform's tag`,
      );
    }
    t.deepEqual(tags, [`${name}:${digest}`, `${name}:${digest}-arm64`, `${name}:${digest}-arm-v7`]);

    t.teardown(() => {
      for (const tag of tags) spawnSync("podman", ["rmi", "-f", `localhost/${tag}`]);
    });
    for (const sub of Object.keys(platforms)) {
      const load = spawnSync("podman", ["load", "-i", join(dir, "o", sub, "image.tar")], {
        encoding: "utf8",
        timeout: 120_000,
      });
      t.is(load.status, 0, load.stderr);
    }
    const archOf = (tag: string) =>
      spawnSync("podman", ["image", "inspect", "--format", "{{.Architecture}}", `localhost/${tag}`], {
        encoding: "utf8",
      }).stdout.trim();
    t.deepEqual(tags.map(archOf), Object.values(platforms), "each tag still names its own platform's image");
  },
);

test("the platforms are built at once and shown one after another: a mirror that sends amd64's BusyBox only once arm64's is asked for; each image is the one built alone", async (t) => {
  const deb = cachedForeignDeb(BUSYBOX_ARM64);
  if (deb === undefined) {
    if (process.env.CI) t.fail("the arm64 test .deb is not cached: run node scripts/test-debs.ts");
    else t.pass("the arm64 test .deb is not cached (node scripts/test-debs.ts)");
    return;
  }
  const host = readFileSync("/bin/busybox");
  let armAsked: () => void = () => {};
  const asked = new Promise<void>((resolve) => (armAsked = resolve));
  let holding = true;
  const server = await startServer({
    // One platform after the other, amd64's FETCH would wait for arm64's forever: it gives up after 30 s.
    "/busybox": (req, res) => {
      const give = () => serve(host)(req, res, 1);
      if (!holding) return give();
      const late = setTimeout(() => res.writeHead(404).end("arm64 never asked"), 30_000);
      void asked.then(() => {
        clearTimeout(late);
        give();
      });
    },
    "/arm64.deb": (req, res) => {
      armAsked();
      serve(deb)(req, res, 1);
    },
  });
  t.teardown(() => server.close());
  const digest = execFileSync("sha256sum", ["/bin/busybox"], { encoding: "utf8" }).split(" ")[0];
  const dir = workDir(t);
  writeFileSync(
    join(dir, "bb.nifty"),
    `${HEAD}FETCH busybox ${server.url}/busybox sha256:${digest} TO /bin/busybox PLATFORM linux/amd64\n` +
      `FETCH busybox ${server.url}/arm64.deb sha256:${BUSYBOX_ARM64.sha256} EXTRACT bin/busybox PLATFORM linux/arm64\n${TAIL}`,
  );
  const build = (cache: string, platform: string, ...extra: string[]) =>
    runMain(
      [
        "build",
        "bb.nifty",
        "--cache",
        cache,
        "--out",
        `${cache}-out`,
        "--json",
        "--platform",
        platform,
        ...extra,
      ],
      dir,
    );
  const both = await build("both", "linux/amd64,linux/arm64");
  t.is(both.code, 0, both.stderr);
  holding = false;
  // The step lines: every one of amd64's, then every one of arm64's, as when they ran in turn.
  const steps = [...both.stderr.matchAll(/^\[ ?(\d+)\/(\d+)\]/gm)].map((m) => Number(m[1]));
  const total = steps.length / 2;
  t.true(total > 0, both.stderr);
  t.deepEqual(steps, [
    ...Array.from({ length: total }, (_, i) => i + 1),
    ...Array.from({ length: total }, (_, i) => i + 1),
  ]);
  const together = JSON.parse(both.stdout) as { platforms: Array<{ platform: string; digest: string }> };
  for (const { platform, digest: built } of together.platforms) {
    const alone = await build(`alone-${platform.replaceAll("/", "-")}`, platform);
    t.is(alone.code, 0, alone.stderr);
    t.is((JSON.parse(alone.stdout) as { digest: string }).digest, built, platform);
  }
});
