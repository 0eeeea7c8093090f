// EXPOSE <port>[/tcp|/udp] ...
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";
import type { PortSpec } from "../image/config.ts";

export interface ExposeInstruction extends Typed {
  kind: "EXPOSE";
  ports: PortSpec[];
}

export const expose: InstructionSpec<ExposeInstruction> = {
  keyword: "EXPOSE",
  summary:
    "Ports the container listens on: OCI ExposedPorts, Dockerfile EXPOSE, docker run -p, and nspawn Port= when private networking is asked for.",
  syntax: ["EXPOSE <port>[/tcp|/udp] ..."],
  example: "EXPOSE 2200/tcp",
  check(ins, report) {
    if (!expectCount(ins, ins.args, report, 1, Infinity, this.syntax[0]!)) return undefined;
    const ports: PortSpec[] = [];
    for (const word of ins.args) {
      const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(word.text);
      const port = m ? Number(m[1]) : NaN;
      if (!m || port < 1 || port > 65535) {
        report.error(
          word.span,
          "NIFTY095",
          `bad port ${JSON.stringify(word.text)}`,
          "write a port from 1 to 65535, optionally /tcp or /udp",
        );
        continue;
      }
      ports.push({ port, protocol: (m[2]?.toLowerCase() ?? "tcp") as "tcp" | "udp" });
    }
    return { kind: "EXPOSE", span: ins.span, ports };
  },
  configure(t, config) {
    for (const p of t.ports) {
      if (!config.exposedPorts.some((q) => q.port === p.port && q.protocol === p.protocol))
        config.exposedPorts.push(p);
    }
  },
};
