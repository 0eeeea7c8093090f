// Fetching a blob by digest: the store first (no network at all), then each
// source in turn with retries, streaming into a store writer that hashes as
// it writes. A failed or mismatched download leaves nothing in the store.
import { setTimeout as sleep } from "node:timers/promises";
import { pipeline } from "node:stream/promises";
import type { Dispatcher } from "undici";
import type { Http } from "./http.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { FetchError } from "../cache/fetch-error.ts";
import { DigestMismatchError, digestHex } from "../cache/store.ts";
import type { Store } from "../cache/store.ts";
import { DEFAULT_LIMITS, showSize } from "../core/limits.ts";
import { Deadline, deadlineRule } from "./deadline.ts";
import { NETWORK_CODES } from "./network-errors.ts";

export interface FetchProgress {
  name: string;
  url: string;
  received: number;
  /** From Content-Length, when the server sent one. */
  total?: number;
}

export interface FetchRequest {
  /** What is fetched, for messages and progress (e.g. the recipe's name for it). */
  name: string;
  /** Resolved http(s) URLs, tried in order. */
  sources: string[];
  /** `sha256:<hex>`: the identity of the bytes wanted. */
  digest: string;
  /** Never touch the network; a blob not in the store is an error. */
  offline: boolean;
  /**
   * Connect, response-headers and body-idle timeout, and the whole request's deadline: it must end
   * within this plus 1 s per 16 KiB received (src/fetch/deadline.ts). Default 30 s.
   */
  timeoutMs?: number;
  /** Retries per source after the first attempt. Default 3. */
  retries?: number;
  /** First backoff delay; doubled for each further retry. Default 500 ms. */
  retryDelayMs?: number;
  onProgress?: (p: FetchProgress) => void;
  /** The most bytes one download may bring (--limit download-size). */
  maxBytes?: number;
  /** Reads each attempt's bytes as they arrive (see DownloadTap). */
  tap?: (file: string) => DownloadTap;
}

/**
 * A reader of a download as it arrives (an index parsed while it downloads), made for each attempt
 * with the temp file its bytes go to: `write` tells of each chunk as it arrives (the earlier ones
 * are in the file, or about to be); `end` is called once the body is whole and in the file, before
 * its digest is checked, and must not throw: its value becomes the result's `tapped` only when the
 * digest matched. `abort` is called for an attempt whose bytes are not kept (a failure, a digest
 * mismatch): whatever it made from them is discarded.
 */
export interface DownloadTap {
  write(chunk: Buffer): Promise<void> | void;
  end(): Promise<unknown>;
  abort(): Promise<void>;
}

export interface FetchResult {
  digest: string;
  path: string;
  size: number;
  fromCache: boolean;
  /** The source URL the bytes came from (absent when from the cache). */
  url?: string;
  /** fetchLatest: the ETag and Last-Modified the source sent with these bytes. */
  validators?: Validators;
  /** fetchLatest: the source answered 304 to a conditional request; the stored copy was accepted again. */
  notModified?: boolean;
  /** What the request's tap made of the bytes stored (absent when they came from the store). */
  tapped?: unknown;
}

/** What a source said identifies the bytes it sent, for a conditional request next time. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

/** One source that failed, and why. */
export interface SourceFailure {
  url: string;
  reason: string;
  /** Set when the source answered, but with other bytes than the digest names. */
  mismatch?: { expected: string; actual: string };
}

/** Every source failed (NIFTY103); the failures are kept for callers that explain them better. */
export class FetchFailedError extends FetchError {
  failures: SourceFailure[];

  constructor(message: string, hint: string, failures: SourceFailure[]) {
    super(
      "NIFTY103",
      "sources",
      message,
      hint,
      failures.map((f) => `${f.url}: ${f.reason}`),
    );
    this.failures = failures;
  }
}

/** An HTTP status that is not a success. */
class HttpStatusError extends Error {
  status: number;
  constructor(status: number) {
    super(`HTTP ${status}`);
    this.status = status;
  }
}

// Errors of this machine (a full disk, a read-only cache): no source helps.
const LOCAL_CODES = new Set(["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE"]);

export async function fetchBlob(store: Store, request: FetchRequest): Promise<FetchResult> {
  const { name, digest } = request;
  digestHex(digest);
  const cached = await store.stat(digest);
  if (cached) return { ...cached, fromCache: true };
  if (request.offline) {
    throw new FetchError(
      "NIFTY102",
      "digest",
      `${name} (${digest}) is not in the cache, and offline mode forbids downloading it`,
      `copy the file to this machine and run \`niftyc cache import <file>\` (its sha256 must be ${digestHex(digest)}), then build with --offline again`,
    );
  }
  if (request.sources.length === 0) {
    throw new FetchError(
      "NIFTY104",
      "sources",
      `${name} (${digest}) has no source to fetch it from`,
      "give at least one URL, or import the file with `niftyc cache import <file>`",
    );
  }

  const fetched = await download(store, request, digest);
  if (fetched.url !== undefined) await noteOrigins(store, digest, [fetched.url]);
  return fetched;
}

/**
 * Where a blob came from, kept beside it (the `origins` record: URLs, and a FETCH's sources as the
 * recipe writes them), whoever fetched it: a FETCH, a PACKAGE's .deb, an index. A blob later found in
 * the store by its digest is named and reported by these, never by the sources of the line that found it.
 */
export async function noteOrigins(store: Store, digest: string, sources: readonly string[]): Promise<void> {
  const known = (await store.readRecord<{ sources: string[] }>("origins", digestHex(digest)))?.sources ?? [];
  const all = [...new Set([...known, ...sources])].sort();
  if (all.length !== known.length) await store.writeRecord("origins", digestHex(digest), { sources: all });
}

export interface FetchLatestRequest {
  /** What is fetched, for messages and progress. */
  name: string;
  /** Resolved http(s) URLs, tried in order. */
  sources: string[];
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  onProgress?: (p: FetchProgress) => void;
  maxBytes?: number;
  tap?: (file: string) => DownloadTap;
  /** Judges the complete download before it is stored (a signature check): throwing leaves nothing in the store. */
  accept?: (file: string, url: string) => Promise<void>;
  /**
   * What an earlier download from `url` sent and stored: asked for conditionally (If-None-Match,
   * If-Modified-Since). A 304 gives the stored blob, judged by `accept` again as if just downloaded;
   * a 304 when that blob is gone is asked again without conditions.
   */
  previous?: (url: string) => (Validators & { digest: string }) | undefined;
}

/** A source that sends (or announces) more than the download limit: the download stops there. */
class TooLargeError extends FetchError {
  constructor(url: string, limit: number) {
    super(
      "NIFTY806",
      "sources",
      `${url} sent more than the download limit of ${showSize(limit)}`,
      "raise the limit if the file is that large: --limit download-size=<size> (see docs/security.md)",
    );
  }
}

/** A source that sends too slowly to end within the deadline: cut, and the next source is tried. */
class TooSlowError extends FetchError {
  constructor(url: string, timeoutMs: number) {
    super(
      "NIFTY106",
      "sources",
      `${url} sent too slowly: the download did not end within ${deadlineRule(timeoutMs)}`,
      "use another mirror, or give a slow network more time with --timeout SECONDS",
    );
  }
}

/**
 * Download what a URL serves now, whatever its digest, into the store: for
 * the few files whose identity is not known in advance and is established
 * another way (a signed Debian InRelease, checked by its signature). The
 * result is never taken from the cache; the bytes are stored under the digest
 * they turn out to have. Same retries and source order as fetchBlob.
 */
export async function fetchLatest(store: Store, request: FetchLatestRequest): Promise<FetchResult> {
  if (request.sources.length === 0) {
    throw new NiftyError(
      "NIFTY104",
      `${request.name} has no source to fetch it from`,
      "give at least one URL",
    );
  }
  return download(store, request, undefined);
}

/** The network part of fetchBlob and fetchLatest: each source in turn, with retries. */
async function download(
  store: Store,
  request: FetchLatestRequest,
  digest: string | undefined,
): Promise<FetchResult> {
  const { name } = request;
  const what = digest === undefined ? name : `${name} (${digest})`;
  // Loaded only when the network is needed: a cached build never pays for it.
  const http = (await import("./http.ts")).loadHttp();
  const timeout = request.timeoutMs ?? 30_000;
  const dispatcher = sharedDispatcher(http, timeout);
  const retries = request.retries ?? 3;
  const baseDelay = request.retryDelayMs ?? 500;
  const failures: { url: string; reason: string; error: unknown }[] = [];

  for (const url of request.sources) {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await sleep(baseDelay * 2 ** (attempt - 1));
      try {
        const info = await attemptOnce(http.request, dispatcher, store, request, digest, url);
        return { fromCache: false, ...info, url };
      } catch (err) {
        if (err instanceof DigestMismatchError) {
          failures.push({
            url,
            reason: `digest mismatch: expected ${err.expected}, got ${err.actual}`,
            error: err,
          });
          break;
        }
        if (err instanceof TooLargeError || err instanceof TooSlowError) {
          failures.push({ url, reason: err.message.slice(url.length + 1), error: err });
          break;
        }
        if (isLocal(err)) throw err;
        if (isRetryable(err) && attempt < retries) continue;
        const tries = attempt + 1;
        failures.push({
          url,
          reason: describe(err, timeout) + (tries > 1 ? ` (after ${tries} attempts)` : ""),
          error: err,
        });
        break;
      }
    }
    // Another process may have stored it while this source failed.
    const now = digest === undefined ? undefined : await store.stat(digest);
    if (now) return { ...now, fromCache: true };
  }

  const only = failures.length === 1 ? failures[0] : undefined;
  const own = (e: unknown) =>
    e instanceof DigestMismatchError || e instanceof TooLargeError || e instanceof TooSlowError;
  if (only && own(only.error)) throw only.error;
  throw new FetchFailedError(
    `could not fetch ${what} from any source`,
    digest === undefined
      ? "check the URLs and the network"
      : "check the URLs and the network; on a machine without access, copy the file here, run `niftyc cache import <file>`, then build with --offline",
    failures.map((f) =>
      f.error instanceof DigestMismatchError
        ? { url: f.url, reason: f.reason, mismatch: { expected: f.error.expected, actual: f.error.actual } }
        : { url: f.url, reason: f.reason },
    ),
  );
}

/** Connections kept open per host: enough to overlap several downloads, few enough to be fair to a mirror. */
export const CONNECTIONS_PER_HOST = 6;
const dispatchers = new Map<number, Dispatcher>();

/**
 * One pool of keep-alive connections per timeout, shared by every download of the process: the
 * .debs of a closure reuse a few connections to their mirror instead of opening one each. Idle
 * connections do not keep the process alive (undici unrefs them).
 */
function sharedDispatcher(http: Http, timeout: number): Dispatcher {
  let dispatcher = dispatchers.get(timeout);
  if (dispatcher === undefined) {
    const agent = new http.Agent({
      connectTimeout: timeout,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connections: CONNECTIONS_PER_HOST,
    });
    dispatcher = agent.compose(http.redirect({ maxRedirections: 10 }));
    dispatchers.set(timeout, dispatcher);
  }
  return dispatcher;
}

async function attemptOnce(
  request: Http["request"],
  dispatcher: Dispatcher,
  store: Store,
  req: FetchLatestRequest,
  digest: string | undefined,
  url: string,
): Promise<Omit<FetchResult, "fromCache" | "url">> {
  const timeout = req.timeoutMs ?? 30_000;
  const deadline = new Deadline(timeout);
  try {
    const previous = req.previous?.(url);
    if (previous !== undefined && (previous.etag !== undefined || previous.lastModified !== undefined)) {
      const kept = await attemptWithin(deadline, request, dispatcher, store, req, digest, url, previous);
      if (kept !== undefined) return kept;
    }
    return (await attemptWithin(deadline, request, dispatcher, store, req, digest, url))!;
  } catch (error) {
    if (deadline.expired) throw new TooSlowError(url, timeout);
    throw error;
  } finally {
    deadline.done();
  }
}

async function attemptWithin(
  deadline: Deadline,
  request: Http["request"],
  dispatcher: Dispatcher,
  store: Store,
  req: FetchLatestRequest,
  digest: string | undefined,
  url: string,
  previous?: Validators & { digest: string },
): Promise<Omit<FetchResult, "fromCache" | "url"> | undefined> {
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (previous?.etag !== undefined) headers["if-none-match"] = previous.etag;
  if (previous?.lastModified !== undefined) headers["if-modified-since"] = previous.lastModified;
  const res = await request(url, { dispatcher, method: "GET", headers, signal: deadline.signal });
  if (res.statusCode === 304 && previous !== undefined) {
    await res.body.dump().catch(() => {});
    // Only a copy this store holds, judged again now; without one, ask without conditions.
    const kept = await store.stat(previous.digest);
    if (kept === undefined) return undefined;
    await req.accept?.(kept.path, url);
    return { ...kept, notModified: true };
  }
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => {});
    throw new HttpStatusError(res.statusCode);
  }
  const lengthHeader = res.headers["content-length"];
  const length = typeof lengthHeader === "string" ? Number(lengthHeader) : NaN;
  const total = Number.isFinite(length) ? length : undefined;
  const limit = req.maxBytes ?? DEFAULT_LIMITS.downloadBytes;
  if (total !== undefined && total > limit) {
    await res.body.destroy();
    throw new TooLargeError(url, limit);
  }
  const progress = req.onProgress;
  let received = 0;
  const report = () =>
    progress?.(
      total === undefined ? { name: req.name, url, received } : { name: req.name, url, received, total },
    );
  report();
  // Read from now on, counted for the deadline as bytes arrive (not once the store is ready for them).
  const body = flowing(res.body, (n) => deadline.count(n));
  const validators = validatorsOf(res.headers);
  let tap: DownloadTap | undefined;
  let tapped: unknown;

  try {
    const stored = await store.putStream(
      (writer) =>
        pipeline(
          body,
          async function* (source: AsyncIterable<Buffer>) {
            tap = req.tap?.(writer.tempPath);
            for await (const chunk of source) {
              received += chunk.length;
              if (received > limit) throw new TooLargeError(url, limit);
              report();
              yield chunk;
              await tap?.write(chunk);
            }
          },
          writer,
        ).then(async () => {
          tapped = await tap?.end();
          await req.accept?.(writer.tempPath, url);
        }),
      digest,
      url,
    );
    const out = req.tap === undefined ? stored : { ...stored, tapped };
    return validators === undefined ? out : { ...out, validators };
  } catch (error) {
    await tap?.abort();
    throw error;
  } finally {
    // Also when the store failed before reading it: the connection is not left open.
    res.body.destroy();
  }
}

/** The ETag and Last-Modified of a response, when it has either. */
function validatorsOf(headers: Record<string, string | string[] | undefined>): Validators | undefined {
  const one = (v: string | string[] | undefined) =>
    typeof v === "string" && v.length <= 256 ? v : undefined;
  const etag = one(headers.etag);
  const lastModified = one(headers["last-modified"]);
  if (etag === undefined && lastModified === undefined) return undefined;
  return { ...(etag !== undefined ? { etag } : {}), ...(lastModified !== undefined ? { lastModified } : {}) };
}

/**
 * A response body read in flowing mode into a queue of at most `highWater`
 * bytes. undici 7's HTTP/1 parser, paused by a body's backpressure, fails an
 * uncatchable assertion when the server then closes the connection
 * (nodejs/undici#5360, fixed in undici 8): reading as bytes arrive keeps it
 * from pausing unless the disk falls that far behind. Reading starts at the
 * call; `onBytes` hears of each chunk as it arrives.
 */
function flowing(
  body: NodeJS.ReadableStream & { destroy(): unknown },
  onBytes: (n: number) => void,
  highWater = 64 << 20,
): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failed: unknown;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  body.on("data", (chunk: Buffer) => {
    onBytes(chunk.length);
    queue.push(chunk);
    queued += chunk.length;
    if (queued > highWater) body.pause();
    poke();
  });
  body.once("end", () => {
    ended = true;
    poke();
  });
  body.once("error", (error: unknown) => {
    failed = error;
    ended = true;
    poke();
  });
  return drain();
  async function* drain(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const chunk = queue.shift();
        if (chunk !== undefined) {
          queued -= chunk.length;
          if (body.isPaused() && queued < highWater / 2) body.resume();
          yield chunk;
          continue;
        }
        if (failed !== undefined) throw failed;
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      body.destroy();
    }
  }
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { code?: unknown; cause?: unknown };
  if (typeof e.code === "string") return e.code;
  return codeOf(e.cause);
}

function isLocal(err: unknown): boolean {
  if (err instanceof NiftyError) return true;
  const code = codeOf(err);
  return code !== undefined && LOCAL_CODES.has(code) && !(err instanceof HttpStatusError);
}

function isRetryable(err: unknown): boolean {
  if (err instanceof HttpStatusError) return err.status >= 500;
  const code = codeOf(err);
  return code !== undefined && NETWORK_CODES.has(code);
}

function describe(err: unknown, timeout: number): string {
  if (err instanceof HttpStatusError) return err.message;
  const code = codeOf(err);
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return `connection timed out after ${timeout} ms`;
    case "UND_ERR_HEADERS_TIMEOUT":
      return `no response within ${timeout} ms`;
    case "UND_ERR_BODY_TIMEOUT":
      return `download stalled: no data for ${timeout} ms`;
    case "ECONNREFUSED":
      return "connection refused";
    case "UND_ERR_SOCKET":
    case "ECONNRESET":
      return "connection closed before the download finished";
  }
  const message = err instanceof Error ? err.message : String(err);
  return code ? `${message} (${code})` : message;
}
