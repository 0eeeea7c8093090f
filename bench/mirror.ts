// The .debs recipes/ssh.nifty's lock pins, fetched once with `apt-get download`
// into a shared temp dir and served from a loopback mirror, so build benches
// need no internet. Shared by bench/build.ts, bench/cold.ts and bench/podman.ts.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { ROOT } from "./util.ts";

const execFileP = promisify(execFile);
export const RECIPE = path.join(ROOT, "recipes/ssh.nifty");
export const DEBS = path.join(os.tmpdir(), "niftyc-bench-debs");

export interface Pinned {
  /** Path under the archive root, e.g. pool/main/b/busybox/busybox-static_…deb */
  pool: string;
  digest: string;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/** The .debs recipes/ssh.nifty's lock pins (its PACKAGE lines' closure), by pool path. */
export async function pinnedDebs(): Promise<Pinned[]> {
  const { parseLock } = await import("../src/debian/lockfile.ts");
  const parsed = parseLock(await fsp.readFile(`${RECIPE}.lock`, "utf8"));
  if (!parsed.ok) throw new Error(`${RECIPE}.lock is malformed`);
  return parsed.lock.packages.map((p) => ({ pool: p.filename, digest: p.sha256 }));
}

/** Each pinned .deb in DEBS, by `apt-get download <package>=<version>` (the version as apt knows it, epoch included). */
export async function ensureDebs(pins: Pinned[]): Promise<Map<string, string>> {
  await fsp.mkdir(DEBS, { recursive: true });
  const files = new Map<string, string>();
  for (const pin of pins) {
    const base = path.basename(pin.pool);
    const local = path.join(DEBS, base);
    if (!(await fsp.stat(local).catch(() => undefined)) || (await sha256File(local)) !== pin.digest) {
      const [name, version] = base.replace(/_amd64\.deb$/, "").split("_") as [string, string];
      const { stdout } = await execFileP("apt-cache", ["madison", name]);
      const full = stdout
        .split("\n")
        .map((l) => l.split("|")[1]?.trim())
        .find((v) => v === version || v?.endsWith(`:${version}`));
      if (full === undefined) throw new Error(`apt does not know ${name} ${version}; run apt-get update`);
      await execFileP("apt-get", ["download", `${name}=${full}`], { cwd: DEBS });
      const downloaded = (await fsp.readdir(DEBS)).find(
        (f) => f.startsWith(`${name}_`) && decodeURIComponent(f).replace(/_\d+:/, "_") === base,
      );
      if (downloaded === undefined) throw new Error(`apt-get download ${name}=${full} left no file`);
      if (downloaded !== base) await fsp.rename(path.join(DEBS, downloaded), local);
    }
    if ((await sha256File(local)) !== pin.digest)
      throw new Error(`${base} does not match the digest pinned in the recipe`);
    files.set(`/${pin.pool}`, local);
  }
  return files;
}

export async function serveMirror(
  files: Map<string, string>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const file = files.get(new URL(req.url ?? "/", "http://x").pathname);
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/vnd.debian.binary-package" });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A mirror serving every pinned .deb: `--mirror debian=URL --mirror debian-security=URL`. */
export async function startMirror(): Promise<{ url: string; close(): Promise<void> }> {
  return serveMirror(await ensureDebs(await pinnedDebs()));
}

/** Records that make a build warm; the blobs they name are removed with them. */
export const WARM_RECORDS = ["steps", "outputs", "assembled", "uses"];

/** Every sha256 digest named in the JSON files under `dir`. */
async function digestsUnder(dir: string): Promise<Set<string>> {
  const found = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    for (const entry of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else
        for (const m of (await fsp.readFile(p, "utf8")).matchAll(/sha256:([0-9a-f]{64})/g)) found.add(m[1]!);
    }
  };
  await walk(dir);
  return found;
}

/**
 * A store holding only the build's inputs: `seed` hard-linked, minus the warm
 * records and the blobs only they name (the tarballs, assembled outputs,
 * step-written files).
 */
export async function coldStore(seed: string, dest: string, inputs: ReadonlySet<string>): Promise<void> {
  await fsp.rm(dest, { recursive: true, force: true });
  await execFileP("cp", ["-al", seed, dest]);
  const outputs = new Set<string>();
  for (const kind of WARM_RECORDS) for (const d of await digestsUnder(path.join(dest, kind))) outputs.add(d);
  for (const d of outputs)
    if (!inputs.has(d)) await fsp.rm(path.join(dest, "blobs/sha256", d), { force: true });
  for (const kind of WARM_RECORDS) await fsp.rm(path.join(dest, kind), { recursive: true, force: true });
}

/** Digests the inputs' records name: what a cold build finds in the store. */
export async function inputDigests(seed: string): Promise<Set<string>> {
  const inputs = new Set<string>();
  for (const entry of await fsp.readdir(seed, { withFileTypes: true })) {
    if (
      !entry.isDirectory() ||
      WARM_RECORDS.includes(entry.name) ||
      ["blobs", "tmp", "quarantine"].includes(entry.name)
    )
      continue;
    for (const d of await digestsUnder(path.join(seed, entry.name))) inputs.add(d);
  }
  return inputs;
}

/** `bin/niftyc build` of RECIPE (or another tree's niftyc) into `out` with its own store, every suite from `mirror`. */
export function sshBuildArgs(o: {
  out: string;
  cache: string;
  passwordFile: string;
  mirror: string;
  niftyc?: string;
}): string[] {
  return [
    o.niftyc ?? path.join(ROOT, "bin/niftyc"),
    "build",
    RECIPE,
    "--cache",
    o.cache,
    "--out",
    o.out,
    "--secret",
    `luser-password=${o.passwordFile}`,
    "--mirror",
    `debian=${o.mirror}`,
    "--mirror",
    `debian-security=${o.mirror}`,
  ];
}
