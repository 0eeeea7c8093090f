// `niftyc instances`: N machines from one build, sharing one read-only tree.
// Parses its options, builds first when given a recipe, and prints; the work is
// in src/instances/.
import { stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { NiftyError } from "../diagnostics/errors.ts";
import { UsageError, type CliIo } from "./io.ts";
import { EXIT, parse, builtOrBuild, type Built, type OptionSpec, type ParsedValues } from "./common.ts";
import type { InstancePlan, InstanceSetting } from "../instances/plan.ts";
import type { WriteResult } from "../instances/write.ts";
import type { Forwarder } from "../emit/systemd.ts";
import { BUILD_FLAGS } from "./build-flags.ts";

export const INSTANCES_HELP = `Usage: niftyc instances <recipe | build-dir> --count N [options]
       niftyc instances status <instances-dir> [--all] [--json]

Writes what systemd needs to run N instances of one image: one shared tree
that every instance boots read-only with a private writable overlay (so all
share the same files and text pages), a template unit <name>@.service, one
environment file holding every instance's values (systemd/instances.env) and
<name>.target to start or stop them all.
Instance i is machine <name>-i, which is also its hostname. Host keys made at
first boot (KEYGEN) land in each instance's overlay, so every instance has its own.

Options:
  --count N             how many instances (1–100000)
  --first K             number of the first instance (default 1): instances K … K+N-1
  --set NAME=EXPR       per-instance value of the recipe's ENV NAME (repeatable). EXPR is
                        arithmetic over i (the instance number), n (the count) and the
                        recipe's numeric ENV: whole numbers, + - * / % and parentheses.
                        In double quotes it is text, expressions in braces: '"web-{i}"'.
                        NAME must be an ENV of the recipe (only those reach the container).
                        All instances' values together: at most 64 MiB characters.
  --on-demand           start each instance on the first connection to its port: a listening
                        socket per instance (<name>-listen@PORT.socket) and a forwarder
                        (niftyc forward) that boots it. Needs --set of one port ENV,
                        the host port of each listener; instances are named by that port
                        (<name>@2201, machine <name>-2201) and each has a network of its own,
                        where it listens on the recipe's port. The forwarder connects each
                        client from a loopback address of its own (127.b.c.d for a.b.c.d), so
                        the image's per-address limits apply per client
  --idle-stop SPAN      on demand: stop an instance after SPAN without a connection
                        (a systemd time span: 90s, 10min, 1h; default 10min; infinity: never)
  --node PATH           on demand: the Node (24 or newer) the forwarder runs, absolute, as
                        the machine running the units sees it (default: this Node)
  --niftyc PATH         on demand: niftyc's entry point (bin/niftyc) for the forwarder,
                        absolute, as that machine sees it (default: this niftyc). With
                        --root, the other machine needs both at these paths
  --out DIR             the instances directory (default out/<name>-instances), made 0700:
                        its shared tree keeps the image's setuid programs
  --root DIR            write for the machine whose / is DIR (like systemctl --root): --out
                        (default /var/lib/niftyc/<name>) is that machine's path, without
                        '..' or '.', and the units name it; the files land under DIR
  --replace             replace a shared tree of another build, or one something wrote into
                        since it was unpacked (stop its instances first; it waits up to 30 s
                        for machines still running from the tree to exit, NIFTY440 if they do not)
  --json                print one JSON object with the result on stdout (absolute paths)
  -q, --quiet           no build progress on stderr (when given a recipe)
  --platform P          the image's platform (default linux/amd64): with a recipe, the one
                        built; with a build directory, it must be that directory's

Given a recipe, it is built first (into out/<name>, as niftyc build does), with:
  --secret ID=FILE  --arg NAME=VALUE  --cache DIR  --mirror NAME=URL  --offline  --locked
  --timeout SECONDS  --limit NAME=VALUE  --strict  --allow-writable-setuid  --allow-system-binds

status asks the running systemd which instances of an instances directory are
running, starting, failed, idle (on demand: listening, not booted) or stopped; it
lists the summary and every instance that is not idle or stopped (--all: every one).

Examples:
  niftyc instances out/ssh --count 1000 --set PORT=2200+i --out /var/lib/niftyc/ssh
  systemctl link /var/lib/niftyc/ssh/systemd/ssh@.service /var/lib/niftyc/ssh/systemd/ssh.target
  systemctl start ssh.target           (or one: systemctl start ssh@7; ssh -p 2207 luser@localhost)

  niftyc instances out/ssh --count 10000 --set PORT=20000+i --on-demand --out /var/lib/niftyc/ssh
  systemctl link /var/lib/niftyc/ssh/systemd/*.service /var/lib/niftyc/ssh/systemd/*.socket \\
                 /var/lib/niftyc/ssh/systemd/ssh.target
  systemctl start ssh.target           (listens on 20001 … 30000; ssh -p 20007 boots ssh@20007)
  niftyc instances status /var/lib/niftyc/ssh`;

/**
 * A whole-number flag in [min, max]: anything else is a usage mistake (exit 2) that says the range,
 * as other commands' bad flag values are. The library checks the same ranges (NIFTY400, NIFTY401).
 */
function wholeNumber(
  value: string | undefined,
  flag: string,
  [min, max]: readonly [number, number],
  fallback?: number,
): number {
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`${flag} is required`, INSTANCES_HELP);
  }
  const n = /^\s*-?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `from ${min} up` : `from ${min} to ${max}`;
    throw new UsageError(
      `${flag} takes a whole number ${range}, got ${JSON.stringify(value)}`,
      INSTANCES_HELP,
    );
  }
  return n;
}

function pairs(list: readonly string[] | undefined, flag: string, what: string): Array<[string, string]> {
  return (list ?? []).map((item) => {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} takes ${what}, got ${JSON.stringify(item)}`, INSTANCES_HELP);
    return [item.slice(0, eq), item.slice(eq + 1)];
  });
}

async function runStatus(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    { all: { type: "boolean" }, json: { type: "boolean" } },
    INSTANCES_HELP,
  );
  if (values.help) {
    io.stdout.write(INSTANCES_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 1)
    throw new UsageError("instances status takes one instances directory", INSTANCES_HELP);
  const dir = resolve(io.cwd, positionals[0]!);
  const { readManifest } = await import("../instances/write.ts");
  const { queryStatus } = await import("../instances/status.ts");
  const manifest = await readManifest(dir, "give the --out directory of niftyc instances");
  if (manifest === undefined)
    throw new NiftyError(
      "NIFTY422",
      `${positionals[0]} is not an instances directory (no instances.json)`,
      "give the --out directory of niftyc instances",
    );
  const states = await queryStatus(manifest);
  if (values.json) {
    io.stdout.write(
      JSON.stringify({
        name: manifest.name,
        dir,
        onDemand: manifest.onDemand !== undefined,
        instances: states,
      }) + "\n",
    );
    return EXIT.ok;
  }
  const counts = new Map<string, number>();
  for (const s of states) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  const order = ["running", "starting", "stopping", "failed", "idle", "stopped"];
  const summary = order
    .filter((k) => counts.has(k))
    .map((k) => `${counts.get(k)} ${k}`)
    .join(", ");
  io.stdout.write(
    `${manifest.name}: ${states.length} instance${states.length === 1 ? "" : "s"}${manifest.onDemand ? " on demand" : ""}: ${summary}\n`,
  );
  const shown =
    values.all === true ? states : states.filter((s) => s.state !== "idle" && s.state !== "stopped");
  if (shown.length > 0) {
    const rows = [
      ["INSTANCE", "UNIT", "MACHINE", ...(manifest.onDemand ? ["PORT"] : []), "STATE"],
      ...shown.map((s) => [
        String(s.instance),
        s.unit,
        s.machine,
        ...(manifest.onDemand ? [String(s.port ?? "")] : []),
        s.state,
      ]),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows)
      io.stdout.write(
        r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ") + "\n",
      );
  }
  return EXIT.ok;
}

const INSTANCES_FLAGS: OptionSpec = {
  ...BUILD_FLAGS,
  count: { type: "string" },
  root: { type: "string" },
  first: { type: "string" },
  set: { type: "string", multiple: true },
  out: { type: "string" },
  replace: { type: "boolean" },
  "on-demand": { type: "boolean" },
  "idle-stop": { type: "string" },
  node: { type: "string" },
  niftyc: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
};

/** What the command line asks for, checked before anything is built. */
interface InstancesRequest {
  input: string;
  count: number;
  first: number;
  sets: InstanceSetting[];
  onDemand: boolean;
  idleStopFlag: string | undefined;
  forwarder: Forwarder | undefined;
  out: string | undefined;
  replace: boolean;
}

/** The instances written, and what the messages about them need. */
interface Written {
  request: InstancesRequest;
  built: Built;
  root: string | undefined;
  /** The instances directory as the machine that runs the units sees it. */
  dir: string;
  plan: InstancePlan;
  idleStop: string | undefined;
  result: WriteResult;
}

export async function runInstances(args: readonly string[], io: CliIo): Promise<number> {
  if (await isStatusCommand(args, io)) return runStatus(args.slice(1), io);
  const { values, positionals } = parse(args, INSTANCES_FLAGS, INSTANCES_HELP);
  if (values.help) {
    io.stdout.write(INSTANCES_HELP + "\n");
    return EXIT.ok;
  }
  const { checkArguments, MAX_COUNT } = await import("../instances/plan.ts");
  const request = readRequest(values, positionals, MAX_COUNT);
  const { rootOption } = await import("./root.ts");
  const root = await rootOption(io.cwd, values.root as string | undefined);
  // What the arguments alone decide is told before a recipe is built (a build may download).
  checkArguments(request.count, request.first, request.sets);
  const built = await builtOrBuild(request.input, values, io, { help: INSTANCES_HELP, code: "NIFTY420" });
  if (typeof built === "number") return built;
  const written = await planAndWrite(request, built, root, io);
  if (values.json) printJson(written, io);
  else if (written.plan.onDemand !== undefined) printOnDemand(written, io);
  else printNumbered(written, io);
  return EXIT.ok;
}

/** "status" is a subcommand unless it names the one input that exists (a build directory called status). */
async function isStatusCommand(args: readonly string[], io: CliIo): Promise<boolean> {
  return (
    args[0] === "status" &&
    (args.length > 1 ||
      !(await stat(resolve(io.cwd, "status")).then(
        () => true,
        () => false,
      )))
  );
}

function readRequest(
  values: ParsedValues,
  positionals: readonly string[],
  maxCount: number,
): InstancesRequest {
  const onDemand = values["on-demand"] === true;
  const idleStopFlag = values["idle-stop"] as string | undefined;
  if (idleStopFlag !== undefined && !onDemand)
    throw new NiftyError(
      "NIFTY433",
      "--idle-stop needs --on-demand",
      "only on-demand instances stop by themselves; others stop with systemctl stop",
    );
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? "instances needs a recipe or a build directory"
        : "instances takes one recipe or build directory",
      INSTANCES_HELP,
    );
  const count = wholeNumber(values.count as string | undefined, "--count", [1, maxCount]);
  const first = wholeNumber(values.first as string | undefined, "--first", [0, Number.MAX_SAFE_INTEGER], 1);
  const sets = pairs(values.set as string[] | undefined, "--set", "NAME=EXPR").map(([name, expr]) => ({
    name,
    expr,
  }));
  const out = values.out as string | undefined;
  return {
    input: positionals[0]!,
    count,
    first,
    sets,
    onDemand,
    idleStopFlag,
    forwarder:
      onDemand || values.node !== undefined || values.niftyc !== undefined
        ? forwarderCommand(values)
        : undefined,
    out,
    replace: values.replace === true,
  };
}

/** What the on-demand forwarder runs: this Node and this niftyc unless --node or --niftyc says otherwise. */
function forwarderCommand(values: ParsedValues): Forwarder {
  if (values["on-demand"] !== true) throw new NiftyError("NIFTY442", "--node and --niftyc need --on-demand");
  const node = (values.node as string | undefined) ?? process.execPath;
  const niftyc =
    (values.niftyc as string | undefined) ?? fileURLToPath(new URL("../../bin/niftyc", import.meta.url));
  for (const [flag, path] of [
    ["--node", node],
    ["--niftyc", niftyc],
  ]) {
    if (!isAbsolute(path!))
      throw new NiftyError(
        "NIFTY442",
        `${flag} must be an absolute path, got ${JSON.stringify(path)}`,
        "the forwarder's unit names it as the machine running the units sees it",
      );
  }
  return { node, niftyc };
}

async function planAndWrite(
  request: InstancesRequest,
  built: Built,
  root: string | undefined,
  io: CliIo,
): Promise<Written> {
  const { count, first, sets, onDemand, out } = request;
  const { insideRoot } = await import("./root.ts");
  const { planInstances } = await import("../instances/plan.ts");
  const { writeInstances } = await import("../instances/write.ts");
  const { checkIdleStop, DEFAULT_IDLE_STOP } = await import("../instances/render.ts");
  const { NIFTYC_VERSION } = await import("../core/version.ts");
  const idleStop = onDemand ? checkIdleStop(request.idleStopFlag ?? DEFAULT_IDLE_STOP) : undefined;
  const plan = planInstances({ config: built.config, count, first, sets, onDemand });
  // Under --root the directory is the other machine's path: the units it boots name it.
  const dir =
    root === undefined
      ? resolve(io.cwd, out ?? join("out", `${built.name}-instances`))
      : insideRoot(root, out ?? `/var/lib/niftyc/${built.name}`, "--out", INSTANCES_HELP);
  const result = await writeInstances({
    dir,
    ...(root === undefined ? {} : { root }),
    config: built.config,
    plan,
    rootfsTar: built.rootfsTar,
    digest: built.digest,
    replace: request.replace,
    version: NIFTYC_VERSION,
    ...(idleStop ? { idleStop } : {}),
    ...(request.forwarder ? { forwarder: request.forwarder } : {}),
  });
  return { request, built, root, dir, plan, idleStop, result };
}

function printJson(w: Written, io: CliIo): void {
  const { built, root, dir, result } = w;
  const { count, first, onDemand } = w.request;
  // Absolute paths: a program reading them may run anywhere.
  io.stdout.write(
    JSON.stringify({
      name: built.name,
      digest: built.digest,
      dir: result.dir,
      ...(root === undefined ? {} : { root, dirInRoot: dir }),
      count,
      first,
      onDemand,
      reusedRootfs: result.reusedRootfs,
      files: result.files,
    }) + "\n",
  );
}

/** The commands to run where the units are used: on that machine, its own paths. */
function usedPath(root: string | undefined, p: string): string {
  return root === undefined ? p : p.slice(root.length);
}

function shown(io: CliIo, p: string): string {
  return relative(io.cwd, p) || ".";
}

/** Where the instances are, for the first line of the message. */
function shownDir(w: Written, io: CliIo): string {
  return w.root === undefined ? shown(io, w.dir) : `${w.dir} of the machine at ${w.root}`;
}

function printOnDemand(w: Written, io: CliIo): void {
  const { built, root, dir, plan, idleStop, result } = w;
  const { count } = w.request;
  const used = (p: string): string => usedPath(root, p);
  const ids = plan.instances.map((i) => i.id);
  io.stdout.write(
    `wrote ${count} on-demand instance${count === 1 ? "" : "s"} of ${built.name} (ports ${ids[0]}${count > 1 ? ` … ${ids.at(-1)}` : ""}, stopped after ${idleStop} idle) in ${shownDir(w, io)}; shared tree ${result.reusedRootfs ? "kept" : "unpacked"}\n`,
  );
  if (root !== undefined) io.stdout.write("then, on that machine:\n");
  io.stdout.write(
    `  systemctl link ${used(result.files.unit)} ${used(result.files.forwarder!)} ${used(result.files.listener!)} ${used(result.files.target)}\n`,
  );
  io.stdout.write(
    `  systemctl start ${built.name}.target      # listens on every port; ssh -p ${ids[0]} … boots ${built.name}@${ids[0]}\n`,
  );
  io.stdout.write(`  niftyc instances status ${root === undefined ? shown(io, dir) : dir}\n`);
}

function printNumbered(w: Written, io: CliIo): void {
  const { built, root, result } = w;
  const { count, first } = w.request;
  const used = (p: string): string => usedPath(root, p);
  const last = first + count - 1;
  io.stdout.write(
    `wrote ${count} instance${count === 1 ? "" : "s"} of ${built.name} (${built.name}-${first}${count > 1 ? ` … ${built.name}-${last}` : ""}) in ${shownDir(w, io)}; shared tree ${result.reusedRootfs ? "kept" : "unpacked"}\n`,
  );
  if (root !== undefined) io.stdout.write("then, on that machine:\n");
  io.stdout.write(`  systemctl link ${used(result.files.unit)} ${used(result.files.target)}\n`);
  io.stdout.write(
    `  systemctl start ${built.name}.target      # or one: systemctl start ${built.name}@${first}\n`,
  );
}
