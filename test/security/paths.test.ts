// Paths niftyc uses for a user (or root) that another local user could redirect: the runs directory
// a user without XDG_RUNTIME_DIR gets in /tmp, and an unpack cache reached through a symbolic link
// someone else owns. The attacker is a user made with useradd, acting through setpriv.
import test, { type ExecutionContext } from "ava";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { ensureTree } from "../../src/run/trees.ts";
import { tempDir as runTempDir } from "../boot/harness.ts";
import { niftycAs, type User } from "../run/helpers.ts";
import { requireParts } from "../support/skip.ts";
import { tempDir, tryBuild } from "./helpers.ts";

const VICTIM = "nftpathv";
const ATTACKER = "nftpatha";

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (the users are made with useradd)";
  for (const tool of ["useradd", "userdel", "setpriv", "bwrap", "unshare", "newuidmap"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (!existsSync("/bin/busybox")) return "/bin/busybox is not there (package busybox-static)";
  return undefined;
}

function user(name: string): User {
  if (spawnSync("id", ["-u", name]).status !== 0) {
    const made = spawnSync("useradd", ["-m", "-s", "/bin/sh", name], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`useradd failed: ${made.stderr}`);
  }
  const id = (flag: string) => Number(spawnSync("id", [flag, name], { encoding: "utf8" }).stdout.trim());
  return { name, uid: id("-u"), gid: id("-g"), home: `/home/${name}` };
}

const users: Partial<Record<"victim" | "attacker", User>> = {};
test.before(() => {
  if (unavailable() !== undefined) return;
  users.victim = user(VICTIM);
  users.attacker = user(ATTACKER);
});
test.after.always(() => {
  for (const name of [VICTIM, ATTACKER]) {
    rmSync(`/tmp/niftyc-runs-${users.victim?.uid ?? "none"}`, { recursive: true, force: true });
    if (spawnSync("id", ["-u", name]).status === 0) spawnSync("userdel", ["-r", "-f", name]);
  }
});

/** A shell loop run as the attacker, in a process group of its own, stopped whole when the test ends. */
function attackerLoop(
  t: ExecutionContext,
  attacker: User,
  script: string,
  env: Record<string, string>,
): ChildProcess {
  const ids = [`--reuid=${attacker.uid}`, `--regid=${attacker.gid}`, "--init-groups"];
  const loop = spawn("setpriv", [...ids, "--", "sh", "-c", script], {
    env: { ...process.env, ...env },
    stdio: "ignore",
    detached: true,
  });
  t.teardown(() => stopGroup(loop));
  return loop;
}

/**
 * The attacker's loop stopped whole: its shell and the ln or mv it is running (one process group),
 * waited for, so no rename of theirs lands while the test's directory is removed.
 */
async function stopGroup(child: ChildProcess): Promise<void> {
  const group = -child.pid!;
  try {
    process.kill(group, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 500; i++) {
    try {
      process.kill(group, 0);
    } catch {
      return;
    }
    await new Promise((done) => setTimeout(done, 10));
  }
}

/** `argv` as `who`, with no capabilities left. */
function as(who: User, argv: string[]) {
  return spawnSync("setpriv", [`--reuid=${who.uid}`, `--regid=${who.gid}`, "--init-groups", "--", ...argv], {
    encoding: "utf8",
  });
}

/** A BusyBox image's recipe directory, the victim's own. */
function busyboxRecipe(t: ExecutionContext, owner: User): string {
  const dir = runTempDir(t, "paths-recipe");
  copyFileSync("/bin/busybox", join(dir, "busybox"));
  writeFileSync(
    join(dir, "Niftyfile"),
    "COPY busybox /bin/busybox\nLINK /bin/busybox APPLETS\nSYMLINK /sbin bin\nDIR /proc /sys /dev /run /tmp\n",
  );
  spawnSync("chown", ["-R", `${owner.uid}:${owner.gid}`, dir]);
  chmodSync(dir, 0o755);
  return dir;
}

test("a runs directory in /tmp that another user made a symbolic link to the victim's files: refused (NIFTY754), and nothing of the victim's is removed", async (t) => {
  t.timeout(300_000);
  if (!requireParts(t, "paths", unavailable())) return;
  const victim = users.victim!;
  const attacker = users.attacker!;
  const base = `/tmp/niftyc-runs-${victim.uid}`;
  rmSync(base, { recursive: true, force: true });
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  // The victim keeps a directory named as the run will be; the attacker points the runs directory there.
  const work = join(victim.home, "work");
  t.is(as(victim, ["sh", "-c", 'mkdir -p "$1/r" && echo precious > "$1/r/data.txt"', "sh", work]).status, 0);
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const planted = as(attacker, ["ln", "-s", work, base]);
  t.is(planted.status, 0, planted.stderr);

  const recipe = busyboxRecipe(t, victim);
  const ran = await niftycAs(
    victim,
    [
      "run",
      "--name",
      "r",
      "--cache",
      join(recipe, "cache"),
      "--out",
      join(recipe, "out"),
      recipe,
      "--",
      "/bin/true",
    ],
    {
      XDG_RUNTIME_DIR: "",
      XDG_CACHE_HOME: join(victim.home, ".cache"),
    },
  );
  t.not(ran.status, 0, ran.stderr);
  t.regex(ran.stderr, /NIFTY754/);
  t.regex(ran.stderr, /another user could make it lead elsewhere/);
  t.is(readFileSync(join(work, "r", "data.txt"), "utf8"), "precious\n", "the victim's file was removed");
  t.true(lstatSync(base).isSymbolicLink(), "the attacker's link is left as it was");

  // The victim's own directory there still works, and is made 0700.
  rmSync(base, { force: true });
  t.is(as(victim, ["mkdir", "-m", "0755", base]).status, 0);
  const own = await niftycAs(victim, ["run", "--list"], { XDG_RUNTIME_DIR: "" });
  t.is(own.status, 0, own.stderr);
  t.is(lstatSync(base).mode & 0o777, 0o700);
});

test("root's unpack cache reached through another user's symbolic link, flipped between root's directory and theirs: refused every time, and their tree is never used", async (t) => {
  t.timeout(300_000);
  if (!requireParts(t, "paths", unavailable())) return;
  const attacker = users.attacker!;
  const dir = await tempDir("niftyc-paths-");
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o1777);
  const recipe = join(dir, "recipe");
  mkdirSync(recipe);
  copyFileSync("/bin/busybox", join(recipe, "busybox"));
  writeFileSync(
    join(recipe, "Niftyfile"),
    "COPY busybox /bin/busybox\nFILE /etc/os-release <<EOF\nID=root\nEOF\n",
  );
  const built = await tryBuild(join(recipe, "Niftyfile"), join(dir, "build"));
  if (!built.ok) throw new Error(built.errors.map((e) => e.message).join("\n"));
  const { rootfs, digest } = built.result;
  const hex = digest.replace(/^sha256:/, "");

  // Root's private cache, and the attacker's own "cache" holding a tree of theirs under the digest.
  const rootCache = join(dir, "root-trees");
  mkdirSync(rootCache, { mode: 0o700 });
  const theirs = join(dir, "theirs");
  mkdirSync(join(theirs, hex, "etc"), { recursive: true });
  writeFileSync(join(theirs, hex, "etc/os-release"), "ID=attacker\n");
  spawnSync("chown", ["-R", `${attacker.uid}:${attacker.gid}`, theirs]);
  const link = join(dir, "trees");
  t.is(as(attacker, ["ln", "-s", rootCache, link]).status, 0);
  const flipper = attackerLoop(
    t,
    attacker,
    'while :; do ln -sfn "$A" "$L.n"; mv -Tf "$L.n" "$L"; ln -sfn "$B" "$L.n"; mv -Tf "$L.n" "$L"; done',
    { A: rootCache, B: theirs, L: link },
  );

  const outcomes = { refused: 0, theirs: 0, other: [] as string[] };
  for (let i = 0; i < 100; i++) {
    try {
      const got = await ensureTree({
        base: link,
        rootfsTar: rootfs,
        digest,
        privilege: { root: true, uid: 0 },
      });
      const release = readFileSync(join(got.dir, "etc/os-release"), "utf8");
      if (release === "ID=attacker\n") outcomes.theirs++;
      else outcomes.other.push(`ensureTree gave ${got.dir} (${release.trim()})`);
    } catch (error) {
      if (error instanceof NiftyError && error.code === "NIFTY522") outcomes.refused++;
      else outcomes.other.push(String(error));
    }
  }
  await stopGroup(flipper);
  t.is(outcomes.theirs, 0, "root was given the attacker's tree");
  t.deepEqual(outcomes.other, [], "every call is refused");
  t.is(outcomes.refused, 100);
  t.false(existsSync(join(rootCache, hex)), "nothing was unpacked through the link");
});

test("a BIND whose host path is in another user's directory, made a link to a directory of root's once root's nspawn starts, is refused every time (NIFTY760); the container never reads it", async (t) => {
  t.timeout(600_000);
  if (!requireParts(t, "paths", unavailable())) return;
  if (spawnSync("sh", ["-c", "command -v systemd-nspawn"]).status !== 0) {
    requireParts(t, "paths", "systemd-nspawn is not installed");
    return;
  }
  const attacker = users.attacker!;
  const dir = await tempDir("niftyc-paths-bind-");
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o1777);
  // Root's own directory, which NIFTY025 keeps from any container (below /root; niftyc run
  // mounts a tmpfs over /run for nspawn, so a link into /run would show nothing).
  const secret = join("/root", `.niftyc-paths-${process.pid}`);
  mkdirSync(secret, { mode: 0o700 });
  writeFileSync(join(secret, "secret"), "ROOT SECRET\n");
  t.teardown(() => rmSync(secret, { recursive: true, force: true }));
  // The attacker's directory, holding the path the recipe binds.
  const theirs = join(dir, "theirs");
  t.is(
    as(attacker, [
      "sh",
      "-c",
      'mkdir -m 0755 "$1" "$1/data" && echo harmless > "$1/data/secret"',
      "sh",
      theirs,
    ]).status,
    0,
  );
  const data = join(theirs, "data");
  const recipe = join(dir, "recipe");
  mkdirSync(recipe);
  copyFileSync("/bin/busybox", join(recipe, "busybox"));
  writeFileSync(
    join(recipe, "Niftyfile"),
    `COPY busybox /bin/busybox\nLINK /bin/busybox APPLETS\nSYMLINK /sbin bin\nDIR /proc /sys /dev /run /tmp\nFILE /etc/os-release <<EOF\nID=nifty\nEOF\nBIND RO ${data}:/data\n`,
  );
  // The attacker waits for root's systemd-nspawn of this run to start, then makes the path a link
  // to root's directory until it ends: after niftyc's check, before nspawn mounts it.
  const name = `paths-bind-${process.pid}`;
  const flipper = attackerLoop(
    t,
    attacker,
    'while :; do while ! pgrep -f -- "--machine=$N" >/dev/null; do :; done; ln -sfn "$S" "$T/l"; mv -T "$T/data" "$T/hold"; mv -T "$T/l" "$T/data"; while pgrep -f -- "--machine=$N" >/dev/null; do :; done; rm -f "$T/data"; mv -T "$T/hold" "$T/data"; done',
    { S: secret, T: theirs, N: name },
  );

  const outcomes = { read: 0, refused: 0, other: [] as string[] };
  for (let i = 0; i < 10; i++) {
    const ran = await niftycAs(undefined, [
      "run",
      "--quiet",
      "--engine",
      "nspawn",
      "--name",
      name,
      "--tree-cache",
      join(dir, "trees"),
      "--cache",
      join(dir, "cache"),
      "--out",
      join(dir, "out"),
      recipe,
      "--",
      "/bin/cat",
      "/data/secret",
    ]);
    if (ran.stdout.includes("ROOT SECRET")) outcomes.read++;
    else if (ran.status !== 0 && /NIFTY760/.test(ran.stderr)) outcomes.refused++;
    else
      outcomes.other.push(
        `${ran.status}: ${ran.stdout.trim()} ${ran.stderr.trim().split("\n").slice(-2).join(" ")}`,
      );
  }
  await stopGroup(flipper);
  t.is(outcomes.read, 0, "a container read root's directory through the bind");
  t.deepEqual(outcomes.other, [], "every run is refused");
  t.is(outcomes.refused, 10);
});
