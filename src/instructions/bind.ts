// BIND [RO|RW] <host-path>[:<container-path>]
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";
import { imagePath } from "../image/tree.ts";

export interface BindInstruction extends Typed {
  kind: "BIND";
  readOnly: boolean;
  hostPath: string;
  containerPath: string;
}

export const bind: InstructionSpec<BindInstruction> = {
  keyword: "BIND",
  summary: "Mount a host directory or file into the container at run time (nspawn BindReadOnly=/Bind=, docker -v, OCI bind mounts). Read-only unless RW; the container path defaults to the host path. The directory is created empty in the image as the mount point.",
  syntax: ["BIND [RO|RW] <host-path>[:<container-path>]"],
  example: "BIND RO /usr/share/zoneinfo",
  check(ins, report, model) {
    let words = ins.args;
    let readOnly = true;
    const mode = words[0]?.text.toUpperCase();
    if (mode === "RO" || mode === "RW") {
      readOnly = mode === "RO";
      words = words.slice(1);
    }
    if (!expectCount(ins, words, report, 1, 1, this.syntax[0]!)) return undefined;
    const word = words[0]!;
    const [host, container, ...rest] = word.text.split(":");
    const bad = (p: string | undefined) => p === undefined || !p.startsWith("/") || p.split("/").includes("..");
    if (rest.length > 0 || bad(host) || (container !== undefined && bad(container))) {
      report.error(word.span, "NIFTY096", `bad bind ${JSON.stringify(word.text)}`, "write /host/path or /host/path:/container/path (absolute, without ..)");
      return undefined;
    }
    if (!readOnly) {
      report.warn(ins.args[0]!.span, "NIFTY097", `the container can write to the host's ${host}`, "use BIND RO unless the container must change host files");
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
