// How soon an editor sees niftyc lsp's answers on a 1,000-line recipe, and
// whether its memory stays flat while the recipe is edited:
// - diagnostics: from each didChange (the whole text, a new edit number) to
//   the diagnostics published for that version, after warm-up;
// - completion: a request at a keyword position, after `${`, and on a PACKAGE
//   line (names from a store holding a parsed index of 60,000 packages), on a
//   document already checked and right after a keystroke;
// - memory: EDITS keystrokes (one-character edits, sent in bursts of 10, each
//   burst waited for until its diagnostics arrive), the server's VmRSS sampled
//   every 1,000.
// The server's CPU time comes from /proc/<pid>/stat: it is less disturbed by
// other work on a shared machine than the wall times.
// Run: npx node bench/lsp.ts [--edits N] [--cpu-prof DIR] [--no-write].
// Writes the "Language server" section of docs/performance.md.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { openStore } from "../src/cache/store.ts";
import { writeParsedIndex } from "../src/debian/index.ts";
import { serializeLock } from "../src/debian/lockfile.ts";
import type { PackageRecord } from "../src/debian/types.ts";
import { loadFrontEnd } from "../src/check/source.ts";
import { toLspDiagnostic } from "../src/lsp/features.ts";
import { hashText } from "../src/pipeline/keys.ts";
import { median, ROOT, writeSection } from "./util.ts";

const { values: flags } = parseArgs({
  options: {
    edits: { type: "string", default: "10000" },
    "cpu-prof": { type: "string" },
    "no-write": { type: "boolean", default: false },
  },
});
const LINES = 1_000;
const CHANGES = 30;
const COMPLETIONS = 20;
const PACKAGES = 60_000;
const EDITS = Number(flags.edits);
const BURST = 10;
const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

function recipe(lines: number, edit: number): string {
  const out = [
    "# Generated for bench/lsp.ts",
    "ARG PORT=2200",
    "ARCHIVE debian bookworm",
    "PACKAGE busybox-static FILES /bin/busybox",
  ];
  for (let i = 0; out.length < lines; i++) {
    out.push(
      `FETCH tool${i} https://mirror.example.test/tool-${i}.tar.gz \\`,
      `    ${DIGEST} EXTRACT bin/tool TO /opt/tools/tool${i} MODE 0755`,
      `USER user${i} UID ${10000 + i} HOME /home/user${i} SHELL /bin/sh`,
      `DIR /var/lib/app${i} MODE 0750 OWNER user${i}:user${i}`,
      `FILE /etc/motd.d/${i} MODE 0644 <<EOF`,
      `Welcome to \${HOSTNAME:-nifty} on port \${PORT}, edit ${edit}`,
      "EOF",
      `ENV APP${i}=/var/lib/app${i}`,
      `INITTAB respawn /bin/dropbear -F -p \${PORT}`,
      "",
    );
  }
  return `${out.slice(0, lines).join("\n")}\n`;
}

/** A store with a parsed index of PACKAGES names for debian bookworm, and the recipe's lock naming it. */
async function storeAndLock(dir: string, recipePath: string): Promise<string> {
  const storeDir = path.join(dir, "cache");
  const store = await openStore(storeDir);
  const from = { archive: "debian", suite: "bookworm", component: "main" };
  const prefixes = ["lib", "python3-", "golang-", "node-", "r-cran-"];
  const records: PackageRecord[] = [];
  for (let i = 0; i < PACKAGES; i++) {
    const name = `${prefixes[i % prefixes.length]}pkg${i}`;
    records.push({
      ...{ name, version: `1.${i}-1`, architecture: "amd64", depends: "", preDepends: "", provides: "" },
      ...{ filename: `pool/main/p/${name}.deb`, size: 1, sha256: `sha256:${"b".repeat(64)}`, from },
      description: `package number ${i}`,
    });
  }
  const indexDigest = `sha256:${"c".repeat(64)}`;
  await writeParsedIndex(store, indexDigest, records);
  const inRelease = `sha256:${"a".repeat(64)}`;
  await store.writeRecord("debian-release-index", hashText(inRelease, "main", "amd64"), {
    index: indexDigest,
  });
  const lock = serializeLock({
    architecture: "amd64",
    suites: [{ ...from, date: "Sat, 11 Jul 2026 10:16:37 UTC", inRelease }],
    requests: [],
    packages: [],
  });
  await writeFile(`${recipePath}.lock`, lock);
  return storeDir;
}

/** The stages of one change, in this process: the parse, the check of that parse, the diagnostics' conversion. */
async function stages(): Promise<Record<"parse" | "check" | "convert", [number, number]>> {
  const front = await loadFrontEnd();
  const times = { parse: [] as number[], check: [] as number[], convert: [] as number[] };
  for (let i = 0; i < 80; i++) {
    const source = { path: "/nowhere/bench.nifty", text: recipe(LINES, i) };
    const options = { args: new Map<string, string>(), strict: false, recipePath: source.path };
    let t = performance.now();
    const parsed = front.parse(source);
    times.parse.push(performance.now() - t);
    t = performance.now();
    const checked = front.checkParsed(source, parsed, options);
    times.check.push(performance.now() - t);
    t = performance.now();
    checked.diagnostics.map(toLspDiagnostic);
    times.convert.push(performance.now() - t);
  }
  const warm = (xs: number[]): [number, number] => [median(xs.slice(20)), Math.min(...xs.slice(20))];
  return { parse: warm(times.parse), check: warm(times.check), convert: warm(times.convert) };
}
const stage = await stages();

const dir = await mkdtemp(path.join(tmpdir(), "niftyc-bench-lsp-"));
const recipePath = path.join(dir, "bench.nifty");
const storeDir = await storeAndLock(dir, recipePath);
const profile = flags["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(flags["cpu-prof"])}`] : [];
const child = spawn(
  path.join(ROOT, "node_modules/.bin/node"),
  [...profile, path.join(ROOT, "bin/niftyc"), "lsp", "--cache", storeDir],
  { stdio: ["pipe", "pipe", "inherit"] },
);
const connection = createMessageConnection(
  new StreamMessageReader(child.stdout),
  new StreamMessageWriter(child.stdin),
);
const arrived = new Map<number, number>();
connection.onNotification("textDocument/publishDiagnostics", (p: { version?: number }) => {
  arrived.set(p.version ?? 0, performance.now());
});
connection.listen();
await connection.sendRequest("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
await connection.sendNotification("initialized", {});

/** User + system CPU time of the server, in ms (clock ticks of 10 ms). */
function cpuMs(): number {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(): number {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function until(version: number): Promise<number> {
  while (!arrived.has(version)) await new Promise((resolve) => setTimeout(resolve, 1));
  return arrived.get(version)!;
}

const uri = pathToFileURL(recipePath).href;
let version = 1;
let start = performance.now();
await connection.sendNotification("textDocument/didOpen", {
  textDocument: { uri, languageId: "niftyfile", version, text: recipe(LINES, 0) },
});
const open = (await until(version)) - start;

/** Each change the whole text with a new edit number, waited for until its diagnostics arrive. */
async function changes(count: number): Promise<{ wall: number[]; cpuEach: number }> {
  const wall: number[] = [];
  const cpuBefore = cpuMs();
  for (let i = 0; i < count; i++) {
    version++;
    start = performance.now();
    await connection.sendNotification("textDocument/didChange", {
      textDocument: { uri, version },
      contentChanges: [{ text: recipe(LINES, version) }],
    });
    wall.push((await until(version)) - start);
  }
  return { wall, cpuEach: (cpuMs() - cpuBefore) / count };
}
await changes(5); // warm-up
const rssBeforePackages = rssMb();
const diagnostics = await changes(CHANGES);

type Position = { line: number; character: number };
const AT: Record<string, Position> = {
  keyword: { line: 503, character: 0 },
  "after ${": { line: 509, character: "Welcome to ${".length },
  "package (prefix lib)": { line: 3, character: "PACKAGE lib".length },
};
/** The PACKAGE line of the recipe typed as `PACKAGE lib` so the package position has a prefix. */
function keystroke(line: number, character: number, text: string, removes = 0) {
  return {
    range: { start: { line, character }, end: { line, character: character + removes } },
    text,
  };
}
version++;
await connection.sendNotification("textDocument/didChange", {
  textDocument: { uri, version },
  contentChanges: [keystroke(3, 8, "lib", "busybox-static".length)],
});
await until(version);

async function completion(at: Position): Promise<number> {
  const t = performance.now();
  await connection.sendRequest("textDocument/completion", { textDocument: { uri }, position: at });
  return performance.now() - t;
}
const firstPackages = await completion(AT["package (prefix lib)"]!);
const completions: Array<{ what: string; checked: number; afterChange: number }> = [];
for (const [what, at] of Object.entries(AT)) {
  for (let i = 0; i < 3; i++) await completion(at); // warm-up
  const checked: number[] = [];
  const afterChange: number[] = [];
  for (let i = 0; i < COMPLETIONS; i++) checked.push(await completion(at));
  for (let i = 0; i < COMPLETIONS; i++) {
    // A keystroke on the first line (a comment), then the request at once, as an editor sends them.
    version++;
    await connection.sendNotification("textDocument/didChange", {
      textDocument: { uri, version },
      contentChanges: [keystroke(0, 1, i % 2 === 0 ? "x" : "", i % 2 === 0 ? 0 : 1)],
    });
    afterChange.push(await completion(at));
    await until(version);
  }
  completions.push({ what, checked: median(checked), afterChange: median(afterChange) });
}

/** EDITS keystrokes in bursts of BURST, typing and deleting on the comment line; RSS every 1,000. */
async function edits(): Promise<Array<{ edits: number; rss: number }>> {
  const samples = [{ edits: 0, rss: rssMb() }];
  for (let done = 0; done < EDITS; ) {
    for (let i = 0; i < BURST; i++, done++) {
      version++;
      const typing = done % 20 < 10;
      const column = 1 + (done % 10);
      await connection.sendNotification("textDocument/didChange", {
        textDocument: { uri, version },
        contentChanges: [typing ? keystroke(0, column, "x") : keystroke(0, 11 - column, "", 1)],
      });
    }
    await until(version);
    if (done % 1000 === 0) samples.push({ edits: done, rss: rssMb() });
  }
  return samples;
}
const memory = await edits();

await connection.sendRequest("shutdown");
await connection.sendNotification("exit");
connection.dispose();
await new Promise((resolve) => child.once("exit", resolve));
await rm(dir, { recursive: true, force: true });

const ms = (x: number) => `${x.toFixed(1)} ms`;
const both = ([mid, low]: [number, number]) => `${ms(mid)} (${ms(low)})`;
const section = `## Language server

\`npx node bench/lsp.ts\`: \`niftyc lsp\` as a child process driven over stdio (vscode-jsonrpc, as an
editor drives it), a generated ${LINES.toLocaleString("en")}-line recipe (fetches with continued lines, users,
heredocs, variables; 200 diagnostics found, 100 shown). Times run from sending the message to the
answer's arrival; the server's CPU time is from \`/proc/<pid>/stat\` (10 ms ticks, so per change it
is the mean over all of them).

| Measure | Time |
| --- | --- |
| didOpen → diagnostics (first check: loads the parser and checker) | ${ms(open)} |
| didChange → diagnostics, median of ${CHANGES} after 5 of warm-up | ${ms(median(diagnostics.wall))} |
| didChange → diagnostics, fastest | ${ms(Math.min(...diagnostics.wall))} |
| the server's CPU time per change (parse, check, diagnostics sent) | ${ms(diagnostics.cpuEach)} |
| in process: parse (\`loadFrontEnd().parse\`), median (fastest) of 60 after 20 | ${both(stage.parse)} |
| in process: check of that parse (\`checkParsed\`) | ${both(stage.check)} |
| in process: diagnostics to LSP's shape | ${both(stage.convert)} |
| first package completion (reads the index of ${PACKAGES.toLocaleString("en")} packages from the store) | ${ms(firstPackages)} |

Completion, median of ${COMPLETIONS} after 3 of warm-up, on a document already checked and right
after a keystroke (the request sent just after the didChange, before its diagnostics):

| Position | checked | after a keystroke |
| --- | --- | --- |
${completions.map((c) => `| ${c.what} | ${ms(c.checked)} | ${ms(c.afterChange)} |`).join("\n")}

The server's VmRSS after the warm-up changes, before package names were read: ${rssBeforePackages.toFixed(1)} MB.
Memory over ${EDITS.toLocaleString("en")} keystrokes (one-character edits of the first line, in bursts of
${BURST}, each burst's diagnostics waited for), the server's VmRSS:

| Keystrokes | ${memory.map((m) => m.edits.toLocaleString("en")).join(" | ")} |
| --- | ${memory.map(() => "---").join(" | ")} |
| VmRSS (MB) | ${memory.map((m) => m.rss.toFixed(1)).join(" | ")} |

Measured with Node ${process.versions.node} on ${cpus()[0]?.model.trim() ?? "an unknown CPU"} (${cpus().length} CPUs), load average ${loadavg()[0]!.toFixed(1)} at the end: the machine is shared with other work, which inflates the wall times.`;
if (!flags["no-write"]) await writeSection("lsp", section);
console.log(section);
