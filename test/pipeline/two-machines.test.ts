// The digest does not depend on the machine that builds: recipes/ssh.nifty built here and
// on a second machine gives the same rootfs, byte for byte, and the same SBOMs. The second
// machine is another OS, made by niftyc itself: Debian 13 (recipes/builder-trixie.nifty:
// glibc 2.41, xz 5.8; this host is Debian 12), run under bubblewrap with this checkout bound
// read-only at another path and the project's own Node binary from node_modules/node. In it
// the build runs as another user (uid 4242, in a user namespace), with umask 077, another
// time zone, locale, hostname and home, on one CPU (taskset), into a fresh store on a tmpfs;
// here it runs with umask 022, TZ=UTC, LC_ALL=C and both CPUs, into a store on the disk.
// Both fetch the pinned .debs from one loopback mirror; SOURCE_DATE_EPOCH, an input, is the same.
import test from "ava";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { debianMirror, ROOT, tempDir, unpack } from "../boot/harness.ts";
import { requireParts } from "../support/skip.ts";

const EPOCH = "1700000000";
const FORMATS = "rootfs,sbom,cyclonedx";
/** Inside: say what the machine is, build with umask 077, then the outputs' digests (out/ is on the tmpfs). */
const SANDBOX_SCRIPT = [
  "umask 077",
  "busybox grep VERSION_ID /etc/os-release && busybox id -u && busybox nproc",
  "busybox grep ' /tmp ' /proc/mounts | busybox cut -d' ' -f3",
  '"$@" || exit 1',
  "cd /tmp/ssh && busybox sha256sum rootfs.tar sbom.spdx.json sbom.cdx.json",
].join("\n");

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "it unpacks a Debian root with its owners, as root";
  for (const tool of ["bwrap", "taskset", "tar"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("close", (code) => done({ code, output }));
  });
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** What must not differ: the rootfs, and the SBOMs' bytes. */
function outcome(out: string): Record<string, string> {
  const build = JSON.parse(readFileSync(join(out, "build.json"), "utf8")) as { digest: string };
  return {
    digest: build.digest,
    rootfs: sha256(join(out, "rootfs.tar")),
    spdx: sha256(join(out, "sbom.spdx.json")),
    cyclonedx: sha256(join(out, "sbom.cdx.json")),
  };
}

/** The second machine's environment: nothing of this one's. */
const THERE: Record<string, string> = {
  PATH: "/usr/bin",
  HOME: "/home/builder",
  USER: "builder",
  TZ: "Pacific/Chatham",
  LC_ALL: "tr_TR.UTF-8",
  LANG: "tr_TR.UTF-8",
  SOURCE_DATE_EPOCH: EPOCH,
  PW: "secret",
  NIFTY_NO_STAMPS: "1",
};

/** bubblewrap on one CPU: `root` as /, this checkout read-only at /src, uid 4242, tmpfs /tmp and home. */
function sandbox(root: string, command: string[]): string[] {
  const namespaces = "--unshare-user --uid 4242 --gid 4242 --unshare-pid --unshare-uts --hostname elsewhere";
  // node_modules also where it really is: a checkout may link it from elsewhere.
  const modules = realpathSync(join(ROOT, "node_modules"));
  mkdirSync(join(root, modules), { recursive: true }); // its mount point: the sandbox's / is read-only
  const mounts =
    `--ro-bind ${root} / --ro-bind ${ROOT} /src --ro-bind ${modules} ${modules} ` +
    "--proc /proc --dev /dev --tmpfs /tmp --tmpfs /home/builder";
  const env = Object.entries(THERE).flatMap(([k, v]) => ["--setenv", k, v]);
  const bwrap = [
    ...namespaces.split(" "),
    ...mounts.split(" "),
    "--chdir",
    "/home/builder",
    "--clearenv",
    ...env,
  ];
  return [
    "taskset",
    "-c",
    "0",
    "bwrap",
    ...bwrap,
    "--",
    "/usr/bin/sh",
    "-c",
    SANDBOX_SCRIPT,
    "sh",
    ...command,
  ];
}

test("recipes/ssh.nifty built here and in a Debian 13 sandbox (another user, umask, TZ, locale, file system, CPU count) gives the same digest", async (t) => {
  if (!requireParts(t, "the two-machine build", unavailable())) return;
  const mirror = await debianMirror(t);
  const node = join(ROOT, "node_modules/node/bin/node");
  const mirrors = ["--mirror", `debian=${mirror.url}`, "--mirror", `debian-security=${mirror.url}`];
  const here = tempDir(t, "two-machines-here");
  const hostEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: here, TZ: "UTC", LC_ALL: "C" };
  const env = { ...hostEnv, SOURCE_DATE_EPOCH: EPOCH, PW: "secret", NIFTY_NO_STAMPS: "1" };
  const niftyc = [node, join(ROOT, "bin/niftyc"), "build"];
  const cache = ["--cache", join(here, "cache")];

  // The second machine's root: Debian 13, built by niftyc from its pinned lock.
  const trixieRecipe = join(ROOT, "recipes/builder-trixie.nifty");
  const out = join(here, "builder");
  const builder = await run(
    [...niftyc, trixieRecipe, "--locked", "-q", ...cache, "--out", out, ...mirrors],
    env,
  );
  t.is(builder.code, 0, builder.output);
  const trixie = unpack(t, join(out, "rootfs.tar"));
  mkdirSync(join(trixie, "src"));

  const ssh = ["--locked", "-q", "--format", FORMATS, "--secret", "luser-password=env:PW", ...mirrors];
  const hostBuild = [
    ...niftyc,
    join(ROOT, "recipes/ssh.nifty"),
    ...ssh,
    ...cache,
    "--out",
    join(here, "ssh"),
  ];
  const onHost = await run(["sh", "-c", 'umask 022 && exec "$@"', "sh", ...hostBuild], env);
  t.is(onHost.code, 0, onHost.output);

  const thereBuild = [
    "/src/node_modules/node/bin/node",
    "/src/bin/niftyc",
    "build",
    "/src/recipes/ssh.nifty",
    ...ssh,
  ];
  const inSandbox = await run(
    sandbox(trixie, [...thereBuild, "--cache", "/tmp/cache", "--out", "/tmp/ssh"]),
    env,
  );
  t.is(inSandbox.code, 0, inSandbox.output);
  t.regex(
    inSandbox.output,
    /^VERSION_ID="13"\n4242\n1\ntmpfs\n/,
    "Debian 13, uid 4242, one CPU, the store on a tmpfs",
  );
  const sums = new Map(
    [...inSandbox.output.matchAll(/^([0-9a-f]{64}) {2}(\S+)$/gm)].map((m) => [m[2]!, m[1]!]),
  );
  const there = {
    rootfs: sums.get("rootfs.tar"),
    spdx: sums.get("sbom.spdx.json"),
    cyclonedx: sums.get("sbom.cdx.json"),
  };
  const { digest, ...hereSums } = outcome(join(here, "ssh"));
  t.is(digest, `sha256:${hereSums.rootfs}`);
  t.deepEqual(there, hereSums, inSandbox.output);
  t.log(`both machines: ${digest}`);
});
