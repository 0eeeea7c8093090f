// An OCI distribution API client over undici: blob HEAD, mounts, monolithic
// and chunked uploads (resumed from the registry's Range after a dropped
// chunk), manifests; basic and bearer auth from the WWW-Authenticate
// challenge; retries with backoff on 5xx, 429 and dropped connections.
// Credentials go only to the registry's origin (scheme, host and port): a
// Location or redirect elsewhere gets none, and one from https to plain http
// is refused. Basic credentials go to a Bearer realm, as the token protocol
// says, only over https. Messages never carry credentials or tokens: what a
// registry echoes is redacted and cut. What is read of an answer is bounded
// (headers by undici, bodies here), and each request by a deadline.
import { readFileSync } from "node:fs";
import { getCACertificates } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { NiftyError } from "../diagnostics/errors.ts";
import { Deadline, deadlineRule } from "../fetch/deadline.ts";
import { parseChallenge, type Credentials } from "./credentials.ts";
import { isLoopback } from "./reference.ts";
import { NETWORK_CODES } from "../fetch/network-errors.ts";

export interface ClientOptions {
  registry: string;
  /** Plain http; refused unless the registry is on loopback. */
  insecure?: boolean;
  /** A PEM file of extra CAs, trusted beside the system's. */
  caFile?: string;
  credentials?: Credentials;
  /** Connect and idle timeout, and each request's deadline: this plus 1 s per 16 KiB moved. Default 60 s. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 4. */
  retries?: number;
  /** First backoff; doubled each retry. Default 500 ms. */
  retryDelayMs?: number;
  onRetry?: (what: string, attempt: number, reason: string) => void;
  /** Only reads (verify, sign's look-ups, --cache-from): a failure's hint does not speak of a push. */
  readOnly?: boolean;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The answer's bytes as sent: what a digest is taken of (`text` is their UTF-8 reading). */
  bytes: Buffer;
  /** The origin that answered (after redirects). */
  origin?: string;
}

const EMPTY = Buffer.alloc(0);

/** The most of a manifest, token or other answer held in memory. */
export const MAX_ANSWER = 4 << 20;
/** The most of an error answer read, and of it shown. */
const MAX_ERROR_READ = 64 << 10;
const MAX_ERROR_SHOWN = 2 << 10;
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CHECK_REGISTRY = "check the registry, or that the address is a registry";
const CHECK_TOKENS = "check the registry's token service";
const CHECK_CONFIG =
  "check the registry's configuration (its external URL, and the scheme its proxy forwards)";

type Body = () => Buffer | Readable | undefined;

interface RequestSpec {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** A path on the registry or an absolute URL the registry gave (Location). */
  url: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Token scopes the request needs, e.g. repository:app:pull,push. */
  scopes: string[];
  /** Takes the body of a 200 answer as a stream (a blob download) instead of as text. */
  sink?: (body: Readable) => Promise<void>;
}

/** Worth another try: a dropped connection or a server in trouble. */
class Transient extends Error {}

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_SSL_PACKET_LENGTH_TOO_LONG",
  "EPROTO",
]);

function errorCode(error: unknown): string | undefined {
  let e = error as { code?: string; cause?: unknown } | undefined;
  for (let i = 0; e && i < 4; i++, e = e.cause as typeof e)
    if (typeof e.code === "string" && e.code !== "UND_ERR") return e.code;
  return undefined;
}

/** The registry's own words: {"errors":[{"code","message"}]}, else its text. */
function registryWords(text: string): string {
  try {
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(parsed.errors)) {
      const list = parsed.errors
        .map((e: { code?: unknown; message?: unknown } | null) =>
          [e?.code, e?.message].filter((w) => typeof w === "string" && w !== "").join(": "),
        )
        .filter(Boolean);
      if (list.length > 0) return list.join("; ");
    }
  } catch {}
  return text.trim();
}

/** At most `max` bytes of a body (the rest is not read); whether there was more. */
async function readBounded(
  body: AsyncIterable<Buffer>,
  max: number,
  deadline: Deadline,
): Promise<{ bytes: Buffer; over: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    deadline.count(chunk.length);
    if (size + chunk.length > max) {
      chunks.push(chunk.subarray(0, max - size));
      return { bytes: Buffer.concat(chunks), over: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { bytes: Buffer.concat(chunks), over: false };
}

/** A Buffer body in pieces, so the deadline counts what the socket took. */
function* pieces(buffer: Buffer): Generator<Buffer> {
  for (let i = 0; i < buffer.length; i += 64 << 10) yield buffer.subarray(i, i + (64 << 10));
}

export class RegistryClient {
  readonly registry: string;
  readonly base: string;
  private readonly options: ClientOptions;
  private dispatcher: Dispatcher | undefined;
  private undici: typeof import("undici") | undefined;
  /** How the registry asked to be authenticated, learnt from its first 401. */
  private challenge: { scheme: "basic" } | { scheme: "bearer"; realm: string; service?: string } | undefined;
  private readonly tokens = new Map<string, string>();
  /** The registry's origin: the only one that gets credentials or tokens. */
  private readonly origin: string;

  constructor(options: ClientOptions) {
    if (options.insecure && !isLoopback(options.registry)) {
      throw new NiftyError(
        "NIFTY705",
        `--insecure sends everything in plain http, which niftyc allows only to a registry on this machine, not ${options.registry}`,
        "use https (trust its CA with --ca-file if it is private), or run the registry on 127.0.0.1",
      );
    }
    this.options = options;
    this.registry = options.registry;
    this.base = `${options.insecure ? "http" : "https"}://${options.registry}`;
    this.origin = new URL(this.base).origin;
  }

  private async client(): Promise<{ undici: typeof import("undici"); dispatcher: Dispatcher }> {
    if (!this.undici || !this.dispatcher) {
      this.undici = await import("undici");
      const timeout = this.options.timeoutMs ?? 60_000;
      let ca: string[] | undefined;
      if (this.options.caFile !== undefined) {
        let extra: string;
        try {
          extra = readFileSync(this.options.caFile, "utf8");
        } catch (error) {
          throw new NiftyError(
            "NIFTY707",
            `cannot read the CA file ${this.options.caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
            "give a readable PEM file with --ca-file",
          );
        }
        ca = [...getCACertificates("system"), ...getCACertificates("bundled"), extra];
      } else {
        ca = [...getCACertificates("system"), ...getCACertificates("bundled")];
      }
      this.dispatcher = new this.undici.Agent({
        connectTimeout: timeout,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        connect: { ca },
      });
    }
    return { undici: this.undici, dispatcher: this.dispatcher };
  }

  async close(): Promise<void> {
    await this.dispatcher?.close().catch(() => {});
  }

  /** Run `fn` again after transient failures, with backoff; then a clear error. */
  async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const retries = this.options.retries ?? 4;
    const delay = this.options.retryDelayMs ?? 500;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!(error instanceof Transient)) throw error;
        if (attempt >= retries) {
          throw new NiftyError(
            "NIFTY701",
            `${what} failed after ${attempt + 1} attempts: ${error.message}`,
            this.options.readOnly
              ? `check that the registry ${this.registry} is up and reachable, then run the command again`
              : `check that the registry ${this.registry} is up and reachable, then push again (what was uploaded is kept, and no manifest was written)`,
          );
        }
        this.options.onRetry?.(what, attempt + 1, error.message);
        await sleep(delay * 2 ** attempt);
      }
    }
  }

  /** One request with authentication; transient failures throw Transient. */
  async request(spec: RequestSpec): Promise<Response> {
    let res = await this.send(spec);
    // Only the registry's own origin may ask for credentials: another's challenge is its refusal.
    if (res.status === 401 && res.origin === this.origin) {
      await this.authenticate(spec, res);
      res = await this.send(spec);
    }
    if (res.status === 401 || res.status === 403) {
      const who = this.options.credentials
        ? `as ${JSON.stringify(this.options.credentials.username)}`
        : "without credentials";
      throw new NiftyError(
        "NIFTY702",
        `${this.registry} refused ${spec.method} ${this.shown(spec.url)} ${who}: ${this.httpStatus(res.status, res.text)}`,
        this.options.credentials
          ? `check the user name and password (and that the user may ${this.options.readOnly ? "pull from" : "push to"} this repository)`
          : `log in (podman login ${this.registry} or docker login), or give --username and --password-stdin`,
      );
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw new Transient(`${spec.method} ${this.shown(spec.url)}: ${this.httpStatus(res.status, res.text)}`);
    }
    return res;
  }

  /** A URL for messages: the path only, without query (upload state, digests stay). */
  private shown(url: string): string {
    try {
      return new URL(url, this.base).pathname;
    } catch {
      return "(a URL the registry gave)";
    }
  }

  /** `HTTP 401`, followed by what the registry said when it said anything: no empty part joined in. */
  httpStatus(status: number, text: string): string {
    return [`HTTP ${status}`, this.registryErrors(text)].filter(Boolean).join(" ");
  }

  /** What a registry said, fit to print: credentials and tokens it echoes starred out, a few KiB at most. */
  registryErrors(text: string): string {
    let out = registryWords(text);
    const creds = this.options.credentials;
    const secrets = [...this.tokens.values()];
    if (creds)
      secrets.push(creds.password, Buffer.from(`${creds.username}:${creds.password}`).toString("base64"));
    // Longest first, so a password inside the basic string does not leave the rest of it.
    for (const secret of secrets.filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) {
      out = out.split(secret).join("***");
    }
    out = out.replace(/\b(basic|bearer)(\s+|%20|\+)[^\s"',;\\]+/gi, "$1 ***");
    if (out.length <= MAX_ERROR_SHOWN) return out;
    return `${out.slice(0, MAX_ERROR_SHOWN)}… (${out.length - MAX_ERROR_SHOWN} more characters cut)`;
  }

  /**
   * A URL of the registry or one it gave (a Location, a redirect), resolved
   * against `from`: http(s) only, and never from https down to plain http.
   */
  resolve(location: string, method: string, from: string = this.base): URL {
    const to = JSON.stringify(location.slice(0, 200));
    const refuse = (why: string) =>
      new NiftyError(
        "NIFTY710",
        `${this.registry} sent ${method} ${this.shown(from)} to ${to}: ${why}`,
        CHECK_CONFIG,
      );
    let url: URL;
    try {
      url = new URL(location, from);
    } catch {
      throw refuse("not a URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:")
      throw refuse("niftyc speaks only http(s) there");
    if (url.protocol === "http:" && this.base.startsWith("https:")) {
      throw refuse("from https down to plain http, which would show credentials and images to the network");
    }
    url.username = "";
    url.password = "";
    return url;
  }

  /** An error of undici or of the server's answer, as a diagnostic; Transient when worth another try. */
  private failure(error: unknown, what: string, deadline: Deadline): Error {
    if (deadline.expired) {
      const within = deadlineRule(this.timeout());
      return new NiftyError(
        "NIFTY713",
        `${this.registry} sent ${what} too slowly: the request did not end within ${within}`,
        "check the registry; give a slow network more time with --timeout SECONDS",
      );
    }
    if (error instanceof NiftyError) return error;
    const code = errorCode(error);
    if (code !== undefined && TLS_CODES.has(code)) {
      return new NiftyError(
        "NIFTY707",
        `TLS with ${this.registry} failed: ${code}`,
        code.startsWith("ERR_SSL")
          ? "the registry may speak plain http; for a registry on this machine use --insecure"
          : "trust the registry's CA with --ca-file CA.pem (or install it in the system's CA store)",
      );
    }
    if (code !== undefined && NETWORK_CODES.has(code)) return new Transient(`${what}: ${code}`);
    const name = (error as Error).name;
    if (name === "SocketError" || name === "RequestAbortedError") {
      return new Transient(`${what}: ${(error as Error).message}`);
    }
    if (code === "UND_ERR_HEADERS_OVERFLOW") {
      return new NiftyError(
        "NIFTY711",
        `${this.registry}'s answer to ${what} is too large: its headers are over 16 KiB`,
        CHECK_REGISTRY,
      );
    }
    if (code !== undefined && /^(UND_ERR|HPE_|ERR_INVALID)/.test(code)) {
      const why = `${this.registry}'s answer to ${what} cannot be read: ${code}`;
      return new NiftyError("NIFTY712", why, CHECK_REGISTRY);
    }
    // undici's parser errors often carry no code: llhttp's reason is in the message.
    if (name === "HTTPParserError") {
      const reason = /\(([^()]{1,200})\)$/.exec((error as Error).message)?.[1] ?? "unparsable";
      const why = `${this.registry}'s answer to ${what} cannot be read: it is not HTTP/1.1 (${reason})`;
      return new NiftyError("NIFTY712", why, CHECK_REGISTRY);
    }
    return error as Error;
  }

  private timeout(): number {
    return this.options.timeoutMs ?? 60_000;
  }

  /** A request and the redirects of a GET or HEAD (a registry sends blobs to its storage), each hop checked. */
  private async send(spec: RequestSpec): Promise<Response> {
    let url = this.resolve(spec.url, spec.method);
    for (let hop = 0; ; hop++) {
      const res = await this.sendOnce(spec, url);
      const location = res.headers.location;
      const follows = spec.method === "GET" || spec.method === "HEAD";
      if (!REDIRECTS.has(res.status) || !follows || typeof location !== "string") return res;
      if (hop >= MAX_REDIRECTS) {
        const what = `${spec.method} ${this.shown(spec.url)}`;
        throw new NiftyError(
          "NIFTY710",
          `${this.registry} sent ${what} through more than ${MAX_REDIRECTS} redirects`,
          CHECK_CONFIG,
        );
      }
      url = this.resolve(location, spec.method, url.toString());
    }
  }

  private async sendOnce(spec: RequestSpec, url: URL): Promise<Response> {
    const { undici, dispatcher } = await this.client();
    const headers: Record<string, string> = { "user-agent": "niftyc", ...spec.headers };
    // Another origin (a storage redirect, an upload Location elsewhere) gets no credentials.
    const auth = url.origin === this.origin ? this.authorization(spec.scopes) : undefined;
    if (auth) headers.authorization = auth;
    const what = `${spec.method} ${this.shown(spec.url)}`;
    const deadline = new Deadline(this.timeout());
    const made = spec.body?.();
    const body = made === undefined ? null : Buffer.isBuffer(made) ? pieces(made) : made;
    try {
      const counted = body && Readable.from(deadline.counted(body));
      const { signal } = deadline;
      const res = await undici.request(url, {
        method: spec.method,
        headers,
        body: counted,
        dispatcher,
        signal,
      });
      if (spec.sink && res.statusCode === 200) {
        await spec.sink(Readable.from(deadline.counted(res.body)));
        return { status: 200, headers: res.headers, text: "", bytes: EMPTY, origin: url.origin };
      }
      if (spec.method === "HEAD" || REDIRECTS.has(res.statusCode)) {
        await res.body.dump();
        return { status: res.statusCode, headers: res.headers, text: "", bytes: EMPTY, origin: url.origin };
      }
      const ok = res.statusCode < 300;
      const { bytes, over } = await readBounded(res.body, ok ? MAX_ANSWER : MAX_ERROR_READ, deadline);
      if (over) res.body.destroy();
      if (over && ok) {
        throw new NiftyError(
          "NIFTY711",
          `${this.registry}'s answer to ${what} is too large: over ${MAX_ANSWER >> 20} MiB`,
          CHECK_REGISTRY,
        );
      }
      return {
        status: res.statusCode,
        headers: res.headers,
        text: bytes.toString("utf8"),
        bytes,
        origin: url.origin,
      };
    } catch (error) {
      if (made && typeof (made as Readable).destroy === "function") (made as Readable).destroy();
      throw this.failure(error, what, deadline);
    } finally {
      deadline.done();
    }
  }

  private authorization(scopes: string[]): string | undefined {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === "basic") {
      const creds = this.options.credentials;
      return creds
        ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`
        : undefined;
    }
    const token = this.tokens.get(scopes.join(" "));
    return token ? `Bearer ${token}` : undefined;
  }

  private async authenticate(spec: RequestSpec, res: Response): Promise<void> {
    const header = res.headers["www-authenticate"];
    const challenge = parseChallenge(Array.isArray(header) ? header[0]! : (header ?? ""));
    if (challenge?.scheme === "basic") {
      this.challenge = { scheme: "basic" };
      return;
    }
    if (challenge?.scheme !== "bearer" || !challenge.params.realm) return;
    this.challenge = {
      scheme: "bearer",
      realm: challenge.params.realm,
      ...(challenge.params.service ? { service: challenge.params.service } : {}),
    };
    await this.fetchToken(spec.scopes);
  }

  /** The token flow (distribution's token spec): GET realm?service&scope, basic credentials if any. */
  private async fetchToken(scopes: string[]): Promise<void> {
    const c = this.challenge;
    if (c?.scheme !== "bearer") return;
    const { undici, dispatcher } = await this.client();
    let url: URL;
    try {
      url = new URL(c.realm);
    } catch {
      url = new URL("about:blank");
    }
    const shownRealm = JSON.stringify(c.realm.slice(0, 200));
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new NiftyError(
        "NIFTY712",
        `${this.registry}'s answer cannot be read: its Bearer realm ${shownRealm} is not an http(s) URL`,
        CHECK_TOKENS,
      );
    }
    // Plain http only beside a registry on this machine that is itself reached in plain http.
    if (url.protocol === "http:" && (!isLoopback(url.host) || !this.base.startsWith("http:"))) {
      throw new NiftyError(
        "NIFTY705",
        `${this.registry} sends for tokens to ${url.origin}, over plain http`,
        "niftyc sends credentials over plain http only to a registry and token server on this machine " +
          "reached with --insecure; the token server must use https",
      );
    }
    url.username = "";
    url.password = "";
    if (c.service) url.searchParams.set("service", c.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    const creds = this.options.credentials;
    const headers: Record<string, string> = { "user-agent": "niftyc" };
    if (creds)
      headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    const where = `${url.origin}${url.pathname}`;
    let status: number;
    let text: string;
    const deadline = new Deadline(this.timeout());
    try {
      const r = await undici.request(url, { method: "GET", headers, dispatcher, signal: deadline.signal });
      status = r.statusCode;
      const { bytes, over } = await readBounded(r.body, MAX_ANSWER, deadline);
      if (over) {
        r.body.destroy();
        throw new NiftyError(
          "NIFTY711",
          `the token server ${where}'s answer is too large: over ${MAX_ANSWER >> 20} MiB`,
          CHECK_TOKENS,
        );
      }
      text = bytes.toString("utf8");
    } catch (error) {
      throw this.failure(error, `a token from ${where}`, deadline);
    } finally {
      deadline.done();
    }
    if (status >= 500 || status === 429) throw new Transient(`token from ${where}: HTTP ${status}`);
    if (status !== 200) {
      throw new NiftyError(
        "NIFTY702",
        `the token server ${where} refused a token for ${scopes.join(" ")}: HTTP ${status}`,
        creds
          ? "check the user name and password"
          : `log in (podman login ${this.registry}), or give --username and --password-stdin`,
      );
    }
    let parsed: { token?: unknown; access_token?: unknown } | undefined;
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {}
    if (parsed === null || typeof parsed !== "object") {
      throw new NiftyError(
        "NIFTY712",
        `the token server ${where}'s answer cannot be read: it is not JSON`,
        CHECK_TOKENS,
      );
    }
    const token = parsed.token ?? parsed.access_token;
    if (token === undefined || token === "")
      throw new NiftyError("NIFTY703", `the token server ${where} answered without a token`, CHECK_TOKENS);
    // A token goes into a header: visible ASCII only, so it cannot add a line to the request.
    if (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token)) {
      throw new NiftyError(
        "NIFTY712",
        `the token server ${where}'s answer cannot be read: its token is not a string of visible ASCII`,
        CHECK_TOKENS,
      );
    }
    this.tokens.set(scopes.join(" "), token);
  }

  unexpected(spec: { method: string; url: string }, res: Response): NiftyError {
    const said = this.registryErrors(res.text) || "(no message)";
    return new NiftyError(
      "NIFTY703",
      `${this.registry} answered ${spec.method} ${this.shown(spec.url)} with HTTP ${res.status}: ${said}`,
      "the registry refused the request; its message says why (a full disk, a size limit, an unsupported media type)",
    );
  }
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}
