// Image references as registries take them: HOST[:PORT]/REPOSITORY[:TAG][@DIGEST].
// The registry host is always spelt out (no implied docker.io), so a push
// never goes somewhere the user did not name.
import { NiftyError } from "../diagnostics/errors.ts";

export interface ImageReference {
  /** host[:port] as written, e.g. "127.0.0.1:5000". */
  registry: string;
  /** e.g. "team/app". */
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST =
  /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$/;

export function parseReference(text: string): ImageReference {
  const bad = (why: string): never => {
    throw new NiftyError(
      "NIFTY700",
      `${JSON.stringify(text)} is not an image reference: ${why}`,
      "write REGISTRY/REPOSITORY:TAG, e.g. registry.example.com/team/app:1.0 or 127.0.0.1:5000/app:latest",
    );
  };
  // http://… and docker://… are how URLs and skopeo spell it; a reference names no scheme.
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)?.[1];
  if (scheme !== undefined)
    bad(
      `it starts with ${scheme}:// (write it without; plain http to a registry on this machine is --insecure)`,
    );
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(`the digest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
  }
  const slash = rest.indexOf("/");
  if (slash <= 0) bad("it names no registry host");
  const registry = rest.slice(0, slash);
  // Docker's rule: the first component is a host when it has a dot or a port, or is localhost.
  if (
    !HOST.test(registry) ||
    !(registry.includes(".") || registry.includes(":") || registry === "localhost")
  ) {
    bad(`${JSON.stringify(registry)} is not a registry host (it needs a dot or a port, or is localhost)`);
  }
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(":");
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag))
      bad(
        `the tag ${JSON.stringify(tag)} may have only A-Z a-z 0-9 _ . - (at most 128, not starting with . or -)`,
      );
  }
  if (path === "" || !path.split("/").every((c) => COMPONENT.test(c))) {
    bad(
      `the repository ${JSON.stringify(path)} must be lower-case components (a-z 0-9, separated by . _ __ -) joined by /`,
    );
  }
  if (tag === undefined && digest === undefined) bad("it has no :TAG");
  return {
    registry,
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** The host without its port and brackets. */
export function hostName(registry: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(registry);
  if (m) return m[1]!;
  return registry.replace(/:\d+$/, "");
}

/** 127.0.0.0/8, ::1 and localhost: the only hosts plain http is allowed for. */
export function isLoopback(registry: string): boolean {
  const host = hostName(registry).toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
