// BIND [RO|RW] <host-path>[:<container-path>]
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";
import { imagePath } from "../image/tree.ts";

/**
 * The host's directories a container must not be given (NIFTY025 without --allow-system-binds).
 * Any bind of one of these or of anything under it, read-only or not: keys, devices, the kernel's
 * settings and the sockets of the host's services (connecting to a socket is not a write).
 */
export const SYSTEM_BIND_ANY = ["/root", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run"] as const;
/** Any bind of one of these; a read-write bind of anything under them (the host's programs and settings). */
export const SYSTEM_BIND_WRITE = [
  "/etc",
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/var/lib",
  "/var/spool",
] as const;

const within = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

/** `path` with `.`, repeated and trailing slashes resolved (`..` is refused before, NIFTY096). */
export function normalBindPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  return `/${parts.join("/")}`;
}

/**
 * Why binding `hostPath` gives the container the host, or undefined: `/`, a system directory or a
 * parent of one (`/var`), anything under SYSTEM_BIND_ANY, anything under SYSTEM_BIND_WRITE read-write.
 */
export function systemBindProblem(hostPath: string, readOnly: boolean): string | undefined {
  const path = normalBindPath(hostPath);
  if (path === "/") return "the host's whole file system";
  for (const dir of [...SYSTEM_BIND_ANY, ...SYSTEM_BIND_WRITE]) {
    if (within(dir, path)) return dir === path ? `the host's ${dir}` : `the host's ${dir}, which is under it`;
  }
  for (const dir of SYSTEM_BIND_ANY) if (within(path, dir)) return `part of the host's ${dir}`;
  if (!readOnly)
    for (const dir of SYSTEM_BIND_WRITE) if (within(path, dir)) return `part of the host's ${dir}, writable`;
  return undefined;
}

export interface BindInstruction extends Typed {
  kind: "BIND";
  readOnly: boolean;
  hostPath: string;
  containerPath: string;
}

export const bind: InstructionSpec<BindInstruction> = {
  keyword: "BIND",
  summary:
    "Mount a host directory or file into the container at run time (nspawn BindReadOnly=/Bind=, docker -v, OCI bind mounts). Read-only unless RW; the container path defaults to the host path. The directory is created empty in the image as the mount point.",
  syntax: ["BIND [RO|RW] <host-path>[:<container-path>]"],
  example: "BIND RO /usr/share/zoneinfo",
  check(ins, report, model) {
    let words = ins.args;
    let readOnly = true;
    const mode = words[0]?.text.toUpperCase();
    if (mode === "RO" || mode === "RW") {
      readOnly = mode === "RO";
      ins.optionWords?.push(words[0]!.span);
      words = words.slice(1);
    }
    if (!expectCount(ins, words, report, 1, 1, this.syntax[0]!)) return undefined;
    const word = words[0]!;
    const [host, container, ...rest] = word.text.split(":");
    const bad = (p: string | undefined) =>
      p === undefined || !p.startsWith("/") || p.split("/").includes("..");
    if (rest.length > 0 || bad(host) || (container !== undefined && bad(container))) {
      report.error(
        word.span,
        "NIFTY096",
        `bad bind ${JSON.stringify(word.text)}`,
        "write /host/path or /host/path:/container/path (absolute, without ..)",
      );
      return undefined;
    }
    const system = model.allowSystemBinds ? undefined : systemBindProblem(host!, readOnly);
    if (system !== undefined) {
      report.error(
        word.span,
        "NIFTY025",
        `binding ${normalBindPath(host!)} gives the container ${system}`,
        "bind a directory of its own, or pass --allow-system-binds if the container is to have it",
      );
      return undefined;
    }
    if (!readOnly) {
      report.warn(
        ins.args[0]!.span,
        "NIFTY097",
        `the container can write to the host's ${host}`,
        "use BIND RO unless the container must change host files",
      );
    }
    const containerPath = imagePath(container ?? host!);
    model.tree.mkdirp(containerPath);
    return { kind: "BIND", span: ins.span, readOnly, hostPath: imagePath(host!), containerPath };
  },
  async apply(t, context) {
    context.tree.mkdirp(t.containerPath);
  },
  configure(t, config) {
    config.binds.push({ readOnly: t.readOnly, hostPath: t.hostPath, containerPath: t.containerPath });
  },
};
