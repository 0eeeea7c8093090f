// Trees that root unpacks keep the image's owners and modes, setuid bits included. Each test
// unpacks an image holding a setuid-root copy of id(1) the way niftyc run, instances, install
// and --format bundle do, in a directory every user can reach (as /var/cache or /var/lib are),
// then runs that program as a throwaway local user: it must not get euid 0, nor even reach it.
import test, { type ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileDigest } from "../../src/core/hash.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { installMachine } from "../../src/emit/install.ts";
import { writeRuntimeBundle } from "../../src/emit/runtime-bundle.ts";
import { planInstances } from "../../src/instances/plan.ts";
import { writeInstances } from "../../src/instances/write.ts";
import { ensureTree } from "../../src/run/trees.ts";
import { sshConfig } from "../instances/helpers.ts";
import { requireParts } from "../support/skip.ts";
import { tempDir, tryBuild } from "./helpers.ts";

const USER = "nfttree1";

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0)
    return "needs root (trees keep owners; the attacker is a user made with useradd)";
  for (const tool of ["useradd", "userdel", "setpriv", "tar"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

let uid = 0;
let gid = 0;
test.before(() => {
  if (unavailable() !== undefined) return;
  if (spawnSync("id", ["-u", USER]).status !== 0) {
    const made = spawnSync("useradd", ["-M", "-s", "/bin/sh", USER], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`useradd failed: ${made.stderr}`);
  }
  uid = Number(spawnSync("id", ["-u", USER], { encoding: "utf8" }).stdout.trim());
  gid = Number(spawnSync("id", ["-g", USER], { encoding: "utf8" }).stdout.trim());
});
test.after.always(() => {
  if (spawnSync("id", ["-u", USER]).status === 0) spawnSync("userdel", ["-f", USER]);
});

/** A directory every user can reach, as /var/cache/niftyc or /var/lib are. */
function openDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-trees-sec-"));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An image whose /usr/bin/id is setuid root (as COPY … MODE 4755, or Debian's su, would be). */
async function setuidImage(dir: string): Promise<{ tar: string; digest: string }> {
  const src = join(dir, "src");
  mkdirSync(join(src, "usr/bin"), { recursive: true });
  mkdirSync(join(src, "etc"), { recursive: true });
  writeFileSync(join(src, "etc/os-release"), "ID=nifty\n");
  copyFileSync("/usr/bin/id", join(src, "usr/bin/id"));
  chmodSync(join(src, "usr/bin/id"), 0o4755);
  const tar = join(dir, "rootfs.tar");
  const made = spawnSync("tar", ["-cf", tar, "--owner=0", "--group=0", "--numeric-owner", "-C", src, "."], {
    encoding: "utf8",
  });
  if (made.status !== 0) throw new Error(made.stderr);
  rmSync(src, { recursive: true });
  return { tar, digest: await fileDigest(tar) };
}

function asUser(): string[] {
  return [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--"];
}

/** The setuid program is in the tree as unpacked, and the local user can neither run it as root nor reach it. */
function assertUnreachable(t: ExecutionContext, tree: string): void {
  const program = join(tree, "usr/bin/id");
  const st = statSync(program);
  t.is(st.mode & 0o7777, 0o4755, "the tree keeps the image's setuid bit (the image is unpacked as it is)");
  t.is(st.uid, 0);
  // Through sh: setpriv keeps root's capabilities until its own execve (CAP_DAC_OVERRIDE finds the
  // path), so the shell, with none left, looks the program up as the user would.
  const ran = spawnSync("setpriv", [...asUser(), "sh", "-c", '"$0" -u', program], {
    encoding: "utf8",
    timeout: 30_000,
  });
  t.notRegex(ran.stdout, /^0$/m, `${USER} ran ${program} as root`);
  t.not(ran.status, 0, `${USER} ran ${program}: ${ran.stdout}`);
  const reach = spawnSync("setpriv", [...asUser(), "test", "-e", program]);
  t.is(reach.status, 1, `${USER} can reach ${program}`);
}

test("niftyc run's unpack cache: closed to other users, and closed again when an older niftyc left it open", async (t) => {
  if (!requireParts(t, "trees", unavailable())) return;
  const dir = openDir(t);
  const image = await setuidImage(dir);
  const privilege = { root: true, uid: 0 };
  const tree = (base: string) => ensureTree({ base, rootfsTar: image.tar, digest: image.digest, privilege });
  const fresh = await tree(join(dir, "fresh"));
  assertUnreachable(t, fresh.dir);
  t.is(statSync(join(dir, "fresh")).mode & 0o777, 0o700);

  // /var/cache/niftyc/trees as an older niftyc left it: 0755, the tree already there.
  const old = join(dir, "old");
  mkdirSync(old, { mode: 0o755 });
  chmodSync(old, 0o755);
  const kept = await tree(old);
  const again = await tree(old);
  t.false(again.unpacked, "the kept tree is used");
  assertUnreachable(t, kept.dir);
  t.is(statSync(old).mode & 0o777, 0o700);
});

test("an instances directory's shared rootfs is closed to other users; one another user owns is refused", async (t) => {
  if (!requireParts(t, "trees", unavailable())) return;
  const dir = openDir(t);
  const image = await setuidImage(dir);
  const plan = planInstances({
    config: sshConfig(),
    count: 2,
    first: 1,
    sets: [{ name: "PORT", expr: "2200+i" }],
  });
  const write = (out: string) =>
    writeInstances({
      dir: out,
      config: sshConfig(),
      plan,
      rootfsTar: image.tar,
      digest: image.digest,
      version: "t",
    });
  const result = await write(join(dir, "fleet"));
  assertUnreachable(t, result.files.rootfs);
  t.is(statSync(result.dir).mode & 0o777, 0o700);

  // The attacker made --out first (say /tmp/fleet): it could open it again after niftyc closed it.
  const planted = join(dir, "planted");
  mkdirSync(planted, { mode: 0o755 });
  chownSync(planted, uid, gid);
  const refused = await t.throwsAsync(write(planted), { instanceOf: NiftyError });
  t.is(refused?.code, "NIFTY522");
  t.regex(refused?.message ?? "", /belongs to uid/);
});

test("niftyc install: a machines directory it creates is 0700, and an open one is closed", async (t) => {
  if (!requireParts(t, "trees", unavailable())) return;
  const dir = openDir(t);
  const image = await setuidImage(dir);
  const install = (name: string, machinesDir: string) =>
    installMachine({
      rootfsTar: image.tar,
      nspawnText: "",
      name,
      machinesDir,
      settingsDir: join(dir, "nspawn"),
    });
  const made = await install("m1", join(dir, "machines"));
  assertUnreachable(t, made.root);
  t.is(statSync(join(dir, "machines")).mode & 0o777, 0o700);

  const open = join(dir, "open");
  mkdirSync(open, { mode: 0o755 });
  chmodSync(open, 0o755);
  const second = await install("m2", open);
  assertUnreachable(t, second.root);
  t.is(statSync(open).mode & 0o777, 0o700);
});

test("--format bundle: the bundle directory above its rootfs is 0700", async (t) => {
  if (!requireParts(t, "trees", unavailable())) return;
  const dir = openDir(t);
  const image = await setuidImage(dir);
  const bundle = join(dir, "bundle");
  await writeRuntimeBundle(bundle, { config: sshConfig(), rootfsTar: image.tar });
  assertUnreachable(t, join(bundle, "rootfs"));
  t.is(statSync(bundle).mode & 0o777, 0o700);
  t.is(statSync(join(bundle, "rootfs")).mode & 0o777, 0o755, "the rootfs itself is the container's /, 0755");
});

test("a bundle an older niftyc left open (0755) is written again by the next build, 0700", async (t) => {
  if (!requireParts(t, "trees", unavailable())) return;
  const dir = await tempDir("niftyc-bundle-open-");
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "init"), "#!/bin/sh\n");
  const recipe = join(dir, "b.nifty");
  writeFileSync(recipe, "FILE /etc/os-release <<EOF\nID=nifty\nEOF\nCOPY init /sbin/init MODE 0755\n");
  const first = await tryBuild(recipe, dir, { formats: ["rootfs", "bundle"] });
  t.true(first.ok, first.ok ? "" : JSON.stringify(first.errors));
  const bundle = join(dir, "out", "bundle");
  t.is(statSync(bundle).mode & 0o777, 0o700);
  chmodSync(bundle, 0o755);
  const second = await tryBuild(recipe, dir, { formats: ["rootfs", "bundle"] });
  t.true(second.ok);
  if (second.ok) t.false(second.result.upToDate, "an open bundle is not up to date");
  t.is(statSync(bundle).mode & 0o777, 0o700);
});
