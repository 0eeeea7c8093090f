// The image config blob shared by the OCI layout and the docker-archive
// (Docker's config is a superset of OCI's): canonical, byte-stable JSON.
import { createHash } from "node:crypto";
import type { ImageConfig, LayerFile } from "../image/config.ts";
import { spellSignal } from "./signals.ts";

/** SOURCE_DATE_EPOCH seconds as RFC 3339 UTC without fractions. */
export function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}

export function sha256Hex(bytes: string | Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A map in byte order of its keys (later duplicates win), so the JSON is canonical. */
export function sortedObject<T>(entries: Iterable<[string, T]>): Record<string, T> {
  const map = new Map<string, T>();
  for (const [k, v] of entries) map.set(k, v);
  const out: Record<string, T> = {};
  for (const k of [...map.keys()].sort(bytewise)) out[k] = map.get(k) as T;
  return out;
}

/** Chain IDs (image-spec config.md): each layer's identity together with all below it. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const prev = out.at(-1);
    out.push(prev === undefined ? diffId : `sha256:${sha256Hex(`${prev} ${diffId}`)}`);
  }
  return out;
}

export function imageConfigJson(config: ImageConfig, layers: readonly LayerFile[]): string {
  const created = rfc3339(config.created);
  const runConfig: Record<string, unknown> = {};
  if (config.env.length > 0) runConfig.Env = config.env.map(([k, v]) => `${k}=${v}`);
  if (config.exposedPorts.length > 0) {
    runConfig.ExposedPorts = sortedObject(config.exposedPorts.map((p) => [`${p.port}/${p.protocol}`, {}]));
  }
  if (config.init.command.length > 0) runConfig.Cmd = [...config.init.command];
  runConfig.WorkingDir = "/";
  if (config.labels.length > 0) runConfig.Labels = sortedObject(config.labels);
  runConfig.StopSignal = spellSignal(config.stopSignal, "oci");
  const doc = {
    created,
    architecture: config.architecture,
    ...(config.variant !== undefined ? { variant: config.variant } : {}),
    os: config.os,
    config: runConfig,
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    history: layers.map((l) => ({ created, created_by: "niftyc", comment: l.comment })),
  };
  return JSON.stringify(doc);
}
