// Signing keys for cosign-style signatures: ECDSA P-256 in a PEM file, cosign's own
// encrypted format (src/trust/cosign-key.ts), PKCS#8 (encrypted or not) or SEC1. The key file must be the
// owner's alone, as ssh asks of its keys. The passphrase is asked for only
// when the key is encrypted; neither it nor the key reaches a message.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { lstat, readFile } from "node:fs/promises";
import { NiftyError } from "../diagnostics/errors.ts";
import { CosignKeyFormatError, decryptCosignKey, encryptCosignKey, isCosignKey } from "./cosign-key.ts";

const ENCRYPTED_PKCS8 = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
/** The most of a key file read: a PEM key is a few hundred bytes. */
const MAX_KEY_BYTES = 64 << 10;

export interface SigningKey {
  privateKey: KeyObject;
  /** The public key as PEM (SubjectPublicKeyInfo), what a verifier's policy names. */
  publicPem: string;
}

const MAKE_ONE =
  "make one with niftyc keygen-signing (or openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)";

/**
 * The signing key in `path` (absolute). `passphrase` is called only for an
 * encrypted key; undefined from it means none could be had.
 */
export async function loadSigningKey(
  path: string,
  shown: string,
  passphrase: () => Promise<Buffer | undefined>,
): Promise<SigningKey> {
  const st = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    throw new NiftyError(
      "NIFTY731",
      `${shown} is not a usable signing key: ${error.code ?? error.message}`,
      MAKE_ONE,
    );
  });
  if (!st.isFile())
    throw new NiftyError("NIFTY731", `${shown} is not a usable signing key: not a regular file`, MAKE_ONE);
  if (st.size > MAX_KEY_BYTES)
    throw new NiftyError("NIFTY731", `${shown} is not a usable signing key: over 64 KiB`, MAKE_ONE);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
    throw new NiftyError(
      "NIFTY730",
      `the signing key ${shown} may be read by other users (mode ${mode})`,
      `chmod 600 ${shown}, as ssh asks of its keys; if others could read it, make a new key`,
    );
  }
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new NiftyError(
      "NIFTY731",
      `${shown} is not a usable signing key: cannot read it (${error.code ?? error.message})`,
      `run niftyc as the key's owner, or ${MAKE_ONE}`,
    );
  });
  const privateKey = await openPrivateKey(text, shown, passphrase);
  const details = privateKey.asymmetricKeyDetails;
  if (privateKey.asymmetricKeyType !== "ec" || details?.namedCurve !== "prime256v1") {
    const kind = `${privateKey.asymmetricKeyType ?? "unknown"}${details?.namedCurve ? ` ${details.namedCurve}` : ""}`;
    throw new NiftyError(
      "NIFTY731",
      `${shown} is not a usable signing key: a ${kind} key, not ECDSA P-256`,
      MAKE_ONE,
    );
  }
  const publicPem = createPublicKey(privateKey).export({ type: "spki", format: "pem" }) as string;
  return { privateKey, publicPem };
}

const NO_PASSPHRASE =
  "give --key-passphrase file:PATH or env:VARIABLE, or run niftyc at a terminal to be asked";
const WRONG_PASSPHRASE = "check the passphrase (a file's content is the passphrase, less one final newline)";

/** The private key of a PEM text: cosign's encrypted format, encrypted PKCS#8, or a plain key. */
async function openPrivateKey(
  text: string,
  shown: string,
  passphrase: () => Promise<Buffer | undefined>,
): Promise<KeyObject> {
  if (isCosignKey(text)) return openCosignKey(text, shown, passphrase);
  if (text.includes(ENCRYPTED_PKCS8)) {
    const secret = await passphrase();
    if (secret === undefined || secret.length === 0) {
      throw new NiftyError(
        "NIFTY732",
        `the signing key ${shown} is encrypted and no passphrase was given`,
        NO_PASSPHRASE,
      );
    }
    try {
      return createPrivateKey({ key: text, format: "pem", passphrase: secret });
    } catch {
      throw new NiftyError(
        "NIFTY732",
        `the passphrase for the signing key ${shown} is wrong`,
        WRONG_PASSPHRASE,
      );
    }
  }
  try {
    return createPrivateKey({ key: text, format: "pem" });
  } catch {
    throw new NiftyError("NIFTY731", `${shown} is not a usable signing key: not a PEM private key`, MAKE_ONE);
  }
}

/**
 * cosign's format: scrypt and NaCl secretbox around PKCS#8 (src/trust/cosign-key.ts). cosign
 * encrypts even under an empty passphrase, so none given is tried as the empty one.
 */
async function openCosignKey(
  text: string,
  shown: string,
  passphrase: () => Promise<Buffer | undefined>,
): Promise<KeyObject> {
  const secret = await passphrase();
  let der: Buffer | undefined;
  try {
    der = await decryptCosignKey(text, secret ?? Buffer.alloc(0));
  } catch (error) {
    if (!(error instanceof CosignKeyFormatError)) throw error;
    throw new NiftyError("NIFTY731", `${shown} is not a usable signing key: ${error.message}`, MAKE_ONE);
  }
  if (der === undefined) {
    if (secret === undefined || secret.length === 0)
      throw new NiftyError(
        "NIFTY732",
        `the signing key ${shown} is encrypted and no passphrase was given`,
        NO_PASSPHRASE,
      );
    throw new NiftyError(
      "NIFTY732",
      `the passphrase for the signing key ${shown} is wrong`,
      WRONG_PASSPHRASE,
    );
  }
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } catch {
    throw new NiftyError("NIFTY731", `${shown} is not a usable signing key: not PKCS#8 inside`, MAKE_ONE);
  } finally {
    der.fill(0);
  }
}

/** A public key PEM (what `keyPath` of a policy names) as a key object. */
export async function loadPublicKey(path: string, shown: string): Promise<KeyObject> {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: await readFile(path, "utf8"), format: "pem" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // An errno (ENOENT, EACCES) is the file's; OpenSSL's ERR_… codes are about its content.
    const why = code !== undefined && /^E[A-Z]+$/.test(code) ? code : "not a PEM public key";
    throw new NiftyError(
      "NIFTY731",
      `${shown} is not a usable public key: ${why}`,
      "give the .pub file written beside the signing key",
    );
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new NiftyError(
      "NIFTY731",
      `${shown} is not a usable public key: not ECDSA P-256`,
      "give the .pub file written beside the signing key",
    );
  }
  return key;
}

/** How keygen-signing writes an encrypted key: cosign's own format, or PKCS#8 (AES-256-CBC) for openssl. */
export type KeyFormat = "cosign" | "pkcs8";

/**
 * A new P-256 key pair as PEM: the private key encrypted under the passphrase when given (in
 * `format`), plain PKCS#8 when not, and the public key as SPKI.
 */
export async function generateSigningKey(
  passphrase: Buffer | undefined,
  format: KeyFormat = "cosign",
): Promise<{ privatePem: string; publicPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const publicPem = publicKey.export({ type: "spki", format: "pem" }) as string;
  if (passphrase === undefined)
    return { privatePem: privateKey.export({ type: "pkcs8", format: "pem" }) as string, publicPem };
  if (format === "cosign") {
    const der = privateKey.export({ type: "pkcs8", format: "der" });
    try {
      return { privatePem: await encryptCosignKey(der, passphrase), publicPem };
    } finally {
      der.fill(0);
    }
  }
  const privatePem = privateKey.export({
    type: "pkcs8",
    format: "pem",
    cipher: "aes-256-cbc",
    passphrase,
  }) as string;
  return { privatePem, publicPem };
}
