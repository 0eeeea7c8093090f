// Loopback ports for tests that start servers: chosen where no client's
// source port can land, and waited on with probes that cannot hang.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createNetServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether nothing listens on `port` (on any address) right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createNetServer();
    server.once("error", () => done(false));
    server.listen(port, "0.0.0.0", () => server.close(() => done(true)));
  });
}

/**
 * A base such that base+1 … base+count are free, all below Linux's ephemeral
 * range (32768+): an ephemeral port could be taken as a source port by a
 * client before the container binds it.
 */
export async function freePorts(count: number): Promise<number> {
  // Single ports and runs of ports from bands of their own: test files run at once, and a run is
  // bound well after it is found free (a nested systemd's listeners), so a single port another
  // file took meanwhile would land in it. Runs are also reserved (reserve): two files' runs, each
  // free when found, once overlapped (a two-instance host's ports inside the 200 of on-demand's).
  const [low, high] = count > 1 ? [20_000, 32_000] : [10_000, 20_000];
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low - count));
    let free = true;
    for (let i = 1; i <= count && free; i++) free = await portFree(base + i);
    if (free && (count === 1 || reserve(base + 1, count))) return base;
  }
  throw new Error(`no ${count} free ports in a row below 32000`);
}

/** Where runs of ports are reserved: a file per port, holding the reserving process's pid. */
export const RESERVED = join(tmpdir(), "niftyc-test-ports");

/**
 * Reserve ports first … first+count-1 for this process (until it exits): false when another
 * live process holds one of them. A reservation whose process is gone is taken over.
 */
export function reserve(first: number, count: number): boolean {
  try {
    mkdirSync(RESERVED, { recursive: true, mode: 0o1777 });
  } catch {
    return true; // No shared place to reserve in: as before reservations, found free is enough.
  }
  const taken: string[] = [];
  for (let port = first; port < first + count; port++) {
    const file = join(RESERVED, String(port));
    try {
      writeFileSync(file, String(process.pid), { flag: "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") continue; // another user's directory: unreserved
      let holder = 0;
      try {
        holder = Number(readFileSync(file, "utf8"));
      } catch {
        // Let go of just now: free.
      }
      if (holder !== process.pid && alive(holder)) {
        for (const f of taken) rmSync(f, { force: true });
        return false;
      }
      try {
        writeFileSync(file, String(process.pid));
      } catch {
        continue;
      }
    }
    taken.push(file);
  }
  ownReservations.push(...taken);
  return true;
}

const ownReservations: string[] = [];
process.once("exit", () => {
  for (const f of ownReservations) rmSync(f, { force: true });
});

function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One free port below the ephemeral range (see freePorts). */
export async function freePort(): Promise<number> {
  return (await freePorts(1)) + 1;
}

/** One TCP connect to 127.0.0.1:port, given up after a second: a probe that never settles would stall any wait. */
export function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(1000, () => socket.destroy());
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
    socket.once("close", () => done(false));
  });
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await listening(port)) return;
    await sleep(100);
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
