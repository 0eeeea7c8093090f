// Twenty machines from one build: `niftyc instances` writes the shared tree and
// the units; each instance runs the template's own ExecStart with %i and its
// env file expanded, all in one shared /run (so nspawn's locks are shared too).
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { instanceCommand } from "../../src/instances/exec.ts";
import {
  boot,
  buildRecipe,
  debianMirror,
  niftyc,
  requireBoot,
  ssh,
  tempDir,
  waitForPort,
  type Container,
} from "../boot/harness.ts";

const PASSWORD = "correct horse battery";
const COUNT = 20;

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "0.0.0.0", () => server.close(() => done(true)));
  });
}

/** A base such that base+1 … base+count are all free now. */
async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768+): a client's source port must never take an instance's port.
    const base = 10_000 + Math.floor(Math.random() * (32_768 - count - 10_000));
    let free = true;
    for (let i = 1; i <= count && free; i++) free = await portFree(base + i);
    if (free) return base;
  }
  throw new Error(`no ${count} free ports in a row`);
}

function children(pid: number): number[] {
  const out = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).stdout;
  return out.split("\n").filter(Boolean).map(Number);
}

function descendants(pid: number): number[] {
  const all: number[] = [];
  for (const child of children(pid)) all.push(child, ...descendants(child));
  return all;
}

/** Start time of a PID (field 22 of stat), so a reused PID is not mistaken for ours. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

interface TextMapping {
  dev: string;
  inode: string;
  rssKb: number;
  pssKb: number;
  sharedCleanKb: number;
}

/** The r-xp mapping of /bin/busybox in /proc/<pid>/smaps: the text BusyBox runs. */
function busyboxText(pid: number): TextMapping {
  const lines = readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n");
  const start = lines.findIndex((l) => / r-xp .* \/bin\/busybox$/.test(l));
  if (start < 0) throw new Error(`PID ${pid} maps no r-xp /bin/busybox`);
  const [, , , dev, inode] = lines[start]!.split(/\s+/);
  const field = (name: string): number => {
    for (let i = start + 1; i < lines.length && !/^[0-9a-f]+-/.test(lines[i]!); i++) {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`).exec(lines[i]!);
      if (m) return Number(m[1]);
    }
    throw new Error(`no ${name} in the busybox mapping of ${pid}`);
  };
  return {
    dev: dev!,
    inode: inode!,
    rssKb: field("Rss"),
    pssKb: field("Pss"),
    sharedCleanKb: field("Shared_Clean"),
  };
}

test.serial(
  "twenty instances of one build boot from one tree, each on its own port with its own name and host key, sharing BusyBox's text",
  async (t) => {
    if (!requireBoot(t)) return;
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, "recipes/ssh.nifty", mirror.url, { "luser-password": PASSWORD });
    const base = await freePortRun(COUNT);
    const dir = join(tempDir(t, "instances"), "fleet");
    const made = await niftyc([
      "instances",
      built.outDir,
      "--count",
      String(COUNT),
      "--set",
      `PORT=${base}+i`,
      "--out",
      dir,
      "--json",
    ]);
    t.is(made.status, 0, made.stderr);
    const unit = readFileSync(join(dir, "systemd", "ssh@.service"), "utf8");
    t.true(existsSync(join(dir, "systemd", "ssh.target")));
    t.is(
      readFileSync(join(dir, "systemd", "instances.env"), "utf8")
        .split("\n")
        .filter((l) => /^NIFTY_ARGS_\d+=--setenv=PORT=\d+$/.test(l)).length,
      COUNT,
    );

    // One /run for all, as on a host: nspawn's shared locks on the tree must let all twenty in.
    const run = tempDir(t, "run");
    const containers = new Map<number, Container>();
    const start = (i: number): Container => {
      const { argv } = instanceCommand(unit, String(i));
      t.is(argv[0], "systemd-nspawn");
      t.true(argv.includes("--volatile=overlay"), "every instance has a private writable layer");
      const d = argv.indexOf("-D");
      const root = argv[d + 1]!;
      t.is(root, join(dir, "rootfs"));
      t.true(argv.includes(`--setenv=PORT=${base + i}`), argv.join(" "));
      // The generated command line, minus -D ROOT (boot() adds -bD ROOT) and with --register=no (no machined here).
      const args = [...argv.slice(1, d), ...argv.slice(d + 2)];
      const container = boot(t, { root, machine: `ssh-${i}`, args, run });
      containers.set(i, container);
      return container;
    };

    // One instance first, to see its share of BusyBox's text before the others come.
    start(1);
    await waitForPort(base + 1, 60_000);
    const initOf = (i: number): number => {
      const pid = containers.get(i)!.pid()!;
      const [init] = children(pid);
      if (init === undefined) throw new Error(`instance ${i} has no init yet`);
      return init;
    };
    const alone = busyboxText(initOf(1));

    for (let i = 2; i <= COUNT; i++) start(i);
    await Promise.all(Array.from({ length: COUNT - 1 }, (_, k) => waitForPort(base + k + 2, 120_000)));

    const keys = new Set<string>();
    for (let i = 1; i <= COUNT; i++) {
      const session = ssh(t, base + i, "luser", PASSWORD, "hostname; id -un");
      t.is(session.status, 0, `instance ${i}: ${session.stderr}`);
      t.is(session.stdout, `ssh-${i}\nluser\n`);
      t.truthy(session.hostKey);
      keys.add(session.hostKey!);
    }
    t.is(keys.size, COUNT, "every instance made its own host key");
    t.false(
      existsSync(join(dir, "rootfs", "etc", "dropbear", "dropbear_ed25519_host_key")),
      "keys went to the overlays, not the shared tree",
    );

    // BusyBox's text: one inode for all, a device per overlay, clean shared pages whose
    // proportional share fell as instances were added.
    const mappings = Array.from({ length: COUNT }, (_, k) => busyboxText(initOf(k + 1)));
    const together = mappings[0]!;
    t.log(
      `BusyBox text of instance 1's init: alone Rss ${alone.rssKb} kB Pss ${alone.pssKb} kB; with ${COUNT} instances Rss ${together.rssKb} kB Pss ${together.pssKb} kB, Shared_Clean ${together.sharedCleanKb} kB`,
    );
    t.is(new Set(mappings.map((m) => m.inode)).size, 1, "the same inode everywhere");
    t.is(new Set(mappings.map((m) => m.dev)).size, COUNT, "a device number per overlay mount");
    for (const m of mappings)
      t.true(
        m.sharedCleanKb > 0 && m.sharedCleanKb >= m.rssKb - 4,
        `text pages are shared clean: ${JSON.stringify(m)}`,
      );
    t.true(
      together.pssKb < alone.pssKb,
      `Pss shrinks as instances are added: ${alone.pssKb} → ${together.pssKb} kB`,
    );
    t.true(together.pssKb * 4 < together.rssKb, "each process pays a small part of the text");

    // Every process of every instance, recorded with its start time, to check it is gone later.
    const processes: Array<[number, string]> = [];
    for (const c of containers.values()) {
      const nspawn = c.pid()!;
      for (const pid of [nspawn, ...descendants(nspawn)]) processes.push([pid, startTime(pid)!]);
    }
    t.true(
      processes.length >= COUNT * 5,
      `nspawn, init, syslogd, dropbear and getty per instance: ${processes.length}`,
    );

    // A clean stop: SIGTERM to each nspawn, which sends SIGUSR2 to BusyBox init, which powers off.
    const stops = await Promise.all([...containers.values()].map((c) => c.stop("SIGTERM", 60_000)));
    for (const s of stops) t.is(s.code, 0);
    for (const c of containers.values()) t.regex(c.output(), /Requesting system poweroff|poweroff/i);
    const left = processes.filter(([pid, started]) => startTime(pid) === started);
    t.deepEqual(left, [], "nothing of the instances is left running");
  },
);
