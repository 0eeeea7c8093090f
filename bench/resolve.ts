// Resolving benchmark: the closure of dropbear-bin from the real bookworm,
// bookworm-updates and bookworm-security suites, through this machine's apt
// mirrors. Timed through the real CLI: `niftyc lock` from an empty store
// (three InRelease files downloaded and verified, three Packages indices
// downloaded and parsed), `niftyc lock --update` on that store (InRelease
// downloaded and verified again, by design; the parsed indices from the
// store), `niftyc lock` with a lock that already covers the recipe, and
// `niftyc build --format rootfs` with the lock present (no index fetched),
// first on a store holding only what lock left there (the .debs downloaded),
// then with fresh --out on the store that build filled. In process, in a
// child of its own: the universe over the three stored indices, read on demand,
// and resolve for dropbear-bin (a fresh universe each time), first call and repeats.
// Run: npx node bench/resolve.ts [--runs N] [--no-write]
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fmtMb, fmtMs, machine, median, NODE, ROOT, timed, writeSection, type Run, option } from "./util.ts";

const ARCHIVES = "ARCHIVE debian bookworm bookworm-updates\nARCHIVE debian-security bookworm-security\n";
const REQUEST = "dropbear-bin";
const ARCH = "amd64";

// Child mode: with a store lock has filled, load the three suites' records,
// then time buildUniverse and resolve; write the figures to a file.
if (process.argv[2] === "--child") {
  const [, , , storeDir, out, repeatText] = process.argv as [string, string, string, string, string, string];
  const repeats = Number(repeatText);
  const { openStore } = await import("../src/cache/store.ts");
  const { loadMirrors } = await import("../src/fetch/mirrors.ts");
  const { fetchRelease } = await import("../src/debian/release.ts");
  const { loadPackages } = await import("../src/debian/index.ts");
  const { lazyUniverse } = await import("../src/debian/lazy-universe.ts");
  const { resolve } = await import("../src/debian/resolve.ts");
  const store = await openStore(storeDir);
  const mirrors = await loadMirrors({});
  const suites = [
    { archive: "debian", suite: "bookworm", component: "main" },
    { archive: "debian", suite: "bookworm-updates", component: "main" },
    { archive: "debian-security", suite: "bookworm-security", component: "main" },
  ];
  const now = new Date();
  let releaseMs = 0;
  let loadMs = 0;
  const indices: Array<{
    suite: (typeof suites)[number];
    index: Awaited<ReturnType<typeof loadPackages>>["packages"];
  }> = [];
  const loaded: Array<{ suite: string; path: string; size: number; records: number; source: string }> = [];
  for (const ref of suites) {
    let started = performance.now();
    const release = await fetchRelease(store, ref, { mirrors, now });
    releaseMs += performance.now() - started;
    started = performance.now();
    const index = await loadPackages(store, release, ARCH);
    loadMs += performance.now() - started;
    indices.push({ suite: ref, index: index.packages });
    loaded.push({
      suite: `${ref.archive} ${ref.suite}`,
      path: index.index.path,
      size: index.index.size,
      records: index.packages.count,
      source: index.source,
    });
  }

  const time = <T>(f: () => T): { ms: number; value: T } => {
    const started = performance.now();
    const value = f();
    return { ms: performance.now() - started, value };
  };
  // The universe is read on demand, so its cost is in the first resolve over it: timed together.
  const requests = [{ name: REQUEST, origin: "bench" }];
  const resolveCold = time(() => resolve(lazyUniverse(indices), requests, { arch: ARCH }));
  if (!resolveCold.value.ok)
    throw new Error(`resolve ${REQUEST}: ${resolveCold.value.errors.map((e) => e.message).join("; ")}`);
  const resolveWarm: number[] = [];
  for (let i = 0; i < repeats * 10; i++)
    resolveWarm.push(time(() => resolve(lazyUniverse(indices), requests, { arch: ARCH })).ms);
  // Counted after the timings: iterating the universe decodes every record.
  const universe = lazyUniverse(indices);
  let candidates = 0;
  for (const list of universe.packages.values()) candidates += list.length;
  await fsp.writeFile(
    out,
    JSON.stringify({
      releaseMs,
      loadMs,
      loaded,
      resolveColdMs: resolveCold.ms,
      resolveWarmMs: median(resolveWarm),
      resolveRepeats: resolveWarm.length,
      candidates,
      names: universe.packages.size,
      virtuals: universe.providers.size,
      problems: universe.problems.length,
      closure: resolveCold.value.resolution.packages.map((p) => `${p.record.name} ${p.record.version}`),
    }),
  );
  process.exit(0);
}

interface ChildFigures {
  releaseMs: number;
  loadMs: number;
  loaded: Array<{ suite: string; path: string; size: number; records: number; source: string }>;
  resolveColdMs: number;
  resolveWarmMs: number;
  resolveRepeats: number;
  candidates: number;
  names: number;
  virtuals: number;
  problems: number;
  closure: string[];
}

/** Cold runs download ~10 MB each from the real archive: keep the count small. */
const RUNS = Number(option("--runs") ?? 3);
const WARM_RUNS = Math.max(RUNS, 5);

const loadAtStart = os.loadavg()[0]!.toFixed(1);
const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-resolve-"));
try {
  const lockRecipe = path.join(work, "lock.nifty");
  const buildRecipe = path.join(work, "build.nifty");
  await fsp.writeFile(lockRecipe, `${ARCHIVES}PACKAGE ${REQUEST}\n`);
  await fsp.writeFile(buildRecipe, `${ARCHIVES}PACKAGE ${REQUEST} FILES /usr/sbin/dropbear\n`);
  const compileCache = path.join(work, "node-compile-cache");
  // bin/niftyc turns on Node's compile cache; keep it inside the bench's work dir.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_COMPILE_CACHE: compileCache,
  };
  const niftyc = (...args: string[]) =>
    timed(NODE, [path.join(ROOT, "bin/niftyc"), ...args], { env, cwd: work });
  const series = async (
    n: number,
    before: (i: number) => Promise<void>,
    run: (i: number) => Promise<Run>,
  ): Promise<Run[]> => {
    const out: Run[] = [];
    for (let i = 0; i < n; i++) {
      await before(i);
      out.push(await run(i));
    }
    return out;
  };
  const summary = (runs: Run[]) => ({
    ms: median(runs.map((r) => r.ms)),
    rss: Math.max(...runs.map((r) => r.maxRssKb)),
    n: runs.length,
  });

  // 0. Not timed: one lock on a scratch store fills Node's compile cache, as any earlier run of an
  // installed niftyc has (a first run type-strips every module, which costs time and ~20 MB more).
  await niftyc("lock", lockRecipe, "--cache", path.join(work, "compile-cache-warm-up"));
  await fsp.rm(path.join(work, "compile-cache-warm-up"), { recursive: true, force: true });
  await fsp.rm(`${lockRecipe}.lock`, { force: true });

  // 1. Cold: each run with a fresh, empty store and no lock.
  const lockCold = await series(
    RUNS,
    async () => void (await fsp.rm(`${lockRecipe}.lock`, { force: true })),
    (i) => niftyc("lock", lockRecipe, "--cache", path.join(work, `cold-${i}`)),
  );
  const store = path.join(work, "cold-0");
  for (let i = 1; i < RUNS; i++) await fsp.rm(path.join(work, `cold-${i}`), { recursive: true, force: true });
  const lockText = await fsp.readFile(`${lockRecipe}.lock`, "utf8");

  // 2. Warm: the same store, re-resolved; 2b. a lock that already covers the recipe.
  const lockWarm = await series(
    WARM_RUNS,
    async () => {},
    () => niftyc("lock", lockRecipe, "--update", "--cache", store),
  );
  const lockSame = (await fsp.readFile(`${lockRecipe}.lock`, "utf8")) === lockText;
  const lockCovered = await series(
    WARM_RUNS,
    async () => {},
    () => niftyc("lock", lockRecipe, "--cache", store),
  );

  // 3. In process, in a child of its own, on the warm store.
  const figuresFile = path.join(work, "child.json");
  const child = await timed(NODE, [import.meta.filename, "--child", store, figuresFile, "10"], { env });
  const f = JSON.parse(await fsp.readFile(figuresFile, "utf8")) as ChildFigures;
  // A suite can publish a new InRelease between runs; then its index is read afresh, and the text says so.
  const reparsed = f.loaded.filter((l) => l.source !== "cache").map((l) => l.suite);

  // 4. Build with the lock present: first on a copy of the store lock left (the .debs
  // are downloaded), then fresh --out on the store that build filled.
  await fsp.copyFile(`${lockRecipe}.lock`, `${buildRecipe}.lock`);
  const lockOnly = path.join(work, "lock-only");
  await fsp.cp(store, lockOnly, { recursive: true });
  const buildFirst = await series(
    RUNS,
    async (i) => {
      await fsp.rm(path.join(work, `first-${i}`), { recursive: true, force: true });
      await fsp.cp(lockOnly, path.join(work, `first-${i}`, "cache"), { recursive: true });
    },
    (i) =>
      niftyc(
        "build",
        buildRecipe,
        "--format",
        "rootfs",
        "--cache",
        path.join(work, `first-${i}`, "cache"),
        "--out",
        path.join(work, `first-${i}`, "out"),
        "-q",
      ),
  );
  const built = path.join(work, "first-0", "cache");
  const buildWarm = await series(
    WARM_RUNS,
    async () => void (await fsp.rm(path.join(work, "warm-out"), { recursive: true, force: true })),
    () =>
      niftyc(
        "build",
        buildRecipe,
        "--format",
        "rootfs",
        "--cache",
        built,
        "--out",
        path.join(work, "warm-out"),
        "-q",
      ),
  );
  // Not timed: the same build with the network forbidden, to show it needs no index (nor anything else).
  await fsp.rm(path.join(work, "warm-out"), { recursive: true, force: true });
  await niftyc(
    "build",
    buildRecipe,
    "--format",
    "rootfs",
    "--cache",
    built,
    "--out",
    path.join(work, "warm-out"),
    "-q",
    "--offline",
  );
  if ((await fsp.readFile(`${buildRecipe}.lock`, "utf8")) !== lockText)
    throw new Error("the build rewrote the lock");
  const nodeZero = summary(
    await series(
      WARM_RUNS,
      async () => {},
      () => timed(NODE, ["-e", "0"]),
    ),
  );

  const load = `${loadAtStart} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end`;
  const mb = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);
  const n = (x: number) => x.toLocaleString("en");
  const indexSize = f.loaded.reduce((s, l) => s + l.size, 0);
  const stanzas = f.loaded.reduce((s, l) => s + l.records, 0);
  const closureNames = f.closure.map((p) => p.split(" ")[0]!);
  const row = (what: string, runs: Run[], note = "") => {
    const s = summary(runs);
    return `| ${what} | ${fmtMs(s.ms)} | ${fmtMb(s.rss)} | ${s.n} | ${note} |`;
  };
  const body = `## Resolving packages

\`npx node bench/resolve.ts\`: the closure of \`${REQUEST}\` for a recipe of
\`ARCHIVE debian bookworm bookworm-updates\`, \`ARCHIVE debian-security bookworm-security\` and
\`PACKAGE ${REQUEST}\`, against the real archive through this machine's apt mirrors
(${f.loaded.map((l) => `${l.suite} \`${l.path}\` ${mb(l.size)}, ${n(l.records)} stanzas`).join("; ")}).
The universe holds ${n(f.candidates)} stanzas (${n(f.names)} package names, ${n(f.virtuals)} virtual names${f.problems ? `, ${f.problems} records left out or with Provides ignored` : ""});
the closure is ${f.closure.length} packages: ${closureNames.join(", ")}.
CLI rows run \`bin/niftyc\` as a child process, timed from spawn to exit (median; peak RSS from \`/usr/bin/time\`, the largest), after one untimed lock has filled Node's compile cache.
Measured with ${machine()}, load average ${load} (other work shared the machine).

| What | Time | Peak RSS | Runs | |
| --- | --- | --- | --- | --- |
${row("`niftyc lock`, cold: empty store, each run its own", lockCold, `3 InRelease verified with gpgv, ${mb(indexSize)} of indices downloaded, gunzip, parse into the stored form, resolve`)}
${row("`niftyc lock --update`, warm: the same store", lockWarm, `3 InRelease asked for again (conditionally where the mirror sent validators) and verified with gpgv, stored indices opened${lockSame ? "; the lock came out the same" : "; the lock changed"}`)}
${row("`niftyc lock`, a lock that covers the recipe", lockCovered, "no network: the lock is left as it is")}
${row("`niftyc build --format rootfs` (`FILES /usr/sbin/dropbear`), lock present, store as lock left it", buildFirst, `no index fetched; the ${f.closure.length} .debs downloaded`)}
${row("the same, fresh `--out`, on the store that build filled", buildWarm, "nothing fetched (also run with `--offline`)")}
| \`node -e 0\` | ${fmtMs(nodeZero.ms)} | ${fmtMb(nodeZero.rss)} | ${nodeZero.n} | |

In process (a child of its own, ${fmtMs(child.ms)} wall, peak RSS ${fmtMb(child.maxRssKb)}), on the warm store: the three InRelease
downloaded and verified in ${fmtMs(f.releaseMs)}, the three stored indices read, their digests checked and opened in ${fmtMs(f.loadMs)}${reparsed.length ? ` (${reparsed.join(", ")} had published a new index, read afresh)` : ""}, then:

| What | First call | Repeats (median) |
| --- | --- | --- |
| \`resolve\` of \`${REQUEST}\` (${f.closure.length} packages) over a fresh universe read on demand from the ${n(stanzas)} stored records | ${f.resolveColdMs.toFixed(1)} ms | ${f.resolveWarmMs.toFixed(2)} ms (${f.resolveRepeats}) |
`;
  process.stdout.write(body);
  if (!process.argv.includes("--no-write")) await writeSection("resolve", body);
} finally {
  await fsp.rm(work, { recursive: true, force: true });
}
