// An OCI distribution API client over undici: blob HEAD, mounts, monolithic
// and chunked uploads (resumed from the registry's Range after a dropped
// chunk), manifests; basic and bearer auth from the WWW-Authenticate
// challenge; retries with backoff on 5xx, 429 and dropped connections.
// Messages never carry credentials or tokens: only methods, URLs without
// userinfo, statuses and the registry's own error codes.
import { readFileSync } from "node:fs";
import { getCACertificates } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { NiftyError } from "../diagnostics/errors.ts";
import { parseChallenge, type Credentials } from "./credentials.ts";
import { isLoopback } from "./reference.ts";

export interface ClientOptions {
  registry: string;
  /** Plain http; refused unless the registry is on loopback. */
  insecure?: boolean;
  /** A PEM file of extra CAs, trusted beside the system's. */
  caFile?: string;
  credentials?: Credentials;
  timeoutMs?: number;
  /** Retries after the first attempt. Default 4. */
  retries?: number;
  /** First backoff; doubled each retry. Default 500 ms. */
  retryDelayMs?: number;
  onRetry?: (what: string, attempt: number, reason: string) => void;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

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

const NETWORK_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_SOCKET", "UND_ERR_CLOSED",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH", "UND_ERR_RES_CONTENT_LENGTH_MISMATCH", "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT",
  "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);
const TLS_CODES = new Set(["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_GET_ISSUER_CERT", "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_SSL_PACKET_LENGTH_TOO_LONG", "EPROTO"]);

function errorCode(error: unknown): string | undefined {
  let e = error as { code?: string; cause?: unknown } | undefined;
  for (let i = 0; e && i < 4; i++, e = e.cause as typeof e) if (typeof e.code === "string" && e.code !== "UND_ERR") return e.code;
  return undefined;
}

/** The registry's own words: {"errors":[{"code","message"}]}. */
function registryErrors(text: string): string {
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const list = (parsed.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(": ")).filter(Boolean);
    if (list.length > 0) return list.join("; ");
  } catch {}
  return text.trim().slice(0, 200);
}

/** `HTTP 401`, followed by what the registry said when it said anything: no empty part joined in. */
function httpStatus(status: number, text: string): string {
  return [`HTTP ${status}`, registryErrors(text)].filter(Boolean).join(" ");
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

  constructor(options: ClientOptions) {
    if (options.insecure && !isLoopback(options.registry)) {
      throw new NiftyError("NIFTY705", `--insecure sends everything in plain http, which niftyc allows only to a registry on this machine, not ${options.registry}`,
        "use https (trust its CA with --ca-file if it is private), or run the registry on 127.0.0.1");
    }
    this.options = options;
    this.registry = options.registry;
    this.base = `${options.insecure ? "http" : "https"}://${options.registry}`;
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
          throw new NiftyError("NIFTY707", `cannot read the CA file ${this.options.caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, "give a readable PEM file with --ca-file");
        }
        ca = [...getCACertificates("system"), ...getCACertificates("bundled"), extra];
      } else {
        ca = [...getCACertificates("system"), ...getCACertificates("bundled")];
      }
      this.dispatcher = new this.undici.Agent({ connectTimeout: timeout, headersTimeout: timeout, bodyTimeout: timeout, connect: { ca } });
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
          throw new NiftyError("NIFTY701", `${what} failed after ${attempt + 1} attempts: ${error.message}`,
            `check that the registry ${this.registry} is up and reachable, then push again (what was uploaded is kept, and no manifest was written)`);
        }
        this.options.onRetry?.(what, attempt + 1, error.message);
        await sleep(delay * 2 ** attempt);
      }
    }
  }

  /** One request with authentication; transient failures throw Transient. */
  async request(spec: RequestSpec): Promise<Response> {
    let res = await this.send(spec);
    if (res.status === 401) {
      await this.authenticate(spec, res);
      res = await this.send(spec);
    }
    if (res.status === 401 || res.status === 403) {
      const who = this.options.credentials ? `as ${JSON.stringify(this.options.credentials.username)}` : "without credentials";
      throw new NiftyError("NIFTY702", `${this.registry} refused ${spec.method} ${this.shown(spec.url)} ${who}: ${httpStatus(res.status, res.text)}`,
        this.options.credentials
          ? "check the user name and password (and that the user may push to this repository)"
          : `log in (podman login ${this.registry} or docker login), or give --username and --password-stdin`);
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) throw new Transient(`${spec.method} ${this.shown(spec.url)}: ${httpStatus(res.status, res.text)}`);
    return res;
  }

  /** A URL for messages: the path only, without query (upload state, digests stay). */
  private shown(url: string): string {
    const u = new URL(url, this.base);
    return u.pathname;
  }

  private async send(spec: RequestSpec): Promise<Response> {
    const { undici, dispatcher } = await this.client();
    const url = new URL(spec.url, this.base);
    const headers: Record<string, string> = { "user-agent": "niftyc", ...spec.headers };
    // A Location on another host (a storage redirect) gets no credentials.
    const auth = url.host === new URL(this.base).host ? this.authorization(spec.scopes) : undefined;
    if (auth) headers.authorization = auth;
    const body = spec.body?.();
    try {
      const res = await undici.request(url, { method: spec.method, headers, body: body ?? null, dispatcher });
      if (spec.sink && res.statusCode === 200) {
        try {
          await spec.sink(res.body);
        } catch (error) {
          if (error instanceof NiftyError) throw error;
          const code = errorCode(error);
          if (code !== undefined && NETWORK_CODES.has(code)) throw new Transient(`${spec.method} ${this.shown(spec.url)}: ${code}`);
          throw error;
        }
        return { status: 200, headers: res.headers, text: "" };
      }
      const text = spec.method === "HEAD" ? (await res.body.dump(), "") : await res.body.text();
      return { status: res.statusCode, headers: res.headers, text };
    } catch (error) {
      if (body && typeof (body as Readable).destroy === "function") (body as Readable).destroy();
      const code = errorCode(error);
      if (code !== undefined && TLS_CODES.has(code)) {
        throw new NiftyError("NIFTY707", `TLS with ${this.registry} failed: ${code}`,
          code.startsWith("ERR_SSL")
            ? "the registry may speak plain http; for a registry on this machine use --insecure"
            : "trust the registry's CA with --ca-file CA.pem (or install it in the system's CA store)");
      }
      if (error instanceof NiftyError) throw error;
      if (code !== undefined && NETWORK_CODES.has(code)) throw new Transient(`${spec.method} ${this.shown(spec.url)}: ${code}`);
      if ((error as Error).name === "SocketError" || (error as Error).name === "RequestAbortedError") throw new Transient(`${spec.method} ${this.shown(spec.url)}: ${(error as Error).message}`);
      throw error;
    }
  }

  private authorization(scopes: string[]): string | undefined {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === "basic") {
      const creds = this.options.credentials;
      return creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}` : undefined;
    }
    const token = this.tokens.get(scopes.join(" "));
    return token ? `Bearer ${token}` : undefined;
  }

  private async authenticate(spec: RequestSpec, res: Response): Promise<void> {
    const header = res.headers["www-authenticate"];
    const challenge = parseChallenge(Array.isArray(header) ? header[0]! : header ?? "");
    if (challenge?.scheme === "basic") {
      this.challenge = { scheme: "basic" };
      return;
    }
    if (challenge?.scheme !== "bearer" || !challenge.params.realm) return;
    this.challenge = { scheme: "bearer", realm: challenge.params.realm, ...(challenge.params.service ? { service: challenge.params.service } : {}) };
    await this.fetchToken(spec.scopes);
  }

  /** The token flow (distribution's token spec): GET realm?service&scope, basic credentials if any. */
  private async fetchToken(scopes: string[]): Promise<void> {
    const c = this.challenge;
    if (c?.scheme !== "bearer") return;
    const { undici, dispatcher } = await this.client();
    const url = new URL(c.realm);
    if (url.protocol === "http:" && !isLoopback(url.host)) {
      throw new NiftyError("NIFTY705", `${this.registry} sends for tokens to ${url.origin}, over plain http`, "niftyc sends credentials over plain http only on this machine; the token server must use https");
    }
    if (c.service) url.searchParams.set("service", c.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    const creds = this.options.credentials;
    const headers: Record<string, string> = { "user-agent": "niftyc" };
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    let status: number;
    let text: string;
    try {
      const r = await undici.request(url, { method: "GET", headers, dispatcher });
      status = r.statusCode;
      text = await r.body.text();
    } catch (error) {
      const code = errorCode(error);
      if (code !== undefined && NETWORK_CODES.has(code)) throw new Transient(`token from ${url.origin}${url.pathname}: ${code}`);
      throw error;
    }
    if (status >= 500 || status === 429) throw new Transient(`token from ${url.origin}${url.pathname}: HTTP ${status}`);
    if (status !== 200) {
      throw new NiftyError("NIFTY702", `the token server ${url.origin}${url.pathname} refused a token for ${scopes.join(" ")}: HTTP ${status}`,
        creds ? "check the user name and password" : `log in (podman login ${this.registry}), or give --username and --password-stdin`);
    }
    let token: string | undefined;
    try {
      const parsed = JSON.parse(text) as { token?: string; access_token?: string };
      token = parsed.token ?? parsed.access_token;
    } catch {}
    if (!token) throw new NiftyError("NIFTY703", `the token server ${url.origin}${url.pathname} answered without a token`, "check the registry's token service");
    this.tokens.set(scopes.join(" "), token);
  }

  unexpected(spec: { method: string; url: string }, res: Response): NiftyError {
    return new NiftyError("NIFTY703", `${this.registry} answered ${spec.method} ${this.shown(spec.url)} with HTTP ${res.status}: ${registryErrors(res.text) || "(no message)"}`,
      "the registry refused the request; its message says why (a full disk, a size limit, an unsupported media type)");
  }
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}
