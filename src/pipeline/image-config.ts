// The run-time description of the image, derived from the recipe and the
// built tree: one source of truth for every run-config dialect.
import { posix } from "node:path";
import type { Recipe } from "../instructions/recipe.ts";
import type { ImageConfig, InitKind } from "../image/config.ts";
import type { Tree } from "../image/tree.ts";
import { DEFAULT_PLATFORM, type Platform } from "../image/platform.ts";
import { defaultStopSignal } from "../emit/signals.ts";
import { specFor } from "../instructions/index.ts";
import type { ConfigDraft } from "../instructions/spec.ts";

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

export function imageConfig(
  recipe: Recipe,
  tree: Tree,
  epoch: number,
  platform: Pick<Platform, "architecture" | "variant"> = DEFAULT_PLATFORM,
): ImageConfig {
  const draft: ConfigDraft = { env: new Map(), labels: new Map(), exposedPorts: [], binds: [] };
  for (const ins of recipe.instructions) specFor(ins).configure?.(ins, draft);
  const init = detectInit(tree);
  const chosen = draft.stopSignal ?? defaultStopSignal(init.kind);
  return {
    name: recipe.name,
    env: [...draft.env],
    exposedPorts: draft.exposedPorts,
    binds: draft.binds,
    labels: [...draft.labels],
    stopSignal: { name: chosen.name, number: chosen.number, source: draft.stopSignal ? "recipe" : "init" },
    init,
    architecture: platform.architecture,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    os: "linux",
    created: epoch,
    ...(draft.hostname !== undefined ? { hostname: draft.hostname } : {}),
    ...(tree.get("/etc/localtime") !== undefined ? { ownTimezone: true as const } : {}),
  };
}
