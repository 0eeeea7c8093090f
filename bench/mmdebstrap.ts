// niftyc beside mmdebstrap: recipes/systemd-httpd.nifty (systemd, dbus, BusyBox: whole Debian
// packages) built by niftyc, and `mmdebstrap --variant=essential --include=<the lock's packages>`
// of the same suites, from the same mirrors (this machine's apt sources), side by side.
// Rounds alternate: niftyc cold (empty store, the lock present: `--locked`), niftyc cold with the
// lock made first (empty store, `niftyc lock` then the build), niftyc warm (the store the cold build
// filled, a fresh --out), mmdebstrap (its own empty temp directory and apt cache each run, as it
// always works). Every niftyc run writes rootfs only (`--format rootfs`), as mmdebstrap writes one
// tarball. Each run is a child process timed from spawn to exit. Also prints the stages of the
// cold builds (their --json `stages`).
// With --baseline <other tree>/bin/niftyc, that tree's cold build joins each round, and its stages
// are shown beside these.
// Removing a tree of thousands of files slows the creation of new ones on an ext4 without a journal,
// as this machine's disk is: the kernel passes over an inode freed less than 60 s ago, or 360 s
// while the block of the inode table holding it is unwritten (fs/ext4/ialloc.c, recently_deleted),
// and the first file made in a block makes it unwritten again, so a `sync` does not shorten the
// wait. Measured: a cold build 62 s after mmdebstrap's run and a sync spent about a quarter of its
// CPU time passing over such inodes (1.9 s of system time instead of 0.65 s). So the bench moves a
// used store aside instead of removing it, and each round starts once --settle seconds (default
// 360) have passed since the last removal (mmdebstrap removes its own tree as it ends), for both
// tools. One more cold build per round runs right after two stores are removed, in its own row.
// This VM also gives back memory that was not used for a minute (DAMON's kdamond pages it out): three
// idle minutes took a quarter of the node binary out of memory, and the timed cold builds spent
// about 140 ms more starting (their compile stage 84 ms against 40–60 ms by hand). So after each
// wait, an untimed cold build (its store moved aside) brings niftyc's files back, and mmdebstrap,
// apt-get and dpkg are run with --version before mmdebstrap's timed run.
// Run: npx node bench/mmdebstrap.ts [--rounds N] [--settle S] [--niftyc path/to/bin/niftyc] [--baseline path/to/bin/niftyc] [--no-write]
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fmtMb, fmtMs, machine, median, NODE, ROOT, timed, writeSection, type Run, option } from "./util.ts";

const execFileP = promisify(execFile);
const ROUNDS = Number(option("--rounds") ?? 3);
const SETTLE_MS = Number(option("--settle") ?? 360) * 1000;
const NIFTYC = path.resolve(option("--niftyc") ?? path.join(ROOT, "bin/niftyc"));
/** Another tree's bin/niftyc (e.g. a checkout of the commit before a change): its cold build joins the rounds. */
const BASELINE = option("--baseline") === undefined ? undefined : path.resolve(option("--baseline")!);
const RECIPE = path.join(ROOT, "recipes/systemd-httpd.nifty");

interface BuildJson {
  digest: string;
  stages: Array<{ name: string; ms: number }>;
  steps: Array<{ instruction: string; ms: number }>;
}

/** The package names of the lock's first section (amd64's; a later section starts at a paragraph with no Package). */
async function packageList(): Promise<{ names: string[]; count: number; bytes: number }> {
  const whole = await fsp.readFile(`${RECIPE}.lock`, "utf8");
  const later = whole.search(/\n\nArchitecture: /);
  const text = later < 0 ? whole : whole.slice(0, later);
  const names = [...text.matchAll(/^Package: (\S+)$/gm)].map((m) => m[1]!);
  const bytes = [...text.matchAll(/^Size: (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
  return { names, count: names.length, bytes };
}

async function aptMirrors(): Promise<{ debian: string; security: string }> {
  const { loadMirrors } = await import("../src/fetch/mirrors.ts");
  const mirrors = await loadMirrors({});
  const debian = mirrors.debian?.[0];
  const security = mirrors["debian-security"]?.[0];
  if (!debian || !security) throw new Error("apt's sources name no debian and debian-security mirrors");
  return { debian, security };
}

/** The cold builds' stages (medians), with the baseline's beside them when there is one. */
function stagesTable(
  builds: BuildJson[],
  runs: Run[],
  baseline: { stages: BuildJson[]; runs: Run[] } | undefined,
): string {
  const stageMs = (of: BuildJson[], name: string) =>
    median(of.map((b) => b.stages.find((s) => s.name === name)?.ms ?? 0));
  const packageMs = (of: BuildJson[]) =>
    median(
      of.map((b) => b.steps.filter((s) => s.instruction.startsWith("PACKAGE")).reduce((t, s) => t + s.ms, 0)),
    );
  const total = (of: BuildJson[]) => median(of.map((b) => b.stages.reduce((t, s) => t + s.ms, 0)));
  const wall = (rs: Run[]) => median(rs.map((r) => r.ms));
  const line = (what: string, mine: string, theirs: string) =>
    baseline === undefined ? `| ${what} | ${mine} |` : `| ${what} | ${theirs} | ${mine} |`;
  const of = baseline?.stages ?? [];
  return [
    line("Stage", baseline === undefined ? "Time" : "this tree", "baseline"),
    line("---", "---", "---"),
    ...builds[0]!.stages.map((s) => line(s.name, fmtMs(stageMs(builds, s.name)), fmtMs(stageMs(of, s.name)))),
    line("(in steps: the PACKAGE step)", fmtMs(packageMs(builds)), fmtMs(packageMs(of))),
    line("**all stages**", `**${fmtMs(total(builds))}**`, `**${fmtMs(total(of))}**`),
    line("**wall**", `**${fmtMs(wall(runs))}**`, `**${fmtMs(wall(baseline?.runs ?? []))}**`),
  ].join("\n");
}

const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-mmdebstrap-"));
const loadAtStart = os.loadavg()[0]!.toFixed(1);
try {
  const { names, count, bytes } = await packageList();
  const { debian, security } = await aptMirrors();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_COMPILE_CACHE: path.join(work, "node-compile-cache"),
  };
  const stdoutFile = path.join(work, "stdout.json");
  const niftyc = (...args: string[]) => timed(NODE, [NIFTYC, ...args], { env, cwd: work, stdoutFile });
  const baseline = (...args: string[]) => timed(NODE, [BASELINE!, ...args], { env, cwd: work, stdoutFile });
  const buildArgs = (recipe: string, cache: string, out: string) => [
    "build",
    recipe,
    "--locked",
    "--cache",
    cache,
    "--out",
    out,
    "--format",
    "rootfs",
    "--json",
  ];
  /** What the last niftyc run printed with --json. */
  const json = async (): Promise<BuildJson> =>
    JSON.parse(await fsp.readFile(stdoutFile, "utf8")) as BuildJson;
  const clean = (...dirs: string[]) =>
    Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true })));
  // Used stores and outputs go here, removed when the bench ends (see the top of the file).
  const trash = path.join(work, "trash");
  await fsp.mkdir(trash);
  let trashed = 0;
  const moveAside = (...dirs: string[]) =>
    Promise.all(
      dirs.map((d) =>
        fsp.rename(d, path.join(trash, String(trashed++))).catch((e) => {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        }),
      ),
    );
  let lastRemoval = 0;
  // No sync first: the first file made in a written-back block of the inode table makes it unwritten again.
  const settle = async () => {
    const wait = lastRemoval + SETTLE_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  };
  // A copy of the recipe without its lock, for the runs that lock first.
  const unlocked = path.join(work, "unlocked", "systemd-httpd.nifty");
  await fsp.mkdir(path.dirname(unlocked), { recursive: true });
  await fsp.copyFile(RECIPE, unlocked);

  const runs = {
    cold: [] as Run[],
    lockCold: [] as Run[],
    warm: [] as Run[],
    mmdebstrap: [] as Run[],
    baseline: [] as Run[],
    afterRemoval: [] as Run[],
  };
  const stages: BuildJson[] = [];
  const baselineStages: BuildJson[] = [];
  const digests = new Set<string>();
  /**
   * An untimed cold build, its store moved aside: it fills Node's compile cache the first time (the
   * bench starts a fresh one), and after each wait brings niftyc's files back into memory (see the top).
   */
  const warmUp = async (run: typeof niftyc) => {
    const [cache, out] = [path.join(work, "cache-warm-up"), path.join(work, "out-warm-up")];
    await run(...buildArgs(RECIPE, cache, out));
    await moveAside(cache, out);
  };
  await warmUp(niftyc);
  lastRemoval = Date.now(); // whatever ran before the bench
  for (let round = 0; round < ROUNDS; round++) {
    const [cache, out] = [path.join(work, "cache"), path.join(work, "out")];
    await moveAside(cache, out);
    await settle();
    await warmUp(niftyc);
    runs.cold.push(await niftyc(...buildArgs(RECIPE, cache, out)));
    const built = await json();
    stages.push(built);
    digests.add(built.digest);

    if (BASELINE !== undefined) {
      const [cacheB, outB] = [path.join(work, "cache-baseline"), path.join(work, "out-baseline")];
      await moveAside(cacheB, outB);
      await warmUp(baseline);
      runs.baseline.push(await baseline(...buildArgs(RECIPE, cacheB, outB)));
      baselineStages.push(await json());
      digests.add(baselineStages.at(-1)!.digest);
      await moveAside(cacheB, outB);
    }

    const [cache2, out2] = [path.join(work, "cache2"), path.join(work, "out2")];
    await moveAside(cache2, out2);
    await clean(`${unlocked}.lock`);
    const lock = await niftyc("lock", unlocked, "--cache", cache2);
    const build = await niftyc(...buildArgs(unlocked, cache2, out2));
    runs.lockCold.push({
      ms: lock.ms + build.ms,
      maxRssKb: Math.max(lock.maxRssKb, build.maxRssKb),
      cpuMs: lock.cpuMs + build.cpuMs,
    });

    await moveAside(out);
    runs.warm.push(await niftyc(...buildArgs(RECIPE, cache, out)));
    digests.add((await json()).digest);

    const tarball = path.join(work, "mmdebstrap.tar");
    await clean(tarball);
    // mmdebstrap's programs back into memory too (its minutes-long run hides the rest).
    for (const program of ["mmdebstrap", "apt-get", "dpkg"]) await execFileP(program, ["--version"]);
    runs.mmdebstrap.push(
      await timed(
        "mmdebstrap",
        [
          "--quiet",
          "--variant=essential",
          `--include=${names.join(",")}`,
          "bookworm",
          tarball,
          `deb ${debian} bookworm main`,
          `deb ${debian} bookworm-updates main`,
          `deb ${security} bookworm-security main`,
        ],
        { env, cwd: work },
      ),
    );
    lastRemoval = Date.now(); // mmdebstrap removed its tree as it ended
    await clean(tarball);

    // The cold build again, just after removing the lock-first build's store and this round's (as a
    // bench that empties a store before each cold run makes it do).
    await clean(cache2, out2, cache, out);
    const [cache3, out3] = [path.join(work, "cache3"), path.join(work, "out3")];
    runs.afterRemoval.push(await niftyc(...buildArgs(RECIPE, cache3, out3)));
    digests.add((await json()).digest);
    await moveAside(cache3, out3);
    lastRemoval = Date.now();
  }
  if (digests.size !== 1) throw new Error(`the builds differ: ${[...digests].join(", ")}`);
  const { stdout: mmVersion } = await execFileP("mmdebstrap", ["--version"]);

  const summary = (rs: Run[]) => ({
    ms: median(rs.map((r) => r.ms)),
    cpu: median(rs.map((r) => r.cpuMs)),
    rss: Math.max(...rs.map((r) => r.maxRssKb)),
  });
  const peer = summary(runs.mmdebstrap);
  // The VM's speed drifts within the hour: the two runs of one round, minutes apart, are the fairest pair.
  const paired = runs.cold.map((r, i) => runs.mmdebstrap[i]!.ms / r.ms);
  const times = (rs: Run[]) => rs.map((r) => `${fmtMs(r.ms)} (CPU ${fmtMs(r.cpuMs)})`).join(", ");
  const ratios = paired.map((x) => `${x.toFixed(1)}×`).join(", ");
  const byRound =
    `Round by round, mmdebstrap ÷ the cold \`--locked\` build of the same round: ${ratios} ` +
    `(median ${median(paired).toFixed(1)}×). The cold builds: ${times(runs.cold)}; mmdebstrap: ${times(runs.mmdebstrap)}.`;
  const row = (what: string, rs: Run[]) => {
    const s = summary(rs);
    return `| ${what} | ${fmtMs(s.ms)} | ${fmtMs(s.cpu)} | ${fmtMb(s.rss)} | ${(peer.ms / s.ms).toFixed(1)}× |`;
  };
  const stageTable = stagesTable(
    stages,
    runs.cold,
    BASELINE === undefined ? undefined : { stages: baselineStages, runs: runs.baseline },
  );
  const load = `${loadAtStart} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end`;
  const body = `## Beside mmdebstrap

\`npx node bench/mmdebstrap.ts\`: \`recipes/systemd-httpd.nifty\` (its lock's amd64 section: ${count} .debs, ${(bytes / 2 ** 20).toFixed(1)} MiB)
beside \`mmdebstrap --variant=essential --include=<the lock's ${count} package names> bookworm\` (${mmVersion.trim()}), both
from this machine's apt mirrors (${debian}, ${security}) and writing one tarball (niftyc \`--format rootfs\`).
Rounds alternate niftyc cold (an empty store, the lock present, \`--locked\`), niftyc cold with the lock made first
(an empty store: \`niftyc lock\` then the build, the two times added), niftyc warm (the store the cold build filled,
a fresh \`--out\`) and mmdebstrap (a new temp directory and apt cache each run, as it always works: it downloads the
suites' indices each time, and its essential variant installs Debian's Essential set besides the list).
This disk's ext4 has no journal, and there the kernel passes over inodes freed in the last 60 s, or 360 s while their
block of the inode table is unwritten, which the first new file in that block makes it again: a cold build 62 s after
mmdebstrap's run and a \`sync\` took a quarter of its CPU time doing so. So used stores are moved aside, not removed,
until the bench ends, and each round starts once ${SETTLE_MS / 1000} s have passed since the last removal (mmdebstrap
removes its own tree as it ends), for both tools.
The last row is the cold build run right after two stores were removed, as an earlier version of this bench ran
every cold build. This VM also gives back memory unused for a minute (DAMON's \`kdamond\` pages it out), so after each
wait the tools' own files are read from disk again: an untimed cold build (its store moved aside) runs right before the
timed one, which also fills Node's compile cache the first time (the bench starts a fresh one), and mmdebstrap, apt-get
and dpkg are run with \`--version\` before mmdebstrap's timed run.
${ROUNDS} round${ROUNDS === 1 ? "" : "s"}, medians; each run a child process timed from spawn to exit, CPU time
(user + system, children included) and peak RSS from \`/usr/bin/time\`. Every niftyc build gave ${[...digests][0]!.slice(0, 19)}….

| | Wall | CPU time | Peak RSS | mmdebstrap ÷ this |
| --- | --- | --- | --- | --- |
${row("niftyc cold, `--locked`", runs.cold)}
${row("niftyc cold, `lock` + build", runs.lockCold)}
${row("niftyc warm, fresh `--out`", runs.warm)}
${row("mmdebstrap", runs.mmdebstrap)}${BASELINE === undefined ? "" : `\n${row("baseline: niftyc cold, `--locked`", runs.baseline)}`}
${row("niftyc cold, `--locked`, just after removing two stores", runs.afterRemoval)}

${byRound}

The cold \`--locked\` build, stage by stage (its \`--json\` \`stages\`, medians)${BASELINE === undefined ? "" : `, beside the baseline's (\`${BASELINE}\`, in the same rounds)`}:

${stageTable}

Measured with ${machine()}, load average ${load} (other work shared the machine).
`;
  process.stdout.write(body);
  if (!process.argv.includes("--no-write")) await writeSection("mmdebstrap", body);
} finally {
  await fsp.rm(work, { recursive: true, force: true });
}
