// `niftyc run`: build if given a recipe, unpack once per rootfs digest, and
// boot it (or run a command in it) on systemd-nspawn as root, bubblewrap or
// rootless podman as an ordinary user. Parses, reads the environment once,
// prints; the work is in src/run/.
import { constants as osConstants } from "node:os";
import { join, resolve } from "node:path";
import { forTerminal } from "../diagnostics/escape.ts";
import { UsageError, type CliIo } from "./io.ts";
import { EXIT, parse, builtOrBuild, type ParsedValues } from "./common.ts";
import { BUILD_FLAGS } from "./build-flags.ts";

export const RUN_HELP = `Usage: niftyc run <recipe | build-dir> [options] [-- command…]
       niftyc run --stop <name | recipe | build-dir>
       niftyc run --list

Boots an image in one command. Given a recipe, builds it first (up to date: instant);
given a build directory (out/<name>), uses its rootfs. The rootfs is unpacked once per
digest into the unpack cache and shared read-only by every run; each run writes to an
overlay (nspawn, podman) or a throw-away copy (bwrap), so the tree never changes.

  as root             systemd-nspawn, with the settings of the build's <name>.nspawn
  as an ordinary user bubblewrap (bwrap, in a user namespace mapping your /etc/subuid
                      range) or rootless podman (host network), the first found

With a command after --, that command runs instead of the image's init (as root inside).
The console is attached. Under nspawn at a terminal, Ctrl-C goes to the container's console,
and Ctrl-] three times within a second KILLS the container (SIGKILL to everything in it, no
clean shutdown; exit 1): to stop it cleanly, run niftyc run --stop NAME from another terminal.
Under bwrap and podman, Ctrl-C stops the container with the image's stop signal.
Exit status: the container's (a booted image that powers off: 0).

Options:
  --engine E            nspawn, bwrap or podman (default: nspawn as root, else bwrap, then podman)
  -d, --detach          leave it running in the background and print how to stop it
  --stop                stop the run named (or started from) the argument with the image's
                        stop signal, wait for it (SIGKILL after 30 s), print its exit status
                        and exit with it
  --list                the runs of this user, running or ended
  --name NAME           the run's name (default: the image's); one run per name at a time
  --set NAME=VALUE      a value for the recipe's ENV NAME (repeatable). VALUE is a whole number,
                        arithmetic over the recipe's numeric ENV (PORT+1), or text in double
                        quotes: '"hello"' (as in niftyc instances)
  -p, --publish H:C[/udp]  forward host port H to container port C (engines with their own
                        network: nspawn gets --network-veth; bwrap shares the host's ports)
  --bind-host-tools     bind the host's /usr, /bin, /sbin, /lib, /lib64 read-only over the image's
                        (host programs run inside); root inside cannot remount them writable
                        (it loses CAP_SYS_ADMIN; systemd booted under nspawn gets a user namespace)
  --tree-cache DIR      the unpack cache (default /var/cache/niftyc/trees as root,
                        \${XDG_CACHE_HOME:-~/.cache}/niftyc/trees otherwise)
  --out DIR             where a recipe is built (default out/<name>)
  -q, --quiet           no build progress on stderr (a lock it writes is still named)

Given a recipe, it is built as niftyc build does, with:
  --secret ID=FILE  --arg NAME=VALUE  --cache DIR  --mirror NAME=URL  --offline  --locked
  --timeout SECONDS  --limit NAME=VALUE  --strict  --allow-writable-setuid  --allow-system-binds
  --platform P          one platform (default linux/amd64); a foreign one (linux/arm64) runs through
                        qemu-user, which binfmt_misc must have registered (docs/outputs.md)
  (at a terminal, missing passwords are asked for)

Runs are kept in $XDG_RUNTIME_DIR/niftyc/runs/<name> (root: /run/niftyc/runs/<name>).

Examples:
  niftyc run recipes/console.nifty --secret root-password=./pw -- /bin/cat /etc/os-release
  niftyc run recipes/ssh.nifty --secret luser-password=./pw --detach --set PORT=2222
  ssh -p 2222 luser@127.0.0.1
  niftyc run --stop ssh`;

const STOP_TIMEOUT_MS = 30_000;

interface Paths {
  privilege: import("../run/privilege.ts").Privilege;
  runsBase: string;
  treeCache: string;
  path: string;
}

/** Where runs and trees live, from the environment (read here, once). */
function paths(values: ParsedValues, io: CliIo): Paths {
  const uid = process.getuid?.() ?? 0;
  const root = uid === 0;
  const home = io.env.HOME ?? "/";
  const runtime = io.env.XDG_RUNTIME_DIR;
  const runsBase = root
    ? "/run/niftyc/runs"
    : runtime
      ? join(runtime, "niftyc", "runs")
      : `/tmp/niftyc-runs-${uid}`;
  const treeFlag = values["tree-cache"] as string | undefined;
  const treeCache =
    treeFlag !== undefined
      ? resolve(io.cwd, treeFlag)
      : root
        ? "/var/cache/niftyc/trees"
        : join(io.env.XDG_CACHE_HOME ?? join(home, ".cache"), "niftyc", "trees");
  return {
    privilege: { root, uid },
    runsBase,
    treeCache,
    path: io.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
  };
}

function parsePublish(list: readonly string[] | undefined): Array<import("../run/engines.ts").Publish> {
  return (list ?? []).map((item) => {
    const m = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(item);
    const host = Number(m?.[1]);
    const container = Number(m?.[2]);
    if (!m || host < 1 || host > 65535 || container < 1 || container > 65535)
      throw new UsageError(
        `--publish takes HOST:CONTAINER[/tcp|/udp] with ports 1–65535, got ${JSON.stringify(item)}`,
        RUN_HELP,
      );
    return { host, container, protocol: (m[3] ?? "tcp") as "tcp" | "udp" };
  });
}

async function runStop(what: string | undefined, p: Paths, io: CliIo): Promise<number> {
  if (what === undefined)
    throw new UsageError(
      "--stop needs the run's name (or the recipe or build directory it was started from)",
      RUN_HELP,
    );
  const { findRun } = await import("../run/rundir.ts");
  const { stopRun } = await import("../run/start.ts");
  const run = await findRun(p.runsBase, what, io.cwd);
  const result = await stopRun(run, p.privilege, { ...io.env }, STOP_TIMEOUT_MS);
  const name = run.record.name;
  const ended = howEnded(result.status);
  if (result.wasStopped) io.stdout.write(`${name} had already ended, ${ended}\n`);
  else if (result.killed)
    io.stdout.write(
      `${name} did not stop within ${STOP_TIMEOUT_MS / 1000} s after ${run.record.stopSignal.name}: killed, ${ended}\n`,
    );
  else io.stdout.write(`stopped ${name} (${run.record.engine}, ${run.record.stopSignal.name}), ${ended}\n`);
  // As a run's own: the container's status (a booted image that powered off: 0).
  return result.status ?? EXIT.input;
}

/** How a container ended, from its status: a status over 128 is a signal's, as a shell reports it. */
function howEnded(status: number | undefined): string {
  if (status === undefined) return "its exit status was not recorded";
  const signal =
    status > 128 ? Object.entries(osConstants.signals).find(([, n]) => n === status - 128)?.[0] : undefined;
  return `exit status ${status}${signal !== undefined ? ` (${signal})` : ""}`;
}

async function runList(p: Paths, io: CliIo): Promise<number> {
  const { listRuns } = await import("../run/rundir.ts");
  for (const run of await listRuns(p.runsBase)) {
    io.stdout.write(
      `${run.record.name}  ${run.record.engine}  ${run.running ? `running (PID ${run.pid})` : `ended${run.exit === undefined ? "" : ` (${run.exit})`}`}  ${run.record.detached ? "detached" : "attached"}  ${run.record.input}\n`,
    );
  }
  return EXIT.ok;
}

const RUN_FLAGS = {
  ...BUILD_FLAGS,
  engine: { type: "string" },
  detach: { type: "boolean", short: "d" },
  stop: { type: "boolean" },
  list: { type: "boolean" },
  name: { type: "string" },
  set: { type: "string", multiple: true },
  publish: { type: "string", multiple: true, short: "p" },
  "bind-host-tools": { type: "boolean" },
  "tree-cache": { type: "string" },
  out: { type: "string" },
  quiet: { type: "boolean", short: "q" },
} as const;

export async function runRun(argv: readonly string[], io: CliIo): Promise<number> {
  const dash = argv.indexOf("--");
  const command = dash < 0 ? undefined : argv.slice(dash + 1);
  const { values, positionals } = parse(dash < 0 ? argv : argv.slice(0, dash), RUN_FLAGS, RUN_HELP);
  if (values.help) {
    io.stdout.write(RUN_HELP + "\n");
    return EXIT.ok;
  }
  const p = paths(values, io);
  const { openRunsBase } = await import("../run/rundir.ts");
  await openRunsBase(p.runsBase);
  if (values.list) return runList(p, io);
  if (values.stop) return runStop(positionals[0], p, io);
  const request = await runRequest(values, positionals, command);
  // Refuse a missing engine before building anything.
  const { chooseEngine, prepareRun } = await import("../run/prepare.ts");
  const chosen = chooseEngine(request.engine as never, p.privilege, p.path);
  const inputPath = resolve(io.cwd, request.input);
  const built = await builtOrBuild(request.input, values, io, {
    help: RUN_HELP,
    code: "NIFTY759",
    outFlag: true,
  });
  if (typeof built === "number") return built;
  const name = (values.name as string | undefined) ?? built.name;
  const prepared = await prepareRun({
    config: built.config,
    digest: built.digest,
    rootfsTar: built.rootfsTar,
    ...(built.nspawnFile !== undefined ? { nspawnFile: built.nspawnFile } : {}),
    input: inputPath,
    name,
    engine: chosen,
    ...(command !== undefined ? { command } : {}),
    sets: request.sets,
    publish: request.publish,
    bindHostTools: values["bind-host-tools"] === true,
    allowSystemBinds: values["allow-system-binds"] === true,
    detached: values.detach === true,
    terminal: io.stdout.isTTY === true,
    privilege: p.privilege,
    path: p.path,
    treeCache: p.treeCache,
    runsBase: p.runsBase,
  });
  const { ENGINES } = await import("../run/engines.ts");
  for (const note of prepared.notes) io.stderr.write(`note: ${note}\n`);
  const why =
    request.engine !== undefined
      ? "--engine"
      : p.privilege.root
        ? "root"
        : "an ordinary user: the first unprivileged engine found";
  const doing = prepared.record.boot ? "booting" : "running a command in";
  const tree = `${prepared.unpacked ? "unpacked into" : "from"} ${prepared.tree}`;
  io.stderr.write(
    `niftyc: ${doing} ${built.name} ${built.digest.slice(0, 19)}… as ${name} with ${prepared.engine} (${why}); ` +
      `tree ${tree}, written through ${ENGINES[prepared.engine].writable}\n`,
  );
  return start(prepared, name, values.detach === true, p, io);
}

/** What the command line asks to run, checked before anything is built. */
async function runRequest(values: ParsedValues, positionals: string[], command: string[] | undefined) {
  if (positionals.length !== 1) {
    const why =
      positionals.length === 0
        ? "run needs a recipe or a build directory"
        : "run takes one recipe or build directory (a command goes after --)";
    throw new UsageError(why, RUN_HELP);
  }
  if (command !== undefined && command.length === 0) {
    throw new UsageError(
      "nothing after --: give the command to run, or leave -- out to boot the image",
      RUN_HELP,
    );
  }
  const { ENGINE_NAMES } = await import("../run/engines.ts");
  const engine = values.engine as string | undefined;
  if (engine !== undefined && !(ENGINE_NAMES as readonly string[]).includes(engine)) {
    throw new UsageError(
      `--engine takes ${ENGINE_NAMES.join(", ")}, got ${JSON.stringify(engine)}`,
      RUN_HELP,
    );
  }
  const sets = ((values.set as string[] | undefined) ?? []).map((item) => {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`--set takes NAME=VALUE, got ${JSON.stringify(item)}`, RUN_HELP);
    return { name: item.slice(0, eq), expr: item.slice(eq + 1) };
  });
  return {
    input: positionals[0]!,
    engine,
    sets,
    publish: parsePublish(values.publish as string[] | undefined),
  };
}

type Prepared = Awaited<ReturnType<typeof import("../run/prepare.ts").prepareRun>>;

/** Attached: the run's status. Detached: started, or its console when it ended at once. */
async function start(
  prepared: Prepared,
  name: string,
  detach: boolean,
  p: Paths,
  io: CliIo,
): Promise<number> {
  const { runAttached, runDetached, startFailure, START_WAIT_MS } = await import("../run/start.ts");
  const startInput = {
    dir: prepared.dir,
    record: prepared.record,
    argv: prepared.argv,
    privilege: p.privilege,
    env: { ...io.env },
  };
  if (!detach) {
    const attached = await runAttached(startInput);
    if (attached.failedToStart) {
      // The engine's own message is above, on this terminal.
      const failure = startFailure(prepared.record, attached.status, "");
      io.stderr.write(
        `niftyc: error: ${forTerminal(failure.message)} [${failure.code}]\n  hint: ${forTerminal(failure.hint ?? "")}\n`,
      );
    }
    return attached.status;
  }
  const started = await runDetached(startInput);
  if (started.exit !== undefined) {
    const { readFile } = await import("node:fs/promises");
    const console = await readFile(started.log, "utf8").catch(() => "");
    const { removeRun } = await import("../run/rundir.ts");
    await removeRun(prepared.dir, p.privilege);
    // An engine that failed to start the container: exit 1, its console's tail, what to do.
    if (started.failed) throw startFailure(prepared.record, started.exit, console, started.log);
    io.stderr.write(`niftyc: ${name} ended at once with status ${started.exit}; its console:\n`);
    io.stderr.write(console);
    return started.exit === 0 ? EXIT.ok : started.exit;
  }
  const pid = started.pid !== undefined ? `, PID ${started.pid}` : "";
  if (started.up) io.stdout.write(`${name} is running (${prepared.engine}${pid}); console: ${started.log}\n`);
  else {
    io.stderr.write(
      `niftyc: ${name} has not shown that it is up within ${START_WAIT_MS / 1000} s; it is left starting: watch ${started.log}\n`,
    );
    io.stdout.write(`${name} is starting (${prepared.engine}${pid}); console: ${started.log}\n`);
  }
  io.stdout.write(`stop it with: niftyc run --stop ${name}\n`);
  return EXIT.ok;
}
