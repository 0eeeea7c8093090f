// The run-time description of the image, derived from the recipe and the
// built tree: one source of truth for every run-config dialect.
import { posix } from "node:path";
import type { Recipe } from "../instructions/recipe.ts";
import type { ImageConfig, InitKind } from "../image/config.ts";
import type { Tree } from "../image/tree.ts";
import { defaultStopSignal } from "../emit/signals.ts";

const SYSTEMD_PATHS = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"];

/** What PID 1 is: /sbin/init followed through its links, or systemd where it lives. */
export function detectInit(tree: Tree): { kind: InitKind; command: string[] } {
  const init = tree.lookup("/sbin/init");
  if (init?.node.type === "file") {
    const name = posix.basename(init.path);
    if (name === "busybox") return { kind: "busybox", command: ["/sbin/init"] };
    if (name === "systemd") return { kind: "systemd", command: ["/sbin/init"] };
    return { kind: "other", command: ["/sbin/init"] };
  }
  const systemd = SYSTEMD_PATHS.find((p) => tree.lookup(p)?.node.type === "file");
  if (systemd) return { kind: "systemd", command: [systemd] };
  return { kind: "other", command: ["/sbin/init"] };
}

export function imageConfig(recipe: Recipe, tree: Tree, epoch: number): ImageConfig {
  const env = new Map<string, string>();
  const labels = new Map<string, string>();
  const config: ImageConfig = {
    name: recipe.name,
    env: [],
    exposedPorts: [],
    binds: [],
    labels: [],
    stopSignal: { name: "", number: 0, source: "init" },
    init: detectInit(tree),
    architecture: "amd64",
    os: "linux",
    created: epoch,
  };
  let stop: { name: string; number: number } | undefined;
  for (const ins of recipe.instructions) {
    switch (ins.kind) {
      case "ENV":
        for (const [k, v] of ins.pairs) env.set(k, v);
        break;
      case "LABEL":
        for (const [k, v] of ins.pairs) labels.set(k, v);
        break;
      case "HOSTNAME":
        config.hostname = ins.name;
        break;
      case "EXPOSE":
        for (const p of ins.ports) {
          if (!config.exposedPorts.some((q) => q.port === p.port && q.protocol === p.protocol)) config.exposedPorts.push(p);
        }
        break;
      case "BIND":
        config.binds.push({ readOnly: ins.readOnly, hostPath: ins.hostPath, containerPath: ins.containerPath });
        break;
      case "STOPSIGNAL":
        stop = { name: ins.name, number: ins.number };
        break;
      default:
        break;
    }
  }
  config.env = [...env];
  config.labels = [...labels];
  const chosen = stop ?? defaultStopSignal(config.init.kind);
  config.stopSignal = { name: chosen.name, number: chosen.number, source: stop ? "recipe" : "init" };
  return config;
}
