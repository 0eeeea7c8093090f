// `niftyc run` end to end, as root (systemd-nspawn) and as an ordinary user made
// for the test (bubblewrap, rootless podman): recipes built from the loopback
// mirror by run itself, SSH logins to a detached run, stops, exit statuses, the
// host's tools bound read-only, and failures that leave nothing behind.
import test, { type ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";
import {
  chownSync,
  copyFileSync,
  readFileSync,
  readdirSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { ROOT, debianMirror, freePort, ssh, tempDir, waitForPort } from "../boot/harness.ts";
import { sleep } from "../support/net.ts";
import {
  ensureUser,
  exists,
  killAll,
  killByRuntimeDir,
  mountsUnder,
  niftycAs,
  processesWith,
  requireRun,
  startNiftycAs,
  userDir,
  waitForRunPort,
  type User,
} from "./helpers.ts";

const PASSWORD = "correct horse battery";
const SECRETS = { NIFTY_TEST_LUSER: PASSWORD, NIFTY_TEST_ROOT: PASSWORD };

interface Setup {
  user?: User;
  /** Build, tree cache and runs directories of this test. */
  args: string[];
  env: Record<string, string>;
  trees: string;
  runs: string;
}

/** What a test needs to run as root or as the user: a mirror, its own cache, trees and runs directory. */
async function setup(t: ExecutionContext, asUser: boolean): Promise<Setup> {
  t.timeout(300_000);
  const mirror = await debianMirror(t);
  const user = asUser ? ensureUser() : undefined;
  const dir = userDir(t, user, "run");
  const trees = join(dir, "trees");
  const env: Record<string, string> = { ...SECRETS };
  if (user !== undefined) {
    // The user's own runtime directory, as a login would give it (rootless podman needs one too).
    writeFileSync(join(dir, ".keep"), "");
    const xdg = userDir(t, user, "xdg");
    env.XDG_RUNTIME_DIR = xdg;
    t.teardown(() => {
      killAll(xdg);
      killByRuntimeDir(xdg);
    });
  }
  t.teardown(() => killAll(trees));
  const args = [
    "--cache",
    join(dir, "cache"),
    "--out",
    join(dir, "out"),
    "--locked",
    "--quiet",
    "--mirror",
    `debian=${mirror.url}`,
    "--mirror",
    `debian-security=${mirror.url}`,
    "--secret",
    "luser-password=env:NIFTY_TEST_LUSER",
    "--secret",
    "root-password=env:NIFTY_TEST_ROOT",
    "--tree-cache",
    trees,
  ];
  return {
    ...(user ? { user } : {}),
    args,
    env,
    trees,
    runs: user ? join(env.XDG_RUNTIME_DIR!, "niftyc", "runs") : "/run/niftyc/runs",
  };
}

/** Nothing of the run is left: no mount of its tree or copy, no process, no run directory. */
function assertNothingLeft(t: ExecutionContext, s: Setup, name: string): void {
  t.deepEqual(mountsUnder(s.trees), [], "nothing mounted from the unpack cache");
  t.deepEqual(mountsUnder(join(s.runs, name)), [], "nothing mounted from the run directory");
  t.deepEqual(processesWith(s.trees), [], "no process runs on the tree");
  t.false(exists(join(s.runs, name)), "the run directory is gone");
}

const MODES = [
  { label: "as root (systemd-nspawn)", asUser: false, engine: "nspawn" },
  { label: "as an ordinary user (bubblewrap)", asUser: true, engine: "bwrap" },
] as const;

for (const mode of MODES) {
  test.serial(
    `console.nifty -- /bin/cat /etc/os-release prints it, ${mode.label}; the exit status is the command's`,
    async (t) => {
      if (!requireRun(t)) return;
      const s = await setup(t, mode.asUser);
      const name = `nrt-console-${process.pid}`;
      const cat = await niftycAs(
        s.user,
        ["run", "recipes/console.nifty", ...s.args, "--name", name, "--", "/bin/cat", "/etc/os-release"],
        s.env,
      );
      t.is(cat.status, 0, cat.stderr);
      t.is(cat.stdout, 'NAME="Nifty BusyBox console"\nID=nifty\n');
      t.regex(cat.stderr, new RegExp(`with ${mode.engine} \\(`), "it says which engine");
      t.regex(cat.stderr, /tree unpacked into/);
      assertNothingLeft(t, s, name);

      // The second run finds the tree unpacked, and the container's status is niftyc's.
      const failing = await niftycAs(
        s.user,
        [
          "run",
          "recipes/console.nifty",
          ...s.args,
          "--name",
          name,
          "--",
          "/bin/sh",
          "-c",
          "echo written > /etc/probe && cat /etc/probe && exit 7",
        ],
        s.env,
      );
      t.is(failing.status, 7, failing.stderr);
      t.is(failing.stdout, "written\n");
      t.regex(failing.stderr, /tree from /);
      const again = await niftycAs(
        s.user,
        [
          "run",
          "recipes/console.nifty",
          ...s.args,
          "--name",
          name,
          "--",
          "/bin/sh",
          "-c",
          "test ! -e /etc/probe",
        ],
        s.env,
      );
      t.is(again.status, 0, "a run's writes do not reach the shared tree or the next run");
      assertNothingLeft(t, s, name);
    },
  );

  test.serial(
    `ssh.nifty --detach, ${mode.label}: luser logs in over SSH, --stop powers it off`,
    async (t) => {
      if (!requireRun(t)) return;
      const s = await setup(t, mode.asUser);
      const name = `nrt-ssh-${process.pid}`;
      const port = await freePort();
      const started = await niftycAs(
        s.user,
        ["run", "recipes/ssh.nifty", ...s.args, "--name", name, "--detach", "--set", `PORT=${port}`],
        s.env,
      );
      t.is(started.status, 0, started.stderr);
      const pid = Number(
        new RegExp(`${name} is running \\(${mode.engine}, PID (\\d+)\\)`).exec(started.stdout)?.[1],
      );
      t.true(pid > 0, started.stdout);
      t.regex(started.stdout, new RegExp(`stop it with: niftyc run --stop ${name}`));
      t.teardown(() => killAll(s.trees));
      const twice = await niftycAs(
        s.user,
        ["run", "recipes/ssh.nifty", ...s.args, "--name", name, "--detach"],
        s.env,
      );
      t.is(twice.status, 1);
      t.regex(twice.stderr, new RegExp(`a run named ${name} is already running.*\\[NIFTY752\\]`));

      await waitForPort(port, 30_000);
      const session = ssh(t, port, "luser", PASSWORD, "id; hostname");
      t.is(session.status, 0, session.stderr);
      t.regex(session.stdout, /uid=1000\(luser\) gid=1000\(luser\)/);
      t.regex(session.stdout, /^nifty$/m);

      const listed = await niftycAs(s.user, ["run", "--list"], s.env);
      t.regex(listed.stdout, new RegExp(`^${name}  ${mode.engine}  running`, "m"));

      // A run is found again by its name, or by what it was started from.
      const stopped = await niftycAs(
        s.user,
        ["run", "--stop", mode.asUser ? "recipes/ssh.nifty" : name],
        s.env,
      );
      t.is(stopped.status, 0, stopped.stderr);
      t.is(
        stopped.stdout,
        `stopped ${name} (${mode.engine}, SIGUSR2), exit status 0\n`,
        "BusyBox init powered off on its stop signal",
      );
      t.false(processesWith(s.trees).length > 0 || exists(`/proc/${pid}`), "the engine is gone");
      assertNothingLeft(t, s, name);
    },
  );
}

const ATTACHED_MODES = [
  ...MODES,
  { label: "as an ordinary user (podman)", asUser: true, engine: "podman" },
] as const;

/** Kill a started niftyc's process group in teardown, when the test left it running. */
function killGroupAfter(t: ExecutionContext, pid: number): void {
  t.teardown(() => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Gone.
    }
  });
}

/**
 * setup(), then recipes/ssh.nifty run attached in `mode` on a free port, named `${prefix}-PID`;
 * its process group is killed in teardown.
 */
async function startAttached(t: ExecutionContext, mode: (typeof ATTACHED_MODES)[number], prefix: string) {
  const s = await setup(t, mode.asUser);
  const name = `${prefix}-${process.pid}`;
  const port = await freePort();
  const engine = mode.engine === "podman" ? ["--engine", "podman"] : [];
  const run = startNiftycAs(
    s.user,
    ["run", "recipes/ssh.nifty", ...s.args, ...engine, "--name", name, "--set", `PORT=${port}`],
    s.env,
  );
  killGroupAfter(t, run.pid);
  return { s, name, port, run };
}

for (const mode of ATTACHED_MODES) {
  test.serial(
    `ssh.nifty attached, ${mode.label}: the console is niftyc's; Ctrl-C (SIGINT to its process group) stops it with the image's signal, exit 0`,
    async (t) => {
      if (!requireRun(t)) return;
      const { s, name, port, run } = await startAttached(t, mode, "nrt-attached");
      await waitForRunPort(run, port, 120_000);
      const session = ssh(t, port, "luser", PASSWORD, "hostname");
      t.is(session.status, 0, session.stderr);
      process.kill(-run.pid, "SIGINT");
      const result = await run.done;
      t.is(result.status, 0, result.stderr);
      t.regex(
        result.stdout + result.stderr,
        /Requesting system poweroff/,
        "BusyBox init powered off, its console on niftyc's output",
      );
      assertNothingLeft(t, s, name);
    },
  );
}

for (const mode of ATTACHED_MODES) {
  test.serial(
    `ssh.nifty attached, ${mode.label}: --stop from elsewhere ends with the container's exit status, and exits with it`,
    async (t) => {
      if (!requireRun(t)) return;
      const { s, name, port, run } = await startAttached(t, mode, "nrt-stop");
      await waitForRunPort(run, port, 120_000);
      await stopsWith(t, s, { user: s.user, name, engine: mode.engine, run }, 0);
    },
  );
}

/** `run --stop NAME` from elsewhere: it says the container's exit status and exits with it, as the run does. */
async function stopsWith(
  t: ExecutionContext,
  s: Setup,
  stop: { user: User | undefined; name: string; engine: string; run: ReturnType<typeof startNiftycAs> },
  status: number,
): Promise<void> {
  const stopped = await niftycAs(stop.user, ["run", "--stop", stop.name], s.env);
  t.is(
    stopped.stdout,
    `stopped ${stop.name} (${stop.engine}, SIGUSR2), exit status ${status}\n`,
    stopped.stderr,
  );
  t.is(stopped.status, status, stopped.stderr);
  t.is((await stop.run.done).status, status);
  assertNothingLeft(t, s, stop.name);
}

test.serial(
  "a command attached as root (systemd-nspawn), ended by --stop with status 3: --stop says exit status 3 and exits 3, as the run does",
  async (t) => {
    if (!requireRun(t)) return;
    const s = await setup(t, false);
    const name = `nrt-stop-cmd-${process.pid}`;
    // PID 1 is this shell: it ends with status 3 on the image's stop signal (BusyBox's SIGUSR2).
    const script = 'trap "exit 3" USR2; echo up; while :; do sleep 1; done';
    const run = startNiftycAs(
      undefined,
      ["run", "recipes/console.nifty", ...s.args, "--name", name, "--", "/bin/sh", "-c", script],
      s.env,
    );
    killGroupAfter(t, run.pid);
    for (let waited = 0; !/^up$/m.test(run.output()) && waited < 120_000; waited += 100) await sleep(100);
    t.regex(run.output(), /^up$/m, "the command started");
    await stopsWith(t, s, { user: undefined, name, engine: "nspawn", run }, 3);
  },
);

test.serial(
  "as an ordinary user, --engine podman: console.nifty -- /bin/cat /etc/os-release prints it",
  async (t) => {
    if (!requireRun(t)) return;
    const s = await setup(t, true);
    const name = `nrt-podman-${process.pid}`;
    const cat = await niftycAs(
      s.user,
      [
        "run",
        "recipes/console.nifty",
        ...s.args,
        "--name",
        name,
        "--engine",
        "podman",
        "--",
        "/bin/cat",
        "/etc/os-release",
      ],
      s.env,
    );
    t.is(cat.status, 0, cat.stderr);
    t.is(cat.stdout, 'NAME="Nifty BusyBox console"\nID=nifty\n');
    t.regex(cat.stderr, /with podman \(--engine\)/);
    assertNothingLeft(t, s, name);
  },
);

test.serial(
  "--detach as root with podman and a host port taken: exit 1 with NIFTY761, the console's tail and a hint, no run left; attached, the same hint; with the port free it runs, serves SSH and stops",
  async (t) => {
    if (!requireRun(t)) return;
    const s = await setup(t, false);
    const name = `nrt-taken-${process.pid}`;
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(port, "0.0.0.0", done));
    t.teardown(() => new Promise<void>((done) => holder.close(() => done())));
    const run = [
      "run",
      "recipes/ssh.nifty",
      ...s.args,
      "--name",
      name,
      "--engine",
      "podman",
      "-p",
      `${port}:2200`,
    ];
    // podman's container outlives a killed podman: removed by name.
    t.teardown(() => {
      spawnSync("podman", ["rm", "--force", `niftyc-${name}`], { stdio: "ignore", timeout: 60_000 });
    });
    const taken = await niftycAs(undefined, [...run, "--detach"], s.env);
    t.is(taken.status, 1, taken.stdout + taken.stderr);
    t.notRegex(taken.stdout, /is running/);
    t.regex(
      taken.stderr,
      new RegExp(
        `${name} did not start: podman ended with status \\d+ before the container was up \\[NIFTY761\\]`,
      ),
    );
    t.regex(taken.stderr, /the end of its console \(.*console\.log\):\n.*address already in use/);
    t.regex(taken.stderr, /hint: a host port given with --publish is taken/);
    t.notRegex(taken.stderr, /\n\s+at /, "no stack trace");
    const listed = await niftycAs(undefined, ["run", "--list"], s.env);
    t.notRegex(listed.stdout, new RegExp(`^${name} `, "m"), "no entry is left, running or ended");
    assertNothingLeft(t, s, name);

    const attached = await niftycAs(undefined, run, s.env);
    t.not(attached.status, 0);
    t.regex(attached.stderr, /address already in use/, "podman's own message");
    t.regex(
      attached.stderr,
      /\[NIFTY761\]\n  hint: podman's own message is above\. A host port of --publish in use/,
    );
    assertNothingLeft(t, s, name);

    await new Promise<void>((done) => holder.close(() => done()));
    const started = await niftycAs(undefined, [...run, "--detach"], s.env);
    t.is(started.status, 0, started.stderr);
    t.regex(started.stdout, new RegExp(`^${name} is running \\(podman, PID \\d+\\)`));
    await waitForPort(port, 30_000);
    const session = ssh(t, port, "luser", PASSWORD, "hostname");
    t.is(session.status, 0, session.stderr);
    const running = await niftycAs(undefined, ["run", "--list"], s.env);
    t.regex(running.stdout, new RegExp(`^${name}  podman  running`, "m"));
    const stopped = await niftycAs(undefined, ["run", "--stop", name], s.env);
    t.is(stopped.stdout, `stopped ${name} (podman, SIGUSR2), exit status 0\n`, stopped.stderr);
    assertNothingLeft(t, s, name);
  },
);

const HOST_TOOLS_MODES = [
  { label: "as root (systemd-nspawn)", asUser: false, engine: [] as string[] },
  { label: "as an ordinary user (bubblewrap)", asUser: true, engine: ["--engine", "bwrap"] },
  { label: "as an ordinary user (podman)", asUser: true, engine: ["--engine", "podman"] },
];

for (const mode of HOST_TOOLS_MODES) {
  test.serial(
    `--bind-host-tools ${mode.label}: host programs run; root inside cannot remount them writable; the host is unchanged`,
    async (t) => {
      if (!requireRun(t)) return;
      const s = await setup(t, mode.asUser);
      const name = `nrt-tools-${process.pid}`;
      const probe = `/usr/niftyc-run-probe-${process.pid}`;
      // /bin/mount, /usr/bin/unshare and the shell are the host's here, not BusyBox's.
      const script = [
        "id -u",
        "mount --version | head -1",
        "mount -o remount,rw /usr 2>/dev/null; echo remount=$?",
        "mount -o remount,bind,rw /usr 2>/dev/null; echo rebind=$?",
        // A user namespace of its own gives root inside every capability there, but the mounts it inherits are locked.
        "unshare -Urm sh -c 'mount -o remount,rw /usr 2>/dev/null; echo nested=$?'",
        `touch ${probe} 2>/dev/null; echo touch=$?`,
      ].join("; ");
      const run = await niftycAs(
        s.user,
        [
          "run",
          "recipes/console.nifty",
          ...s.args,
          "--name",
          name,
          ...mode.engine,
          "--bind-host-tools",
          "--",
          "/bin/sh",
          "-c",
          script,
        ],
        s.env,
      );
      t.is(run.status, 0, run.stderr);
      const lines = run.stdout.split("\n");
      t.is(lines[0], "0", "the command runs as root inside");
      t.regex(lines[1]!, /util-linux/, "the host's mount runs inside");
      for (const step of ["remount", "rebind", "nested", "touch"]) {
        const status = Number(new RegExp(`^${step}=(\\d+)$`, "m").exec(run.stdout)?.[1]);
        t.not(status, 0, `${step} is refused:\n${run.stdout}`);
      }
      t.false(exists(probe), "nothing was written to the host's /usr");
      assertNothingLeft(t, s, name);
    },
  );
}

/** What a hostile image tries on a read-only bind at /mnt/ro, each step's status on a line of its own. */
const BIND_ATTACK = [
  "mount -o remount,rw /mnt/ro; echo remount=$?",
  "mount -o remount,bind,rw /mnt/ro; echo rebind=$?",
  "echo pwned > /mnt/ro/file; echo write=$?",
  // A second bind of it elsewhere, remounted writable there.
  "mkdir -p /tmp/again && mount --bind /mnt/ro /tmp/again; mount -o remount,bind,rw /tmp/again; echo again=$?",
  "echo pwned > /tmp/again/file; echo againwrite=$?",
  // A user namespace of its own gives every capability there, but the mounts it inherits are locked.
  "unshare -Urm sh -c 'mount -o remount,rw /mnt/ro; echo nested=$?; echo pwned > /mnt/ro/file; echo nestedwrite=$?'",
  "echo new > /mnt/ro/new; echo create=$?",
  // Gone from under the container, the host's directory is out of reach; writes go to the image's.
  "umount /mnt/ro; echo pwned > /mnt/ro/file; echo umountwrite=$?",
].join("; ");
// againwrite is left to the host's file: where the second bind fails, /tmp/again is a directory of the image.
const BIND_REFUSED = ["remount", "rebind", "write", "again", "nested", "nestedwrite", "create"];

/** The attack's statuses by step. */
function attackStatuses(stdout: string): Map<string, number> {
  return new Map([...stdout.matchAll(/^(\w+)=(\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** console.nifty with a read-only bind of `host` on /mnt/ro, beside its lock. */
function recipeWithBind(t: ExecutionContext, user: User | undefined, host: string): string {
  const dir = userDir(t, user, "bind-recipe");
  const recipe = join(dir, "console.nifty");
  writeFileSync(
    recipe,
    `${readFileSync(join(ROOT, "recipes/console.nifty"), "utf8")}BIND RO ${host}:/mnt/ro\n`,
  );
  copyFileSync(join(ROOT, "recipes/console.nifty.lock"), `${recipe}.lock`);
  if (user !== undefined) for (const f of [recipe, `${recipe}.lock`]) chownSync(f, user.uid, user.gid);
  return recipe;
}

for (const mode of HOST_TOOLS_MODES) {
  test.serial(
    `BIND RO ${mode.label}: root inside cannot remount, rebind or write it; the host's file is unchanged`,
    async (t) => {
      if (!requireRun(t)) return;
      const s = await setup(t, mode.asUser);
      const name = `nrt-bindro-${process.pid}`;
      // The host's directory is writable by whoever runs the engine: only the bind's read-only flag stands in the way.
      const host = userDir(t, s.user, "bind-host");
      writeFileSync(join(host, "file"), "original\n");
      if (s.user !== undefined) chownSync(join(host, "file"), s.user.uid, s.user.gid);
      const recipe = recipeWithBind(t, s.user, host);
      const run = await niftycAs(
        s.user,
        ["run", recipe, ...s.args, "--name", name, ...mode.engine, "--", "/bin/sh", "-c", BIND_ATTACK],
        s.env,
      );
      t.is(run.status, 0, run.stderr);
      const statuses = attackStatuses(run.stdout);
      for (const step of BIND_REFUSED)
        t.not(statuses.get(step) ?? 0, 0, `${step} is refused:\n${run.stdout}`);
      t.is(readFileSync(join(host, "file"), "utf8"), "original\n", "the host's file is unchanged");
      t.deepEqual(readdirSync(host), ["file"], "nothing was created in the host's directory");
      assertNothingLeft(t, s, name);
    },
  );
}

test.serial(
  "a BIND whose host path is a symlink to the host's /etc is refused before anything starts (NIFTY760); --allow-system-binds lets it through",
  async (t) => {
    if (!requireRun(t)) return;
    const s = await setup(t, false);
    const name = `nrt-bindsys-${process.pid}`;
    const link = join(tempDir(t, "bind-link"), "innocent");
    symlinkSync("/etc", link);
    const recipe = recipeWithBind(t, undefined, link);
    const refused = await niftycAs(
      undefined,
      ["run", recipe, ...s.args, "--name", name, "--", "/bin/cat", "/mnt/ro/hostname"],
      s.env,
    );
    t.is(refused.status, 1);
    t.regex(
      refused.stderr,
      new RegExp(
        `BIND ${link} \\(/etc on this host\\) would give the container the host's /etc \\[NIFTY760\\]`,
      ),
    );
    t.notRegex(refused.stderr, /\n\s+at /, "no stack trace");
    assertNothingLeft(t, s, name);
    const allowed = await niftycAs(
      undefined,
      [
        "run",
        recipe,
        ...s.args,
        "--name",
        name,
        "--allow-system-binds",
        "--",
        "/bin/cat",
        "/mnt/ro/hostname",
      ],
      s.env,
    );
    t.is(allowed.status, 0, allowed.stderr);
    t.is(allowed.stdout, readFileSync("/etc/hostname", "utf8"));
    assertNothingLeft(t, s, name);
  },
);

test.serial(
  "failed runs leave nothing mounted and nothing running: a bad recipe, a missing engine, a command that is not there",
  async (t) => {
    if (!requireRun(t)) return;
    const s = await setup(t, false);
    const name = `nrt-fail-${process.pid}`;
    const bad = join(tempDir(t, "bad"), "bad.nifty");
    writeFileSync(bad, "FECTH busybox\n");
    const broken = await niftycAs(undefined, ["run", bad, ...s.args, "--name", name], s.env);
    t.is(broken.status, 1);
    t.regex(broken.stderr, /NIFTY001|FECTH/);
    assertNothingLeft(t, s, name);

    const noEngine = await niftycAs(undefined, ["run", "recipes/console.nifty", ...s.args, "--name", name], {
      ...s.env,
      PATH: "/nonexistent",
    });
    t.is(noEngine.status, 1);
    t.regex(noEngine.stderr, /systemd-nspawn.*not found on PATH \[NIFTY756\]/);
    t.regex(noEngine.stderr, /apt-get install systemd-container/);
    assertNothingLeft(t, s, name);

    const notThere = await niftycAs(
      undefined,
      ["run", "recipes/console.nifty", ...s.args, "--name", name, "--", "/no/such/program"],
      s.env,
    );
    t.not(notThere.status, 0);
    assertNothingLeft(t, s, name);

    const unknown = await niftycAs(undefined, ["run", "--stop", name], s.env);
    t.is(unknown.status, 1);
    t.regex(unknown.stderr, new RegExp(`no run named ${name} in /run/niftyc/runs \\[NIFTY755\\]`));
  },
);

test.serial(
  "as an ordinary user: a missing engine names its package; --publish without a network of its own is refused before anything starts",
  async (t) => {
    if (!requireRun(t)) return;
    const s = await setup(t, true);
    const name = `nrt-ufail-${process.pid}`;
    const noEngine = await niftycAs(
      s.user,
      ["run", "recipes/console.nifty", ...s.args, "--name", name, "--engine", "bwrap"],
      { ...s.env, PATH: "/nonexistent" },
    );
    t.is(noEngine.status, 1);
    t.regex(noEngine.stderr, /apt-get install bubblewrap util-linux uidmap/);
    const asRoot = await niftycAs(
      s.user,
      ["run", "recipes/console.nifty", ...s.args, "--name", name, "--engine", "nspawn"],
      s.env,
    );
    t.is(asRoot.status, 1);
    t.regex(asRoot.stderr, /nspawn needs root \[NIFTY756\]/);
    const publish = await niftycAs(
      s.user,
      ["run", "recipes/console.nifty", ...s.args, "--name", name, "--engine", "bwrap", "-p", "8080:80"],
      s.env,
    );
    t.is(publish.status, 1);
    t.regex(publish.stderr, /--publish: bwrap has no network of its own.*\[NIFTY758\]/);
    assertNothingLeft(t, s, name);
    // Rootless podman forwards ports through slirp4netns or pasta and /dev/net/tun: said before anything starts.
    const podman = await niftycAs(
      s.user,
      [
        "run",
        "recipes/console.nifty",
        ...s.args,
        "--name",
        name,
        "--engine",
        "podman",
        "-p",
        "8080:80",
        "--",
        "/bin/true",
      ],
      s.env,
    );
    const forwarder = spawnSync("sh", ["-c", "command -v slirp4netns || command -v pasta"]).status === 0;
    const tun = spawnSync("setpriv", [
      `--reuid=${s.user!.uid}`,
      `--regid=${s.user!.gid}`,
      "--init-groups",
      "--",
      "sh",
      "-c",
      "test -r /dev/net/tun && test -w /dev/net/tun",
    ]);
    if (forwarder && tun.status === 0) t.is(podman.status, 0, podman.stderr);
    else {
      t.is(podman.status, 1, podman.stdout);
      t.regex(podman.stderr, /--publish: rootless podman cannot forward ports here: .*\[NIFTY758\]/);
      t.regex(podman.stderr, /hint: drop --publish/);
    }
    assertNothingLeft(t, s, name);

    // An image whose init is systemd: said before anything is unpacked or started, with the reason.
    const build = userDir(t, s.user, "systemd-build");
    const config = {
      name: "sd",
      env: [],
      exposedPorts: [],
      binds: [],
      labels: [],
      stopSignal: { name: "SIGRTMIN+3", number: 37, source: "init" },
      init: { kind: "systemd", command: ["/sbin/init"] },
      architecture: "amd64",
      os: "linux",
      created: 0,
    };
    writeFileSync(
      join(build, "build.json"),
      JSON.stringify({ name: "sd", digest: `sha256:${"0".repeat(64)}`, config }),
    );
    writeFileSync(join(build, "rootfs.tar"), "");
    const systemd = await niftycAs(s.user, ["run", build, "--tree-cache", s.trees, "--name", name], s.env);
    t.is(systemd.status, 1);
    if (Number(statfsSync("/sys/fs/cgroup").type) === 0x63677270)
      t.regex(systemd.stderr, /NIFTY750/, "cgroup v2: systemd may run; the fake rootfs is refused");
    else
      t.regex(
        systemd.stderr,
        /sd boots systemd, which cannot run unprivileged here: this host has cgroup v1.*\[NIFTY757\]/,
      );
    t.false(exists(s.trees), "nothing was unpacked");
    assertNothingLeft(t, s, name);
  },
);
