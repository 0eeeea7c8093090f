// Shared bench helpers: timing a child process (wall time and peak RSS through
// /usr/bin/time), medians, and rewriting one marked section of docs/performance.md.
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "..");
export const NODE = path.join(ROOT, "node_modules/.bin/node");

/** The value after `name` on the bench's command line (`--runs 5`), or undefined when it is not given. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

export interface Run {
  ms: number;
  maxRssKb: number;
  /** User + system CPU time of the process and the children it waited for, from /usr/bin/time. */
  cpuMs: number;
}

/** Run a command to completion; fails loudly when it does. Wall time measured here, peak RSS by /usr/bin/time. */
export async function timed(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; stdoutFile?: string } = {},
): Promise<Run> {
  const report = path.join(
    os.tmpdir(),
    `niftyc-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`,
  );
  const stdout = options.stdoutFile === undefined ? undefined : await fsp.open(options.stdoutFile, "w");
  const started = performance.now();
  const child = spawn("/usr/bin/time", ["-f", "%M %U %S", "-o", report, command, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    stdio: ["ignore", stdout?.fd ?? "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const ms = performance.now() - started;
  await stdout?.close();
  const [rss, user, system] = (await fsp.readFile(report, "utf8"))
    .trim()
    .split("\n")
    .at(-1)!
    .split(" ")
    .map(Number) as [number, number, number];
  await fsp.rm(report, { force: true });
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}:\n${stderr}`);
  return { ms, maxRssKb: rss, cpuMs: (user + system) * 1000 };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

export function fmtMb(kb: number): string {
  return `${(kb / 1024).toFixed(0)} MB`;
}

export function machine(): string {
  return `Node ${process.versions.node} on ${os.cpus()[0]?.model.trim() ?? "unknown CPU"} (${os.cpus().length} CPUs)`;
}

/** Replace the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, appending the section if absent. */
export async function writeSection(name: string, body: string): Promise<void> {
  const file = path.join(ROOT, "docs/performance.md");
  const text = await fsp.readFile(file, "utf8");
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const section = `${open}\n${body.trimEnd()}\n${close}`;
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  const next =
    start >= 0 && end > start
      ? text.slice(0, start) + section + text.slice(end + close.length)
      : `${text.trimEnd()}\n\n${section}\n`;
  await fsp.writeFile(`${file}.tmp-${process.pid}`, next);
  await fsp.rename(`${file}.tmp-${process.pid}`, file);
}
