// On-demand instances under a real systemd. recipes/systemd-host.nifty is booted
// once for this file with systemd-nspawn and is the host; 200 on-demand instances
// of recipes/ssh.nifty are written into its tree with `niftyc instances --root
// --on-demand`, as an administrator would put them on a machine. The host shares
// this machine's network, so its listeners are this machine's ports: the tests
// connect with the real OpenSSH client from here, and ask the host's systemd
// (nsenter into its PID 1) what runs.
// The units' forwarder is `niftyc forward` run by this Node from this checkout: both,
// and the libraries Node needs that the host's tree lacks, are bound into the host
// read-only at the paths they have here, as the docs tell an administrator to provide.
// Outside CI, without root or nspawn, every test skips and says so (requireBoot).
import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { chmodSync, existsSync, realpathSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import {
  boot,
  bootUnavailable,
  buildRecipe,
  debianMirror,
  ROOT,
  niftyc,
  requireBoot,
  shellQuote,
  tempDir,
  unpack,
  containerInit,
  waitForMultiUser,
} from "./harness.ts";
import { fileScope, inHost, run, until, type Ran } from "./machine-host.ts";
import { freePorts, portFree } from "../support/net.ts";

const PASSWORD = "on demand, at once";
const COUNT = 200;
const IDLE = 5;

interface Host {
  root: string;
  init: number;
  /** Instance i listens on host port base + i. */
  base: number;
  /** The instances directory as this machine sees it. */
  dir: string;
  /** A directory whose `systemctl` runs the host's: put first on PATH for niftyc instances status. */
  hostSystemctl: string;
}

const scope = fileScope(test);
let host: Host | undefined;

function inside(command: string[], timeout = 30_000): Ran {
  return inHost(host!.init, command, timeout);
}

function machines(): string[] {
  return inside(["machinectl", "list", "--no-legend"])
    .stdout.split("\n")
    .map((l) => l.trim().split(/\s+/)[0]!)
    .filter(Boolean)
    .sort();
}

/** Log in as luser with the real OpenSSH client (password through sshpass) and run `command`. */
function login(port: number, command: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      "sshpass",
      [
        "-p",
        PASSWORD,
        "ssh",
        "-p",
        String(port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "ConnectTimeout=60",
        "-o",
        "NumberOfPasswordPrompts=1",
        "luser@127.0.0.1",
        command,
      ],
      { encoding: "utf8", timeout: 120_000, killSignal: "SIGKILL" },
      (error, stdout, stderr) =>
        done({ status: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

async function status(): Promise<{
  instances: Array<{ instance: number; port: number; state: string; machine: string }>;
}> {
  const result = await niftyc(["instances", "status", host!.dir, "--json"], {
    env: { PATH: `${host!.hostSystemctl}:${process.env.PATH}` },
  });
  if (result.status !== 0)
    throw new Error(`niftyc instances status failed (${result.status}):\n${result.stderr}`);
  return JSON.parse(result.stdout);
}

function running(s: Awaited<ReturnType<typeof status>>): number[] {
  return s.instances.filter((i) => i.state !== "idle").map((i) => i.instance);
}

/** What `niftyc forward` needs in the host: this Node, the libraries it links that the tree lacks, this checkout. */
function forwarderBinds(root: string): string[] {
  const node = process.execPath;
  const libraries = [...run(["ldd", node]).stdout.matchAll(/=> (\/\S+)/g)]
    .map((m) => m[1]!)
    .filter((lib) => !existsSync(join(root, lib)));
  return [node, ...libraries, ROOT].map((path) => `--bind-ro=${realpathSync(path)}:${path}`);
}

test.before(async (t) => {
  if (bootUnavailable() !== undefined) return; // each test says why (requireBoot)
  t.timeout(300_000);
  const mirror = await debianMirror(scope);
  const [hostBuild, ssh] = await Promise.all([
    buildRecipe(scope, "recipes/systemd-host.nifty", mirror.url, {}),
    buildRecipe(scope, "recipes/ssh.nifty", mirror.url, { "luser-password": PASSWORD }),
  ]);
  const root = unpack(scope, hostBuild.rootfs);
  const base = await freePorts(COUNT);
  const written = await niftyc([
    "instances",
    ssh.outDir,
    "--root",
    root,
    "--count",
    String(COUNT),
    "--set",
    `PORT=${base}+i`,
    "--on-demand",
    "--idle-stop",
    `${IDLE}s`,
    "--json",
  ]);
  if (written.status !== 0) throw new Error(`niftyc instances failed:\n${written.stderr}`);
  const dir = (JSON.parse(written.stdout) as { dir: string }).dir;

  // nspawn keeps CAP_NET_ADMIN from a container that shares the host's network; a host's own
  // systemd has it, and needs it to bring up the loopback of each instance's network namespace.
  const container = boot(scope, {
    root,
    machine: `nifty-od-${process.pid}`,
    args: ["--console=read-only", "--capability=CAP_NET_ADMIN", ...forwarderBinds(root)],
  });
  await waitForMultiUser(container, 60_000);
  const init = containerInit(container);
  if (!(init > 0)) throw new Error(`no PID 1 under nspawn:\n${container.output()}`);
  const wrappers = tempDir(scope, "host-systemctl");
  writeFileSync(join(wrappers, "systemctl"), `#!/bin/sh\nexec nsenter -t ${init} -a systemctl "$@"\n`);
  chmodSync(join(wrappers, "systemctl"), 0o755);
  host = { root, init, base, dir, hostSystemctl: wrappers };
  await until(
    "the host reaching running",
    30_000,
    () =>
      !["initializing", "starting", ""].includes(inside(["systemctl", "is-system-running"]).stdout.trim()),
  );

  const inDir = dir.slice(root.length);
  const link = inside([
    "systemctl",
    "link",
    ...["ssh@.service", "ssh-listen@.service", "ssh-listen@.socket", "ssh.target"].map(
      (f) => `${inDir}/systemd/${f}`,
    ),
  ]);
  if (link.status !== 0) throw new Error(`systemctl link failed:\n${link.stderr}`);
  const start = inside(["systemctl", "start", "ssh.target"], 60_000);
  if (start.status !== 0) throw new Error(`systemctl start ssh.target failed:\n${start.stderr}`);
});

function ready(t: ExecutionContext): boolean {
  if (!requireBoot(t)) return false;
  t.timeout(180_000);
  return true;
}

test.serial(
  `${COUNT} on-demand instances: every listener listens and nothing runs until a connection`,
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    const listening = inside([
      "systemctl",
      "list-units",
      "--plain",
      "--no-legend",
      "--state=listening",
      "ssh-listen@*.socket",
    ])
      .stdout.trim()
      .split("\n")
      .filter(Boolean);
    t.is(listening.length, COUNT);
    t.deepEqual(machines(), [], "no machine runs");
    const s = await status();
    t.is(s.instances.length, COUNT);
    t.deepEqual(running(s), [], "every instance idle");
    t.deepEqual(
      s.instances.slice(0, 2).map((i) => [i.instance, i.port, i.machine]),
      [
        [1, h.base + 1, `ssh-${h.base + 1}`],
        [2, h.base + 2, `ssh-${h.base + 2}`],
      ],
    );
    const pid1 = Number(/VmRSS:\s+(\d+)/.exec(inside(["cat", "/proc/1/status"]).stdout)?.[1]);
    t.log(`the host's systemd with ${COUNT} listeners: VmRSS ${pid1} kB`);
  },
);

test.serial(
  "the first connection to instance 137's port boots it and logs in as luser; only that instance runs; idle, it stops",
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    const port = h.base + 137;
    const started = performance.now();
    const session = await login(port, "hostname; id -un; cat /proc/net/tcp | wc -l");
    t.log(`first login on a cold instance: ${Math.round(performance.now() - started)} ms`);
    t.is(session.status, 0, session.stderr);
    const [hostname, user] = session.stdout.trim().split("\n");
    t.is(hostname, `ssh-${port}`);
    t.is(user, "luser");
    t.deepEqual(machines(), [`ssh-${port}`]);
    t.deepEqual(running(await status()), [137]);
    // Its own network: only its loopback, where dropbear listens on the recipe's port.
    const leader = inside([
      "machinectl",
      "show",
      `ssh-${port}`,
      "--property=Leader",
      "--value",
    ]).stdout.trim();
    const tcp = inside(["busybox", "nsenter", "-t", leader, "-n", "busybox", "cat", "/proc/net/tcp"]).stdout;
    t.regex(tcp, /^\s*\d+: 00000000:0898 00000000:0000 0A /m, "listening on 2200 (0x0898) inside");
    t.notRegex(
      tcp,
      new RegExp(`:${port.toString(16).toUpperCase().padStart(4, "0")} 00000000:0000 0A `),
      "not on its host port",
    );

    // --idle-stop 5s: the forwarder exits, and the instance, no longer needed, stops.
    await until(`instance 137 stopping after ${IDLE}s idle`, 60_000, () => machines().length === 0);
    const show = inside([
      "systemctl",
      "show",
      `ssh@${port}.service`,
      "--property=ActiveState",
      "--property=Result",
    ]).stdout;
    t.regex(show, /ActiveState=inactive/);
    t.regex(show, /Result=success/);
    t.deepEqual(running(await status()), []);
    t.is(
      inside(["systemctl", "is-active", `ssh-listen@${port}.socket`]).stdout.trim(),
      "active",
      "its listener listens again",
    );
    t.is(
      (await login(port, "hostname")).stdout.trim(),
      `ssh-${port}`,
      "and the next connection boots it again",
    );
  },
);

/** A TCP connection to the host's port from `from`: what arrives before it closes, once the first bytes have. */
interface Probe {
  /** The first bytes, or "" if the server closed without any. */
  first: Promise<string>;
  close: () => void;
}

function probe(port: number, from: string): Probe {
  const socket = connect({ host: "127.0.0.1", port, localAddress: from });
  const first = new Promise<string>((done) => {
    socket.once("data", (chunk: Buffer) => done(chunk.toString("latin1")));
    socket.once("close", () => done(""));
    socket.once("error", () => done(""));
    // Only a bound on a hung test, not a threshold: the first connection boots the instance.
    setTimeout(() => done("no answer within 90 s"), 90_000).unref();
  });
  return { first, close: () => socket.destroy() };
}

/** The remote addresses of the image's established connections on its port 2200, from /proc/net/tcp. */
function peersOf(port: number): string[] {
  const leader = inside(["machinectl", "show", `ssh-${port}`, "--property=Leader", "--value"]).stdout.trim();
  const tcp = inside(["busybox", "nsenter", "-t", leader, "-n", "busybox", "cat", "/proc/net/tcp"]).stdout;
  const peers = [...tcp.matchAll(/^\s*\d+: [0-9A-F]{8}:0898 ([0-9A-F]{8}):[0-9A-F]{4} 01 /gm)].map((m) =>
    Buffer.from(m[1]!, "hex").reverse().join("."),
  );
  return [...new Set(peers)].sort();
}

test.serial(
  "five idle connections from one address do not lock out another client: the image sees one loopback address per client",
  async (t) => {
    if (!ready(t)) return;
    const port = host!.base + 9;
    const probes: Probe[] = [];
    t.teardown(() => {
      for (const p of probes) p.close();
    });
    // Dropbear sends its banner once it has counted a connection as unauthenticated: at most 5 per address.
    for (let k = 0; k < 5; k++) {
      probes.push(probe(port, "127.0.0.1"));
      t.regex(await probes.at(-1)!.first, /^SSH-2\.0-dropbear/, `idle connection ${k + 1} from 127.0.0.1`);
    }
    const other = probe(port, "127.0.0.9");
    probes.push(other);
    t.regex(await other.first, /^SSH-2\.0-dropbear/, "a sixth client, from 127.0.0.9, gets the banner");
    const again = probe(port, "127.0.0.1");
    probes.push(again);
    t.is(
      await again.first,
      "",
      "a sixth from 127.0.0.1 is still closed without a banner: the limit is per client",
    );
    t.deepEqual(peersOf(port), ["127.0.0.1", "127.0.0.9"], "the image sees each client's own address");
    for (const p of probes) p.close();
    await until(`instance 9 stopping after ${IDLE}s idle`, 60_000, () => machines().length === 0);
  },
);

test.serial(
  "50 first connections at once to 50 instances all log in; systemctl stop ssh.target stops them and closes every listener",
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    const chosen = Array.from({ length: 50 }, (_, k) => 1 + k * 4);
    const sessions = await Promise.all(chosen.map((i) => login(h.base + i, "hostname")));
    t.deepEqual(
      sessions.map((s) => s.stdout.trim()),
      chosen.map((i) => `ssh-${h.base + i}`),
      sessions
        .map((s) => s.stderr)
        .filter(Boolean)
        .join("\n"),
    );
    // Instances stop 5 s after their last connection, some before the last login ends: ask
    // systemd which ever started, rather than which run now.
    const everStarted = new Set(
      inside([
        "systemctl",
        "show",
        "--property=Id",
        "--property=ActiveEnterTimestampMonotonic",
        ...Array.from({ length: COUNT }, (_, k) => `ssh@${h.base + k + 1}.service`),
      ])
        .stdout.trim()
        .split("\n\n")
        .map((block) =>
          Object.fromEntries(
            block.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
          ),
        )
        .filter((u) => u.ActiveEnterTimestampMonotonic !== "0")
        .map((u) => Number(/^ssh@(\d+)\.service$/.exec(u.Id!)![1]) - h.base),
    );
    t.deepEqual(
      [...everStarted].sort((a, b) => a - b),
      chosen,
      "exactly the instances connected to have ever started",
    );

    const stop = inside(["systemctl", "stop", "ssh.target"], 120_000);
    t.is(stop.status, 0, stop.stderr);
    await until("every instance stopping", 60_000, () => machines().length === 0);
    const after = await status();
    t.true(
      after.instances.every((i) => i.state === "stopped"),
      after.instances
        .filter((i) => i.state !== "stopped")
        .map((i) => `${i.instance}: ${i.state}`)
        .join(", "),
    );
    t.true(await portFree(h.base + 1), "the listeners are closed");
    t.log(
      `stopped ${chosen.length} running instances and ${COUNT} listeners with ${shellQuote("systemctl stop ssh.target")}`,
    );
  },
);
