// SHA-512 crypt ("$6$"), the hash format BusyBox su/login and libcrypt both accept.
import { createHash, hash, createHmac } from "node:crypto";

const ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;

// Byte triples of the final digest in the order the format encodes them.
const PERMUTATION: ReadonlyArray<readonly [number, number, number]> = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `len` bytes of `block` repeated. */
function repeatTo(block: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let off = 0; off < len; off += block.length)
    block.copy(out, off, 0, Math.min(block.length, len - off));
  return out;
}

function encode24(b2: number, b1: number, b0: number, chars: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let s = "";
  for (let i = 0; i < chars; i++) {
    s += ALPHABET[w & 0x3f];
    w >>>= 6;
  }
  return s;
}

/**
 * Hash `password` as `$6$[rounds=N$]salt$hash`.
 * `salt` may carry a leading `$6$` and/or `rounds=N$` (as in a stored hash); it ends at the
 * first `$` and is truncated to 16 characters. An explicit `rounds` argument wins over one in
 * the salt; either is clamped to 1000…999999999 and echoed in the output.
 */
export function sha512Crypt(password: string | Buffer, salt: string, rounds?: number): string {
  let rest = salt.startsWith("$6$") ? salt.slice(3) : salt;
  let explicitRounds: number | undefined;
  const m = /^rounds=(\d+)\$/.exec(rest);
  if (m) {
    explicitRounds = Number(m[1]);
    rest = rest.slice(m[0].length);
  }
  if (rounds !== undefined) {
    if (!Number.isFinite(rounds)) throw new Error(`sha512Crypt: rounds must be a number, got ${rounds}`);
    explicitRounds = Math.trunc(rounds);
  }
  const dollar = rest.indexOf("$");
  const saltText = (dollar >= 0 ? rest.slice(0, dollar) : rest).slice(0, SALT_MAX);
  // libcrypt, which checks the hash at login, accepts 1…16 characters other than "$:\n".
  if (saltText === "") throw new Error("sha512Crypt: salt is empty");
  if (!/^[\x21-\x7e]+$/.test(saltText) || saltText.includes(":")) {
    throw new Error(`sha512Crypt: salt ${JSON.stringify(saltText)} must be printable ASCII without ':'`);
  }
  const n =
    explicitRounds === undefined
      ? ROUNDS_DEFAULT
      : Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, explicitRounds));

  const pw = typeof password === "string" ? Buffer.from(password, "utf8") : password;
  const s = Buffer.from(saltText, "utf8");

  const b = sha512(pw, s, pw);
  const aParts: Buffer[] = [pw, s, repeatTo(b, pw.length)];
  for (let len = pw.length; len > 0; len >>>= 1) aParts.push(len & 1 ? b : pw);
  let a = sha512(...aParts);

  const dp = createHash("sha512");
  for (let i = 0; i < pw.length; i++) dp.update(pw);
  const p = repeatTo(dp.digest(), pw.length);

  const ds = createHash("sha512");
  for (let i = 0; i < 16 + a[0]!; i++) ds.update(s);
  const sBytes = repeatTo(ds.digest(), s.length);

  // One-shot hashing of the concatenation: a third faster than a Hash object per round.
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    parts.length = 0;
    parts.push(i & 1 ? p : a);
    if (i % 3 !== 0) parts.push(sBytes);
    if (i % 7 !== 0) parts.push(p);
    parts.push(i & 1 ? a : p);
    a = hash("sha512", Buffer.concat(parts), "buffer");
  }

  let out = "";
  for (const [x, y, z] of PERMUTATION) out += encode24(a[x]!, a[y]!, a[z]!, 4);
  out += encode24(0, 0, a[63]!, 2);

  const prefix = explicitRounds === undefined ? "$6$" : `$6$rounds=${n}$`;
  return `${prefix}${saltText}$${out}`;
}

const SALT_LABEL = "niftyc sha512-crypt salt v1\0";

/**
 * A 16-character salt from `[./0-9A-Za-z]` that depends only on `user` and `secret`, so a
 * rebuild gives the same hash, while the salt (an HMAC output) reveals nothing of the secret.
 */
export function deriveSalt(user: string, secret: Buffer): string {
  const mac = createHmac("sha256", secret).update(SALT_LABEL).update(user, "utf8").digest();
  let s = "";
  for (let i = 0; i < SALT_MAX; i++) s += ALPHABET[mac[i]! & 0x3f];
  return s;
}
