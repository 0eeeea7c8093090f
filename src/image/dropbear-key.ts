// Dropbear host key files (the bare private-key blob dropbear reads with -r), their OpenSSH
// public line and SHA256 fingerprint. Keys are fresh, or derived from a build secret so a
// rebuild gives the same image.
import { createECDH, createHash, createHmac, createPrivateKey, generateKeyPairSync } from "node:crypto";

export type HostKeyType = "ed25519" | "ecdsa" | "rsa";

export interface HostKeyOptions {
  /** Build-secret bytes: when given, the key is a pure function of (seed, type, size). */
  seed?: Buffer;
  ecdsaBits?: 256 | 384 | 521;
  rsaBits?: number;
}

export interface DropbearHostKey {
  /** Dropbear's own private key file contents (write with mode 0600). */
  privateKey: Buffer;
  /** OpenSSH public key line: "type base64". */
  publicKey: string;
  /** "SHA256:<base64 without padding>", as ssh-keygen -l and dropbearkey -y print it. */
  fingerprint: string;
}

/** Why "dss" is not offered, for the checker to show. */
export function refuseDss(): string {
  return "DSS host keys are disabled in Dropbear since 2024.84 and weak; use ed25519";
}

// ---- SSH wire encoding -------------------------------------------------------------------

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(data: Buffer | string): Buffer {
  const b = typeof data === "string" ? Buffer.from(data, "latin1") : data;
  return Buffer.concat([u32(b.length), b]);
}

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

/** Non-negative SSH mpint from big-endian magnitude bytes. */
function mpintBytes(magnitude: Buffer): Buffer {
  let m = stripZeros(magnitude);
  if (m.length > 0 && m[0]! & 0x80) m = Buffer.concat([Buffer.of(0), m]);
  return sshString(m);
}

function bigToBytes(n: bigint): Buffer {
  if (n < 0n) throw new Error("negative integer in key");
  if (n === 0n) return Buffer.alloc(0);
  let hex = n.toString(16);
  if (hex.length & 1) hex = "0" + hex;
  return Buffer.from(hex, "hex");
}

function bytesToBig(b: Buffer): bigint {
  return b.length === 0 ? 0n : BigInt("0x" + b.toString("hex"));
}

function b64u(s: string | undefined, what: string): Buffer {
  if (s === undefined) throw new Error(`key export lacks ${what}`);
  return Buffer.from(s, "base64url");
}

function finish(privateKey: Buffer, publicBlob: Buffer, sshType: string): DropbearHostKey {
  const digest = createHash("sha256").update(publicBlob).digest("base64").replace(/=+$/, "");
  return {
    privateKey,
    publicKey: `${sshType} ${publicBlob.toString("base64")}`,
    fingerprint: `SHA256:${digest}`,
  };
}

// ---- deterministic byte stream: HMAC-DRBG (SP 800-90A) with SHA-256 ---------------------

class HmacDrbg {
  #k: Buffer = Buffer.alloc(32, 0);
  #v: Buffer = Buffer.alloc(32, 1);

  constructor(seed: Buffer, personalization: string) {
    this.#update(Buffer.concat([seed, Buffer.from(personalization, "utf8")]));
  }

  #mac(...parts: Buffer[]): Buffer {
    const h = createHmac("sha256", this.#k);
    for (const p of parts) h.update(p);
    return h.digest();
  }

  #update(data?: Buffer): void {
    this.#k = this.#mac(this.#v, Buffer.of(0), data ?? Buffer.alloc(0));
    this.#v = createHmac("sha256", this.#k).update(this.#v).digest();
    if (data === undefined || data.length === 0) return;
    this.#k = this.#mac(this.#v, Buffer.of(1), data);
    this.#v = createHmac("sha256", this.#k).update(this.#v).digest();
  }

  generate(len: number): Buffer {
    const out = Buffer.alloc(len);
    for (let off = 0; off < len; off += 32) {
      this.#v = createHmac("sha256", this.#k).update(this.#v).digest();
      this.#v.copy(out, off, 0, Math.min(32, len - off));
    }
    this.#update();
    return out;
  }
}

const LABEL = "niftyc dropbear host key v1";

// ---- ed25519 -------------------------------------------------------------------------------

// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410).
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function ed25519Key(seed: Buffer | undefined): DropbearHostKey {
  let d: Buffer;
  let x: Buffer;
  if (seed === undefined) {
    const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
    d = b64u(jwk.d, "d");
    x = b64u(jwk.x, "x");
  } else {
    d = new HmacDrbg(seed, `${LABEL} ed25519`).generate(32);
    const key = createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, d]),
      format: "der",
      type: "pkcs8",
    });
    x = b64u(key.export({ format: "jwk" }).x, "x");
  }
  const priv = Buffer.concat([sshString("ssh-ed25519"), sshString(Buffer.concat([d, x]))]);
  const pub = Buffer.concat([sshString("ssh-ed25519"), sshString(x)]);
  return finish(priv, pub, "ssh-ed25519");
}

// ---- ECDSA ---------------------------------------------------------------------------------

const CURVES = {
  256: {
    jwk: "P-256",
    openssl: "prime256v1",
    bytes: 32,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  384: {
    jwk: "P-384",
    openssl: "secp384r1",
    bytes: 48,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
  521: {
    jwk: "P-521",
    openssl: "secp521r1",
    bytes: 66,
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
  },
} as const;

function ecdsaKey(bits: number, seed: Buffer | undefined): DropbearHostKey {
  if (bits !== 256 && bits !== 384 && bits !== 521) {
    throw new Error(`ECDSA host keys are 256, 384 or 521 bits, not ${bits}`);
  }
  const curve = CURVES[bits];
  let q: Buffer;
  let d: Buffer;
  if (seed === undefined) {
    const jwk = generateKeyPairSync("ec", { namedCurve: curve.jwk }).privateKey.export({ format: "jwk" });
    q = Buffer.concat([Buffer.of(4), b64u(jwk.x, "x"), b64u(jwk.y, "y")]);
    d = b64u(jwk.d, "d");
  } else {
    // Rejection sampling: a uniform scalar in [1, n-1].
    const drbg = new HmacDrbg(seed, `${LABEL} ecdsa-${bits}`);
    const topMask = bits === 521 ? 0x01 : 0xff;
    let k = 0n;
    while (k === 0n || k >= curve.n) {
      const cand = drbg.generate(curve.bytes);
      cand[0] = cand[0]! & topMask;
      k = bytesToBig(cand);
    }
    d = Buffer.alloc(curve.bytes);
    bigToBytes(k).copy(d, curve.bytes - bigToBytes(k).length);
    const ecdh = createECDH(curve.openssl);
    ecdh.setPrivateKey(d);
    q = ecdh.getPublicKey(null, "uncompressed");
  }
  if (q.length !== 1 + 2 * curve.bytes) throw new Error("unexpected ECDSA public point length");
  const sshType = `ecdsa-sha2-nistp${bits}`;
  const head = Buffer.concat([sshString(sshType), sshString(`nistp${bits}`), sshString(q)]);
  return finish(Buffer.concat([head, mpintBytes(d)]), head, sshType);
}

// ---- RSA -----------------------------------------------------------------------------------

const E = 65537n;
const SMALL_PRIMES: number[] = (() => {
  const limit = 2000;
  const sieve = new Uint8Array(limit);
  const out: number[] = [];
  for (let i = 2; i < limit; i++) {
    if (sieve[i]) continue;
    out.push(i);
    for (let j = i * i; j < limit; j += i) sieve[j] = 1;
  }
  return out;
})();

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [a % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new Error("no modular inverse");
  return ((oldS % m) + m) % m;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function randomBelow(drbg: HmacDrbg, lo: bigint, hi: bigint): bigint {
  // Uniform in [lo, hi) by rejection over the bit length of the range.
  const range = hi - lo;
  const bits = range.toString(2).length;
  const bytes = Math.ceil(bits / 8);
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    const r = bytesToBig(drbg.generate(bytes)) & mask;
    if (r < range) return lo + r;
  }
}

function isProbablePrime(n: bigint, drbg: HmacDrbg, rounds: number): boolean {
  for (const p of SMALL_PRIMES) {
    const bp = BigInt(p);
    if (n === bp) return true;
    if (n % bp === 0n) return false;
  }
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  witness: for (let i = 0; i < rounds; i++) {
    const a = randomBelow(drbg, 2n, n - 2n);
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    for (let j = 1; j < s; j++) {
      x = (x * x) % n;
      if (x === n - 1n) continue witness;
    }
    return false;
  }
  return true;
}

/** A prime of exactly `bits` bits with its top two bits set and gcd(p-1, e) = 1. */
function generatePrime(drbg: HmacDrbg, bits: number): bigint {
  const bytes = Math.ceil(bits / 8);
  const excess = BigInt(bytes * 8 - bits);
  for (;;) {
    let p = bytesToBig(drbg.generate(bytes)) >> excess;
    p |= (3n << BigInt(bits - 2)) | 1n;
    // Sieve a run of odd candidates before any Miller–Rabin round.
    const residues = SMALL_PRIMES.map((sp) => Number(p % BigInt(sp)));
    for (let delta = 0; delta < 4096; delta += 2) {
      const c = p + BigInt(delta);
      if (c >> BigInt(bits) !== 0n) break;
      let composite = false;
      for (let i = 0; i < SMALL_PRIMES.length; i++) {
        if ((residues[i]! + delta) % SMALL_PRIMES[i]! === 0) {
          composite = c !== BigInt(SMALL_PRIMES[i]!);
          if (composite) break;
        }
      }
      if (composite) continue;
      if ((c - 1n) % E === 0n) continue;
      // 64 rounds bound the error far below any practical concern (FIPS 186-5 asks for fewer).
      if (isProbablePrime(c, drbg, 64)) return c;
    }
  }
}

function rsaKey(bits: number, seed: Buffer | undefined): DropbearHostKey {
  if (!Number.isInteger(bits) || bits < 1024 || bits > 16384 || bits % 8 !== 0) {
    throw new Error(`RSA host keys need a size of 1024…16384 bits in multiples of 8, not ${bits}`);
  }
  let e: bigint, n: bigint, d: bigint, p: bigint, q: bigint;
  if (seed === undefined) {
    const jwk = generateKeyPairSync("rsa", { modulusLength: bits, publicExponent: 65537 }).privateKey.export({
      format: "jwk",
    });
    [e, n, d, p, q] = (["e", "n", "d", "p", "q"] as const).map((f) => bytesToBig(b64u(jwk[f], f))) as [
      bigint,
      bigint,
      bigint,
      bigint,
      bigint,
    ];
  } else {
    const drbg = new HmacDrbg(seed, `${LABEL} rsa-${bits}`);
    const pBits = Math.ceil(bits / 2);
    const qBits = bits - pBits;
    e = E;
    for (;;) {
      p = generatePrime(drbg, pBits);
      q = generatePrime(drbg, qBits);
      // Keep p and q far apart (FIPS 186-5 asks |p-q| > 2^(bits/2-100)).
      const diff = p > q ? p - q : q - p;
      if (diff >> BigInt(Math.max(0, pBits - 100)) === 0n) continue;
      if (p < q) [p, q] = [q, p];
      n = p * q;
      const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
      d = modInverse(e, lambda);
      // A tiny private exponent is weak; redraw (vanishingly rare).
      if (d >> BigInt(bits >> 1) === 0n) continue;
      break;
    }
  }
  const eB = mpintBytes(bigToBytes(e));
  const nB = mpintBytes(bigToBytes(n));
  const priv = Buffer.concat([
    sshString("ssh-rsa"),
    eB,
    nB,
    mpintBytes(bigToBytes(d)),
    mpintBytes(bigToBytes(p)),
    mpintBytes(bigToBytes(q)),
  ]);
  const pub = Buffer.concat([sshString("ssh-rsa"), eB, nB]);
  return finish(priv, pub, "ssh-rsa");
}

// ---- entry point ---------------------------------------------------------------------------

/**
 * A Dropbear host key of `type`. Without `seed` it is fresh and random; with `seed` it is
 * derived from it (same seed, type and size ⇒ same bytes; the seed is not recoverable).
 */
export function makeDropbearHostKey(type: HostKeyType, opts: HostKeyOptions = {}): DropbearHostKey {
  const { seed } = opts;
  if (seed !== undefined && seed.length === 0) throw new Error("host key seed is empty");
  switch (type) {
    case "ed25519":
      return ed25519Key(seed);
    case "ecdsa":
      return ecdsaKey(opts.ecdsaBits ?? 256, seed);
    case "rsa":
      return rsaKey(opts.rsaBits ?? 2048, seed);
    default: {
      const t: string = type;
      if (t === "dss") throw new Error(refuseDss());
      throw new Error(`unknown host key type "${t}"; use ed25519, ecdsa or rsa`);
    }
  }
}
