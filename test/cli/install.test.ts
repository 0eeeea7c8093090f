// niftyc install refuses what is not a build directory, before touching any machine.
import test from "ava";
import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.ts";
import { packRootfsTar } from "../support/rootfs-tar.ts";
import { requireParts } from "../support/skip.ts";

/** build.json's config as a build writes it (install on this host reads its binds). */
const config = (binds: unknown[] = []) => ({
  name: "x",
  env: [],
  exposedPorts: [],
  binds,
  labels: [],
  stopSignal: { name: "SIGTERM", number: 15, source: "init" },
  init: { kind: "busybox", command: ["/sbin/init"] },
  architecture: "amd64",
  os: "linux",
  created: 0,
});

async function run(argv: string[], cwd: string): Promise<{ code: number; stderr: string; stdout: string }> {
  let stderr = "";
  let stdout = "";
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
    cwd,
  });
  return { code, stderr, stdout };
}

test("install: no build.json, or a build.json without rootfs.tar, is NIFTY300 and installs nothing", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-install-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const machines = join(dir, "machines");
  const empty = await run(
    ["install", ".", "--machines-dir", machines, "--settings-dir", join(dir, "nspawn")],
    dir,
  );
  t.is(empty.code, 1);
  t.regex(empty.stderr, /is not a build directory \(no readable build\.json\) \[NIFTY300\]/);
  writeFileSync(
    join(dir, "build.json"),
    JSON.stringify({ name: "x", digest: "sha256:00", config: config() }),
  );
  const noTar = await run(
    ["install", ".", "--machines-dir", machines, "--settings-dir", join(dir, "nspawn")],
    dir,
  );
  t.is(noTar.code, 1);
  t.regex(noTar.stderr, /has no rootfs\.tar \[NIFTY300\]/);
  t.deepEqual(readdirSync(dir).sort(), ["build.json"]);
});

test("install --root: the machine and its .nspawn go into that machine's /var/lib/machines and /etc/systemd/nspawn; the hint is for that machine", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-install-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "etc"), { recursive: true });
  writeFileSync(join(tree, "etc", "os-release"), "ID=x\n");
  const build = join(dir, "out");
  packRootfsTar(build, tree);
  writeFileSync(
    join(build, "build.json"),
    JSON.stringify({ name: "x", digest: "sha256:00", config: { name: "x" } }),
  );
  writeFileSync(join(build, "x.nspawn"), "[Exec]\nBoot=yes\n");
  const root = join(dir, "host");
  mkdirSync(root);

  const missing = await run(["install", build, "--root", join(dir, "nope")], dir);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /does not exist or is not a directory \[NIFTY302\]/);
  const relative = await run(["install", build, "--root", root, "--machines-dir", "machines"], dir);
  t.is(relative.code, 2);
  t.regex(relative.stderr, /with --root, --machines-dir takes a path as that machine sees it/);

  const ok = await run(["install", build, "--root", root], dir);
  t.is(ok.code, 0, ok.stderr);
  t.regex(
    ok.stdout,
    /^installed x in \/var\/lib\/machines\/x of the machine at .*host; start it there with: machinectl start x\n$/,
  );
  t.is(readFileSync(join(root, "var/lib/machines/x/etc/os-release"), "utf8"), "ID=x\n");
  t.is(readFileSync(join(root, "etc/systemd/nspawn/x.nspawn"), "utf8"), "[Exec]\nBoot=yes\n");

  // Settings where nspawn never reads them: said, and the start command cannot make up for it.
  const elsewhere = await run(
    ["install", build, "--root", root, "--settings-dir", "/srv/nspawn", "--replace"],
    dir,
  );
  t.is(elsewhere.code, 0, elsewhere.stderr);
  t.regex(
    elsewhere.stderr,
    /^note: systemd-nspawn never reads \/srv\/nspawn\/x\.nspawn .*--settings-dir \/etc\/systemd\/nspawn/m,
  );
  // Beside the machine: read, and trusted only when the start command says so.
  const beside = await run(
    ["install", build, "--root", root, "--machines-dir", "/srv/m", "--settings-dir", "/srv/m", "--replace"],
    dir,
  );
  t.is(beside.code, 0, beside.stderr);
  t.regex(
    beside.stdout,
    /with: systemd-nspawn --boot --directory=\/srv\/m\/x --machine=x --settings=trusted\n$/,
  );
  t.notRegex(beside.stderr, /never reads/);
});

test("install on this host judges the machine's binds as niftyc run does: one through another user's directory, or leading to /etc, is NIFTY760 unless --allow-system-binds", async (t) => {
  const notRoot =
    process.getuid?.() !== 0 ? "needs root (a directory is given to another user with chown)" : undefined;
  if (!requireParts(t, "install's bind checks", notRoot)) return;
  const dir = mkdtempSync(join(tmpdir(), "niftyc-install-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "etc"), { recursive: true });
  writeFileSync(join(tree, "etc", "os-release"), "ID=x\n");
  // Another user's directory, which they could swap for a link to /etc before nspawn follows it.
  mkdirSync(join(dir, "theirs", "data"), { recursive: true });
  chownSync(join(dir, "theirs"), 65534, 65534);
  symlinkSync("/etc", join(dir, "etc-link"));
  const buildWith = (name: string, hostPath: string) => {
    const build = join(dir, name);
    packRootfsTar(build, tree);
    const binds = [{ readOnly: true, hostPath, containerPath: "/data" }];
    writeFileSync(
      join(build, "build.json"),
      JSON.stringify({ name: "x", digest: "sha256:00", config: config(binds) }),
    );
    writeFileSync(join(build, "x.nspawn"), `[Exec]\nBoot=yes\n[Files]\nBindReadOnly=${hostPath}:/data\n`);
    return build;
  };
  const machines = join(dir, "machines");
  const settings = join(dir, "nspawn");
  const install = (build: string, ...extra: string[]) =>
    run(
      ["install", build, "--machines-dir", machines, "--settings-dir", settings, "--replace", ...extra],
      dir,
    );

  const redirectable = await install(buildWith("b1", join(dir, "theirs", "data")));
  t.is(redirectable.code, 1, redirectable.stderr);
  t.regex(
    redirectable.stderr,
    /could be made to lead elsewhere by another user .*belongs to uid 65534.* \[NIFTY760\]/,
  );
  const system = await install(buildWith("b2", join(dir, "etc-link")));
  t.is(system.code, 1, system.stderr);
  t.regex(system.stderr, /BIND .*etc-link \(\/etc on this host\) would give the container the host's \/etc/);
  t.false(readdirSync(dir).includes("machines"), "nothing installed");

  const allowed = await install(join(dir, "b2"), "--allow-system-binds");
  t.is(allowed.code, 0, allowed.stderr);
  t.is(readFileSync(join(machines, "x/etc/os-release"), "utf8"), "ID=x\n");
  // Under --root the binds are that machine's paths, not this host's.
  const host = join(dir, "host");
  mkdirSync(host);
  const other = await run(["install", join(dir, "b1"), "--root", host], dir);
  t.is(other.code, 0, other.stderr);
});
