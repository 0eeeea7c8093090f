// Shared parts of the build tests: a loopback server with the host's real
// BusyBox, Dropbear and its libraries, a .deb made with dpkg-deb, a Debian
// mirror layout, recipes generated with the digests of those files, and a
// runner for the real CLI in a child process.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { TestFn } from "ava";
import { startServer, serve, type TestServer } from "../fetch/helpers/server.ts";

export const execFileP = promisify(execFile);
export const ROOT = path.resolve(import.meta.dirname, "../..");
export const NODE = path.join(ROOT, "node_modules/.bin/node");
export const NIFTYC = path.join(ROOT, "bin/niftyc");
export const LIB = "/lib/x86_64-linux-gnu";

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

export async function tempDir(prefix = "niftyc-build-"): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface Served {
  /** Path on the server, e.g. /files/busybox */
  route: string;
  digest: string;
  bytes: Buffer;
}

export interface Fixture {
  server: TestServer;
  url: string;
  busybox: Served;
  dropbear: Served;
  /** Makes host keys at first boot (KEYGEN); needs a subset of Dropbear's libraries. */
  dropbearkey: Served;
  /** Dropbear's libraries and the loader, by soname. */
  libs: Map<string, Served>;
  /** A .deb made with dpkg-deb: usr/share/nifty/greeting.txt and usr/bin/nifty-hello. */
  deb: Served;
  /** The same .deb under the Debian mirror layout, as a debian: source path. */
  debianPath: string;
  /** --mirror value for debian: sources. */
  mirror: string;
  close(): Promise<void>;
}

/** Dropbear's DT_NEEDED libraries and loader, as the host resolves them. */
async function dropbearLibraries(): Promise<Map<string, string>> {
  const { stdout } = await execFileP("ldd", ["/usr/sbin/dropbear"]);
  const libs = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const m = /^\s*(\S+) => (\S+) \(/.exec(line);
    if (m) libs.set(m[1]!, await fsp.realpath(m[2]!));
    const loader = /^\s*(\/\S*ld-linux\S*) \(/.exec(line);
    if (loader) libs.set(path.basename(loader[1]!), await fsp.realpath(loader[1]!));
  }
  return libs;
}

async function buildDeb(dir: string): Promise<Buffer> {
  const root = path.join(dir, "nifty-hello");
  await fsp.mkdir(path.join(root, "DEBIAN"), { recursive: true });
  await fsp.mkdir(path.join(root, "usr/share/nifty"), { recursive: true });
  await fsp.mkdir(path.join(root, "usr/bin"), { recursive: true });
  await fsp.writeFile(
    path.join(root, "DEBIAN/control"),
    "Package: nifty-hello\nVersion: 1.0\nArchitecture: amd64\nMaintainer: niftyc tests <tests@localhost>\nDescription: test package for niftyc\n",
  );
  await fsp.writeFile(path.join(root, "usr/share/nifty/greeting.txt"), "hello from a .deb\n");
  await fsp.writeFile(path.join(root, "usr/bin/nifty-hello"), "#!/bin/sh\necho hello\n", { mode: 0o755 });
  const out = path.join(dir, "nifty-hello_1.0_amd64.deb");
  await execFileP("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", root, out], {
    env: { ...process.env, SOURCE_DATE_EPOCH: "0" },
  });
  return fsp.readFile(out);
}

/** Start the loopback server with every file the recipes fetch. */
export async function startFixture(): Promise<Fixture> {
  const work = await tempDir("niftyc-deb-");
  const served = (route: string, bytes: Buffer): Served => ({ route, bytes, digest: sha256(bytes) });
  const busybox = served("/files/busybox", await fsp.readFile("/bin/busybox"));
  const dropbear = served("/files/dropbear", await fsp.readFile("/usr/sbin/dropbear"));
  const dropbearkey = served("/files/dropbearkey", await fsp.readFile("/usr/bin/dropbearkey"));
  const libs = new Map<string, Served>();
  for (const [soname, file] of await dropbearLibraries())
    libs.set(soname, served(`/files/lib/${soname}`, await fsp.readFile(file)));
  const debBytes = await buildDeb(work);
  await fsp.rm(work, { recursive: true, force: true });
  const deb = served("/files/nifty-hello.deb", debBytes);
  const debianPath = "pool/main/n/nifty-hello/nifty-hello_1.0_amd64.deb";
  const server = await startServer();
  for (const s of [busybox, dropbear, dropbearkey, deb, ...libs.values()])
    server.routes.set(s.route, serve(s.bytes));
  server.routes.set(`/debian/${debianPath}`, serve(debBytes));
  return {
    server,
    url: server.url,
    busybox,
    dropbear,
    dropbearkey,
    libs,
    deb,
    debianPath,
    mirror: `debian=${server.url}/debian`,
    close: () => server.close(),
  };
}

export interface RecipeOptions {
  /** Sonames to leave out of the Dropbear library set. */
  without?: string[];
  /** Extra lines at the end. */
  tail?: string;
}

/** BusyBox with its applets: the smallest image that boots to a shell. */
export function busyboxRecipe(f: Fixture, tail = ""): string {
  return `# generated by test/pipeline
ARG BASE=${f.url}/files
FETCH busybox \${BASE}/busybox ${f.busybox.digest} TO /bin/busybox
LINK /bin/busybox APPLETS
SYMLINK /sbin bin
FILE /etc/os-release <<EOF
NAME="Nifty test"
ID=nifty
EOF
DIR /tmp MODE 1777
USER root LOCKED
${tail}`;
}

/** Dropbear with its loader and libraries, as FETCH lines. */
export function dropbearLines(f: Fixture, without: readonly string[] = []): string {
  const lines = [
    `FETCH dropbear \${BASE}/dropbear ${f.dropbear.digest} TO /bin/dropbear`,
    `FETCH dropbearkey \${BASE}/dropbearkey ${f.dropbearkey.digest} TO /bin/dropbearkey`,
    `ARG LIB=${LIB}`,
  ];
  for (const [soname, s] of f.libs) {
    if (without.includes(soname)) continue;
    lines.push(`FETCH ${soname} \${BASE}/lib/${soname} ${s.digest} TO \${LIB}/${soname}`);
  }
  lines.push("SYMLINK /lib64/ld-linux-x86-64.so.2 ${LIB}/ld-linux-x86-64.so.2");
  return lines.join("\n") + "\n";
}

export async function writeRecipe(dir: string, name: string, text: string): Promise<string> {
  const file = path.join(dir, `${name}.nifty`);
  await fsp.writeFile(file, text);
  return file;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Run under `sh -c 'umask U; exec …'`. */
  umask?: string;
  /** Run under faketime at this time ("2031-05-05 12:00:00"). */
  faketime?: string;
  /** Node options, e.g. ["--import", hook]. */
  nodeArgs?: string[];
}

/** A clean environment: only what a build needs, so the host's settings never leak in by accident. */
export function baseEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    NO_COLOR: "1",
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export function spawnCli(args: readonly string[], options: CliOptions = {}): ChildProcess {
  let command = NODE;
  let argv = [...(options.nodeArgs ?? []), NIFTYC, ...args];
  if (options.faketime !== undefined) {
    argv = [options.faketime, command, ...argv];
    command = "faketime";
  }
  if (options.umask !== undefined) {
    argv = ["-c", `umask ${options.umask} && exec "$@"`, "sh", command, ...argv];
    command = "/bin/sh";
  }
  return spawn(command, argv, {
    cwd: options.cwd ?? ROOT,
    env: baseEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export async function niftyc(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  return collect(child);
}

/** `niftyc build` of a recipe into a store and an output directory of its own under `work`, named after `name`. */
export function buildNamed(
  work: string,
  name: string,
  recipe: string,
  ...extra: string[]
): Promise<CliResult> {
  const dirs = ["--cache", path.join(work, `cache-${name}`), "--out", path.join(work, `out-${name}`)];
  return niftyc(["build", recipe, ...dirs, ...extra]);
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export interface BuildJson {
  digest: string;
  epoch: number;
  inputs: Array<{ name: string; sources: string[]; digest: string; extract?: string }>;
  steps: Array<{
    index: number;
    line: number;
    instruction: string;
    key: string;
    reused: boolean;
    ms: number;
  }>;
  outputs: Record<string, string>;
}

export async function readBuildJson(outDir: string): Promise<BuildJson> {
  return JSON.parse(await fsp.readFile(path.join(outDir, "build.json"), "utf8")) as BuildJson;
}

/** Parse `--json` output, failing with the CLI's stderr when it is not there. */
export function jsonOf(result: CliResult): {
  digest: string;
  rootfs: string;
  outputs: Record<string, string>;
  upToDate: boolean;
  steps: BuildJson["steps"];
  diagnostics?: Array<{
    code: string;
    message: string;
    line: number | null;
    file: string | null;
    hint: string | null;
  }>;
} {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(`no JSON on stdout (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
}

/** Every file under `dir`, recursively (paths relative to it). */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    let entries;
    try {
      entries = await fsp.readdir(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const child = rel === "" ? e.name : `${rel}/${e.name}`;
      out.push(child);
      if (e.isDirectory()) await visit(child);
    }
  };
  await visit("");
  return out.sort();
}

/**
 * The fixture server and a work directory for one test file: started before
 * its tests, closed and removed after them, whatever happened.
 */
export function useFixture(test: TestFn): { readonly fixture: Fixture; readonly work: string } {
  const state = {} as { fixture: Fixture; work: string };
  test.before(async () => {
    state.fixture = await startFixture();
    state.work = await tempDir();
  });
  test.after.always(async () => {
    await state.fixture?.close();
    if (state.work) await fsp.rm(state.work, { recursive: true, force: true });
  });
  return state;
}

/** out/ entry by entry (path, type, mode, bytes); build.json without what each run differs in (reuse, timings). */
export async function describeOutputs(out: string): Promise<string[]> {
  const lines: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(path.join(out, rel))).sort()) {
      const child = rel === "" ? name : `${rel}/${name}`;
      const st = await fsp.lstat(path.join(out, child));
      if (st.isDirectory()) {
        lines.push(`${child}/ ${(st.mode & 0o7777).toString(8)}`);
        await visit(child);
        continue;
      }
      let bytes = await fsp.readFile(path.join(out, child));
      if (child === "build.json") {
        const json = JSON.parse(bytes.toString("utf8")) as { steps: Array<Record<string, unknown>> };
        json.steps = json.steps.map(({ reused: _, ms: __, ...s }) => s);
        bytes = Buffer.from(JSON.stringify(json));
      }
      lines.push(
        `${child} ${(st.mode & 0o7777).toString(8)} ${createHash("sha256").update(bytes).digest("hex")}`,
      );
    }
  };
  await visit("");
  return lines;
}
