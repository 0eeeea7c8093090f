// On-demand instances: the files of 10,000 declared instances, what their
// listeners cost a real systemd, and the time to the first byte of a cold one.
// Needs root and systemd-nspawn (it boots recipes/systemd-host.nifty as the host).
// Writes the bench:on-demand section of docs/performance.md.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { connect } from "node:net";
import os from "node:os";
import path from "node:path";
import { fmtMs, machine, median, NODE, ROOT, timed, writeSection } from "./util.ts";
import { portFree } from "../test/support/net.ts";

const COUNT = 10_000;
const BASE = 20_000;
const RUNS = 5;
const COLD = 7;

const niftyc = (args: string[]) => timed(NODE, [path.join(ROOT, "bin/niftyc"), ...args]);

function sh(command: string[]): string {
  const r = spawnSync(command[0]!, command.slice(1), {
    encoding: "utf8",
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${command.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const diskKb = (...paths: string[]) =>
  paths.reduce((sum, p) => sum + Number(sh(["du", "-sk", p]).split("\t")[0]), 0);
const meminfoKb = (key: string) =>
  Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(sh(["cat", "/proc/meminfo"]))![1]);

/** Milliseconds from connect to the first bytes of the SSH banner. */
function firstByte(port: number): Promise<number> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(60_000, () => (socket.destroy(), fail(new Error(`no banner on ${port} within 60 s`))));
    socket.once("data", (chunk: Buffer) => {
      const ms = performance.now() - started;
      socket.destroy();
      if (!chunk.toString("latin1").startsWith("SSH-"))
        fail(new Error(`port ${port} answered ${JSON.stringify(chunk.toString("latin1").slice(0, 40))}`));
      else done(ms);
    });
    socket.once("error", fail);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-on-demand-"));
  const running: RunningHost = {};
  try {
    await buildRecipes(work);
    const files = await measureFiles(work);
    const booted = await bootHost(work, running);
    const listeners = await startListeners(booted);
    const firstBytes = await measureFirstBytes();
    booted.inside(["systemctl", "stop", "ssh.target"]);
    await report(files, listeners, firstBytes);
  } finally {
    await stopHost(running);
    await fsp.rm(work, { recursive: true, force: true });
  }
}

/** The ssh build the instances are of, and the systemd host they run in. */
async function buildRecipes(work: string): Promise<void> {
  const pw = path.join(work, "pw");
  await fsp.writeFile(pw, "bench\n");
  const cache = path.join(ROOT, "cache");
  // The pinned .debs are in the repository's store (node scripts/debian-pins.ts fetch).
  await niftyc([
    "build",
    "recipes/ssh.nifty",
    "--offline",
    "--cache",
    cache,
    "--out",
    path.join(work, "ssh"),
    "--secret",
    `luser-password=${pw}`,
    "-q",
  ]);
  await niftyc([
    "build",
    "recipes/systemd-host.nifty",
    "--offline",
    "--cache",
    cache,
    "--out",
    path.join(work, "host"),
    "--format",
    "rootfs",
    "-q",
  ]);
}

interface FileFigures {
  fresh: number[];
  again: number[];
  rss: number;
  perInstanceKb: number;
  treeKb: number;
}

/** 1. The files: into a fresh directory (the shared tree unpacked too), and again over it (tree kept). */
async function measureFiles(work: string): Promise<FileFigures> {
  const args = (dir: string) => [
    "instances",
    path.join(work, "ssh"),
    "--count",
    String(COUNT),
    "--set",
    `PORT=${BASE}+i`,
    "--on-demand",
    "--out",
    dir,
  ];
  const fresh: number[] = [];
  const again: number[] = [];
  let rss = 0;
  for (let k = 0; k < RUNS; k++) {
    const dir = path.join(work, `files-${k}`);
    const first = await niftyc(args(dir));
    fresh.push(first.ms);
    const second = await niftyc(args(dir));
    again.push(second.ms);
    rss = Math.max(rss, first.maxRssKb, second.maxRssKb);
  }
  const files = path.join(work, "files-0");
  const perInstanceKb = diskKb(path.join(files, "systemd"), path.join(files, "instances.json"));
  const treeKb = diskKb(path.join(files, "rootfs"));
  console.error(
    `files: ${fmtMs(median(fresh))} fresh, ${fmtMs(median(again))} over a kept tree; ${perInstanceKb} KiB + tree ${treeKb} KiB`,
  );
  return { fresh, again, rss, perInstanceKb, treeKb };
}

/** The booted host, as far as it got: what the cleanup stops. */
interface RunningHost {
  host?: ChildProcess;
  /** Its init's PID, once it booted. */
  init?: string;
}

/** The booted host's init, and a way to run a command inside it. */
interface InHost {
  pid1: string;
  inside: (command: string[]) => string;
}

/**
 * What the forwarder (`niftyc forward`, run by the Node that ran niftyc instances) needs in the
 * host: that Node, the libraries it links that the host's tree lacks, and this checkout, read-only.
 */
function forwarderBinds(root: string): string[] {
  const libraries = [...sh(["ldd", NODE]).matchAll(/=> (\/\S+)/g)]
    .map((m) => m[1]!)
    .filter((lib) => !existsSync(path.join(root, lib)));
  // Node names itself by its real path (process.execPath): bind it there, not at node_modules/.bin.
  return [realpathSync(NODE), ...libraries, ROOT].map((p) => `--bind-ro=${realpathSync(p)}:${p}`);
}

/** 2. The host: its own systemd, our 10,000 listeners in its tree. */
async function bootHost(work: string, running: RunningHost): Promise<InHost> {
  for (let i = 1; i <= COUNT; i++)
    if (!(await portFree(BASE + i)))
      throw new Error(`port ${BASE + i} is taken: the bench needs ${BASE + 1}…${BASE + COUNT}`);
  const root = path.join(work, "root");
  await fsp.mkdir(root);
  sh(["tar", "-xpf", path.join(work, "host", "rootfs.tar"), "-C", root]);
  await niftyc([
    "instances",
    path.join(work, "ssh"),
    "--root",
    root,
    "--count",
    String(COUNT),
    "--set",
    `PORT=${BASE}+i`,
    "--on-demand",
    "--idle-stop",
    "1min",
  ]);
  const boot = [
    "mount -t tmpfs tmpfs /run && exec systemd-nspawn --register=no --keep-unit --console=read-only",
    `--capability=CAP_NET_ADMIN ${forwarderBinds(root).join(" ")} -M nifty-bench-od -bD ${root}`,
  ].join(" ");
  const host = spawn("unshare", ["-m", "sh", "-c", boot], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  running.host = host;
  let log = "";
  host.stdout!.on("data", (d: Buffer) => (log += d));
  for (const end = Date.now() + 60_000; !/Reached target .*multi-user\.target/.test(log); await sleep(100))
    if (Date.now() > end) throw new Error(`the host did not boot:\n${log}`);
  running.init = sh(["pgrep", "-P", String(host.pid)])
    .trim()
    .split("\n")[0]!;
  const pid1 = running.init;
  const inside = (command: string[]) => sh(["nsenter", "-t", pid1, "-a", ...command]);
  for (
    let k = 0;
    k < 100 &&
    !/running|degraded/.test(
      spawnSync("nsenter", ["-t", pid1, "-a", "systemctl", "is-system-running"], { encoding: "utf8" }).stdout,
    );
    k++
  )
    await sleep(200);
  return { pid1, inside };
}

interface ListenerFigures {
  startMs: number;
  listening: number;
  pid1Before: number;
  pid1After: number;
  availBefore: number;
  availAfter: number;
}

/** Start the listeners in the host; what it took, in time and memory. */
async function startListeners({ pid1, inside }: InHost): Promise<ListenerFigures> {
  inside([
    "systemctl",
    "link",
    ...["ssh@.service", "ssh-listen@.service", "ssh-listen@.socket", "ssh.target"].map(
      (f) => `/var/lib/niftyc/ssh/systemd/${f}`,
    ),
  ]);
  await sleep(2000);
  const pid1Before = Number(/VmRSS:\s+(\d+)/.exec(inside(["cat", "/proc/1/status"]))![1]);
  const availBefore = meminfoKb("MemAvailable");
  const started = performance.now();
  // --no-block: loading 10,000 units can outlast systemctl's D-Bus timeout on a busy machine.
  inside(["systemctl", "start", "--no-block", "ssh.target"]);
  const countListening = () =>
    spawnSync(
      "nsenter",
      [
        "-t",
        pid1,
        "-a",
        "systemctl",
        "list-units",
        "--plain",
        "--no-legend",
        "--state=listening",
        "ssh-listen@*.socket",
      ],
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
    )
      .stdout.trim()
      .split("\n")
      .filter(Boolean).length;
  for (const end = Date.now() + 300_000; countListening() < COUNT; await sleep(500))
    if (Date.now() > end) throw new Error("the listeners did not all listen within 5 min");
  const startMs = performance.now() - started;
  await sleep(2000);
  const pid1After = Number(/VmRSS:\s+(\d+)/.exec(inside(["cat", "/proc/1/status"]))![1]);
  const availAfter = meminfoKb("MemAvailable");
  const listening = countListening();
  console.error(
    `listeners: ${listening} in ${fmtMs(startMs)}; PID 1 ${pid1Before} → ${pid1After} kB; MemAvailable −${availBefore - availAfter} kB`,
  );
  return { startMs, listening, pid1Before, pid1After, availBefore, availAfter };
}

interface FirstByteFigures {
  cold: number[];
  warm: number[];
}

/** 3. Cold instances: connect, wait for the banner (boot included); then the same ones running. */
async function measureFirstBytes(): Promise<FirstByteFigures> {
  const cold: number[] = [];
  for (let k = 1; k <= COLD; k++) cold.push(await firstByte(BASE + k * 1111));
  const warm: number[] = [];
  for (let k = 1; k <= COLD; k++) warm.push(await firstByte(BASE + k * 1111));
  console.error(
    `first byte: cold ${cold.map((ms) => fmtMs(ms)).join(" ")}; running ${warm.map((ms) => fmtMs(ms)).join(" ")}`,
  );
  return { cold, warm };
}

/** The section of docs/performance.md, written and printed. */
async function report(
  files: FileFigures,
  listeners: ListenerFigures,
  firstBytes: FirstByteFigures,
): Promise<void> {
  const { fresh, again, rss, perInstanceKb, treeKb } = files;
  const { startMs, listening, pid1Before, pid1After, availBefore, availAfter } = listeners;
  const { cold, warm } = firstBytes;
  const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
  const lines = [
    "## On-demand instances",
    "",
    `\`sudo npx node bench/on-demand.ts\`: ${COUNT.toLocaleString("en")} on-demand instances of \`recipes/ssh.nifty\``,
    `(\`niftyc instances <build> --count ${COUNT} --set PORT=${BASE}+i --on-demand\`). Files: median of ${RUNS} runs through`,
    "`bin/niftyc` (Node start-up included), into a fresh directory and again over it; disk is `du -sk`.",
    "",
    "| What | Figure |",
    "| --- | --- |",
    `| files, fresh directory (shared tree unpacked and fsynced too) | ${fmtMs(median(fresh))} |`,
    `| files, over a kept tree (units, env file, manifest) | ${fmtMs(median(again))} |`,
    `| disk: units, target, env file and manifest, for all ${COUNT.toLocaleString("en")} | ${mb(perInstanceKb)} (+ the shared tree, ${mb(treeKb)}) |`,
    `| peak RSS of niftyc | ${mb(rss)} |`,
    `| \`systemctl start ssh.target\` until ${listening.toLocaleString("en")} listeners listen, in a systemd booted under nspawn | ${fmtMs(startMs)} |`,
    `| that systemd's RSS, before → after | ${mb(pid1Before)} → ${mb(pid1After)} (${((pid1After - pid1Before) / COUNT).toFixed(1)} kB a listener) |`,
    `| the machine's MemAvailable fall (systemd, socket units, kernel sockets; other work on the machine adds noise) | ${mb(availBefore - availAfter)} (${((availBefore - availAfter) / COUNT).toFixed(1)} kB a declared instance) |`,
    `| first byte of the SSH banner, cold instance (boot on the first connection), median of ${COLD} | ${fmtMs(median(cold))} (${fmtMs(Math.min(...cold))} – ${fmtMs(Math.max(...cold))}) |`,
    `| the same instances once running, through the forwarder | ${fmtMs(median(warm))} |`,
    "",
    `Compared with running machines (the Instances section above: about 2 MB each), ${COUNT.toLocaleString("en")} idle declared instances`,
    `cost systemd ${mb(pid1After - pid1Before)} in all, what about ${Math.max(1, Math.ceil((pid1After - pid1Before) / 1024 / 2))} running ones would.`,
    `Targets: the files of 10,000 instances in under 2 s — ${fmtMs(median(fresh))} with the tree unpacked, ${median(fresh) < 2000 ? "met" : "missed"};`,
    `under 20 MB — ${mb(perInstanceKb + treeKb)} with the shared tree, ${perInstanceKb + treeKb < 20 * 1024 ? "met" : "missed"}. Enabling all sockets costs "only the listening`,
    `sockets" — not quite: the kernel's part is small, but systemd keeps a unit per listener, ${((pid1After - pid1Before) / COUNT).toFixed(0)} kB each in its RSS,`,
    "and loading 10,000 of them is most of the start time.",
    "",
    `Measured with ${machine()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average ${os.loadavg()[0]!.toFixed(1)}.`,
  ];
  await writeSection("on-demand", lines.join("\n"));
  console.log(lines.join("\n"));
}

/** Stop the host, if it started: its nspawn cleanly, then whatever still runs. */
async function stopHost({ host, init }: RunningHost): Promise<void> {
  if (host?.pid !== undefined && host.exitCode === null) {
    // SIGTERM: nspawn shuts the host down cleanly. Killing nspawn alone would orphan the
    // container, so whatever still runs after 30 s is killed by its init's PID.
    const exited = new Promise((r) => host!.once("exit", r));
    process.kill(host.pid, "SIGTERM");
    await Promise.race([exited, sleep(30_000)]);
    for (const pid of [init, String(host.pid)]) {
      try {
        if (pid !== undefined) process.kill(Number(pid), "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }
}

await main();
