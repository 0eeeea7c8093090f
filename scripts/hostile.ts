// The long hostile runs, beyond what CI's corpus (test/security/) does in a
// minute: 200 COPY builds against a flipping symlink, 100,000 generated
// recipes through the front end, a zstd bomb against the default limits,
// draining past a 1 GiB member of an xz tarball (peak memory, in a child), and
// 200 builds of recipes/ssh.nifty killed with SIGKILL at random on one store.
// Writes its last figures into docs/security.md between its markers.
//   npx node scripts/hostile.ts [--copy N] [--fuzz N] [--kill N] [--only copy|fuzz|bomb|drain|kill]
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { checkSource } from "../src/check/source.ts";
import { build } from "../src/pipeline/build.ts";
import { BuildFailed } from "../src/pipeline/failure.ts";
import { recipeArbitraries } from "../test/support/arbitrary-recipes.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    copy: { type: "string", default: "200" },
    fuzz: { type: "string", default: "100000" },
    kill: { type: "string", default: "200" },
    only: { type: "string" },
    drain: { type: "string" },
  },
});

// Child mode: extract the member after a large one, then report this process's peak memory.
if (values.drain !== undefined) {
  const { openStore } = await import("../src/cache/store.ts");
  const { extractMember } = await import("../src/fetch/archive.ts");
  await extractMember(await openStore(path.join(path.dirname(values.drain), "cache")), values.drain, "small");
  console.log(process.resourceUsage().maxRSS);
  process.exit(0);
}

async function xzDrain(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-xz-"));
  try {
    await fsp.mkdir(path.join(dir, "t"));
    await fsp.writeFile(path.join(dir, "t/big"), "");
    await fsp.truncate(path.join(dir, "t/big"), 1024 ** 3);
    await fsp.writeFile(path.join(dir, "t/small"), "hi\n");
    const archive = path.join(dir, "bomb.tar.xz");
    await new Promise<void>((resolve, reject) => {
      const p = spawn("bash", ["-c", `tar -C "$D/t" -cf - big small | xz -T2 -1 > "$A"`], {
        env: { ...process.env, D: dir, A: archive },
        stdio: "inherit",
      });
      p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`tar | xz: ${code}`))));
    });
    await fsp.rm(path.join(dir, "t"), { recursive: true });
    const size = (await fsp.stat(archive)).size;
    const started = performance.now();
    const out = await new Promise<string>((resolve, reject) => {
      let text = "";
      const p = spawn(process.execPath, [import.meta.filename, "--drain", archive], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      p.stdout.on("data", (c: Buffer) => (text += c.toString()));
      p.once("exit", (code) => (code === 0 ? resolve(text.trim()) : reject(new Error(`drain: ${code}`))));
    });
    return `| Extract the member after a 1 GiB one from a ${Math.round(size / 1024)} KB xz tarball | ${((performance.now() - started) / 1000).toFixed(1)} s, peak ${Math.round(Number(out) / 1024)} MB RSS |`;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function copyRace(runs: number): Promise<string> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-race-"));
  const secret = path.join(root, "host-secret");
  await fsp.writeFile(secret, "HOST SECRET\n");
  await fsp.mkdir(path.join(root, "r/ctx/dir"), { recursive: true });
  await fsp.writeFile(path.join(root, "r/ctx/dir/f"), "inside\n");
  await fsp.writeFile(path.join(root, "r/race.nifty"), "COPY ctx/dir /srv/dir\n");
  const f = path.join(root, "r/ctx/dir/f");
  const flipper = spawn(
    "bash",
    [
      "-c",
      `while :; do ln -sfn "$S" "$F.l"; mv -Tf "$F.l" "$F"; printf 'inside\\n' > "$F.n"; mv -Tf "$F.n" "$F"; done`,
    ],
    { env: { ...process.env, S: secret, F: f }, stdio: "ignore" },
  );
  const counts = { built: 0, refused: 0, leaked: 0, internal: 0 };
  try {
    for (let i = 0; i < runs; i++) {
      const dir = path.join(root, `b${i}`);
      try {
        const result = await build({
          recipePath: path.join(root, "r/race.nifty"),
          epoch: 0,
          cacheDir: path.join(dir, "cache"),
          outDir: () => path.join(dir, "out"),
          now: new Date(0),
          mirrors: async () => ({}),
          formats: ["rootfs"],
          offline: true,
        });
        counts.built++;
        const tar = await fsp.readFile(result.rootfs);
        if (tar.includes("HOST SECRET")) counts.leaked++;
      } catch (error) {
        if (error instanceof BuildFailed) counts.refused++;
        else counts.internal++;
      }
      await fsp.rm(dir, { recursive: true, force: true });
    }
  } finally {
    flipper.kill("SIGKILL");
    await fsp.rm(root, { recursive: true, force: true });
  }
  return `| COPY while a file flips to a symlink to a host file (${runs} builds) | ${counts.built} built, ${counts.refused} refused (NIFTY800), ${counts.leaked} with the host file, ${counts.internal} internal errors |`;
}

/** Run bin/niftyc to its end, or SIGKILL it after `killAfterMs`; its exit code or signal and output. */
function niftyc(
  args: string[],
  killAfterMs?: number,
): Promise<{
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [path.join(ROOT, "bin/niftyc"), ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer =
      killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/**
 * Builds killed with SIGKILL at a random moment, one after another on one store and one output
 * directory: afterwards `cache verify` finds nothing damaged and a build to the end gives the digest
 * of a build on a fresh store. Three runs in four start without the store's step and output records
 * (its blobs stay), so they run every step and write every output again: the kills land in work,
 * not in an up-to-date check.
 */
async function killRuns(runs: number): Promise<string> {
  const { startMirror } = await import("../bench/mirror.ts");
  const mirror = await startMirror();
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-kill-"));
  try {
    const pw = path.join(root, "pw");
    await fsp.writeFile(pw, "killed builds\n");
    const args = (cache: string, out: string) => [
      "build",
      "recipes/ssh.nifty",
      "--cache",
      cache,
      "--out",
      out,
      "--mirror",
      `debian=${mirror.url}`,
      "--mirror",
      `debian-security=${mirror.url}`,
      "--secret",
      `luser-password=${pw}`,
      "--json",
      "-q",
    ];
    const reference = await niftyc(args(path.join(root, "fresh-cache"), path.join(root, "fresh-out")));
    if (reference.code !== 0) throw new Error(`the reference build failed:\n${reference.stderr}`);
    const digest = (JSON.parse(reference.stdout) as { digest: string }).digest;
    const cache = path.join(root, "cache");
    const out = path.join(root, "out");
    const { WARM_RECORDS } = await import("../bench/mirror.ts");
    const dropRecords = async () => {
      for (const records of WARM_RECORDS)
        await fsp.rm(path.join(cache, records), { recursive: true, force: true });
    };
    // How long each kind of run takes when nothing kills it: a kill lands anywhere in that time.
    const first = await niftyc(args(cache, out));
    await dropRecords();
    const again = await niftyc(args(cache, out));
    const upToDate = await niftyc(args(cache, out));
    if ([first, again, upToDate].some((r) => r.code !== 0))
      throw new Error("a build that nothing killed failed");
    const counts = { killed: 0, finished: 0, failed: 0 };
    let firstFailure = "";
    for (let i = 0; i < runs; i++) {
      // The first tenth on an empty store (killed while fetching), then three in four without records.
      const kind = i < runs / 10 ? "cold" : i % 4 !== 3 ? "steps" : "warm";
      if (kind === "cold") await fsp.rm(cache, { recursive: true, force: true });
      if (kind === "steps") await dropRecords();
      const window = kind === "cold" ? first.ms : kind === "steps" ? again.ms : upToDate.ms;
      const run = await niftyc(args(cache, out), Math.random() * window);
      if (run.signal === "SIGKILL") counts.killed++;
      else if (run.code === 0 && (JSON.parse(run.stdout) as { digest: string }).digest === digest)
        counts.finished++;
      else {
        counts.failed++;
        firstFailure ||= run.stderr.split("\n")[0] ?? "";
      }
    }
    const verify = await niftyc(["cache", "verify", "--cache", cache, "--json"]);
    const corrupt =
      verify.code === 0 ? 0 : (JSON.parse(verify.stdout) as { corrupt: unknown[] }).corrupt.length;
    const last = await niftyc(args(cache, out));
    const same = last.code === 0 && (JSON.parse(last.stdout) as { digest: string }).digest === digest;
    return `| recipes/ssh.nifty built ${runs} times on one store and one --out, each SIGKILLed at a random moment within such a build's time (a tenth on an empty store, then 3 in 4 without step and output records) | ${counts.killed} killed, ${counts.finished} finished first, ${counts.failed} failed${firstFailure ? ` (first: ${firstFailure})` : ""}; cache verify: ${corrupt} damaged blobs; the next build: ${same ? "the fresh store's digest" : `FAILED (${last.stderr.split("\n")[0]})`} |`;
  } finally {
    await mirror.close();
    await fsp.rm(root, { recursive: true, force: true });
  }
}

async function fuzz(runs: number): Promise<string> {
  const valid = [
    "DIR /srv",
    "FILE /etc/motd <<EOF\nhi\nEOF",
    "ARG A=x",
    "ENV B=${A}",
    "INITTAB once /bin/sh",
    "USER u HOME /home/u",
    "LABEL a=b",
    "BIND RO /x",
  ];
  const fragments = [
    "${",
    "}",
    '"',
    "'",
    "\\",
    "\n",
    "\r",
    "\x1b",
    "\x00",
    "<<EOF",
    "EOF",
    "#",
    ":",
    "$A",
    "${A:-x}",
    "é",
    "\u{1F600}",
  ];
  const { recipe, mutated } = recipeArbitraries(valid, fragments);
  let crashes = 0;
  const started = performance.now();
  const samples = [...fc.sample(recipe, Math.ceil(runs / 2)), ...fc.sample(mutated, Math.floor(runs / 2))];
  for (const text of samples) {
    try {
      await checkSource({ path: "fuzz.nifty", text }, { args: new Map([["A", "a\nb"]]), strict: false });
    } catch {
      crashes++;
    }
  }
  const s = ((performance.now() - started) / 1000).toFixed(1);
  return `| Generated and mutated recipes through parse and check (${runs.toLocaleString("en-US")}) | ${crashes} crashes, ${s} s |`;
}

async function bomb(): Promise<string> {
  // A tar whose one member is 5 GiB of zeros, zstd-compressed to a few hundred KB.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bomb-"));
  try {
    const archive = path.join(dir, "bomb.tar.zst");
    const { default: tarStream } = await import("tar-stream");
    const { createZstdCompress } = await import("node:zlib");
    const { pipeline } = await import("node:stream/promises");
    const { createWriteStream } = await import("node:fs");
    const pack = tarStream.pack();
    const done = pipeline(pack, createZstdCompress(), createWriteStream(archive));
    const { Readable } = await import("node:stream");
    const entry = pack.entry({ name: "big", size: 5 * 1024 ** 3 });
    const zeros = Buffer.alloc(1 << 20);
    await pipeline(
      Readable.from(
        (function* () {
          for (let i = 0; i < 5 * 1024; i++) yield zeros;
        })(),
      ),
      entry as unknown as NodeJS.WritableStream,
    );
    pack.finalize();
    await done;
    const size = (await fsp.stat(archive)).size;
    const { openStore } = await import("../src/cache/store.ts");
    const { extractMember } = await import("../src/fetch/archive.ts");
    const started = performance.now();
    const code = await extractMember(await openStore(path.join(dir, "cache")), archive, "big").then(
      () => "extracted",
      (e: { code?: string }) => e.code ?? "error",
    );
    return `| A ${Math.round(size / 1024)} KB zstd tarball announcing a 5 GiB member, default limits | ${code} in ${(performance.now() - started).toFixed(0)} ms, nothing stored |`;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** How each run's row begins, to keep it when another run is measured alone. */
const ROW_NAMES = {
  copy: /^\| COPY /,
  fuzz: /^\| Generated /,
  bomb: /^\| A \d+ KB zstd/,
  drain: /xz/,
  kill: /^\| recipes\/ssh\.nifty built /,
} as const;

const RUNS = {
  copy: () => copyRace(Number(values.copy)),
  fuzz: () => fuzz(Number(values.fuzz)),
  bomb,
  drain: xzDrain,
  kill: () => killRuns(Number(values.kill)),
} as const;
const chosen =
  values.only === undefined
    ? (Object.keys(RUNS) as Array<keyof typeof RUNS>)
    : [values.only as keyof typeof RUNS];
if (chosen.some((name) => !(name in RUNS)))
  throw new Error(`--only takes one of ${Object.keys(RUNS).join(", ")}`);
const fresh = new Map<string, string>();
for (const name of chosen) fresh.set(name, await RUNS[name]());
const file = path.join(ROOT, "docs/security.md");
const text = await fsp.readFile(file, "utf8");
const open = "<!-- hostile:figures -->";
const close = "<!-- /hostile:figures -->";
const start = text.indexOf(open);
const end = text.indexOf(close);
if (start < 0 || end < start) throw new Error("docs/security.md has no figures markers");
// With --only, the other runs keep their last rows; a row is known by its run's name in the first cell.
const kept = text
  .slice(start + open.length, end)
  .split("\n")
  .filter((l) => /^\| (?!Run |---)/.test(l));
const rowOf = (name: string) => kept.find((l) => ROW_NAMES[name as keyof typeof RUNS].test(l));
const rows = (Object.keys(RUNS) as Array<keyof typeof RUNS>)
  .map((name) => fresh.get(name) ?? rowOf(name))
  .filter((r): r is string => r !== undefined);
const body = [
  "| Run | Result |",
  "| --- | --- |",
  ...rows,
  "",
  `Measured with Node ${process.versions.node} on ${os.cpus()[0]?.model.trim() ?? "unknown CPU"}, ${new Date().toISOString().slice(0, 10)}${values.only === undefined ? "" : ` (the ${values.only} row; the others as last measured)`}.`,
].join("\n");
await fsp.writeFile(
  file,
  text.slice(0, start) + `${open}\n${body}\n${close}` + text.slice(end + close.length),
);
console.log(body);
