// cosign's own encrypted private key: PEM "ENCRYPTED SIGSTORE PRIVATE KEY" (or the older
// "ENCRYPTED COSIGN PRIVATE KEY") around a JSON envelope that go-securesystemslib's
// encrypted package writes (cosign's pkg/cosign/keys.go calls encrypted.Encrypt on the key's
// PKCS#8 DER):
//   {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":B64},
//    "cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}
// The key is scrypt(passphrase, salt, N, r, p, 32 bytes), the salt 32 bytes, the nonce 24, the
// ciphertext NaCl's secretbox (XSalsa20-Poly1305, tag first), from @noble/ciphers. Only the
// three scrypt settings that package writes are read, as it does itself: a file cannot make
// niftyc spend more than 128 MiB and a few seconds on its KDF.
import { randomBytes, scrypt } from "node:crypto";
import { xsalsa20poly1305 } from "@noble/ciphers/salsa.js";

const PEM_TYPES = ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"] as const;
/** What cosign writes: its Legacy setting, the one every cosign version reads. */
const WRITTEN = { N: 32768, r: 8, p: 1 } as const;
/** go-securesystemslib's Legacy, Standard and OWASP settings, the only ones it decrypts. */
const KNOWN_N = new Set([32768, 65536, 131072]);
const SALT_BYTES = 32;
const NONCE_BYTES = 24;
const KEY_BYTES = 32;

/** Whether `text` holds a key in cosign's encrypted format. */
export function isCosignKey(text: string): boolean {
  return PEM_TYPES.some((type) => text.includes(`-----BEGIN ${type}-----`));
}

/** Why the envelope cannot be opened, for NIFTY731 (no secret in it). */
export class CosignKeyFormatError extends Error {}

interface Envelope {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
}

function base64Field(value: unknown, what: string, length?: number): Buffer {
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
    throw new CosignKeyFormatError(`its ${what} is not base64`);
  const bytes = Buffer.from(value, "base64");
  if (length !== undefined && bytes.length !== length)
    throw new CosignKeyFormatError(`its ${what} is ${bytes.length} bytes, not ${length}`);
  return bytes;
}

function parseEnvelope(text: string): Envelope {
  const match = /-----BEGIN ([A-Z ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----/.exec(text);
  if (match === null || !(PEM_TYPES as readonly string[]).includes(match[1]!))
    throw new CosignKeyFormatError("not one PEM block of cosign's encrypted key");
  let json: { kdf?: Record<string, unknown>; cipher?: Record<string, unknown>; ciphertext?: unknown };
  try {
    json = JSON.parse(Buffer.from(match[2]!.replace(/\s/g, ""), "base64").toString("utf8"));
  } catch {
    throw new CosignKeyFormatError("its content is not JSON");
  }
  const kdf = json.kdf ?? {};
  const cipher = json.cipher ?? {};
  if (kdf.name !== "scrypt") throw new CosignKeyFormatError("its kdf is not scrypt");
  if (cipher.name !== "nacl/secretbox") throw new CosignKeyFormatError("its cipher is not nacl/secretbox");
  const params = (kdf.params ?? {}) as Record<string, unknown>;
  const { N, r, p } = params;
  if (typeof N !== "number" || !KNOWN_N.has(N) || r !== 8 || p !== 1)
    throw new CosignKeyFormatError("its scrypt parameters are not ones cosign writes");
  return {
    N,
    r,
    p,
    salt: base64Field(kdf.salt, "salt", SALT_BYTES),
    nonce: base64Field(cipher.nonce, "nonce", NONCE_BYTES),
    ciphertext: base64Field(json.ciphertext, "ciphertext"),
  };
}

function deriveKey(passphrase: Buffer, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, KEY_BYTES, { N, r, p, maxmem: 256 << 20 }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/**
 * The PKCS#8 DER inside a cosign key, or undefined when the passphrase does not open it
 * (secretbox's tag does not match). Throws CosignKeyFormatError for a malformed file.
 */
export async function decryptCosignKey(text: string, passphrase: Buffer): Promise<Buffer | undefined> {
  const envelope = parseEnvelope(text);
  const key = await deriveKey(passphrase, envelope.salt, envelope.N, envelope.r, envelope.p);
  try {
    return Buffer.from(xsalsa20poly1305(key, envelope.nonce).decrypt(envelope.ciphertext));
  } catch {
    return undefined;
  } finally {
    key.fill(0);
  }
}

/** `der` (PKCS#8) encrypted under `passphrase` as cosign writes it, PEM with 64-column lines. */
export async function encryptCosignKey(der: Buffer, passphrase: Buffer): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const key = await deriveKey(passphrase, salt, WRITTEN.N, WRITTEN.r, WRITTEN.p);
  const ciphertext = Buffer.from(xsalsa20poly1305(key, nonce).encrypt(der));
  key.fill(0);
  const json = JSON.stringify({
    kdf: { name: "scrypt", params: WRITTEN, salt: salt.toString("base64") },
    cipher: { name: "nacl/secretbox", nonce: nonce.toString("base64") },
    ciphertext: ciphertext.toString("base64"),
  });
  const body = Buffer.from(json).toString("base64").replace(/.{64}/g, "$&\n");
  const type = PEM_TYPES[0];
  return `-----BEGIN ${type}-----\n${body.endsWith("\n") ? body : `${body}\n`}-----END ${type}-----\n`;
}
