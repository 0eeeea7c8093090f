// A suite's InRelease: the one file of a Debian archive trusted by its
// signature rather than by a digest. It is checked with Debian's own gpgv
// against a keyring file, and only the text gpgv writes out (the part the
// signature covers) is parsed: never the file as downloaded. From it come the
// suite's dates and the SHA256 of every index, which then pin those indices.
//
// The caller passes the current time; nothing here reads the clock.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import type { Readable } from "node:stream";
import { NiftyError } from "../diagnostics/errors.ts";
import type { Store } from "../cache/store.ts";
import { FetchFailedError, fetchLatest, type Validators } from "../fetch/download.ts";
import { DEFAULT_LIMITS, showSize } from "../core/limits.ts";
import { fieldValue, parseStanzas } from "./fields.ts";
import type { SuiteRef } from "./types.ts";

export const DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** How far ahead of `now` a Release's Date may be (clock skew between mirror and host). */
export const MAX_FUTURE_MS = 10 * 60 * 1000;

/** One line of the Release file's SHA256 list. */
export interface ReleaseFile {
  /** Path below dists/<suite>/, e.g. main/binary-amd64/Packages.xz */
  path: string;
  size: number;
  /** `sha256:<hex>` */
  sha256: string;
}

/** The fields of a Release that niftyc uses. */
export interface Release {
  suite?: string;
  codename?: string;
  date: Date;
  validUntil?: Date;
  architectures: string[];
  components: string[];
  /** Indices may be fetched by digest from …/by-hash/SHA256/<hex>. */
  acquireByHash: boolean;
  files: ReleaseFile[];
}

/** What gpgv said about one good signature. */
export interface GoodSignature {
  /** Fingerprint of the (sub)key that made it. */
  fingerprint: string;
  /** Fingerprint of its primary key. */
  primary: string;
  /** OpenPGP hash algorithm number (8 = SHA256). */
  hashAlgorithm: number;
}

/** A Release whose signature was checked, and where it came from. */
export interface VerifiedRelease extends Release {
  ref: SuiteRef;
  /** The InRelease URL it was downloaded from. */
  url: string;
  /** The archive roots to fetch its indices and packages from, first the one that served it. */
  mirrors: string[];
  /** Digest of the InRelease as downloaded (the blob in the store). */
  inRelease: string;
  signatures: GoodSignature[];
}

export interface VerifyOptions {
  /** Public keyring in gpgv's format. Default: Debian's archive keyring. */
  keyring?: string;
  /** The gpgv program. Default: `gpgv` on PATH. */
  gpgv?: string;
  /** A directory for gpgv's output (removed after), e.g. the store's tmp. */
  tmpDir: string;
  /** Names the file in errors: the suite and URL. */
  what: string;
}

// OpenPGP hash algorithms apt refuses for Release files: MD5, SHA-1, RIPEMD-160.
const WEAK_HASHES = new Map([
  [1, "MD5"],
  [2, "SHA-1"],
  [3, "RIPEMD-160"],
]);

/**
 * Check the clear-signed file with gpgv and return the signed text exactly as
 * gpgv extracted it. At least one signature must be good (GOODSIG with its
 * VALIDSIG, by a key in the keyring, over a strong hash) and none bad.
 */
export async function verifyClearSigned(
  file: string,
  options: VerifyOptions,
): Promise<{ text: string; signatures: GoodSignature[] }> {
  const { what } = options;
  const keyring = options.keyring ?? DEFAULT_KEYRING;
  checkSingleMessage(await fsp.readFile(file), what);
  try {
    await fsp.access(keyring, fsp.constants.R_OK);
  } catch {
    throw new NiftyError(
      "NIFTY617",
      `cannot verify ${what}: the keyring ${keyring} is not readable`,
      keyring === DEFAULT_KEYRING
        ? "install Debian's keyring (apt-get install debian-archive-keyring), or name a keyring file"
        : "give the path of a keyring file in gpgv's format (gpg --export KEY > FILE)",
    );
  }
  // Named like the store's temp files (pid first), so its gc leaves them to a live process.
  // gpgv never creates its home: pointing it at a path that does not exist keeps any
  // keyring or option file of the user's out of the check.
  const base = `${options.tmpDir}/${process.pid}-${randomBytes(8).toString("hex")}`;
  const home = `${base}-gpgv-home`;
  const output = `${base}-signed.txt`;
  try {
    const result = await runGpgv(
      options.gpgv ?? "gpgv",
      ["--homedir", home, "--status-fd", "3", "--keyring", keyring, "--output", output, file],
      what,
    );
    const signatures = judge(parseStatus(result.status), result.code, result.stderr, what, keyring);
    // Only now, with the signature good, is the text gpgv wrote trusted.
    const text = await fsp.readFile(output, "utf8");
    return { text, signatures };
  } finally {
    await fsp.rm(output, { force: true });
  }
}

/**
 * An InRelease holds exactly one clear-signed message and nothing after its
 * signature: text outside it, or a second message, could otherwise reach a
 * reader that does not parse exactly what gpgv checked.
 */
function checkSingleMessage(raw: Buffer, what: string): void {
  const text = raw.toString("latin1");
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  const count = (s: string) => lines.filter((l) => l === s).length;
  const begin = "-----BEGIN PGP SIGNED MESSAGE-----";
  const endIndex = lines.lastIndexOf("-----END PGP SIGNATURE-----");
  const ok =
    lines[0] === begin &&
    count(begin) === 1 &&
    count("-----BEGIN PGP SIGNATURE-----") === 1 &&
    count("-----END PGP SIGNATURE-----") === 1 &&
    lines.slice(endIndex + 1).every((l) => l.trim() === "");
  if (!ok) {
    throw new NiftyError(
      "NIFTY610",
      `${what} is not a single clear-signed message`,
      "the mirror served something other than an InRelease file (an error page, a truncated file, or extra data around the signed text); try another mirror",
    );
  }
}

interface GpgvResult {
  code: number | null;
  status: string;
  stderr: string;
}

function runGpgv(program: string, args: string[], what: string): Promise<GpgvResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe", "pipe"] });
    let status = "";
    let stderr = "";
    const statusFd = child.stdio[3] as Readable;
    statusFd.setEncoding("utf8");
    statusFd.on("data", (s: string) => (status += s));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (s: string) => {
      if (stderr.length < 8192) stderr += s;
    });
    child.on("error", (err: NodeJS.ErrnoException) => {
      reject(
        new NiftyError(
          "NIFTY617",
          `cannot verify ${what}: cannot run ${program}: ${err.code === "ENOENT" ? "not installed" : err.message}`,
          "install gpgv (apt-get install gpgv): niftyc checks Debian's signatures with it",
        ),
      );
    });
    child.on("close", (code) => resolve({ code, status, stderr }));
  });
}

interface SigStatus {
  result?: "GOODSIG" | "BADSIG" | "EXPSIG" | "EXPKEYSIG" | "REVKEYSIG" | "ERRSIG";
  keyid?: string;
  uid?: string;
  valid?: GoodSignature;
  noPubkey?: boolean;
  /** ERRSIG's return code: 4 unknown algorithm, 9 missing public key. */
  errCode?: string;
}

/** gpgv's status lines, one record per signature (NEWSIG starts one). */
export function parseStatus(status: string): { signatures: SigStatus[]; noData: boolean } {
  const signatures: SigStatus[] = [];
  let current: SigStatus | undefined;
  let noData = false;
  const fresh = () => {
    current = {};
    signatures.push(current);
    return current;
  };
  for (const line of status.split("\n")) {
    const m = /^\[GNUPG:\] (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    const [keyword, rest = ""] = [m[1]!, m[2] ?? ""];
    const words = rest.split(" ");
    switch (keyword) {
      case "NEWSIG":
        fresh();
        break;
      case "GOODSIG":
      case "BADSIG":
      case "EXPSIG":
      case "EXPKEYSIG":
      case "REVKEYSIG":
      case "ERRSIG": {
        const sig = current && current.result === undefined ? current : fresh();
        sig.result = keyword;
        sig.keyid = words[0];
        if (keyword === "ERRSIG") sig.errCode = words[5];
        else sig.uid = words.slice(1).join(" ");
        break;
      }
      case "VALIDSIG": {
        const sig = current ?? fresh();
        sig.valid = {
          fingerprint: words[0] ?? "",
          primary: words[9] ?? words[0] ?? "",
          hashAlgorithm: Number(words[7]),
        };
        break;
      }
      case "NO_PUBKEY": {
        const sig = current ?? fresh();
        sig.noPubkey = true;
        sig.keyid ??= words[0];
        break;
      }
      case "NODATA":
        noData = true;
        break;
    }
  }
  return { signatures, noData };
}

/** Decide from the status lines, the way apt does; each failure has its own code. */
function judge(
  parsed: { signatures: SigStatus[]; noData: boolean },
  code: number | null,
  stderr: string,
  what: string,
  keyring: string,
): GoodSignature[] {
  const sigs = parsed.signatures;
  const good = sigs.filter(
    (s) => s.result === "GOODSIG" && s.valid && !WEAK_HASHES.has(s.valid.hashAlgorithm),
  );
  const first = (r: SigStatus["result"]) => sigs.find((s) => s.result === r);
  const who = (s: SigStatus) => `key ${s.keyid ?? "?"}${s.uid ? ` (${s.uid})` : ""}`;
  const bad = first("BADSIG");
  if (bad) {
    throw new NiftyError(
      "NIFTY611",
      `bad signature on ${what}: ${who(bad)} did not sign this text`,
      "the file was changed after it was signed, or damaged on the way; try another mirror, and distrust this one",
    );
  }
  // Debian signs with several keys; a keyring may hold only some of them, and
  // gpgv then exits non-zero for the others. That is fine, as for apt, when
  // the only other failures are missing keys.
  const missingKey = (s: SigStatus) => s.noPubkey === true || (s.result === "ERRSIG" && s.errCode === "9");
  if (good.length > 0 && (code === 0 || sigs.every((s) => good.includes(s) || missingKey(s))))
    return good.map((s) => s.valid!);
  const expiredKey = first("EXPKEYSIG");
  if (expiredKey) {
    throw new NiftyError(
      "NIFTY613",
      `${what} is signed by an expired key: ${who(expiredKey)}`,
      "update the keyring (apt-get install debian-archive-keyring, or a newer keyring file); a mirror serving an old InRelease can also cause this",
    );
  }
  const revoked = first("REVKEYSIG");
  if (revoked) {
    throw new NiftyError(
      "NIFTY614",
      `${what} is signed by a revoked key: ${who(revoked)}`,
      "the key was withdrawn by its owner; do not use this archive until it is signed again with a valid key",
    );
  }
  const expiredSig = first("EXPSIG");
  if (expiredSig) {
    throw new NiftyError(
      "NIFTY613",
      `${what} has an expired signature by ${who(expiredSig)}`,
      "the mirror serves an old InRelease; try another mirror",
    );
  }
  const weak = sigs.find((s) => s.result === "GOODSIG" && s.valid && WEAK_HASHES.has(s.valid.hashAlgorithm));
  if (weak) {
    throw new NiftyError(
      "NIFTY616",
      `${what} is signed with the weak hash ${WEAK_HASHES.get(weak.valid!.hashAlgorithm)} by ${who(weak)}`,
      "an InRelease must be signed over SHA-256 or stronger, as apt requires; the archive needs re-signing",
    );
  }
  const noKey = sigs.find(missingKey);
  if (noKey) {
    throw new NiftyError(
      "NIFTY612",
      `${what} is signed by key ${noKey.keyid ?? "?"}, which is not in the keyring ${keyring}`,
      "give the keyring of this archive's signing key, or check that the URL is the archive you mean",
    );
  }
  const err = first("ERRSIG");
  if (err) {
    throw new NiftyError(
      "NIFTY615",
      `cannot check the signature on ${what} by key ${err.keyid ?? "?"} (gpgv error code ${err.errCode ?? "?"}): ${lastLine(stderr)}`,
      "the signature uses an algorithm this gpgv does not know, or is damaged; update gpgv or try another mirror",
    );
  }
  throw new NiftyError(
    "NIFTY610",
    `${what} has no signature gpgv accepts${parsed.noData ? " (no signed data found)" : ""}: ${lastLine(stderr)}`,
    "the mirror served something other than an InRelease file; try another mirror",
  );
}

function lastLine(s: string): string {
  return (
    s
      .trim()
      .split("\n")
      .at(-1)
      ?.replace(/^gpgv: /, "") || "no message from gpgv"
  );
}

/** Parse the signed text of a Release or InRelease. */
export function parseRelease(text: string, what: string): Release {
  const stanzas = parseStanzas(text, what);
  if (stanzas.length !== 1) throw badRelease(what, `it has ${stanzas.length} stanzas, not one`);
  const s = stanzas[0]!;
  const get = (name: string) => fieldValue(s, name);
  const dateText = get("Date");
  if (dateText === undefined) throw badRelease(what, "it has no Date");
  const date = parseReleaseDate(dateText);
  if (!date) throw badRelease(what, `its Date ${JSON.stringify(dateText)} is not an RFC 2822 date`);
  const validText = get("Valid-Until");
  const validUntil = validText === undefined ? undefined : parseReleaseDate(validText);
  if (validText !== undefined && !validUntil)
    throw badRelease(what, `its Valid-Until ${JSON.stringify(validText)} is not an RFC 2822 date`);
  const sums = get("SHA256");
  if (sums === undefined)
    throw badRelease(what, "it has no SHA256 file list (apt refuses Release files with weaker hashes only)");
  const files: ReleaseFile[] = [];
  for (const line of sums.split("\n")) {
    if (line.trim() === "") continue;
    const m = /^\s*([0-9a-fA-F]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
    if (!m)
      throw badRelease(what, `SHA256 line ${JSON.stringify(line.trim())} is not "<sha256> <size> <path>"`);
    files.push({ sha256: `sha256:${m[1]!.toLowerCase()}`, size: Number(m[2]), path: m[3]! });
  }
  const words = (name: string) => (get(name) ?? "").split(/\s+/).filter(Boolean);
  const release: Release = {
    date,
    architectures: words("Architectures"),
    components: words("Components"),
    acquireByHash: (get("Acquire-By-Hash") ?? "").toLowerCase() === "yes",
    files,
  };
  const suite = get("Suite");
  const codename = get("Codename");
  if (suite !== undefined) release.suite = suite;
  if (codename !== undefined) release.codename = codename;
  if (validUntil) release.validUntil = validUntil;
  return release;
}

/**
 * The Date of a clear-signed InRelease already in the store (it was verified before it was
 * stored), read from its signed text; undefined when the file is no Release with a Date.
 */
export async function signedReleaseDate(file: string): Promise<Date | undefined> {
  const lines = (await fsp.readFile(file, "utf8")).split("\n").map((l) => l.replace(/\r$/, ""));
  if (lines[0] !== "-----BEGIN PGP SIGNED MESSAGE-----") return undefined;
  const start = lines.indexOf("") + 1;
  const end = lines.indexOf("-----BEGIN PGP SIGNATURE-----");
  if (start <= 0 || end < start) return undefined;
  const text = lines
    .slice(start, end)
    .map((l) => (l.startsWith("- ") ? l.slice(2) : l))
    .join("\n");
  let stanzas: ReturnType<typeof parseStanzas>;
  try {
    stanzas = parseStanzas(text, "the stored InRelease");
  } catch {
    return undefined;
  }
  const date = stanzas.length === 1 ? fieldValue(stanzas[0]!, "Date") : undefined;
  return date === undefined ? undefined : parseReleaseDate(date);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 2822 dates as Debian writes them: "Sat, 11 Jul 2026 10:16:37 UTC" (or +0000). */
export function parseReleaseDate(text: string): Date | undefined {
  const m =
    /^(?:[A-Z][a-z]{2},\s+)?(\d{1,2})\s+([A-Z][a-z]{2})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s+(UTC|GMT|Z|[+-]\d{4})$/.exec(
      text.trim(),
    );
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]!);
  if (month < 0) return undefined;
  const [day, year, h, min, sec] = [Number(m[1]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  if (day < 1 || day > 31 || h > 23 || min > 59 || sec > 60) return undefined;
  let ms = Date.UTC(year, month, day, h, min, sec);
  const zone = m[7]!;
  if (/^[+-]/.test(zone)) {
    const offset = (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60_000;
    ms -= zone.startsWith("+") ? offset : -offset;
  }
  return new Date(ms);
}

function badRelease(what: string, why: string): NiftyError {
  return new NiftyError(
    "NIFTY620",
    `${what} is not a valid Release file: ${why}`,
    "the archive's metadata is malformed; try another mirror",
  );
}

/**
 * The checks apt makes on a verified Release before trusting it: it is the
 * suite asked for (so a signed InRelease of another suite cannot be replayed
 * in its place) and it is current at `now`.
 */
export function checkRelease(
  release: Release,
  ref: SuiteRef,
  now: Date,
  what: string,
  notBefore?: Date,
): void {
  if (release.codename !== ref.suite && release.suite !== ref.suite) {
    throw new NiftyError(
      "NIFTY621",
      `${what} is for ${[release.codename, release.suite].filter(Boolean).join(" / ") || "no named suite"}, not ${ref.suite}`,
      "the mirror serves another suite's InRelease under this name; check the suite in the recipe, or use another mirror",
    );
  }
  if (release.validUntil && release.validUntil.getTime() <= now.getTime()) {
    throw new NiftyError(
      "NIFTY618",
      `${what} expired: it was valid until ${release.validUntil.toISOString()}, and it is now ${now.toISOString()}`,
      "the mirror serves stale metadata (an attacker can replay old, signed files this way); use an up-to-date mirror, or check this machine's clock",
    );
  }
  // As apt refuses a Release older than the one it has: a mirror replaying an
  // older, still validly signed InRelease would otherwise roll packages back.
  if (notBefore !== undefined && release.date.getTime() < notBefore.getTime()) {
    throw new NiftyError(
      "NIFTY632",
      `${what} is dated ${release.date.toUTCString()}, ` +
        `older than the ${notBefore.toUTCString()} the lock was resolved against`,
      "the mirror serves an older InRelease than the archive already published " +
        "(a rollback, or a mirror that is behind); use an up-to-date mirror",
    );
  }
  if (release.date.getTime() > now.getTime() + MAX_FUTURE_MS) {
    throw new NiftyError(
      "NIFTY619",
      `${what} is dated ${release.date.toISOString()}, in the future (it is now ${now.toISOString()})`,
      "this machine's clock is probably behind; fix it, then resolve again",
    );
  }
}

export interface FetchReleaseOptions {
  /** Archive roots by archive name, as loadMirrors gives them. */
  mirrors: Record<string, string[]>;
  /** The current time, for Valid-Until. */
  now: Date;
  /** The Date of the InRelease the lock was resolved against: an older one is refused. */
  notBefore?: Date;
  /** The most bytes the InRelease may have (--limit inrelease-size). */
  maxBytes?: number;
  keyring?: string;
  gpgv?: string;
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
}

/** The archive roots for a suite, or an error saying how to give one. */
export function archiveMirrors(ref: SuiteRef, mirrors: Record<string, string[]>): string[] {
  const list = (mirrors[ref.archive] ?? []).map((m) => m.replace(/\/+$/, ""));
  if (list.length === 0) {
    throw new NiftyError(
      "NIFTY626",
      `no mirror for the archive ${ref.archive} (suite ${ref.suite})`,
      `pass --mirror ${ref.archive}=<url of the archive root>${ref.archive.startsWith("debian") ? ", or add it to apt's sources" : ""}`,
    );
  }
  return list;
}

/**
 * Download a suite's InRelease (always asked for: it is how the archive says
 * what is current), verify it, parse the signed text and check it. A source that
 * sent validators last time is asked conditionally; its 304 makes the copy already
 * in the store the answer, verified and checked again exactly as a download is.
 */
export async function fetchRelease(
  store: Store,
  ref: SuiteRef,
  options: FetchReleaseOptions,
): Promise<VerifiedRelease> {
  const roots = archiveMirrors(ref, options.mirrors);
  const limit = options.maxBytes ?? DEFAULT_LIMITS.inReleaseBytes;
  let checked: { release: Release; signatures: GoodSignature[] } | undefined;
  // Checked as downloaded, before it is stored: bytes no signature vouches for never get a name in the store.
  const accept = async (file: string, url: string) => {
    const what = `the InRelease of ${ref.suite} (${url})`;
    const verifyOptions: VerifyOptions = { tmpDir: store.tmpDir, what };
    if (options.keyring !== undefined) verifyOptions.keyring = options.keyring;
    if (options.gpgv !== undefined) verifyOptions.gpgv = options.gpgv;
    const { text, signatures } = await verifyClearSigned(file, verifyOptions);
    const release = parseRelease(text, what);
    checkRelease(release, ref, options.now, what, options.notBefore);
    checked = { release, signatures };
  };
  const sources = roots.map((r) => `${r}/dists/${ref.suite}/InRelease`);
  // What each source sent last time, read before the requests go out (small records, read at once).
  const previous = new Map<string, StoredValidators>();
  for (const url of sources) {
    const known = await store.readRecord<StoredValidators>("inrelease-validators", urlKey(url));
    if (typeof known?.digest === "string") previous.set(url, known);
  }
  let blob;
  try {
    blob = await fetchLatest(store, {
      name: `InRelease of ${ref.archive} ${ref.suite}`,
      sources,
      maxBytes: limit,
      accept,
      previous: (url) => previous.get(url),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.retries !== undefined ? { retries: options.retries } : {}),
      ...(options.retryDelayMs !== undefined ? { retryDelayMs: options.retryDelayMs } : {}),
    });
  } catch (err) {
    throw tooLarge(err, ref, limit) ?? err;
  }
  const url = blob.url ?? "";
  const { release, signatures } = checked!;
  if (blob.validators !== undefined && !blob.notModified)
    await store.writeRecord("inrelease-validators", urlKey(url), { ...blob.validators, digest: blob.digest });
  const served = roots.find((r) => url === `${r}/dists/${ref.suite}/InRelease`);
  const ordered = served ? [served, ...roots.filter((r) => r !== served)] : roots;
  return { ...release, ref, url, mirrors: ordered, inRelease: blob.digest, signatures };
}

/** An InRelease's ETag and Last-Modified as its source sent them, and the digest of the bytes they came with. */
type StoredValidators = Validators & { digest: string };

function urlKey(url: string): string {
  return createHash("sha256").update(url).digest("hex");
}

/** The download limit's error, said of the InRelease and its own limit (every source sent too much). */
function tooLarge(err: unknown, ref: SuiteRef, limit: number): NiftyError | undefined {
  const over = (m: string) => / sent more than the download limit /.test(m);
  const failures = err instanceof FetchFailedError ? err.failures.map((f) => `${f.url}: ${f.reason}`) : [];
  const single = err instanceof NiftyError && err.code === "NIFTY806";
  if (!single && (failures.length === 0 || !failures.every(over))) return undefined;
  const urls = single
    ? (err as NiftyError).message.replace(/ sent more than .*$/s, "")
    : failures.map((f) => f.replace(/: .*$/s, "")).join(", ");
  return new NiftyError(
    "NIFTY810",
    `the InRelease of ${ref.suite} (${urls}) is larger than the limit of ${showSize(limit)}`,
    "Debian's InRelease files are a few hundred KiB: the mirror serves something else; use another mirror, " +
      "or raise the limit if this archive's really is that large: --limit inrelease-size=<size>",
  );
}
