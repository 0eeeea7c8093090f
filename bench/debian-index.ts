// Debian index benchmark: the real bookworm main Packages.xz (63k stanzas,
// 50 MB unpacked), fetched through this machine's apt mirror and verified
// against the signed InRelease, then parsed cold (xz + deb822 → records),
// and loaded warm from the store's cached parse. The cached form niftyc uses
// (ASCII JSON of rows and string tables) is measured against the obvious
// alternative, JSON of the record objects. Each measurement runs in its own
// process, so peak RSS is its own.
// Run: npx node bench/debian-index.ts [--runs N] [--cache DIR] [--no-write]
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fmtMb, fmtMs, machine, median, NODE, timed, writeSection, option } from "./util.ts";

const MAIN = { archive: "debian", suite: "bookworm", component: "main" };

// Child mode: do one thing, write how long it took (inside the process) to a file.
if (process.argv[2] === "--child") {
  const [, , , what, storeDir, indexDigest, out] = process.argv as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const { openStore } = await import("../src/cache/store.ts");
  const index = await import("../src/debian/index.ts");
  const store = await openStore(storeDir);
  const started = performance.now();
  let count = 0;
  if (what === "cold")
    count = (await index.parsePackagesFile(store.blobPath(indexDigest), "xz", MAIN, "bookworm main")).length;
  if (what === "xz-only") {
    let bytes = 0;
    for await (const chunk of await index.openIndex(store.blobPath(indexDigest), "xz")) bytes += chunk.length;
    count = bytes > 0 ? -1 : 0;
  }
  if (what === "warm") count = (await index.readParsedIndex(store, indexDigest, MAIN))!.length;
  if (what === "json-objects") {
    const records = JSON.parse(await fsp.readFile(path.join(storeDir, "bench-objects.json"), "utf8")) as {
      from?: unknown;
    }[];
    for (const r of records) r.from = MAIN;
    count = records.length;
  }
  await fsp.writeFile(out, JSON.stringify({ ms: performance.now() - started, count }));
  process.exit(0);
}

const RUNS = Number(option("--runs") ?? 5);
const { openStore } = await import("../src/cache/store.ts");
const { loadMirrors } = await import("../src/fetch/mirrors.ts");
const { fetchRelease } = await import("../src/debian/release.ts");
const { fetchPackagesIndex, parsePackagesFile, writeParsedIndex } = await import("../src/debian/index.ts");

const storeDir = path.resolve(
  option("--cache") ?? (await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-index-"))),
);
const store = await openStore(storeDir);
const mirrors = await loadMirrors({});
let started = performance.now();
const release = await fetchRelease(store, MAIN, { mirrors, now: new Date() });
const verifyMs = performance.now() - started;
// This bench measures the xz index (niftyc itself now picks the .gz one: docs/performance.md).
const xzFile = release.files.find((f) => f.path === "main/binary-amd64/Packages.xz")!;
const file = { ...xzFile, compression: "xz" as const };
started = performance.now();
const blob = await fetchPackagesIndex(store, release, file);
const downloadMs = performance.now() - started;
const records = await parsePackagesFile(blob.path, "xz", MAIN, "bookworm main");
const lean = (await fsp.stat(store.blobPath(await writeParsedIndex(store, file.sha256, records)))).size;
const objects = JSON.stringify(records.map(({ from: _from, ...r }) => r));
await fsp.writeFile(path.join(storeDir, "bench-objects.json"), objects);

async function measure(what: string): Promise<{ wall: number; inside: number; rssKb: number }> {
  const wall: number[] = [];
  const inside: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = path.join(storeDir, `bench-${what}-${i}.json`);
    const run = await timed(NODE, [import.meta.filename, "--child", what, storeDir, file.sha256, out]);
    const result = JSON.parse(await fsp.readFile(out, "utf8")) as { ms: number; count: number };
    if (result.count !== records.length && !(what === "xz-only" && result.count === -1))
      throw new Error(`${what} gave ${result.count} records, not ${records.length}`);
    wall.push(run.ms);
    inside.push(result.ms);
    rss.push(run.maxRssKb);
  }
  return { wall: median(wall), inside: median(inside), rssKb: median(rss) };
}

const cold = await measure("cold");
const xzOnly = await measure("xz-only");
const warm = await measure("warm");
const json = await measure("json-objects");
const load = os.loadavg()[0]!.toFixed(1);
const row = (name: string, size: string, m: { wall: number; inside: number; rssKb: number }) =>
  `| ${name} | ${size} | ${fmtMs(m.inside)} | ${fmtMs(m.wall)} | ${fmtMb(m.rssKb)} |`;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const body = `## Debian index

\`npx node bench/debian-index.ts\`: the real bookworm \`main/binary-amd64/Packages.xz\` (${mb(file.size)},
${records.length.toLocaleString("en")} stanzas) from this machine's apt mirror, pinned by the signed InRelease
(InRelease downloaded and verified with gpgv in ${fmtMs(verifyMs)}; index downloaded in ${fmtMs(downloadMs)}${blob.fromCache ? ", from the store" : ""}).
Median of ${RUNS} runs, each in a fresh process; "in process" excludes Node's start-up, peak RSS is the whole process.
Measured with ${machine()}, load average ${load} (other work shared the machine).

| What | Size read | In process | Wall | Peak RSS |
|---|---|---|---|---|
${row("cold: xz (lzma-native) + streaming deb822 parse", mb(file.size), cold)}
${row("of which: xz decompression alone (lzma-native)", mb(file.size), xzOnly)}
${row("warm: the stored form (niftyc-packages/2), every record decoded", mb(lean), warm)}
${row("alternative: JSON of the record objects", mb(Buffer.byteLength(objects)), json)}
`;
process.stdout.write(body);
if (!process.argv.includes("--no-write")) await writeSection("debian-index", body);
if (option("--cache") === undefined) await fsp.rm(storeDir, { recursive: true, force: true });
