// Which instances exist and what each one gets: machine name and the values of
// `--set NAME=EXPR` for its number. Pure: no I/O, every mistake a NiftyError.
import { suggest } from "../diagnostics/suggest.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { instanceMachineName } from "../emit/systemd.ts";
import type { ImageConfig } from "../image/config.ts";
import { EXPR_HINT, evalExpr, exprNames, parseExpr, type Expr } from "./expr.ts";

/** More than this is a typo, not a fleet: the template's specifiers, the manifest and the target all grow with it. */
export const MAX_COUNT = 100_000;

/**
 * Characters of every instance's --set values together. They are held in the plan, then written
 * to instances.env and the manifest: 100,000 instances of a 100 KB value would be 10 GB.
 */
export const MAX_VALUES = 64 * 1024 * 1024;

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
  /** Each instance started by the first connection to its own host port (see OnDemand). */
  onDemand?: boolean;
}

export interface Instance {
  /** Its place in the plan: first … first+count-1. */
  number: number;
  /** The template's %i: the number, or for on-demand instances the host port. */
  id: string;
  /** Machine and host name: <name>-<id>. */
  machine: string;
  /** Values of the --set variables that reach the container, in --set order. */
  env: Array<[string, string]>;
  /** On demand: the host port its listener binds. */
  port?: number;
}

/**
 * On-demand instances: systemd derives a socket's address only from its unit's name, so the
 * listener of an instance is named by its port, and so is the instance it starts. Inside its own
 * network namespace every instance listens on the recipe's port.
 */
export interface OnDemand {
  /** The port ENV given per instance by --set: the host port of each listener. */
  variable: string;
  /** The recipe's value of that ENV: where every instance listens, inside. */
  innerPort: number;
}

export interface InstancePlan {
  name: string;
  count: number;
  first: number;
  sets: InstanceSetting[];
  /** ENV names the plan treats as host ports (checked for range and clashes). */
  ports: string[];
  instances: Instance[];
  onDemand?: OnDemand;
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
    if (!TEXT_PART.test(literal))
      throw new NiftyError(
        "NIFTY402",
        `text ${JSON.stringify(literal)} has a character an instance's environment cannot carry`,
        'text may hold letters, digits and . _ : @ / + , = -; expressions go in braces: "web-{i}"',
      );
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
  checkCounts(config, count, first);
  const recipe = recipeEnv(config);
  const parsed = parseSets(input.sets ?? [], recipe);
  const ports = portVariables(config);
  const onDemand =
    input.onDemand === true
      ? onDemandPort(
          config,
          ports,
          parsed.map((p) => p.setting.name),
          recipe.defaults,
        )
      : undefined;
  // On demand, every instance has a network of its own: only the listeners' ports share the host's.
  const checked = onDemand === undefined ? ports : [onDemand.variable];
  const instances = planEach({ config, count, first, recipe, parsed, onDemand, checked });
  return {
    name: config.name,
    count,
    first,
    sets: parsed.map((p) => p.setting),
    ports,
    instances,
    ...(onDemand ? { onDemand } : {}),
  };
}

/**
 * What can be judged of the arguments without the image: --count and --first in range, each --set
 * expression's syntax. A recipe is built only after these pass.
 */
export function checkArguments(count: number, first: number, sets: readonly InstanceSetting[]): void {
  checkRanges(count, first);
  for (const setting of sets) labelled(setting.name, () => parseSetValue(setting.expr));
}

function checkRanges(count: number, first: number): void {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new NiftyError(
      "NIFTY400",
      `--count must be a whole number from 1 to ${MAX_COUNT}, got ${count}`,
      "e.g. --count 20",
    );
  }
  if (!Number.isSafeInteger(first) || first < 0) {
    throw new NiftyError(
      "NIFTY401",
      `--first must be a whole number from 0 up, got ${first}`,
      "instances are numbered first, first+1, …; the default is 1",
    );
  }
}

/**
 * What to do about a port out of range: too low, a base that keeps the first instance's at 1 or
 * above; too high, one that keeps the last at 65535 or below; no such base, fewer instances.
 */
function portHint(port: string, value: number, first: number, count: number): string {
  const last = first + count - 1;
  const range = `instance numbers run from ${first} to ${last}`;
  if (last - first >= 65535)
    return `${range}, more than there are ports: give fewer instances (--count, --first)`;
  if (last > 65534) return `${range}, and ${port}=BASE+i is past 65535 for the last: lower --first`;
  if (Number.isFinite(value) && value < 1)
    return `${range}: choose a base that keeps the first one at 1 or above, e.g. --set ${port}=2200+i`;
  return `${range}: choose a base that keeps the last one at 65535 or below, e.g. --set ${port}=${Math.max(1, Math.min(2200, 65535 - last))}+i`;
}

/** --count and --first in range, and the last instance's machine name valid. */
function checkCounts(config: ImageConfig, count: number, first: number): void {
  checkRanges(count, first);
  const last = instanceMachineName(config.name, String(first + count - 1));
  if (!MACHINE_NAME.test(last)) {
    throw new NiftyError(
      "NIFTY409",
      `machine name ${JSON.stringify(last)} is not valid`,
      "machine names are at most 64 letters, digits, '.', '_' and '-': shorten the recipe's name or lower --first/--count",
    );
  }
}

/** The recipe's ENV: its names, its values, and those values that are whole numbers (for expressions). */
interface RecipeEnv {
  names: string[];
  defaults: Map<string, string>;
  numericDefaults: Map<string, number>;
}

function recipeEnv(config: ImageConfig): RecipeEnv {
  const names = config.env.map(([key]) => key);
  const defaults = new Map(config.env.map(([key, value]) => [key, value]));
  const numericDefaults = new Map<string, number>();
  for (const [key, value] of config.env)
    if (/^-?[0-9]+$/.test(value) && Number.isSafeInteger(Number(value)))
      numericDefaults.set(key, Number(value));
  return { names, defaults, numericDefaults };
}

interface ParsedSet {
  setting: InstanceSetting;
  value: SetValue;
}

/** Each --set parsed, in order: an ENV of the recipe, given once, naming only i, n and numeric ENV. */
function parseSets(sets: readonly InstanceSetting[], recipe: RecipeEnv): ParsedSet[] {
  const { names: envNames, defaults, numericDefaults } = recipe;
  const parsed: ParsedSet[] = [];
  for (const setting of sets) {
    if (!defaults.has(setting.name)) {
      const near = suggest(setting.name, envNames);
      throw new NiftyError(
        "NIFTY404",
        `--set ${setting.name}: the recipe has no ENV ${setting.name}${near ? ` — did you mean ${near}?` : ""}`,
        envNames.length > 0
          ? `only the recipe's ENV reach the container (the template passes --setenv for each): ${envNames.join(", ")}`
          : "the recipe declares no ENV; add ENV NAME=default to it so instances can set NAME",
      );
    }
    if (parsed.some((p) => p.setting.name === setting.name)) {
      throw new NiftyError(
        "NIFTY405",
        `--set ${setting.name} is given twice`,
        "give each variable one expression",
      );
    }
    const value = labelled(setting.name, () => parseSetValue(setting.expr));
    for (const { name, at } of value.filter((p): p is Expr => typeof p !== "string").flatMap(exprNames)) {
      if (name === "i" || name === "n" || numericDefaults.has(name)) continue;
      if (defaults.has(name))
        throw new NiftyError(
          "NIFTY403",
          `--set ${setting.name}=${setting.expr}: ${name} at column ${at + 1} is the recipe's ENV, but its value ${JSON.stringify(defaults.get(name))} is not a whole number`,
          `an expression uses i, n and ENV with whole-number values; for text, quote it and put expressions in braces: '"${defaults.get(name)}-{i}"'`,
        );
      const near = suggest(name, ["i", "n", ...numericDefaults.keys()]);
      throw new NiftyError(
        "NIFTY403",
        `--set ${setting.name}=${setting.expr}: unknown name ${name} at column ${at + 1}${near ? ` — did you mean ${near}?` : ""}`,
        EXPR_HINT,
      );
    }
    parsed.push({ setting, value });
  }
  return parsed;
}

/** What every instance's plan is made from. */
interface Fleet {
  config: ImageConfig;
  count: number;
  first: number;
  recipe: RecipeEnv;
  parsed: ParsedSet[];
  onDemand: OnDemand | undefined;
  /** The port ENV that must differ between instances. */
  checked: string[];
}

/** Every instance in turn: its values, its ports checked against the others', its name. */
function planEach(fleet: Fleet): Instance[] {
  const { config, count, first, recipe, onDemand } = fleet;
  const instances: Instance[] = [];
  const portOwner = new Map<string, string>();
  const total = { chars: 0 };
  for (let number = first; number < first + count; number++) {
    const env = instanceValues(fleet, number, total);
    const values = new Map([...recipe.defaults, ...env]);
    const machine = instanceMachineName(config.name, String(number));
    checkPorts(fleet, number, machine, values, portOwner);
    instances.push(
      onDemand === undefined
        ? { number, id: String(number), machine, env }
        : onDemandInstance(config, onDemand, number, env, values),
    );
  }
  return instances;
}

/** One instance's --set values, in --set order; `total` counts the characters of all instances'. */
function instanceValues(fleet: Fleet, number: number, total: { chars: number }): Array<[string, string]> {
  const vars = new Map(fleet.recipe.numericDefaults);
  vars.set("i", number);
  vars.set("n", fleet.count);
  const env: Array<[string, string]> = [];
  for (const { setting, value } of fleet.parsed) {
    const text = labelled(`${setting.name} (instance ${number})`, () =>
      value.map((p) => (typeof p === "string" ? p : String(evalExpr(p, vars, setting.expr)))).join(""),
    );
    total.chars += text.length;
    if (total.chars > MAX_VALUES) {
      throw new NiftyError(
        "NIFTY435",
        `--set: the values of ${fleet.count} instances come to over ` +
          `${MAX_VALUES / 1024 / 1024} MiB characters (reached at ${setting.name} of instance ${number})`,
        "every value is written to instances.env and the manifest once per instance: keep --set values short " +
          "(a large value belongs in a FILE of the recipe), or use fewer instances",
      );
    }
    env.push([setting.name, text]);
  }
  return env;
}

/** Each checked port of one instance is a port, and no earlier instance's. */
function checkPorts(
  fleet: Fleet,
  number: number,
  machine: string,
  values: Map<string, string>,
  portOwner: Map<string, string>,
): void {
  const { count, first, recipe, onDemand } = fleet;
  for (const port of fleet.checked) {
    const value = values.get(port)!;
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || n < 1 || n > 65535) {
      throw new NiftyError(
        "NIFTY407",
        `${port}=${value} for instance ${number} is not a port (1–65535)`,
        portHint(port, n, first, count),
      );
    }
    const owner = portOwner.get(value);
    if (owner !== undefined && owner !== machine) {
      throw new NiftyError(
        "NIFTY408",
        `instances ${owner} and ${machine} would both use port ${value} (${port})`,
        onDemand === undefined
          ? `instances share the host's network; give each its own port, e.g. --set ${port}=${recipe.defaults.get(port)}+i`
          : `each instance's listener needs a host port of its own, e.g. --set ${port}=${recipe.defaults.get(port)}+i`,
      );
    }
    portOwner.set(value, machine);
  }
}

/** An on-demand instance: named by its listener's port, which its environment leaves out. */
function onDemandInstance(
  config: ImageConfig,
  onDemand: OnDemand,
  number: number,
  env: Array<[string, string]>,
  values: Map<string, string>,
): Instance {
  const port = values.get(onDemand.variable)!;
  const machine = instanceMachineName(config.name, port);
  if (!MACHINE_NAME.test(machine)) {
    throw new NiftyError(
      "NIFTY409",
      `machine name ${JSON.stringify(machine)} is not valid`,
      "machine names are at most 64 letters, digits, '.', '_' and '-': shorten the recipe's name",
    );
  }
  // The listener's port stays outside: inside, the image keeps the recipe's value.
  return {
    number,
    id: port,
    machine,
    env: env.filter(([key]) => key !== onDemand.variable),
    port: Number(port),
  };
}

/** The one port ENV that --set gives per instance: the listener's host port. */
function onDemandPort(
  config: ImageConfig,
  ports: readonly string[],
  setNames: readonly string[],
  defaults: Map<string, string>,
): OnDemand {
  const given = ports.filter((port) => setNames.includes(port));
  if (given.length === 0) {
    const example = ports[0] ?? "PORT";
    throw new NiftyError(
      "NIFTY430",
      ports.length === 0
        ? `on-demand instances need a port to listen on, and ${config.name} has no port ENV`
        : `on-demand instances listen on a host port each: give ${ports.join(" or ")} per instance`,
      ports.length === 0
        ? "declare the port the image listens on as ENV PORT=… (and read it where the service starts), then --set PORT=2200+i"
        : `e.g. --set ${example}=${defaults.get(example)}+i; each instance listens on the recipe's ${example} inside its own network`,
    );
  }
  if (given.length > 1) {
    throw new NiftyError(
      "NIFTY431",
      `on-demand instances have one listener each, but --set gives ${given.join(" and ")}`,
      `set only the port clients connect to; inside its own network every instance keeps the recipe's ${given.filter((g) => g !== given[0]).join(", ")}`,
    );
  }
  const variable = given[0]!;
  const inner = defaults.get(variable)!;
  const innerPort = Number(inner);
  if (!/^[0-9]+$/.test(inner) || innerPort < 1 || innerPort > 65535) {
    throw new NiftyError(
      "NIFTY432",
      `the recipe's ${variable}=${inner} is not a port (1–65535): on-demand instances listen on it inside`,
      `give ENV ${variable} the port the image's service listens on`,
    );
  }
  return { variable, innerPort };
}
