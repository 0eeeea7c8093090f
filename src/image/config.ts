// The image's run-time description: everything the run-config writers need,
// derived from the recipe (ENV, HOSTNAME, EXPOSE, BIND, LABEL, STOPSIGNAL, init).

/** The default platform's architecture, as Debian and OCI name it: what PACKAGE qualifiers are checked against. */
export const IMAGE_ARCHITECTURE = "amd64";

export interface StopSignal {
  /** Canonical name, e.g. "SIGUSR2", "SIGRTMIN+3". */
  name: string;
  /** Linux x86-64 number, e.g. 12, 37. */
  number: number;
  /** "recipe" when STOPSIGNAL set it, "init" when chosen from the image's init. */
  source: "recipe" | "init";
}

export type InitKind = "busybox" | "systemd" | "other";

export interface PortSpec {
  port: number;
  protocol: "tcp" | "udp";
}

export interface BindSpec {
  readOnly: boolean;
  /** Absolute path on the host. */
  hostPath: string;
  /** Absolute path inside the container. */
  containerPath: string;
}

export interface ImageConfig {
  /** The recipe's name (file name without .nifty): machine, unit and image name. */
  name: string;
  /** ENV in recipe order (values after build-time substitution). */
  env: Array<[string, string]>;
  hostname?: string;
  exposedPorts: PortSpec[];
  binds: BindSpec[];
  /** LABEL in recipe order. */
  labels: Array<[string, string]>;
  stopSignal: StopSignal;
  init: { kind: InitKind /** argv of PID 1, e.g. ["/sbin/init"] */; command: string[] };
  /** OCI's name of the platform's CPU: amd64, arm64, arm, … */
  architecture: string;
  /** OCI's variant, where the platform has one: v8 (arm64), v7 (arm). */
  variant?: string;
  os: "linux";
  /** SOURCE_DATE_EPOCH, seconds. */
  created: number;
  /** The image sets its own /etc/localtime: run configs must not replace it with the host's zone. */
  ownTimezone?: true;
}

/** One uncompressed layer tarball written by the build. */
export interface LayerFile {
  /** Path of the uncompressed tar on disk. */
  path: string;
  /** "sha256:<hex>" of the uncompressed tar (the OCI diff_id). */
  digest: string;
  size: number;
  /** What the layer holds, for history entries: e.g. "fetched binaries and links". */
  comment: string;
  /** The layer already gzipped (written with the tar, in the store): copied, not compressed again. */
  gzip?: { path: string; digest: string; size: number };
}
