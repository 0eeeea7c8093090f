// The engines' command lines, the exit status translation, --set values, the
// mounts of --bind-host-tools and the refusals made before anything starts:
// pure functions of src/run/, no process started.
import test from "ava";
import { mkdirSync, mkdtempSync, rmSync, statfsSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import type { ImageConfig } from "../../src/image/config.ts";
import { sshConfig } from "../instances/helpers.ts";
import { containerStatus, engineArgv, ownSession, type RunSpec } from "../../src/run/engines.ts";
import {
  chooseEngine,
  rootlessPortsProblem,
  runEnv,
  runMounts,
  unprivilegedSystemdProblem,
} from "../../src/run/prepare.ts";

const CONFIG: ImageConfig = sshConfig({
  env: [
    ["PORT", "2200"],
    ["GREETING", "hi"],
  ],
});

function spec(over: Partial<RunSpec>): RunSpec {
  return {
    engine: "nspawn",
    privilege: { root: true, uid: 0 },
    config: CONFIG,
    name: "ssh",
    root: "/trees/abc",
    nspawnFile: "/out/ssh/ssh.nspawn",
    env: CONFIG.env,
    publish: [],
    mounts: [],
    detached: false,
    terminal: false,
    ...over,
  };
}

test("nspawn: a private mount namespace with a tmpfs /run, the build's .nspawn trusted there, the tree booted through an overlay", (t) => {
  const argv = engineArgv(spec({ detached: true }));
  t.deepEqual(argv.slice(0, 4), ["unshare", "--mount", "--propagation", "private"]);
  t.regex(
    argv[6]!,
    /^mount -t tmpfs tmpfs \/run && mkdir -p \/run\/systemd\/nspawn && cp -- "\$1" "\/run\/systemd\/nspawn\/\$2\.nspawn"/,
  );
  t.deepEqual(argv.slice(7, 10), ["niftyc-run", "/out/ssh/ssh.nspawn", "ssh"]);
  const args = argv.slice(10);
  for (const a of [
    "--register=no",
    "--machine=ssh",
    "--directory=/trees/abc",
    "--volatile=overlay",
    "--kill-signal=SIGUSR2",
    "--hostname=nifty",
    "--setenv=PORT=2200",
    "--setenv=GREETING=hi",
    "--console=read-only",
    "--boot",
  ])
    t.true(args.includes(a), a);
  t.false(
    args.some((a) => a.startsWith("--network")),
    "the host's network, as the .nspawn file says",
  );
});

test("nspawn: a command replaces the boot, its output passes through a pipe; --publish gives a veth and forwards", (t) => {
  const args = engineArgv(
    spec({
      command: ["/bin/cat", "/etc/os-release"],
      publish: [{ host: 8022, container: 2200, protocol: "tcp" }],
      mounts: [{ source: "/usr", target: "/usr", readOnly: true }],
    }),
  );
  t.deepEqual(args.slice(-3), ["--", "/bin/cat", "/etc/os-release"]);
  for (const a of [
    "--console=pipe",
    "--quiet",
    "--network-veth",
    "--port=tcp:8022:2200",
    "--drop-capability=CAP_SYS_ADMIN",
    "--bind-ro=/usr:/usr",
  ])
    t.true(args.includes(a), a);
  t.false(args.includes("--boot"));
});

test("bwrap: in a user namespace of the user's subordinate ids, the image's init as PID 1, its environment only", (t) => {
  const argv = engineArgv(
    spec({ engine: "bwrap", privilege: { root: false, uid: 1000 }, root: "/runs/ssh/root" }),
  );
  t.deepEqual(
    argv.slice(0, 4),
    ["sh", "-c", 'trap "" INT; exec "$@"', "niftyc-run"],
    "Ctrl-C is niftyc's to turn into the stop signal",
  );
  t.deepEqual(argv.slice(4, 8), ["unshare", "--map-auto", "--map-root-user", "bwrap"]);
  const joined = argv.join(" ");
  for (const piece of [
    "--info-fd 3",
    "--die-with-parent",
    "--unshare-pid",
    "--bind /runs/ssh/root /",
    "--proc /proc",
    "--dev /dev",
    "--clearenv",
    "--setenv PORT 2200",
    "--hostname nifty",
    "--as-pid-1 -- /sbin/init",
  ])
    t.true(joined.includes(piece), piece);
  t.false(joined.includes("--unshare-net"), "the host's network");
  t.false(
    joined.includes("--unshare-user"),
    "the namespace unshare made maps 65536 ids; bwrap's own would map one",
  );
  const command = engineArgv(
    spec({ engine: "bwrap", privilege: { root: false, uid: 1000 }, command: ["/bin/sh"] }),
  );
  t.is(command[0], "unshare", "a command gets Ctrl-C as usual");
  t.false(command.includes("--as-pid-1"));
});

test("podman: the cached tree with an overlay of its own, the image's stop signal, host network unless ports are published", (t) => {
  const argv = engineArgv(
    spec({
      engine: "podman",
      privilege: { root: false, uid: 1000 },
      runc: true,
      mounts: [{ source: "/usr/share/zoneinfo", target: "/usr/share/zoneinfo", readOnly: true }],
    }),
  );
  const joined = argv.join(" ");
  t.true(
    ownSession("podman") && !ownSession("bwrap") && !ownSession("nspawn"),
    "Ctrl-C is niftyc's, which runs podman stop",
  );
  for (const piece of [
    "podman --runtime runc run --rm --name niftyc-ssh",
    "--stop-signal SIGUSR2",
    "--network=host",
    "--env PORT=2200",
    "--rootfs /trees/abc:O",
    "--volume /usr/share/zoneinfo:/usr/share/zoneinfo:ro",
  ])
    t.true(joined.includes(piece), piece);
  t.is(argv.at(-1), "/sbin/init");
  const published = engineArgv(
    spec({
      engine: "podman",
      privilege: { root: false, uid: 1000 },
      publish: [{ host: 8080, container: 80, protocol: "tcp" }],
    }),
  ).join(" ");
  t.true(published.includes("--publish 8080:80/tcp"));
  t.false(published.includes("--network=host"));
});

test("a booted image that powers off exits 0 and one that reboots 133, whatever the engine; a command's status is its own", (t) => {
  t.is(containerStatus("bwrap", true, 130), 0);
  t.is(containerStatus("podman", true, 130), 0);
  t.is(containerStatus("bwrap", true, 129), 133);
  t.is(containerStatus("bwrap", false, 130), 130);
  t.is(containerStatus("nspawn", true, 133), 133);
  t.is(containerStatus("nspawn", false, 7), 7);
});

test("--set takes instance expressions and quoted text for the recipe's ENV; other names are refused as in instances", (t) => {
  t.deepEqual(
    runEnv(CONFIG, [
      { name: "PORT", expr: "PORT+22" },
      { name: "GREETING", expr: '"hello"' },
    ]),
    [
      ["PORT", "2222"],
      ["GREETING", "hello"],
    ],
  );
  t.deepEqual(runEnv(CONFIG, []), CONFIG.env);
  const error = t.throws(() => runEnv(CONFIG, [{ name: "PROT", expr: "1" }]), { instanceOf: NiftyError });
  t.is(error?.code, "NIFTY404");
  t.regex(error!.message, /did you mean PORT/);
});

test("--bind-host-tools binds the host's directories read-only, except where the image has a symlink of its own", (t) => {
  const tree = mkdtempSync(join(tmpdir(), "niftyc-tree-"));
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  mkdirSync(join(tree, "bin"));
  symlinkSync("bin", join(tree, "sbin"));
  const { mounts, notes } = runMounts(
    {
      ...CONFIG,
      binds: [...CONFIG.binds, { readOnly: false, hostPath: "/nonexistent-niftyc", containerPath: "/x" }],
    },
    tree,
    true,
  );
  t.true(mounts.every((m) => m.readOnly || m.target === "/x"));
  t.true(mounts.some((m) => m.target === "/usr" && m.readOnly));
  t.true(mounts.some((m) => m.target === "/bin"));
  t.false(
    mounts.some((m) => m.target === "/sbin"),
    "the image's /sbin -> bin leads to the bound /bin",
  );
  t.false(mounts.some((m) => m.target === "/x"));
  t.deepEqual(notes, ["BIND /nonexistent-niftyc skipped: it does not exist on this host"]);
});

test("engines: a missing one names its Debian package; nspawn needs root", (t) => {
  const none = t.throws(() => chooseEngine(undefined, { root: false, uid: 1000 }, "/nonexistent"), {
    instanceOf: NiftyError,
  });
  t.regex(none!.hint ?? "", /apt-get install bubblewrap util-linux uidmap/);
  t.regex(none!.hint ?? "", /podman uidmap/);
  t.regex(
    t.throws(() => chooseEngine(undefined, { root: true, uid: 0 }, "/nonexistent"), {
      instanceOf: NiftyError,
    })!.hint ?? "",
    /systemd-container/,
  );
  t.regex(
    t.throws(() => chooseEngine("nspawn", { root: false, uid: 1000 }, process.env.PATH ?? ""))!.message,
    /nspawn needs root/,
  );
});

test("engines: a missing program names its own package (unshare is util-linux's, not systemd-container's)", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-path-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "systemd-nspawn"), "#!/bin/sh\n", { mode: 0o755 });
  const root = { root: true, uid: 0 };
  const noUnshare = t.throws(() => chooseEngine(undefined, root, dir), { instanceOf: NiftyError })!;
  t.regex(noUnshare.message, /nspawn needs unshare, not found on PATH/);
  t.is(noUnshare.hint, "install it: apt-get install util-linux");
  const nothing = t.throws(() => chooseEngine("nspawn", root, "/nonexistent"), { instanceOf: NiftyError })!;
  t.regex(nothing.message, /nspawn needs systemd-nspawn, unshare, not found on PATH/);
  t.is(nothing.hint, "install it: apt-get install systemd-container util-linux");
  const user = t.throws(() => chooseEngine(undefined, { root: false, uid: 1000 }, dir), {
    instanceOf: NiftyError,
  })!;
  t.is(user.hint, "install it: apt-get install bubblewrap util-linux uidmap (or for podman: podman uidmap)");
});

test("systemd as PID 1 without root is refused on cgroup v1 hosts, with the reason, before anything starts", (t) => {
  const systemd: ImageConfig = { ...CONFIG, init: { kind: "systemd", command: ["/sbin/init"] } };
  const v2 = Number(statfsSync("/sys/fs/cgroup").type) === 0x63677270;
  const why = unprivilegedSystemdProblem(systemd, true, { root: false, uid: 1000 });
  if (v2) t.is(why, undefined);
  else t.regex(why ?? "", /cgroup v1 .*init\.scope/);
  t.is(
    unprivilegedSystemdProblem(systemd, true, { root: true, uid: 0 }),
    undefined,
    "nspawn as root runs it",
  );
  t.is(
    unprivilegedSystemdProblem(systemd, false, { root: false, uid: 1000 }),
    undefined,
    "a command instead of the boot",
  );
  t.is(unprivilegedSystemdProblem(CONFIG, true, { root: false, uid: 1000 }), undefined, "BusyBox init");
});

test("rootless podman with --publish needs slirp4netns or pasta and /dev/net/tun: said before it starts", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-path-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const user = { root: false, uid: 1000 };
  const tun = join(dir, "tun");
  writeFileSync(tun, "");
  t.regex(rootlessPortsProblem("podman", user, "/nonexistent", tun) ?? "", /needs slirp4netns or pasta/);
  t.regex(rootlessPortsProblem("podman", user, "/nonexistent", tun) ?? "", /packages slirp4netns, passt/);
  writeFileSync(join(dir, "pasta"), "#!/bin/sh\n", { mode: 0o755 });
  t.is(rootlessPortsProblem("podman", user, dir, tun), undefined, "pasta and an open device");
  t.regex(
    rootlessPortsProblem("podman", user, dir, join(dir, "no-tun")) ?? "",
    /no-tun, which they need, is not open/,
  );
  t.is(rootlessPortsProblem("podman", { root: true, uid: 0 }, "/nonexistent"), undefined, "root's podman");
  t.is(rootlessPortsProblem("bwrap", user, "/nonexistent"), undefined, "bwrap is refused --publish apart");
});
