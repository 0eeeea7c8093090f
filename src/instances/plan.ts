// Which instances exist and what each one gets: machine name and the values of
// `--set NAME=EXPR` for its number. Pure: no I/O, every mistake a NiftyError.
import { suggest } from "../diagnostics/suggest.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { instanceMachineName } from "../emit/systemd.ts";
import type { ImageConfig } from "../image/config.ts";
import { EXPR_HINT, evalExpr, exprNames, parseExpr, type Expr } from "./expr.ts";

/** More than this is a typo, not a fleet: the template's specifiers, the manifest and the target all grow with it. */
export const MAX_COUNT = 100_000;

export interface InstanceSetting {
  name: string;
  /** The expression as given, e.g. "2200+i". */
  expr: string;
}

export interface PlanInput {
  config: ImageConfig;
  count: number;
  /** Number of the first instance (default 1, as nifty1 … in the seed). */
  first?: number;
  sets?: readonly InstanceSetting[];
}

export interface Instance {
  /** The template's %i. */
  number: number;
  /** Machine and host name: <name>-<number>. */
  machine: string;
  /** Values of the --set variables, in --set order. */
  env: Array<[string, string]>;
}

export interface InstancePlan {
  name: string;
  count: number;
  first: number;
  sets: InstanceSetting[];
  /** ENV names the plan treats as host ports (checked for range and clashes). */
  ports: string[];
  instances: Instance[];
}

const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Errors about an expression say which --set they come from. */
function labelled<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof NiftyError) error.message = `--set ${what}: ${error.message}`;
    throw error;
  }
}

/**
 * An ENV is a port when its name ends in PORT or its value is a port the recipe
 * EXPOSEs. Instances share the host's network, so these must differ between them.
 */
export function portVariables(config: ImageConfig): string[] {
  const exposed = new Set(config.exposedPorts.map((p) => String(p.port)));
  return config.env.filter(([key, value]) => /port$/i.test(key) || exposed.has(value)).map(([key]) => key);
}

/** A --set value: one expression, or (quoted) text with expressions in braces, as parts. */
type SetValue = Array<string | Expr>;

/** Text may hold what a unit's environment line carries unquoted: no blanks, quotes, $ or %. */
const TEXT_PART = /^[A-Za-z0-9._:@\/+,=-]*$/;

function parseSetValue(source: string): SetValue {
  if (!(source.length >= 2 && source.startsWith('"') && source.endsWith('"'))) return [parseExpr(source)];
  const parts: SetValue = [];
  const inner = source.slice(1, -1);
  let at = 0;
  while (at < inner.length) {
    const open = inner.indexOf("{", at);
    const literal = inner.slice(at, open < 0 ? inner.length : open);
    if (!TEXT_PART.test(literal)) throw new NiftyError("NIFTY402", `text ${JSON.stringify(literal)} has a character an instance's environment cannot carry`, "text may hold letters, digits and . _ : @ / + , = -; expressions go in braces: \"web-{i}\"");
    if (literal !== "") parts.push(literal);
    if (open < 0) break;
    const close = inner.indexOf("}", open);
    if (close < 0) throw new NiftyError("NIFTY402", `a { at column ${open + 2} has no closing }`, EXPR_HINT);
    parts.push(parseExpr(inner.slice(open + 1, close)));
    at = close + 1;
  }
  return parts;
}

export function planInstances(input: PlanInput): InstancePlan {
  const { config, count } = input;
  const first = input.first ?? 1;
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new NiftyError("NIFTY400", `--count must be a whole number from 1 to ${MAX_COUNT}, got ${count}`, "e.g. --count 20");
  }
  if (!Number.isSafeInteger(first) || first < 0) {
    throw new NiftyError("NIFTY401", `--first must be a whole number from 0 up, got ${first}`, "instances are numbered first, first+1, …; the default is 1");
  }
  const last = instanceMachineName(config.name, String(first + count - 1));
  if (!MACHINE_NAME.test(last)) {
    throw new NiftyError("NIFTY409", `machine name ${JSON.stringify(last)} is not valid`, "machine names are at most 64 letters, digits, '.', '_' and '-': shorten the recipe's name or lower --first/--count");
  }

  const envNames = config.env.map(([key]) => key);
  const defaults = new Map(config.env.map(([key, value]) => [key, value]));
  const numericDefaults = new Map<string, number>();
  for (const [key, value] of config.env) if (/^-?[0-9]+$/.test(value) && Number.isSafeInteger(Number(value))) numericDefaults.set(key, Number(value));

  const parsed: Array<{ setting: InstanceSetting; value: SetValue }> = [];
  for (const setting of input.sets ?? []) {
    if (!defaults.has(setting.name)) {
      const near = suggest(setting.name, envNames);
      throw new NiftyError("NIFTY404", `--set ${setting.name}: the recipe has no ENV ${setting.name}${near ? ` — did you mean ${near}?` : ""}`,
        envNames.length > 0
          ? `only the recipe's ENV reach the container (the template passes --setenv for each): ${envNames.join(", ")}`
          : "the recipe declares no ENV; add ENV NAME=default to it so instances can set NAME");
    }
    if (parsed.some((p) => p.setting.name === setting.name)) {
      throw new NiftyError("NIFTY405", `--set ${setting.name} is given twice`, "give each variable one expression");
    }
    const value = labelled(setting.name, () => parseSetValue(setting.expr));
    for (const { name, at } of value.filter((p): p is Expr => typeof p !== "string").flatMap(exprNames)) {
      if (name === "i" || name === "n" || numericDefaults.has(name)) continue;
      const near = suggest(name, ["i", "n", ...numericDefaults.keys()]);
      throw new NiftyError("NIFTY403", `--set ${setting.name}=${setting.expr}: unknown name ${name} at column ${at + 1}${near ? ` — did you mean ${near}?` : ""}`, EXPR_HINT);
    }
    parsed.push({ setting, value });
  }

  const ports = portVariables(config);
  const instances: Instance[] = [];
  const portOwner = new Map<string, string>();
  for (let number = first; number < first + count; number++) {
    const vars = new Map(numericDefaults);
    vars.set("i", number);
    vars.set("n", count);
    const env: Array<[string, string]> = [];
    const machine = instanceMachineName(config.name, String(number));
    for (const { setting, value } of parsed) {
      const text = labelled(`${setting.name} (instance ${number})`, () => value.map((p) => (typeof p === "string" ? p : String(evalExpr(p, vars, setting.expr)))).join(""));
      env.push([setting.name, text]);
    }
    const values = new Map([...defaults, ...env]);
    for (const port of ports) {
      const value = values.get(port)!;
      const n = Number(value);
      if (!/^[0-9]+$/.test(value) || n < 1 || n > 65535) {
        throw new NiftyError("NIFTY407", `${port}=${value} for instance ${number} is not a port (1–65535)`, `instance numbers run from ${first} to ${first + count - 1}: choose a base that keeps the last one at 65535 or below, e.g. --set ${port}=${Math.max(1, Math.min(2200, 65535 - (first + count - 1)))}+i`);
      }
      const owner = portOwner.get(value);
      if (owner !== undefined && owner !== machine) {
        throw new NiftyError("NIFTY408", `instances ${owner} and ${machine} would both use port ${value} (${port})`,
          `instances share the host's network; give each its own port, e.g. --set ${port}=${defaults.get(port)}+i`);
      }
      portOwner.set(value, machine);
    }
    instances.push({ number, machine, env });
  }
  return { name: config.name, count, first, sets: parsed.map((p) => p.setting), ports, instances };
}
