// `niftyc instances status`: what the running systemd says of a directory's
// instances. One `systemctl list-units` call for all of them, whatever their number.
import { execFile } from "node:child_process";
import { NiftyError } from "../diagnostics/errors.ts";
import { listenerUnit } from "../emit/systemd.ts";
import type { Manifest } from "./render.ts";

export type InstanceState = "running" | "starting" | "stopping" | "failed" | "idle" | "stopped";

export interface InstanceStatus {
  instance: number;
  machine: string;
  unit: string;
  port?: number;
  state: InstanceState;
  /** On demand: the listener's ActiveState/SubState, e.g. "active/listening". */
  listener?: string;
}

interface UnitState {
  active: string;
  sub: string;
}

/** `systemctl list-units --plain --no-legend` lines: UNIT LOAD ACTIVE SUB DESCRIPTION. */
export function parseListUnits(text: string): Map<string, UnitState> {
  const units = new Map<string, UnitState>();
  for (const line of text.split("\n")) {
    const [unit, , active, sub] = line.trim().replace(/^●\s*/, "").split(/\s+/);
    if (unit && active && sub) units.set(unit, { active, sub });
  }
  return units;
}

export function classify(
  container: UnitState | undefined,
  listener: UnitState | undefined,
  onDemand: boolean,
): InstanceState {
  switch (container?.active) {
    case "active":
    case "reloading":
      return "running";
    case "activating":
      return "starting";
    case "deactivating":
      return "stopping";
    case "failed":
      return "failed";
  }
  if (onDemand && listener?.active === "active") return "idle";
  if (onDemand && listener?.active === "failed") return "failed";
  return "stopped";
}

export function instanceStates(m: Manifest, units: Map<string, UnitState>): InstanceStatus[] {
  const onDemand = m.onDemand !== undefined;
  return m.instances.map((i) => {
    const id = i.unit.slice(m.name.length + 1, -".service".length);
    const listener = onDemand ? units.get(listenerUnit(m.name, "socket", id)) : undefined;
    return {
      instance: i.instance,
      machine: i.machine,
      unit: i.unit,
      ...(i.port === undefined ? {} : { port: i.port }),
      state: classify(units.get(i.unit), listener, onDemand),
      ...(onDemand ? { listener: listener ? `${listener.active}/${listener.sub}` : "inactive/dead" } : {}),
    };
  });
}

/** Ask systemd (through `systemctl`, at `command`) for the units of every instance of `m`. */
export async function queryStatus(m: Manifest, command = "systemctl"): Promise<InstanceStatus[]> {
  const patterns = [`${m.name}@*.service`, ...(m.onDemand ? [listenerUnit(m.name, "socket", "*")] : [])];
  const text = await new Promise<string>((resolve, reject) => {
    execFile(
      command,
      ["list-units", "--all", "--plain", "--no-legend", "--full", "--no-pager", ...patterns],
      { maxBuffer: 256 * 1024 * 1024, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error === null) return resolve(stdout);
        const code = (error as NodeJS.ErrnoException).code;
        reject(
          code === "ENOENT"
            ? new NiftyError(
                "NIFTY434",
                `instances status needs systemctl, and there is none on PATH`,
                "run it on the host whose systemd runs the instances",
              )
            : new NiftyError(
                "NIFTY434",
                "systemctl list-units failed",
                "run it on the host whose systemd runs the instances (systemd as PID 1, as root or with access to its bus)",
                // What systemctl said, a line each.
                (stderr || error.message)
                  .trim()
                  .split("\n")
                  .filter((line) => line.trim() !== ""),
              ),
        );
      },
    );
  });
  return instanceStates(m, parseListUnits(text));
}
