// A systemd booted under nspawn as the host of niftyc's machines, shared by a
// whole test file: commands in its namespaces, its units' properties, waits.
import type test from "ava";
import { spawnSync } from "node:child_process";
import { sleep, type Scope } from "./harness.ts";

export interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run a command to its end, killed after `timeout` ms. */
export function run(command: string[], timeout = 30_000): Ran {
  const result = spawnSync(command[0]!, command.slice(1), {
    encoding: "utf8",
    timeout,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status ?? -1, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

/**
 * A scope for a fixture the whole file shares. Hooks may not register teardowns
 * with ava, so its clean-ups run in test.after.always, last registered first.
 */
export function fileScope(t: typeof test): Scope {
  const cleanups: Array<() => unknown> = [];
  t.after.always(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  return { teardown: (fn) => void cleanups.push(fn) };
}

/** What a shell on the host would run: a command in every namespace of its PID 1. */
export function inHost(init: number, command: string[], timeout = 30_000): Ran {
  return run(["nsenter", "-t", String(init), "-a", ...command], timeout);
}

/** `systemctl show` of one unit on the host, as a record of the properties asked for. */
export function showUnit(init: number, unit: string, ...props: string[]): Record<string, string> {
  const out = inHost(init, ["systemctl", "show", unit, ...props.map((p) => `--property=${p}`)]).stdout;
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** Poll `check` every 200 ms; fail naming `what` after `timeoutMs`. */
export async function until(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  for (const end = Date.now() + timeoutMs; !check(); await sleep(200)) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
  }
}
