// Where a cold build's time goes: recipes/ssh.nifty built with its inputs
// already in the store (the .debs and their unpacked contents) but no step,
// outputs or assembled records and none of the blobs they name, so every step
// runs and every output is written, without the network. Each run gets its
// own store, hard-linked from one seeded store, so runs are repeatable.
// Reports each stage's time (the build's --json `stages`), the steps' own
// times, peak RSS, and the self time of a V8 CPU profile (--cpu-prof) by module.
// Run: npx node bench/cold.ts [--runs N]
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { GZIP_LEVEL } from "../src/emit/digest-stream.ts";
import { coldStore, inputDigests, sshBuildArgs, startMirror } from "./mirror.ts";
import { fmtMb, fmtMs, machine, median, NODE, ROOT, timed, writeSection, option } from "./util.ts";

const execFileP = promisify(execFile);
const RUNS = Number(option("--runs") ?? 7);

interface BuildJson {
  steps: Array<{ ms: number }>;
  stages: Array<{ name: string; ms: number }>;
}

interface Profile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }>;
  samples: number[];
  timeDeltas: number[];
}

/** Self time by module (niftyc's files by path, node_modules by package, Node's own as one row). */
function bySource(profile: Profile): Array<{ where: string; ms: number }> {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)!.callFrame;
    const url = frame.url.replace(/^file:\/\//, "");
    let where: string;
    if (url === "")
      where =
        frame.functionName === "(garbage collector)"
          ? "(garbage collector)"
          : frame.functionName.startsWith("(")
            ? frame.functionName
            : "(native)";
    else if (url.startsWith("node:")) where = "Node's own modules";
    else if (url.includes("/node_modules/"))
      where = `node_modules/${url.split("/node_modules/").at(-1)!.split("/")[0]}`;
    else where = path.relative(ROOT, url);
    totals.set(where, (totals.get(where) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...totals].map(([where, ms]) => ({ where, ms })).sort((a, b) => b.ms - a.ms);
}

const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-cold-"));
const mirror = await startMirror();
try {
  await fsp.writeFile(path.join(work, "pw"), "bench-password\n");
  const seed = path.join(work, "seed");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_COMPILE_CACHE: path.join(work, "node-compile-cache"),
  };
  const args = (out: string, cache: string, extra: string[] = []) => [
    ...extra,
    ...sshBuildArgs({ out, cache, passwordFile: path.join(work, "pw"), mirror: mirror.url }),
    "--json",
  ];
  await execFileP(NODE, args(path.join(work, "seed-out"), seed), { env });
  const inputs = await inputDigests(seed);

  const runs: Array<{ ms: number; cpu: number; rss: number; json: BuildJson }> = [];
  for (let i = 0; i < RUNS; i++) {
    const cache = path.join(work, "cache");
    await coldStore(seed, cache, inputs);
    await fsp.rm(path.join(work, "out"), { recursive: true, force: true });
    const json = path.join(work, "build.json");
    const run = await timed(
      "/bin/sh",
      ["-c", `exec "$0" "$@" > ${json}`, NODE, ...args(path.join(work, "out"), cache)],
      { env },
    );
    runs.push({
      ms: run.ms,
      cpu: run.cpuMs,
      rss: run.maxRssKb,
      json: JSON.parse(await fsp.readFile(json, "utf8")) as BuildJson,
    });
  }
  // One more, profiled (not counted in the times: the profiler slows it).
  const profDir = path.join(work, "prof");
  await coldStore(seed, path.join(work, "cache"), inputs);
  await fsp.rm(path.join(work, "out"), { recursive: true, force: true });
  await execFileP(
    NODE,
    args(path.join(work, "out"), path.join(work, "cache"), ["--cpu-prof", "--cpu-prof-dir", profDir]),
    { env },
  );
  const [profFile] = await fsp.readdir(profDir);
  const profile = JSON.parse(await fsp.readFile(path.join(profDir, profFile!), "utf8")) as Profile;
  const sources = bySource(profile);
  const profiled = sources.reduce((a, s) => a + s.ms, 0);

  // gzip levels on this image's two layer tars, in process (zlib's deflate, as the build runs it).
  const [record] = await fsp.readdir(path.join(seed, "outputs"));
  const layers = (
    JSON.parse(await fsp.readFile(path.join(seed, "outputs", record!), "utf8")) as {
      record: { layers: Array<{ digest: string }> };
    }
  ).record.layers;
  const tars = await Promise.all(
    layers.map((l) => fsp.readFile(path.join(seed, "blobs/sha256", l.digest.slice(7)))),
  );
  const rawBytes = tars.reduce((a, b) => a + b.length, 0);
  // CPU time, not wall time (other work on the machine moves wall time far more), levels interleaved.
  const levels = [1, 2, 3, 4, 5, 6, 9].map((level) => ({ level, bytes: 0, times: [] as number[], ms: 0 }));
  for (let r = 0; r < 7; r++) {
    for (const l of levels) {
      const started = process.cpuUsage();
      l.bytes = tars.reduce(
        (a, tar) => a + gzipSync(tar, { level: l.level, memLevel: 8, windowBits: 15 }).length,
        0,
      );
      const used = process.cpuUsage(started);
      l.times.push((used.user + used.system) / 1000);
    }
  }
  for (const l of levels) l.ms = median(l.times);
  const six = levels.find((l) => l.level === 6)!;

  const stageNames = runs[0]!.json.stages.map((s) => s.name);
  const stageRows = stageNames.map(
    (name) =>
      `| ${name} | ${fmtMs(median(runs.map((r) => r.json.stages.find((s) => s.name === name)?.ms ?? 0)))} |`,
  );
  const inBuild = median(runs.map((r) => r.json.stages.reduce((a, s) => a + s.ms, 0)));
  const wall = median(runs.map((r) => r.ms));
  const stepsMs = median(runs.map((r) => r.json.steps.reduce((a, s) => a + s.ms, 0)));
  const body = `## Cold build, stage by stage

\`npx node bench/cold.ts\`: \`recipes/ssh.nifty\` (default formats) with its inputs in the store (the .debs and
their unpacked contents) and no step, outputs or assembled records nor the blobs they name: every step runs,
every output is written, nothing is downloaded. Each run has its own store, hard-linked from one seeded
store. Median of ${RUNS} runs through \`bin/niftyc --json\` (its \`stages\`), each a child process timed from spawn to exit.

| Stage | Time |
| --- | --- |
${stageRows.join("\n")}
| **all stages** | **${fmtMs(inBuild)}** |
| start-up, argument parsing, loading the CLI and build modules, exit | ${fmtMs(wall - inBuild)} |
| **wall** | **${fmtMs(wall)}** (CPU time ${fmtMs(median(runs.map((r) => r.cpu)))}, peak RSS ${fmtMb(Math.max(...runs.map((r) => r.rss)))}) |

The steps' own times (their \`--json\` \`ms\`, inside "steps") add up to ${fmtMs(stepsMs)}.

Self time of one profiled run (\`node --cpu-prof\`, ${fmtMs(profiled)} sampled), by module, top 12:

| Where | Self time |
| --- | --- |
${sources
  .slice(0, 12)
  .map((s) => `| ${s.where} | ${fmtMs(s.ms)} |`)
  .join("\n")}

gzip of the two layer tars (${(rawBytes / 1048576).toFixed(1)} MiB), each level in process, CPU time, median of 7 rounds (the build uses
level ${GZIP_LEVEL}, \`GZIP_LEVEL\` in src/emit/digest-stream.ts):

| Level | Compressed | vs level 6 | CPU time | vs level 6 |
| --- | --- | --- | --- | --- |
${levels.map((l) => `| ${l.level}${l.level === GZIP_LEVEL ? " (used)" : ""} | ${(l.bytes / 1048576).toFixed(2)} MiB | ${((l.bytes / six.bytes - 1) * 100).toFixed(1)}% | ${fmtMs(l.ms)} | ${(l.ms / six.ms).toFixed(2)}× |`).join("\n")}

Measured with ${machine()}, load average ${os.loadavg()[0]!.toFixed(1)} (other work may share the machine).`;
  await writeSection("cold", body);
  process.stdout.write(body + "\n");
} finally {
  await mirror.close();
  await fsp.rm(work, { recursive: true, force: true });
}
