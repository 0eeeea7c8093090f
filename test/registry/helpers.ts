// A real registry for the push tests: Debian's docker-registry (CNCF
// distribution 2.8) on a loopback port with its own storage, optionally with
// TLS from a CA made here and htpasswd basic auth; its access log counts the
// upload requests. A small HTTP proxy in front of it can drop connections.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fsp from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { freePort, waitForPort } from "../support/net.ts";
import { requireParts } from "../support/skip.ts";

export interface Registry {
  host: string;
  port: number;
  storage: string;
  /** Everything the registry logged, access log included. */
  log(): string;
  /** POST/PATCH/PUT requests to blob upload endpoints since the start. */
  uploads(): string[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface RegistryOptions {
  tls?: { cert: string; key: string };
  htpasswd?: string;
  /** Bearer tokens from this realm, signed by the key of `rootCert` (distribution's token auth). */
  token?: { realm: string; service: string; issuer: string; rootCert: string };
}

export async function startRegistry(dir: string, options: RegistryOptions = {}): Promise<Registry> {
  const port = await freePort();
  const storage = path.join(dir, "storage");
  await fsp.mkdir(storage, { recursive: true });
  const config = path.join(dir, "registry.yml");
  await fsp.writeFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${storage}`,
      "http:",
      `  addr: 127.0.0.1:${port}`,
      ...(options.tls
        ? ["  tls:", `    certificate: ${options.tls.cert}`, `    key: ${options.tls.key}`]
        : []),
      ...(options.htpasswd
        ? ["auth:", "  htpasswd:", "    realm: niftyc-test", `    path: ${options.htpasswd}`]
        : []),
      ...(options.token
        ? [
            "auth:",
            "  token:",
            `    realm: ${options.token.realm}`,
            `    service: ${options.token.service}`,
            `    issuer: ${options.token.issuer}`,
            `    rootcertbundle: ${options.token.rootCert}`,
          ]
        : []),
      "",
    ].join("\n"),
  );
  let log = "";
  let child: ChildProcess | undefined;
  const registry: Registry = {
    host: `127.0.0.1:${port}`,
    port,
    storage,
    log: () => log,
    uploads: () =>
      [...log.matchAll(/"((?:POST|PATCH|PUT) \/v2\/[^" ]*\/blobs\/uploads\/[^" ]*)/g)].map((m) => m[1]!),
    async start() {
      child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout!.setEncoding("utf8").on("data", (d: string) => (log += d));
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (log += d));
      await waitForPort(port, 20_000);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const closed = new Promise((done) => c.once("close", done));
      c.kill("SIGKILL");
      await closed;
    },
  };
  await registry.start();
  return registry;
}

/** A CA and a server certificate for IP:127.0.0.1 signed by it, made with openssl. */
export function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const p = (n: string) => path.join(dir, n);
  const run = (args: string[]) =>
    execFileSync("openssl", args, { stdio: "pipe", timeout: 60_000, killSignal: "SIGKILL" });
  run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=niftyc test CA",
  ]);
  run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    p("server.key"),
    "-out",
    p("server.csr"),
    "-subj",
    "/CN=127.0.0.1",
  ]);
  execFileSync("sh", [
    "-c",
    `printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ${p("ext.cnf")}`,
  ]);
  run([
    "x509",
    "-req",
    "-in",
    p("server.csr"),
    "-CA",
    p("ca.pem"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("server.pem"),
    "-days",
    "2",
    "-extfile",
    p("ext.cnf"),
  ]);
  return { ca: p("ca.pem"), cert: p("server.pem"), key: p("server.key") };
}

export interface RegistryProxy {
  host: string;
  /** Requests seen, as "METHOD path". */
  requests: string[];
  /**
   * The next `count` requests matching `match` are cut off: their connection
   * is destroyed once `afterBytes` of the body arrived (`then` runs first).
   */
  drop(
    match: (method: string, url: string) => boolean,
    count: number,
    afterBytes?: number,
    then?: () => Promise<void> | void,
  ): void;
  close(): Promise<void>;
}

/** An HTTP proxy to `target` (host:port) that keeps the Host header, so Locations point back through it. */
export async function startProxy(target: string): Promise<RegistryProxy> {
  const [targetHost, targetPort] = target.split(":") as [string, string];
  const port = await freePort();
  const requests: string[] = [];
  let rule:
    | {
        match: (m: string, u: string) => boolean;
        count: number;
        afterBytes: number;
        then?: () => Promise<void> | void;
      }
    | undefined;
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const dropping = rule && rule.count > 0 && rule.match(req.method!, req.url!) ? rule : undefined;
    if (dropping) dropping.count--;
    const upstream = http.request(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode!, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    let seen = 0;
    let cut = false;
    req.on("data", async (chunk: Buffer) => {
      if (cut) return;
      seen += chunk.length;
      if (dropping && seen >= dropping.afterBytes) {
        cut = true;
        req.pause();
        await dropping.then?.();
        upstream.destroy();
        req.socket.destroy();
        return;
      }
      upstream.write(chunk);
    });
    req.on("end", () => {
      if (!cut && dropping && seen < dropping.afterBytes) {
        // A body shorter than the cut: drop before the answer.
        cut = true;
        void Promise.resolve(dropping.then?.()).then(() => {
          upstream.destroy();
          req.socket.destroy();
        });
        return;
      }
      if (!cut) upstream.end();
    });
  });
  await new Promise<void>((done) => server.listen(port, "127.0.0.1", done));
  return {
    host: `127.0.0.1:${port}`,
    requests,
    drop(match, count, afterBytes = 0, then) {
      rule = { match, count, afterBytes, ...(then ? { then } : {}) };
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** A tool with a bounded run; its output and status. */
export function run(
  command: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 120_000,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}

/** Why the registry tests cannot run here, or undefined. */
export function registryUnavailable(
  tools: readonly string[] = ["docker-registry", "skopeo", "openssl", "htpasswd"],
): string | undefined {
  for (const tool of tools) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}

/** Skip outside CI with the reason; in CI a missing tool is a failure. */
export function requireTools(t: import("ava").ExecutionContext, why: string | undefined): boolean {
  return requireParts(t, "registry tests", why);
}

export interface Seen {
  /** "http" for a plain request on a TLS registry's port (or any request to a plain one). */
  scheme: "http" | "https";
  method: string;
  url: string;
  authorization: string | undefined;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, scheme: "http" | "https") => void;

export interface FakeRegistry {
  host: string;
  /** Every request, as it came. */
  seen: Seen[];
  handler: Handler;
  close(): Promise<void>;
}

/**
 * A scripted registry on loopback for attacks a real one would not make: its
 * `handler` answers every request. With `tls`, the same port also answers
 * plain http (told by the first byte), as an attacker on the path could.
 */
export async function startFakeRegistry(
  handler: Handler,
  tls?: { cert: string; key: string },
): Promise<FakeRegistry> {
  const net = await import("node:net");
  const https = await import("node:https");
  const port = await freePort();
  const seen: Seen[] = [];
  const fake: FakeRegistry = { host: `127.0.0.1:${port}`, seen, handler, close: async () => {} };
  const answer = (scheme: "http" | "https") => (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push({ scheme, method: req.method!, url: req.url!, authorization: req.headers.authorization });
    fake.handler(req, res, scheme);
  };
  const plain = http.createServer(answer("http"));
  const keys = tls ? { cert: await fsp.readFile(tls.cert), key: await fsp.readFile(tls.key) } : undefined;
  const secure = keys ? https.createServer(keys, answer("https")) : undefined;
  const sockets = new Set<import("node:net").Socket>();
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.once("data", (first: Buffer) => {
      if (first[0] !== 0x16 || !secure) {
        socket.pause();
        socket.unshift(first);
        plain.emit("connection", socket);
        socket.resume();
        return;
      }
      // TLS reads the socket's handle, not what was unshifted: relay to the https server instead.
      const inner = net.connect(innerPort, "127.0.0.1");
      sockets.add(inner);
      inner.on("close", () => sockets.delete(inner));
      inner.on("error", () => socket.destroy());
      socket.on("close", () => inner.destroy());
      inner.write(first);
      socket.pipe(inner).pipe(socket);
    });
  });
  let innerPort = 0;
  if (secure) {
    await new Promise<void>((done) => secure.listen(0, "127.0.0.1", done));
    innerPort = (secure.address() as import("node:net").AddressInfo).port;
  }
  await new Promise<void>((done) => front.listen(port, "127.0.0.1", done));
  fake.close = () =>
    new Promise<void>((done) => {
      for (const s of sockets) s.destroy();
      secure?.closeAllConnections();
      secure?.close();
      front.close(() => done());
    });
  return fake;
}

/** Send `total` bytes of `fill` after `prefix`, as fast as the client reads, stopping when it goes away. */
export function streamHuge(res: http.ServerResponse, total: number, prefix = "", fill = "a"): void {
  const chunk = Buffer.alloc(1 << 20, fill);
  let sent = 0;
  res.on("close", () => (sent = total));
  res.write(prefix);
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once("drain", pump);
    }
    res.end();
  };
  pump();
}
