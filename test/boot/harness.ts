// Real parts for boot tests: a loopback Debian mirror serving the pinned
// files, the real niftyc CLI, GNU tar, systemd-nspawn (inside its own mount
// namespace, as these machines need) and the OpenSSH client. Every process
// started here is killed by PID in teardown, whatever the test's outcome.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { ExecutionContext } from "ava";
import { debianPins } from "../../scripts/debian-pins.ts";
import { sleep } from "../support/net.ts";
import { requireParts } from "../support/skip.ts";

export { freePort, sleep, waitForPort } from "../support/net.ts";

/** What the helpers need of a test: somewhere to register clean-up (a test, or a file's shared fixture). */
export type Scope = Pick<ExecutionContext, "teardown">;

export const ROOT = resolve(import.meta.dirname, "../..");
const NIFTYC = join(ROOT, "bin", "niftyc");
/** Where `node scripts/debian-pins.ts fetch` put the pinned Debian files. */
const PIN_STORE = resolve(process.env.NIFTY_TEST_PIN_STORE ?? join(ROOT, "cache"));

/** Why boot tests cannot run here, or undefined when they can. */
export function bootUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "boot tests need root";
  for (const tool of ["systemd-nspawn", "unshare", "script", "ssh", "sshpass", "tar"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

/** Skip outside CI with the reason; in CI a missing part is a failure. */
export function requireBoot(t: ExecutionContext): boolean {
  return requireParts(t, "boot tests", bootUnavailable());
}

export function tempDir(t: Scope, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `niftyc-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A loopback HTTP server answering pool/… paths with the pinned files. */
export async function debianMirror(t: Scope): Promise<{ url: string; requests: string[] }> {
  const pins = new Map((await debianPins()).map((p) => [`/${p.path}`, p.digest]));
  for (const [path, digest] of pins) {
    if (!existsSync(blobPath(digest)))
      throw new Error(`pinned file ${path} is not in ${PIN_STORE}: run node scripts/debian-pins.ts fetch`);
  }
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? "");
    const digest = pins.get(decodeURIComponent(req.url ?? ""));
    if (digest === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/vnd.debian.binary-package" });
    createReadStream(blobPath(digest)).pipe(res);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  t.teardown(() => new Promise<void>((done) => server.close(() => done())));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, requests };
}

function blobPath(digest: string): string {
  return join(PIN_STORE, "blobs", "sha256", digest.slice("sha256:".length));
}

export interface BuildOutput {
  digest: string;
  rootfs: string;
  outDir: string;
  outputs: Record<string, string>;
  stopSignal: { name: string; number: number; source: string };
}

/** Run the real CLI as a child process (asynchronously: the loopback mirror lives in this process). */
export function niftyc(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [NIFTYC, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    child.once("error", fail);
    child.once("close", (code) => {
      clearTimeout(timer);
      done({ status: code ?? -1, stdout, stderr });
    });
  });
}

export async function buildRecipe(
  t: Scope,
  recipe: string,
  mirror: string,
  secrets: Record<string, string>,
  extra: string[] = [],
): Promise<BuildOutput> {
  const dir = tempDir(t, "build");
  const args = [
    "build",
    join(ROOT, recipe),
    "--json",
    "--quiet",
    "--cache",
    join(dir, "cache"),
    "--out",
    join(dir, "out"),
    "--mirror",
    `debian=${mirror}`,
    "--mirror",
    `debian-security=${mirror}`,
    ...extra,
  ];
  for (const id of Object.keys(secrets))
    args.push("--secret", `${id}=env:NIFTY_TEST_SECRET_${id.replace(/\W/g, "_")}`);
  const env = Object.fromEntries(
    Object.entries(secrets).map(([id, value]) => [`NIFTY_TEST_SECRET_${id.replace(/\W/g, "_")}`, value]),
  );
  const result = await niftyc(args, { env });
  if (result.status !== 0)
    throw new Error(`niftyc build ${recipe} failed (${result.status}):\n${result.stderr}`);
  const parsed = JSON.parse(result.stdout) as BuildOutput;
  return {
    ...parsed,
    rootfs: resolve(ROOT, parsed.rootfs),
    outDir: resolve(ROOT, parsed.outDir),
    outputs: Object.fromEntries(Object.entries(parsed.outputs).map(([k, v]) => [k, resolve(ROOT, v)])),
  };
}

/** Unpack with GNU tar, keeping owners and modes, as a user would. */
export function unpack(t: Scope, tarball: string): string {
  // A subdirectory: nspawn leaves its .#<root>.lck beside the root, inside our temp dir.
  const dir = join(tempDir(t, "root"), "root");
  mkdirSync(dir);
  const result = spawnSync("tar", ["-xpf", tarball, "-C", dir, "--numeric-owner"], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`tar -x failed: ${result.stderr}`);
  return dir;
}

export interface Container {
  /** PID of systemd-nspawn itself. */
  pid: () => number | undefined;
  output: () => string;
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<void>;
  /** Type into the console (pty boots only). */
  type: (text: string) => void;
  /** Send `signal` to nspawn and wait for it to exit; resolves with the time it took. */
  stop: (signal: NodeJS.Signals, timeoutMs: number) => Promise<{ ms: number; code: number | null }>;
  exited: () => boolean;
}

export interface BootOptions {
  root: string;
  machine: string;
  /** A generated .nspawn file, installed where nspawn trusts it (/run/systemd/nspawn). */
  settings?: string;
  args?: string[];
  /** Under a pseudo-terminal, so a console getty has a terminal. */
  pty?: boolean;
  /** A host directory bound on /run instead of a fresh tmpfs: instances that share it share nspawn's locks. */
  run?: string;
}

let boots = 0;

/** The cgroup hierarchies nspawn uses: systemd's and the unified one (hybrid), or the one of cgroup v2. */
function cgroupRoots(): string[] {
  if (existsSync("/sys/fs/cgroup/systemd")) return ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"];
  return existsSync("/sys/fs/cgroup/cgroup.procs") ? ["/sys/fs/cgroup"] : [];
}

/** Shell that moves itself into a new cgroup `name` of each hierarchy (where it can) before nspawn starts. */
function ownCgroup(name: string): string {
  return cgroupRoots()
    .map((root) => `{ mkdir -p ${root}/${name} && echo $$ > ${root}/${name}/cgroup.procs; } 2>/dev/null; `)
    .join("");
}

function removeCgroup(name: string): void {
  for (const root of cgroupRoots()) {
    const dir = join(root, name);
    if (existsSync(dir)) spawnSync("find", [dir, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]);
  }
}

/** Boot a tree with the real systemd-nspawn, in a private mount namespace with a tmpfs /run. */
export function boot(t: Scope, options: BootOptions): Container {
  const nspawn = [
    "systemd-nspawn",
    "--register=no",
    "--keep-unit",
    `--machine=${options.machine}`,
    ...(options.args ?? []),
    "-bD",
    options.root,
  ]
    .map(shellQuote)
    .join(" ");
  const install = options.settings
    ? `mkdir -p /run/systemd/nspawn && cp ${shellQuote(options.settings)} /run/systemd/nspawn/${shellQuote(options.machine)}.nspawn && `
    : "";
  const mountRun =
    options.run === undefined ? "mount -t tmpfs tmpfs /run" : `mount --bind ${shellQuote(options.run)} /run`;
  // A cgroup of its own: with --keep-unit nspawn puts the container under the caller's cgroup, and a
  // user-namespaced boot hands that "payload" cgroup to its uid range, which would shut the next one out.
  const cgroup = `niftyc-test-${options.machine}-${process.pid}-${++boots}`;
  const inner = `${ownCgroup(cgroup)}${mountRun} && ${install}exec ${nspawn}`;
  const command = ["unshare", "-m", "sh", "-c", inner];
  const child: ChildProcess = options.pty
    ? spawn("script", ["-qfec", command.map(shellQuote).join(" "), "/dev/null"], {
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      })
    : spawn(command[0]!, command.slice(1), { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let exitCode: number | null | undefined;
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done((exitCode = code))));
  const nspawnPid = (): number | undefined => {
    if (!options.pty) return child.pid;
    const found = spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")[0];
    return found ? Number(found) : undefined;
  };
  t.teardown(async () => {
    if (exitCode !== undefined) return;
    // Killing nspawn alone would orphan the container: kill its init, which
    // takes every process of the container's PID namespace with it.
    const pid = nspawnPid();
    const init = pid
      ? spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
          .stdout.trim()
          .split("\n")
          .filter(Boolean)
      : [];
    for (const p of [...init, pid]) {
      if (!p) continue;
      try {
        process.kill(Number(p), "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
    await Promise.race([exited, sleep(5000)]);
  });
  t.teardown(() => removeCgroup(cgroup));
  return {
    pid: nspawnPid,
    output: () => output,
    exited: () => exitCode !== undefined,
    type: (text) => child.stdin?.write(text),
    async waitFor(pattern, timeoutMs) {
      const until = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (exitCode !== undefined)
          throw new Error(`container exited (${exitCode}) before ${pattern}:\n${output}`);
        if (Date.now() > until) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${output}`);
        await sleep(50);
      }
    },
    async stop(signal, timeoutMs) {
      const pid = nspawnPid();
      if (pid === undefined) throw new Error("nspawn is not running");
      const started = performance.now();
      process.kill(pid, signal);
      const code = await Promise.race([exited, sleep(timeoutMs).then(() => "timeout" as const)]);
      if (code === "timeout")
        throw new Error(`nspawn did not exit within ${timeoutMs} ms after ${signal}:\n${output}`);
      return { ms: Math.round(performance.now() - started), code };
    },
  };
}

/** The container's PID 1 as the host sees it: nspawn's child (NaN before there is one). */
export function containerInit(container: Container): number {
  return Number(
    spawnSync("pgrep", ["-P", String(container.pid()!)], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")[0],
  );
}

/** Run a command in every namespace of the container's PID 1, killed after `timeoutMs`. */
export function inside(
  init: number,
  command: string[],
  timeoutMs = 15_000,
): { status: number; stdout: string; stderr: string } {
  const result = spawnSync("nsenter", ["-t", String(init), "-a", ...command], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
  return { status: result.status ?? -1, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

/** Its output and errors together, for a report. */
function said(init: number, command: string[]): string {
  const ran = inside(init, command);
  return `${ran.stdout}${ran.stderr}`;
}

/** The container's systemd once it runs (PID 1 of a PID namespace of its own), else undefined. */
function containerSystemd(container: Container): number | undefined {
  const init = containerInit(container);
  if (!(init > 0)) return undefined;
  try {
    // nspawn's child before it becomes the container's init would run systemctl against the host's systemd.
    const status = readFileSync(`/proc/${init}/status`, "utf8");
    return /^NSpid:\s+\d+\s+1$/m.test(status) && /^Name:\s+systemd$/m.test(status) ? init : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wait for a booting systemd to reach multi-user.target: its line on the console, or systemd inside
 * saying the target is active. The console alone is not enough: console-getty.service hangs up
 * /dev/console as it starts (TTYVHangup=yes), and status lines printed just then can be lost. A boot
 * that hangs fails with what systemd inside still waits on: its queued jobs and the boot's journal.
 */
export async function waitForMultiUser(container: Container, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (/Reached target .*multi-user\.target/.test(container.output())) return;
    if (container.exited())
      throw new Error(`container exited before multi-user.target:\n${container.output()}`);
    const init = containerSystemd(container);
    if (
      init !== undefined &&
      inside(init, ["systemctl", "is-active", "multi-user.target"]).stdout.trim() === "active"
    )
      return;
    if (Date.now() > until) {
      const inside =
        init === undefined
          ? ""
          : `\n--- systemctl list-jobs\n${said(init, ["systemctl", "list-jobs", "--no-pager"])}` +
            `--- journalctl -b\n${said(init, ["journalctl", "-b", "--no-pager", "-o", "short-monotonic"])}`;
      throw new Error(
        `multi-user.target not reached within ${timeoutMs} ms:\n${container.output()}${inside}`,
      );
    }
    await sleep(500);
  }
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface SshResult {
  status: number;
  stdout: string;
  stderr: string;
  /** The host key the client recorded, "type base64". */
  hostKey?: string;
}

/** Log in with the real OpenSSH client, password through sshpass. */
export function ssh(
  t: ExecutionContext,
  port: number,
  user: string,
  password: string,
  command: string,
): SshResult {
  const dir = tempDir(t, "ssh");
  const knownHosts = join(dir, "known_hosts");
  const result = spawnSync(
    "sshpass",
    [
      "-p",
      password,
      "ssh",
      "-p",
      String(port),
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      "PreferredAuthentications=password",
      "-o",
      "PubkeyAuthentication=no",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "NumberOfPasswordPrompts=1",
      `${user}@127.0.0.1`,
      command,
    ],
    { encoding: "utf8", timeout: 30_000 },
  );
  let hostKey: string | undefined;
  if (existsSync(knownHosts)) {
    const line = spawnSync("cat", [knownHosts], { encoding: "utf8" }).stdout.trim().split("\n")[0];
    hostKey = line?.split(" ").slice(1, 3).join(" ");
  }
  return {
    status: result.status ?? -1,
    stdout: result.stdout,
    stderr: result.stderr,
    ...(hostKey ? { hostKey } : {}),
  };
}

/** The public half of a Dropbear key file, as `dropbearkey -y` prints it. */
export function dropbearPublicKey(keyFile: string): string {
  const out = spawnSync("dropbearkey", ["-y", "-f", keyFile], { encoding: "utf8" });
  const line = out.stdout.split("\n").find((l) => l.startsWith("ssh-"));
  if (!line) throw new Error(`dropbearkey -y -f ${keyFile} failed: ${out.stderr}`);
  return line.split(" ").slice(0, 2).join(" ");
}

/** Boot tests that also need runc: skip outside CI with the reason; in CI a missing part is a failure. */
export function requireRunc(t: ExecutionContext): boolean {
  if (!requireBoot(t)) return false;
  const missing = spawnSync("sh", ["-c", "command -v runc"]).status !== 0;
  return requireParts(t, "the runc boot", missing ? "runc is not installed" : undefined);
}

export interface RuncContainer {
  id: string;
  output: () => string;
  /** `runc run`'s exit status: the container's PID 1 ended (null for a signal). */
  exited: Promise<number | null>;
  /** The container's PID 1 as the host sees it, once runc started it. */
  init: (timeoutMs: number) => Promise<number>;
  /** `runc exec` with the bundle's own process settings (its capabilities): what root inside may do. */
  exec: (command: string[]) => { status: number; stdout: string; stderr: string };
  /** `runc kill` (a number for a real-time signal: runc 1.1 refuses their names); its exit status. */
  kill: (signal: string) => number;
}

/** `runc run` a bundle (its PID 1's output captured); deleted with -f in teardown, whatever the outcome. */
export function runcRun(t: Scope, bundle: string, id: string): RuncContainer {
  const child = spawn("runc", ["run", "--bundle", bundle, id], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  t.teardown(() => {
    spawnSync("runc", ["delete", "-f", id]);
  });
  return {
    id,
    output: () => output,
    exited,
    async init(timeoutMs) {
      for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(100)) {
        const state = spawnSync("runc", ["state", id], { encoding: "utf8" });
        if (state.status === 0) return (JSON.parse(state.stdout) as { pid: number }).pid;
      }
      throw new Error(`runc did not start ${id} within ${timeoutMs} ms:\n${output}`);
    },
    exec(command) {
      const ran = spawnSync("runc", ["exec", id, ...command], { encoding: "utf8", timeout: 15_000 });
      return { status: ran.status ?? -1, stdout: ran.stdout ?? "", stderr: ran.stderr ?? "" };
    },
    kill: (signal) => spawnSync("runc", ["kill", id, signal]).status ?? -1,
  };
}
