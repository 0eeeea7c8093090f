// `npx node bench/instances.ts [N ...]`: N instances of recipes/ssh.nifty (default
// 10, 100 and 1000). For each N: the time and disk to create the instances' files
// with `niftyc instances`, beside the seed's procedure (one tar-pipe copy of the
// tree plus a sed of inittab per instance); then every instance booted with the
// generated template's command line (as systemd would run it, in one shared
// /run), the time until all have SSH listening, and the memory they take.
// Writes the bench:instances section of docs/performance.md.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { instanceCommand } from "../src/instances/exec.ts";
import { fmtMs, machine, median, NODE, ROOT, timed, writeSection } from "./util.ts";
import { freePorts, listening } from "../test/support/net.ts";

const COUNTS = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const NS = COUNTS.length > 0 ? COUNTS : [10, 100, 1000];
/** How long all instances may take to listen before the run is called off. */
const BOOT_LIMIT_MS = Number(process.env.BENCH_INSTANCES_BOOT_LIMIT_S ?? 900) * 1000;
const RUNS = 5;

function sh(command: string): string {
  const r = spawnSync("sh", ["-c", command], { encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${command}: ${r.stderr}`);
  return r.stdout;
}

/** Disk blocks in use under dir, KiB (du counts hard links once). */
function diskKb(dir: string): number {
  return Number(sh(`du -sk ${dir}`).split("\t")[0]);
}

function memAvailableKb(): number {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
}

/** Parent → children over every process, read from /proc once (pgrep per PID is far too slow at 5000 processes). */
function processTable(): Map<number, number[]> {
  const table = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      table.set(parent, [...(table.get(parent) ?? []), Number(name)]);
    } catch {
      // Gone meanwhile.
    }
  }
  return table;
}

function tree(table: Map<number, number[]>, pid: number): number[] {
  return [pid, ...(table.get(pid) ?? []).flatMap((child) => tree(table, child))];
}

function pssKb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function busyboxTextPss(pid: number): { rss: number; pss: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps`, "utf8");
    const at = text.search(/ r-xp .* \/bin\/busybox\n/);
    if (at < 0) return undefined;
    const block = text.slice(at, at + 600);
    return { rss: Number(/Rss:\s+(\d+)/.exec(block)![1]), pss: Number(/Pss:\s+(\d+)/.exec(block)![1]) };
  } catch {
    return undefined;
  }
}

async function sleep(ms: number, keepAlive = true): Promise<void> {
  await new Promise((done) => {
    const timer = setTimeout(done, ms);
    if (!keepAlive) timer.unref(); // a deadline must not hold the process open once all is done
  });
}

interface Creation {
  oursMs: number;
  oursKb: number;
  treeKb: number;
  copyMs: number;
  copyKb: number;
}

async function create(
  work: string,
  buildDir: string,
  n: number,
): Promise<Omit<Creation, "copyMs" | "copyKb">> {
  // niftyc: a fresh directory each run (the tree unpacked too), through the shipped launcher.
  const times: number[] = [];
  let oursKb = 0;
  let treeKb = 0;
  sh("sync"); // the previous copies' writeback and deletes would otherwise land in niftyc's fsyncs
  for (let run = 0; run < RUNS; run++) {
    const out = path.join(work, `ours-${n}-${run}`);
    const r = await timed(NODE, [
      path.join(ROOT, "bin/niftyc"),
      "instances",
      buildDir,
      "--count",
      String(n),
      "--set",
      "PORT=20000+i",
      "--out",
      out,
    ]);
    times.push(r.ms);
    oursKb = diskKb(out);
    treeKb = diskKb(path.join(out, "rootfs"));
    if (run > 0) await fsp.rm(out, { recursive: true });
  }
  return { oursMs: median(times), oursKb, treeKb };
}

async function seedCopies(
  work: string,
  buildDir: string,
  n: number,
): Promise<Pick<Creation, "copyMs" | "copyKb">> {
  // The seed: an unpacked /home/nifty to start from (not timed), then a copy and a sed per instance.
  const home = path.join(work, `home-${n}`);
  await fsp.mkdir(path.join(home, "nifty"), { recursive: true });
  sh(`tar -xpf ${buildDir}/rootfs.tar -C ${home}/nifty`);
  const script = `cd ${home} && for x in $(seq 1 ${n}); do mkdir "nifty$x"; (cd nifty; tar cf - .) | (cd "nifty$x"; tar xpf -); sed "s/2200/$((x+2200))/" < nifty/etc/inittab > "nifty$x/etc/inittab"; done; sync -f .`;
  const copy = await timed("sh", ["-c", script]);
  const copyKb = diskKb(home) - diskKb(path.join(home, "nifty"));
  await fsp.rm(home, { recursive: true });
  return { copyMs: copy.ms, copyKb };
}

interface Boot {
  n: number;
  listening: number;
  allMs?: number;
  pssMb: number;
  memDropMb: number;
  processes: number;
  textPss?: { rss: number; pss: number };
  stopMs: number;
  note?: string;
}

/** Boot every instance with the generated template's command line; measure; stop all. */
async function bootAll(dir: string, n: number, base: number): Promise<Boot> {
  const unit = await fsp.readFile(path.join(dir, "systemd", "ssh@.service"), "utf8");
  const run = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-run-"));
  const procs: ChildProcess[] = [];
  const before = memAvailableKb();
  const started = performance.now();
  let result: Boot | undefined;
  try {
    for (let i = 1; i <= n; i++) {
      const { argv } = instanceCommand(unit, String(i));
      const nspawn = [argv[0]!, "--register=no", ...argv.slice(1)]
        .map((w) => `'${w.replaceAll("'", `'\\''`)}'`)
        .join(" ");
      procs.push(
        spawn("unshare", ["-m", "sh", "-c", `mount --bind ${run} /run && exec ${nspawn}`], {
          detached: true,
          stdio: "ignore",
        }),
      );
    }
    const up = new Set<number>();
    let allMs: number | undefined;
    while (performance.now() - started < BOOT_LIMIT_MS) {
      const pending = Array.from({ length: n }, (_, k) => k + 1).filter((i) => !up.has(i));
      for (let at = 0; at < pending.length; at += 200) {
        const batch = pending.slice(at, at + 200);
        const open = await Promise.all(batch.map((i) => listening(base + i)));
        for (const [k, i] of batch.entries()) if (open[k]) up.add(i);
      }
      if (up.size === n) {
        allMs = performance.now() - started;
        console.error(`N=${n}: all listening after ${fmtMs(allMs)}`);
        break;
      }
      await sleep(250);
    }
    await sleep(2000); // let the last logins' key generation and page faults settle
    const table = processTable();
    const pids = procs.flatMap((p) => (p.pid ? tree(table, p.pid) : []));
    const pss = pids.reduce((sum, pid) => sum + pssKb(pid), 0);
    const inits = procs
      .map((p) => (p.pid ? table.get(p.pid)?.[0] : undefined))
      .filter((p): p is number => p !== undefined);
    const textPss = inits[0] !== undefined ? busyboxTextPss(inits[0]) : undefined;
    result = {
      n,
      listening: up.size,
      ...(allMs !== undefined ? { allMs } : {}),
      pssMb: pss / 1024,
      memDropMb: (before - memAvailableKb()) / 1024,
      processes: pids.length,
      ...(textPss ? { textPss } : {}),
      stopMs: 0,
    };
  } finally {
    // A clean stop: SIGTERM to each nspawn (its --kill-signal powers BusyBox init off).
    const stopStarted = performance.now();
    // unshare and sh exec, so each child's PID is systemd-nspawn's.
    for (const p of procs) {
      try {
        if (p.pid) process.kill(p.pid, "SIGTERM");
      } catch {
        // Already gone.
      }
    }
    const exited = await Promise.race([
      Promise.all(
        procs.map((p) =>
          p.exitCode !== null || p.signalCode !== null
            ? Promise.resolve()
            : new Promise((done) => p.once("exit", done)),
        ),
      ).then(() => true),
      sleep(180_000, false).then(() => false),
    ]);
    if (!exited) {
      const table = processTable();
      for (const p of procs) {
        if (!p.pid || p.exitCode !== null) continue;
        // The init first: it takes the container's whole PID namespace with it.
        for (const pid of tree(table, p.pid).reverse()) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // Already gone.
          }
        }
      }
      if (result) result.note = "some instances did not stop within 180 s and were killed";
    }
    if (result) result.stopMs = performance.now() - stopStarted;
    await fsp.rm(run, { recursive: true, force: true });
  }
  return result!;
}

/** The issue's targets for 1000 instances, against what was measured. */
function targets(rows: Array<{ n: number; c: Creation; b?: Boot }>): string[] {
  const r = rows.find((row) => row.n === 1000);
  if (!r) return [];
  const mb = (r.c.oursKb * 1024) / 1e6;
  return [
    `Targets for 1000 instances: creating their files in under 1 s — ${fmtMs(r.c.oursMs)}, ${r.c.oursMs < 1000 ? "met" : "missed"};`,
    `under 10 MB of disk — ${mb.toFixed(1)} MB (${((r.c.treeKb * 1024) / 1e6).toFixed(1)} MB of it the one shared tree, ${(((r.c.oursKb - r.c.treeKb) * 1024) / 1e6).toFixed(1)} MB`,
    `the env file, the manifest and units), ${mb < 10 ? "met" : "missed"}; the seed's copies take ${((r.c.copyKb * 1024) / 1e9).toFixed(1)} GB.`,
    r.b?.allMs !== undefined
      ? `All 1000 booted and listened; memory held easily (${(r.b.pssMb / 1000).toFixed(2)} MB of Pss per instance), and all stopped cleanly on SIGTERM.`
      : "Not all 1000 instances came up within the time limit.",
  ];
}

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-instances-"));
  try {
    const pw = path.join(work, "pw");
    await fsp.writeFile(pw, "bench\n");
    const buildDir = path.join(work, "build");
    // The pinned .debs are in the repository's store (node scripts/debian-pins.ts fetch).
    await timed(NODE, [
      path.join(ROOT, "bin/niftyc"),
      "build",
      "recipes/ssh.nifty",
      "--offline",
      "--cache",
      path.join(ROOT, "cache"),
      "--out",
      buildDir,
      "--secret",
      `luser-password=${pw}`,
      "-q",
    ]);
    const tarKb = Math.round((await fsp.stat(path.join(buildDir, "rootfs.tar"))).size / 1024);
    // niftyc's runs first, the boots next, and the seed's gigabytes of copies last, so their
    // writeback and deletes do not land in the other measurements.
    const made = new Map<number, Awaited<ReturnType<typeof create>>>();
    for (const n of NS) {
      const c = await create(work, buildDir, n);
      made.set(n, c);
      console.error(`N=${n}: niftyc ${fmtMs(c.oursMs)} ${c.oursKb} KiB`);
      await fsp.rm(path.join(work, `ours-${n}-0`), { recursive: true, force: true });
    }
    const booted = new Map<number, Boot | string>();
    for (const n of NS) {
      const dir = path.join(work, `boot-${n}`);
      try {
        const base = await freePorts(n);
        await timed(NODE, [
          path.join(ROOT, "bin/niftyc"),
          "instances",
          buildDir,
          "--count",
          String(n),
          "--set",
          `PORT=${base}+i`,
          "--out",
          dir,
        ]);
        const b = await bootAll(dir, n, base);
        booted.set(n, b);
        console.error(
          `N=${n}: ${b.listening}/${n} listening${b.allMs ? ` after ${fmtMs(b.allMs)}` : ""}; Pss ${b.pssMb.toFixed(0)} MB; MemAvailable −${b.memDropMb.toFixed(0)} MB; stop ${fmtMs(b.stopMs)}`,
        );
      } catch (e) {
        booted.set(n, (e as Error).message.split("\n")[0]!);
        console.error(`N=${n}: boot failed: ${booted.get(n)}`);
      }
      await fsp.rm(dir, { recursive: true, force: true });
    }
    const rows: Array<{ n: number; c: Creation; b?: Boot; error?: string }> = [];
    for (const n of NS) {
      const copies = await seedCopies(work, buildDir, n);
      console.error(`N=${n}: seed copies ${fmtMs(copies.copyMs)} ${copies.copyKb} KiB`);
      const b = booted.get(n);
      rows.push({
        n,
        c: { ...made.get(n)!, ...copies },
        ...(typeof b === "object" ? { b } : { error: b ?? "not run" }),
      });
    }
    const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;
    const lines = [
      "## Instances",
      "",
      "`npx node bench/instances.ts`: N instances of `recipes/ssh.nifty` (rootfs.tar " +
        `${mib(tarKb)}). ` +
        "Creating: `niftyc instances <build> --count N",
      "--set PORT=20000+i --out DIR` into a fresh directory (the shared tree unpacked and fsynced, the template,",
      `the target, the env file, the manifest), median of ${RUNS} runs through \`bin/niftyc\` (Node start-up included);`,
      "beside the seed's procedure from an unpacked tree: per instance `mkdir`, `(cd nifty; tar cf - .) | (cd niftyX; tar xpf -)`",
      "and `sed s/2200/<port>/` of inittab, then one `sync -f` (one run). Disk: `du -sk` (4 KiB blocks).",
      "",
      "| N | niftyc: time | niftyc: disk (shared tree + per-instance files) | seed: time | seed: disk | disk ratio |",
      "| --- | --- | --- | --- | --- | --- |",
      ...rows.map(
        ({ n, c }) =>
          `| ${n} | ${fmtMs(c.oursMs)} | ${mib(c.oursKb)} (${mib(c.treeKb)} + ${mib(c.oursKb - c.treeKb)}) | ${fmtMs(c.copyMs)} | ${mib(c.copyKb)} | ${(c.copyKb / c.oursKb).toFixed(0)}× |`,
      ),
      "",
      "Booting: every instance runs the generated `ssh@.service` command line for its `%i` (env file",
      "expanded, `--register=no` added: no systemd as PID 1 here), each in its own mount namespace with",
      'one shared `/run`, all started at once as `systemctl start ssh.target` would. "Listening" is a',
      "TCP connect to every instance's port; memory is the sum of `Pss` over every process of the",
      "instances (nspawn, init, syslogd, dropbear, getty) from `smaps_rollup`, and the fall of",
      "`MemAvailable` (which also counts the kernel's share: overlay and tmpfs mounts, namespaces, page tables).",
      "",
      "| N | all listening | Pss, all processes | MemAvailable fall | per instance | BusyBox text of one init (Rss / Pss) | clean stop of all |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...rows.map(({ n, b, error }) =>
        b
          ? `| ${n} | ${b.allMs !== undefined ? fmtMs(b.allMs) : `${b.listening}/${n} within ${fmtMs(BOOT_LIMIT_MS)}`} | ${b.pssMb.toFixed(0)} MB (${b.processes} processes) | ${b.memDropMb > b.pssMb ? `${b.memDropMb.toFixed(0)} MB` : "below the noise of other work"} | ${(Math.max(b.memDropMb, b.pssMb) / n).toFixed(1)} MB | ${b.textPss ? `${b.textPss.rss} / ${b.textPss.pss} kB` : "—"} | ${fmtMs(b.stopMs)}${b.note ? ` (${b.note})` : ""} |`
          : `| ${n} | failed: ${error} | | | | | |`,
      ),
      "",
      ...targets(rows),
      "",
      `Measured with ${machine()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM.`,
    ];
    await writeSection("instances", lines.join("\n"));
    console.log(lines.join("\n"));
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

await main();
