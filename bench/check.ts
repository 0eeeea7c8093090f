// How fast `niftyc check` is: its start-up on recipes/ssh.nifty beside
// `niftyc --version` (child processes in alternating rounds, wall and CPU
// time), and parse + check of a generated 10,000-line valid recipe.
// Run: npx node bench/check.ts [--rounds N] [--baseline <other tree>/bin/niftyc]
// Writes its figures into the "Checker" section of docs/performance.md.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import os, { cpus } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { median, NODE, ROOT, writeSection, option, type Run as UtilRun } from "./util.ts";

const ROUNDS = Number(option("--rounds") ?? 15);
/** Another tree's bin/niftyc (e.g. a checkout of the commit before a change): it joins every round. */
const BASELINE = option("--baseline") === undefined ? undefined : path.resolve(option("--baseline")!);
const HOOK = path.join(ROOT, "test/pipeline/record-loads.ts");

/** One run's wall time and CPU time (user + system), both in ms: bash measures no peak RSS. */
type Run = Pick<UtilRun, "ms" | "cpuMs">;

/**
 * Runs a command through bash, which times it: EPOCHREALTIME around it, and
 * its children's CPU time from `times` (1 ms resolution; /usr/bin/time's is
 * 10 ms, coarse beside a 35 ms `--version`).
 */
function timedRun(args: readonly string[]): Run {
  const script = 's=$EPOCHREALTIME; "$@" > /dev/null; e=$EPOCHREALTIME; echo "$s $e"; times';
  const out = execFileSync("bash", ["-c", script, "bash", NODE, ...args], { cwd: ROOT, encoding: "utf8" });
  const [wall, , children] = out.trim().split("\n") as [string, string, string];
  const [start, end] = wall.split(" ").map(Number) as [number, number];
  const seconds = children.split(" ").map((t) => {
    const [, min, sec] = /^(\d+)m([\d.]+)s$/.exec(t) ?? [];
    return Number(min) * 60 + Number(sec);
  });
  return { ms: (end - start) * 1000, cpuMs: (seconds[0]! + seconds[1]!) * 1000 };
}

interface StartUp {
  version: Run[];
  check: Run[];
  /** Modules (files) each command loads, counted by the test suite's load hook. */
  modules: { version: number; check: number };
}

const COMMANDS = { version: ["--version"], check: ["check", "recipes/ssh.nifty"] } as const;

function modulesLoaded(niftyc: string, args: readonly string[]): number {
  const list = path.join(os.tmpdir(), `niftyc-bench-loads-${process.pid}`);
  execFileSync(NODE, ["--import", HOOK, niftyc, ...args], {
    cwd: ROOT,
    env: { ...process.env, NIFTY_TEST_LOADS: list },
    stdio: "ignore",
  });
  const files = readFileSync(list, "utf8")
    .split("\n")
    .filter((u) => u.startsWith("file://"));
  rmSync(list, { force: true });
  return files.length;
}

/** `--version` and `check` of each tree, alternating within each round; one run of each first fills the compile cache. */
function startUps(trees: readonly string[]): StartUp[] {
  const results = trees.map((niftyc) => ({
    version: [] as Run[],
    check: [] as Run[],
    modules: {
      version: modulesLoaded(niftyc, COMMANDS.version),
      check: modulesLoaded(niftyc, COMMANDS.check),
    },
  }));
  for (let round = -1; round < ROUNDS; round++)
    for (const [i, niftyc] of trees.entries())
      for (const what of ["version", "check"] as const) {
        const run = timedRun([niftyc, ...COMMANDS[what]]);
        if (round >= 0) results[i]![what].push(run);
      }
  return results;
}

const loadAtStart = os.loadavg()[0]!.toFixed(1);
const trees = [path.join(ROOT, "bin/niftyc"), ...(BASELINE === undefined ? [] : [BASELINE])];
const startUp = startUps(trees);
const load = `${loadAtStart} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end`;

function startUpRows(name: string, r: StartUp): string {
  const wall = (runs: readonly Run[]) => median(runs.map((x) => x.ms));
  const cpu = (runs: readonly Run[]) => median(runs.map((x) => x.cpuMs));
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  return [
    `| ${name}: \`niftyc --version\` | ${ms(wall(r.version))} | ${ms(cpu(r.version))} | ${r.modules.version} |`,
    `| ${name}: \`niftyc check recipes/ssh.nifty\` | ${ms(wall(r.check))} | ${ms(cpu(r.check))} | ${r.modules.check} |`,
    `| ${name}: check ÷ --version | ${(wall(r.check) / wall(r.version)).toFixed(2)}× | ${(cpu(r.check) / cpu(r.version)).toFixed(2)}× | |`,
  ].join("\n");
}

const LINES = 10_000;
const RUNS = 15;
const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

/** A valid recipe with the mix of a real one: binaries, links, files, accounts, init lines, metadata. */
function recipe(lines: number): string {
  const out = [
    "# Generated for bench/check.ts",
    "ARG POOL=debian:pool/main",
    "ARG PORT=2200",
    `FETCH busybox \${POOL}/b/busybox/busybox-static_amd64.deb \\`,
    `      ${DIGEST} \\`,
    "      EXTRACT bin/busybox TO /bin/busybox",
    "LINK /bin/busybox APPLETS",
    "SYMLINK /sbin bin",
    `FETCH dropbearkey https://mirror.example.test/dropbearkey ${DIGEST} TO /bin/dropbearkey`,
    "GROUP wheel GID 10",
    "KEYGEN dropbear ed25519",
    "ENV LANG=C.UTF-8",
  ];
  let i = 0;
  while (out.length < lines) {
    i++;
    switch (i % 12) {
      case 0:
        out.push(
          `# step ${i}`,
          `FETCH tool${i} https://mirror.example.test/tool-${i}.tar.gz \\`,
          `      ${DIGEST} EXTRACT bin/tool TO /opt/tools/tool${i} MODE 0755`,
        );
        break;
      case 1:
        out.push(
          `FILE /etc/motd.d/${i} MODE 0644 <<EOF`,
          `Welcome to \${HOSTNAME:-nifty} on port \${PORT}, step ${i}`,
          "EOF",
        );
        break;
      case 2:
        out.push(
          `USER user${i} UID ${10000 + i} HOME /home/user${i} SHELL /bin/sh GROUPS wheel \\`,
          `     PASSWORD-HASH '!'`,
        );
        break;
      case 3:
        out.push(`DIR /var/lib/app${i} /var/cache/app${i} MODE 0750 OWNER user${i - 1}:user${i - 1}`);
        break;
      case 4:
        out.push(`ENV APP${i}=/var/lib/app${i - 1} PATH=/usr/sbin:/usr/bin:/sbin:/bin`);
        break;
      case 5:
        out.push(`SYMLINK /opt/links/applet${i} /bin/busybox`, "");
        break;
      case 6:
        out.push(`LABEL org.example.step="${i}" org.example.note="quoted \\"text\\" for \${APP${i - 2}}"`);
        break;
      case 7:
        out.push(`INITTAB respawn /bin/dropbear -F -w -p \${PORT} -P /run/dropbear${i}.pid`);
        break;
      case 8:
        out.push(`GROUP group${i}`, `LINK /bin/busybox ls${i} cat${i} IN /opt/bin${i}`);
        break;
      case 9:
        out.push(`COPY check.ts /opt/bench/check-${i}.ts MODE 0644 OWNER root:group${i - 1}`);
        break;
      case 10:
        out.push(`EXPOSE ${1024 + i}/tcp ${1024 + i}/udp`, `BIND RO /srv/share${i}:/mnt/share${i}`);
        break;
      default:
        out.push(
          `INITTAB once TTY console /bin/sh -c 'echo $APP${i - 7} > /dev/console'`,
          "HOSTNAME nifty",
          "STOPSIGNAL SIGUSR2",
        );
    }
  }
  return `${out.slice(0, lines).join("\n")}\n`;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

const text = recipe(LINES);
// Beside this script, so COPY check.ts finds its source.
const source = { path: fileURLToPath(new URL("check.nifty", import.meta.url)), text };
const options = { args: new Map<string, string>(), strict: false };

const coldStart = performance.now();
const { checkSource } = await import("../src/check/source.ts");
const first = await checkSource(source, options);
const cold = performance.now() - coldStart;
if (first.recipe === undefined || first.diagnostics.length > 0) {
  throw new Error(
    `the bench recipe has diagnostics: ${first.diagnostics
      .slice(0, 3)
      .map((d) => `${d.span?.start.line}: ${d.message}`)
      .join("; ")}`,
  );
}

// The checker alone, on an already parsed tree.
const { parseNiftyfile } = await import("../grammar/parse.ts");
const { checkTree } = await import("../src/check/check.ts");
const parsed = parseNiftyfile(source);

for (let i = 0; i < 3; i++) await checkSource(source, options);
const times: number[] = [];
const checkOnly: number[] = [];
for (let i = 0; i < RUNS; i++) {
  let t0 = performance.now();
  await checkSource(source, options);
  times.push(performance.now() - t0);
  t0 = performance.now();
  checkTree(parsed.tree, options);
  checkOnly.push(performance.now() - t0);
}
const warm = median(times);

const section = `## Checker

\`npx node bench/check.ts\`: start-up first. \`niftyc check recipes/ssh.nifty\` beside \`niftyc --version\`,
each a child process of \`${path.relative(ROOT, NODE)}\`, in ${ROUNDS} alternating rounds${BASELINE === undefined ? "" : ` with the baseline's (\`${BASELINE}\`)`}
after one run of each to fill Node's compile cache; medians; wall and CPU time (user + system) as bash
measures them (\`EPOCHREALTIME\`, \`times\`); load average ${load}.

| Command | Wall | CPU time | Modules loaded |
| --- | --- | --- | --- |
${startUp.map((r, i) => startUpRows(i === 0 ? "this tree" : "baseline", r)).join("\n")}

Then \`checkSource\` (parse and check, what \`niftyc check\` runs) on a valid
generated recipe of ${LINES.toLocaleString("en")} lines (${(text.length / 1024).toFixed(0)} KiB, ${first.recipe.instructions.length.toLocaleString("en")} instructions: every kind, with
continued lines, heredocs, variables, ${first.recipe.instructions.filter((i) => i.kind === "USER").length} users and COPY sources read from disk).

| Measure | Time |
| --- | --- |
| cold: first run, including loading the parser and checker | ${ms(cold)} |
| warm: median of ${RUNS} runs after 3 warm-up runs | ${ms(warm)} |
| warm: fastest run | ${ms(Math.min(...times))} |
| warm: checker alone (\`checkTree\` on a parsed tree), median | ${ms(median(checkOnly))} |
| warm: throughput | ${Math.round(LINES / (warm / 1000)).toLocaleString("en")} lines/s |

Measured with Node ${process.versions.node} on ${cpus()[0]?.model.trim() ?? "an unknown CPU"}. Target: well under a second.`;

await writeSection("check", section);
console.log(section);
