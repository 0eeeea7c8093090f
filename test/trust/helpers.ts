// A TLS + htpasswd docker-registry on loopback, a small build, and the tools
// that look at what niftyc pushed from the outside: skopeo with a
// sigstoreSigned policy, curl for the raw blobs, openssl for the signatures.
import { execFileSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { NODE, NIFTYC, baseEnv } from "../pipeline/helpers.ts";
import { makeCertificates, run, startRegistry, type Registry } from "../registry/helpers.ts";

export const USER = "signer";
export const PASSWORD = "sign-Pa55word-never-shown";

export interface Setup {
  work: string;
  registry: Registry;
  certs: { ca: string; cert: string; key: string };
  /** A directory with ca.crt, as skopeo's --cert-dir wants. */
  certDir: string;
  home: string;
  cache: string;
}

export async function setUp(work: string): Promise<Setup> {
  const certs = makeCertificates(work);
  const htpasswd = path.join(work, "htpasswd");
  await fsp.writeFile(
    htpasswd,
    execFileSync("htpasswd", ["-Bbn", USER, PASSWORD], { timeout: 30_000, killSignal: "SIGKILL" }),
  );
  const registry = await startRegistry(work, { tls: certs, htpasswd });
  const certDir = path.join(work, "certs.d");
  await fsp.mkdir(certDir);
  await fsp.copyFile(certs.ca, path.join(certDir, "ca.crt"));
  const home = path.join(work, "home");
  await fsp.mkdir(home);
  return { work, registry, certs, certDir, home, cache: path.join(work, "cache") };
}

/** Stop the registry and the file server a test file started, and remove its directory; each may be missing. */
export async function tearDown(s: Setup | undefined, server?: http.Server): Promise<void> {
  server?.close();
  await s?.registry.stop();
  if (s?.work) await fsp.rm(s.work, { recursive: true, force: true });
}

/** A loopback server of `files` by URL path (404 for any other path), for the recipes' FETCH lines. */
export async function serveFiles(
  files: Record<string, Buffer>,
): Promise<{ server: http.Server; base: string }> {
  const server = http.createServer((req, res) => {
    const body = files[req.url ?? ""];
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": String(body.length) }).end(body);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** `recipe` as app.nifty in s.work/`dir`, built quietly into a store of its own there; the build directory. */
export async function buildInOwnStore(
  s: Setup,
  dir: string,
  recipe: string,
  extra: string[] = [],
  input?: string,
): Promise<string> {
  const where = path.join(s.work, dir);
  await fsp.mkdir(where, { recursive: true });
  await fsp.writeFile(path.join(where, "app.nifty"), recipe);
  const out = path.join(where, "out");
  const args = [
    "build",
    path.join(where, "app.nifty"),
    "--cache",
    path.join(where, "cache"),
    "--out",
    out,
    "-q",
  ];
  const r = await niftyc(s, [...args, ...extra], input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(r.stderr);
  return out;
}

/**
 * The lie a tampered image is pushed with: the honest build's provenance.json, its subjects
 * replaced by the tampered build's own, written over the tampered build's.
 */
export async function forgeProvenance(honest: string, tampered: string): Promise<void> {
  const read = async (out: string) =>
    JSON.parse(await fsp.readFile(path.join(out, "provenance.json"), "utf8")) as { subject: unknown };
  const lie = await read(honest);
  lie.subject = (await read(tampered)).subject;
  await fsp.writeFile(path.join(tampered, "provenance.json"), JSON.stringify(lie, null, 2) + "\n");
}

/** The referrers of `subject` in `repo` as distribution 2.8 lists them: the index under the tag sha256-<hex>. */
export function listedReferrers(
  s: Setup,
  repo: string,
  subject: string,
): { manifests: Array<{ digest: string; artifactType?: string }> } {
  const tag = subject.replace(":", "-");
  return JSON.parse(
    curl(s, `/v2/${repo}/manifests/${tag}`, "application/vnd.oci.image.index.v1+json").toString(),
  ) as { manifests: Array<{ digest: string; artifactType?: string }> };
}

/** The CLI with a HOME of its own; `env` adds to a clean environment. */
export function niftyc(
  s: Setup,
  args: string[],
  options: { input?: string; env?: Record<string, string>; cwd?: string } = {},
) {
  return run(NODE, [NIFTYC, ...args], {
    env: baseEnv({ HOME: s.home, SOURCE_DATE_EPOCH: "0", ...options.env }),
    timeoutMs: 300_000,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}

/** Registry flags for niftyc: the test CA and the password on stdin. */
export const access = (s: Setup) => [
  "--ca-file",
  s.certs.ca,
  "--username",
  USER,
  "--password-stdin",
  "--cache",
  s.cache,
];

/** skopeo copy of `ref` to a dir, under a policy that wants a sigstore signature by `pub` (or accepts anything). */
export async function skopeoCopy(s: Setup, ref: string, pub: string | undefined, debug = false) {
  const dir = await fsp.mkdtemp(path.join(s.work, "skopeo-"));
  const policy = path.join(dir, "policy.json");
  const registriesD = path.join(dir, "registries.d");
  await fsp.mkdir(registriesD);
  await fsp.writeFile(
    path.join(registriesD, "default.yaml"),
    "default-docker:\n  use-sigstore-attachments: true\n",
  );
  const requirement =
    pub === undefined
      ? { type: "insecureAcceptAnything" }
      : { type: "sigstoreSigned", keyPath: pub, signedIdentity: { type: "matchRepository" } };
  await fsp.writeFile(
    policy,
    JSON.stringify({
      default: [{ type: "reject" }],
      transports: {
        docker: { [s.registry.host]: [requirement] },
        dir: { "": [{ type: "insecureAcceptAnything" }] },
      },
    }),
  );
  return run("skopeo", [
    ...(debug ? ["--debug"] : []),
    "--policy",
    policy,
    "--registries.d",
    registriesD,
    "copy",
    "--src-cert-dir",
    s.certDir,
    "--src-creds",
    `${USER}:${PASSWORD}`,
    `docker://${ref}`,
    `dir:${path.join(dir, "image")}`,
  ]);
}

/** A registry path's raw bytes (manifest or blob), with the test's credentials and CA. */
export function curl(
  s: Setup,
  urlPath: string,
  accept = "application/vnd.oci.image.manifest.v1+json",
): Buffer {
  return execFileSync(
    "curl",
    [
      "-sf",
      "--cacert",
      s.certs.ca,
      "-u",
      `${USER}:${PASSWORD}`,
      "-H",
      `Accept: ${accept}`,
      `https://${s.registry.host}${urlPath}`,
    ],
    { timeout: 60_000, killSignal: "SIGKILL", maxBuffer: 64 << 20 },
  );
}

/** openssl's word on a DER signature of `payload` under `pub`: true for "Verified OK". */
export async function opensslVerifies(
  work: string,
  pub: string,
  payload: Buffer,
  signatureBase64: string,
): Promise<boolean> {
  const dir = await fsp.mkdtemp(path.join(work, "openssl-"));
  await fsp.writeFile(path.join(dir, "payload"), payload);
  await fsp.writeFile(path.join(dir, "sig"), Buffer.from(signatureBase64, "base64"));
  const r = await run("openssl", [
    "dgst",
    "-sha256",
    "-verify",
    pub,
    "-signature",
    path.join(dir, "sig"),
    path.join(dir, "payload"),
  ]);
  return r.code === 0 && r.stdout.includes("Verified OK");
}
