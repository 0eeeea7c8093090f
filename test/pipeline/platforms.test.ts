// Several platforms from one recipe, without an emulator: FETCH … PLATFORM gives a file per
// platform, PACKAGE resolves each platform's index of the same signed suites into its own lock,
// every cached result is keyed by its platform, and what cannot be built for a platform is an
// error at its line: a platform the recipe does not support, a FETCH with no file for it, a
// package its index lacks, a program of another machine, a platform nobody knows.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { busyboxes } from "../support/platform-busybox.ts";
import { BUSYBOX_ARM64, cachedForeignDeb } from "../support/foreign-debs.ts";
import { serve, startServer } from "../fetch/helpers/server.ts";
import { debianArchive, requireArchive, mirrorFlags } from "../support/debian-archive.ts";
import { parseLock } from "../../src/debian/lockfile.ts";
import { sameVersions } from "../../src/pipeline/packages.ts";
import type { BuildFailed } from "../../src/pipeline/failure.ts";
import { findPlatform } from "../../src/image/platform.ts";
import { requireParts } from "../support/skip.ts";

function workDir(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-platforms-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

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

test("PACKAGE per platform: a lock each, the same versions, --locked, outdated and lock --update per platform; a package one platform lacks is an error at its line", async (t) => {
  if (!requireArchive(t)) return;
  const archive = await debianArchive();
  const view = archive.view();
  const dir = workDir(t);
  const head = `ARCHIVE debian bookworm KEYRING ${archive.keyring}\nARCHIVE debian-security bookworm-security KEYRING ${archive.keyring}\n${HEAD}`;
  writeFileSync(join(dir, "app.nifty"), `${head}PACKAGE nifty-data\n`);
  const both = ["--platform", "linux/amd64,linux/arm64"];
  const build = (...extra: string[]) =>
    runMain(
      [
        "build",
        "app.nifty",
        "--cache",
        "c",
        "--out",
        "o",
        "--format",
        "rootfs,oci",
        "-q",
        ...mirrorFlags(view),
        ...both,
        ...extra,
      ],
      dir,
    );
  const first = await build();
  t.is(first.code, 0, first.stderr);
  const lockOf = (name: string) => {
    const parsed = parseLock(readFileSync(join(dir, name), "utf8"));
    if (!parsed.ok) throw new Error(`${name} does not parse`);
    return parsed.lock;
  };
  const amd64 = lockOf("app.nifty.lock");
  const arm64 = lockOf("app.nifty.arm64.lock");
  t.is(amd64.architecture, "amd64");
  t.is(arm64.architecture, "arm64");
  t.deepEqual(
    arm64.packages.map((p) => [p.name, p.version, p.sha256]),
    amd64.packages.map((p) => [p.name, p.version, p.sha256]),
  );
  const locked = await build("--locked");
  t.is(locked.code, 0, locked.stderr);
  const outdated = await runMain(
    ["outdated", "app.nifty", "--cache", "c", ...mirrorFlags(view), ...both],
    dir,
  );
  t.is(outdated.code, 0, outdated.stderr);
  t.regex(outdated.stdout, /all 2 locked packages are current/);
  const update = await runMain(
    ["lock", "app.nifty", "--update", "--cache", "c", ...mirrorFlags(view), ...both],
    dir,
  );
  t.is(update.code, 0, update.stderr);
  t.regex(
    update.stdout,
    /^app\.nifty\.lock is up to date: 1 package\n[\s\S]*^app\.nifty\.arm64\.lock is up to date: 1 package$/m,
  );
  t.deepEqual(lockOf("app.nifty.arm64.lock"), arm64, "re-resolved to the same lock, the file is as it was");

  writeFileSync(join(dir, "app.nifty"), `${head}PACKAGE nifty-data\nPACKAGE nifty-app\n`);
  const missing = await build();
  t.is(missing.code, 1, missing.stderr);
  t.regex(missing.stderr, /app\.nifty:7:1: error: linux\/arm64 \(arm64\): .*nifty-app.* \[NIFTY600\]/);
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
      ["build", "bb.nifty", "--cache", cache, "--out", cache, "--json", "--platform", platform, ...extra],
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
