// Multi-platform build benchmark: recipes/ssh.nifty built for linux/amd64 alone and for
// linux/amd64,linux/arm64,linux/arm/v7, cold (empty cache) and warm (everything cached, fresh
// --out). Every section's .debs (ssh.nifty.lock: amd64, arm64, armhf) are served from a loopback
// mirror out of the pin store `node scripts/debian-pins.ts fetch` fills, so the runs need no
// internet and the cold runs measure niftyc, not the network.
// With --baseline <other tree>/bin/niftyc, that tree's cold builds (one platform and three) join each
// cold round, and their rows are shown beside these.
// Run: npx node bench/platforms.ts [--runs N] [--baseline path/to/bin/niftyc]
import { createReadStream, existsSync } from "node:fs";
import * as fsp from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { debianPins } from "../scripts/debian-pins.ts";
import { sshBuildArgs } from "./mirror.ts";
import { fmtMb, fmtMs, machine, median, NODE, ROOT, timed, writeSection, type Run, option } from "./util.ts";

const RUNS = Number(option("--runs") ?? 5);
const COLD_RUNS = Math.min(RUNS, 3);
const STORE = path.join(ROOT, "cache", "blobs", "sha256");
const THREE = "linux/amd64,linux/arm64,linux/arm/v7";
const BASELINE = option("--baseline") !== undefined ? path.resolve(option("--baseline")!) : undefined;

/** A loopback mirror answering pool/… paths of every recipe's locks from the pin store. */
async function pinMirror(): Promise<{ url: string; close(): Promise<void> }> {
  const files = new Map<string, string>();
  for (const pin of await debianPins()) {
    const file = path.join(STORE, pin.digest.slice("sha256:".length));
    if (!existsSync(file))
      throw new Error(`${pin.path} is not in the pin store: run node scripts/debian-pins.ts fetch`);
    files.set(`/${pin.path}`, file);
  }
  const server = http.createServer((req, res) => {
    const file = files.get(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/vnd.debian.binary-package" });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-platforms-"));
const mirror = await pinMirror();

function args(
  out: string,
  cache: string,
  platforms: string | undefined,
  niftyc = path.join(ROOT, "bin/niftyc"),
): string[] {
  return [
    ...sshBuildArgs({ out, cache, passwordFile: path.join(work, "pw"), mirror: mirror.url, niftyc }),
    "--locked",
    "-q",
    ...(platforms === undefined ? [] : ["--platform", platforms]),
  ];
}

const env = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  NODE_COMPILE_CACHE: path.join(work, "node-compile-cache"),
});

/** The cache a warm series starts from: filled by one build, then only read by the warm runs. */
async function filled(name: string, platforms: string | undefined): Promise<string> {
  const cache = path.join(work, `${name}-cache`);
  await timed(NODE, args(path.join(work, `${name}-first`), cache, platforms), { env: env() });
  return cache;
}

/**
 * Cold runs (each its own empty cache), then warm runs (the filled cache, a fresh --out each), one
 * platform's and three platforms' runs taking turns, so a change in the machine's load over the
 * bench weighs on both alike.
 */
async function measure(): Promise<
  Record<"one" | "three" | "baseOne" | "baseThree", { cold: Run[]; warm: Run[] }>
> {
  const sets = { one: undefined, three: THREE } as const;
  const runs = {
    one: { cold: [] as Run[], warm: [] as Run[] },
    three: { cold: [] as Run[], warm: [] as Run[] },
    baseOne: { cold: [] as Run[], warm: [] as Run[] },
    baseThree: { cold: [] as Run[], warm: [] as Run[] },
  };
  const cold = async (name: keyof typeof runs, platforms: string | undefined, niftyc?: string, i = 0) => {
    const dir = path.join(work, `${name}-cold-${i}`);
    const c = path.join(dir, "cache");
    runs[name].cold.push(
      await timed(NODE, args(path.join(dir, "out"), c, platforms, niftyc), { env: env() }),
    );
    await fsp.rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < COLD_RUNS; i++) {
    for (const [name, platforms] of Object.entries(sets) as Array<[keyof typeof sets, string | undefined]>) {
      await cold(name, platforms, undefined, i);
      if (BASELINE !== undefined)
        await cold(name === "one" ? "baseOne" : "baseThree", platforms, BASELINE, i);
    }
  }
  const caches = { one: await filled("one", undefined), three: await filled("three", THREE) };
  for (let i = 0; i < RUNS; i++) {
    for (const [name, platforms] of Object.entries(sets) as Array<[keyof typeof sets, string | undefined]>) {
      const out = path.join(work, `${name}-warm`);
      await fsp.rm(out, { recursive: true, force: true });
      runs[name].warm.push(await timed(NODE, args(out, caches[name], platforms), { env: env() }));
    }
  }
  return runs;
}

const row = (label: string, runs: Run[]): string =>
  `| ${label} | ${fmtMs(median(runs.map((r) => r.ms)))} | ${fmtMs(median(runs.map((r) => r.cpuMs)))} | ${fmtMb(Math.max(...runs.map((r) => r.maxRssKb)))} |`;

try {
  await fsp.writeFile(path.join(work, "pw"), "bench-password\n");
  const { one, three, baseOne, baseThree } = await measure();
  const ratio = (a: Run[], b: Run[], key: "ms" | "cpuMs") =>
    median(a.map((r) => r[key])) / median(b.map((r) => r[key]));
  const warmRatio = ratio(three.warm, one.warm, "ms");
  const coldRatio = ratio(three.cold, one.cold, "ms");
  const warmCpu = ratio(three.warm, one.warm, "cpuMs");
  const coldCpu = ratio(three.cold, one.cold, "cpuMs");
  const body = `## Several platforms

\`npx node bench/platforms.ts\`: \`recipes/ssh.nifty --locked\` (default formats) for linux/amd64
alone and for \`--platform ${THREE}\` (three trees, three image configs, one OCI index, per-platform
output directories). The .debs of its three locks are served from a loopback mirror out of the pin
store (\`node scripts/debian-pins.ts fetch\`). Cold: an empty \`--cache\` each run (median of
${COLD_RUNS}); warm: one filled cache, a fresh \`--out\` each run (median of ${RUNS}). Each run is a child
process timed from spawn to exit; CPU is user + system of the process and its children, peak RSS
from \`/usr/bin/time\`. One platform's and three platforms' runs take turns, cold then warm.

| Build | Wall | CPU | Peak RSS |
| --- | --- | --- | --- |
${row("amd64, cold", one.cold)}
${row("amd64 + arm64 + arm/v7, cold", three.cold)}
${row("amd64, warm", one.warm)}
${row("amd64 + arm64 + arm/v7, warm", three.warm)}${
  BASELINE === undefined
    ? ""
    : `\n${row("baseline: amd64, cold", baseOne.cold)}\n${row("baseline: amd64 + arm64 + arm/v7, cold", baseThree.cold)}`
}

Three platforms cold take ${coldRatio.toFixed(2)}× one's wall time (${coldCpu.toFixed(2)}× its CPU); warm,
${warmRatio.toFixed(2)}× (${warmCpu.toFixed(2)}× CPU). The goal (the three-platform warm build under 3× the
one-platform warm build) is ${warmRatio < 3 && warmCpu < 3 ? "met, in wall and CPU time" : "**not met**"}.
${BASELINE === undefined ? "" : `The baseline (\`${BASELINE}\`) ran its cold builds in the same rounds, after each of these.\n`}Measured with ${machine()}, load average ${os.loadavg()[0]!.toFixed(1)} at the end; other jobs shared the machine, so compare the rows of one run.`;
  await writeSection("platforms", body);
  process.stdout.write(`${body}\n`);
} finally {
  await mirror.close();
  await fsp.rm(work, { recursive: true, force: true });
}
