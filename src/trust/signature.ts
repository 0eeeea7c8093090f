// The sigstore "simple signing" payload that cosign writes and containers/image
// (skopeo, podman: a policy's sigstoreSigned) verifies, and its ECDSA P-256
// signature over the payload's exact bytes (SHA-256, ASN.1 DER, base64).
import { sign, verify, type KeyObject } from "node:crypto";
import { NIFTYC_VERSION } from "../core/version.ts";

export const SIGNATURE_TYPE = "cosign container image signature";

/**
 * The payload for `repository` (REGISTRY/REPOSITORY, no tag: what a
 * matchRepository policy compares) and the manifest's digest. containers/image
 * wants exactly these fields in `critical`, and `optional` present.
 */
export function signaturePayload(repository: string, manifestDigest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": repository },
        image: { "docker-manifest-digest": manifestDigest },
        type: SIGNATURE_TYPE,
      },
      optional: { creator: `niftyc ${NIFTYC_VERSION}` },
    }),
  );
}

export function signPayload(payload: Buffer, key: KeyObject): string {
  return sign("sha256", payload, key).toString("base64");
}

/** Why a signature does not stand for `manifestDigest` in `repository` under `key`; undefined when it does. */
export function checkSignature(
  payload: Buffer,
  signature: string,
  key: KeyObject,
  repository: string,
  manifestDigest: string,
): string | undefined {
  let ok = false;
  try {
    ok = verify("sha256", payload, key, Buffer.from(signature, "base64"));
  } catch {
    ok = false;
  }
  if (!ok) return "the signature does not verify with this key";
  let parsed: {
    critical?: { identity?: Record<string, unknown>; image?: Record<string, unknown>; type?: unknown };
  };
  try {
    parsed = JSON.parse(payload.toString("utf8")) as typeof parsed;
  } catch {
    return "its payload is not JSON";
  }
  const critical = parsed?.critical;
  if (critical?.type !== SIGNATURE_TYPE) return `its payload's type is not "${SIGNATURE_TYPE}"`;
  const signed = critical.image?.["docker-manifest-digest"];
  if (signed !== manifestDigest) return `it signs ${String(signed)}, not ${manifestDigest}`;
  const identity = critical.identity?.["docker-reference"];
  if (typeof identity !== "string" || withoutTag(identity) !== repository) {
    return `it names ${String(identity)}, not ${repository}`;
  }
  return undefined;
}

/** REGISTRY/REPOSITORY of a reference that may carry a :tag or @digest. */
function withoutTag(reference: string): string {
  const name = reference.split("@")[0]!;
  const colon = name.indexOf(":", name.lastIndexOf("/"));
  return colon >= 0 ? name.slice(0, colon) : name;
}
