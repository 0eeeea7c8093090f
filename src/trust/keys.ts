// Signing keys for cosign-style signatures: ECDSA P-256 in a PEM file, PKCS#8
// (encrypted or not) or SEC1, read with node:crypto. The key file must be the
// owner's alone, as ssh asks of its keys. The passphrase is asked for only
// when the key is encrypted; neither it nor the key reaches a message.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { lstat, readFile } from "node:fs/promises";
import { NiftyError } from "../diagnostics/errors.ts";

/** cosign's own format (scrypt + NaCl secretbox), which node:crypto cannot open. */
const COSIGN_ENCRYPTED = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----";
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
  const text = await readFile(path, "utf8");
  if (text.includes(COSIGN_ENCRYPTED)) {
    throw new NiftyError(
      "NIFTY731",
      `${shown} is not a usable signing key: cosign's encrypted format is not read by niftyc`,
      "give niftyc a PKCS#8 PEM key (niftyc keygen-signing writes one; its .pub works with cosign and podman)",
    );
  }
  let privateKey: KeyObject;
  if (text.includes(ENCRYPTED_PKCS8)) {
    const secret = await passphrase();
    if (secret === undefined || secret.length === 0) {
      throw new NiftyError(
        "NIFTY732",
        `the signing key ${shown} is encrypted and no passphrase was given`,
        "give --key-passphrase file:PATH or env:VARIABLE, or run niftyc at a terminal to be asked",
      );
    }
    try {
      privateKey = createPrivateKey({ key: text, format: "pem", passphrase: secret });
    } catch {
      throw new NiftyError(
        "NIFTY732",
        `the passphrase for the signing key ${shown} is wrong`,
        "check the passphrase (a file's content is the passphrase, less one final newline)",
      );
    }
  } else {
    try {
      privateKey = createPrivateKey({ key: text, format: "pem" });
    } catch {
      throw new NiftyError(
        "NIFTY731",
        `${shown} is not a usable signing key: not a PEM private key`,
        MAKE_ONE,
      );
    }
  }
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

/** A public key PEM (what `keyPath` of a policy names) as a key object. */
export async function loadPublicKey(path: string, shown: string): Promise<KeyObject> {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: await readFile(path, "utf8"), format: "pem" });
  } catch (error) {
    const why =
      (error as NodeJS.ErrnoException).code?.startsWith("E") === true
        ? (error as NodeJS.ErrnoException).code
        : "not a PEM public key";
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

/** A new P-256 key pair as PEM: PKCS#8 (AES-256-CBC under the passphrase when given) and SPKI. */
export function generateSigningKey(passphrase: Buffer | undefined): {
  privatePem: string;
  publicPem: string;
} {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const privatePem = privateKey.export(
    passphrase
      ? { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }
      : { type: "pkcs8", format: "pem" },
  ) as string;
  return { privatePem, publicPem: publicKey.export({ type: "spki", format: "pem" }) as string };
}
