// niftyc's units and .nspawn files under a real systemd. recipes/systemd-host.nifty
// (systemd with systemd-container) is booted ONCE for this file with
// systemd-nspawn and is the "host"; recipes/httpd.nifty (BusyBox init) and
// recipes/systemd-httpd.nifty (systemd) are put into its tree beforehand with
// `niftyc install --root` and `niftyc instances --root`, as an administrator
// would put them on a machine. Then, from inside the host (nsenter into its
// PID 1), what that administrator types: systemctl and machinectl.
// Outside CI, without root or nspawn, every test skips and says so (requireBoot).
import test, { type ExecutionContext } from "ava";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  boot,
  bootUnavailable,
  debianMirror,
  freePort,
  niftyc,
  requireBoot,
  sleep,
  tempDir,
  unpack,
  waitForPort,
  type BuildOutput,
  containerInit,
  waitForMultiUser,
} from "./harness.ts";
import { fileScope, inHost, run, showUnit, until, type Ran } from "./machine-host.ts";
import { freePorts } from "../support/net.ts";

interface Host {
  /** The host's tree on this machine. */
  root: string;
  /** Its PID 1 (systemd), as this machine sees it. */
  init: number;
  httpd: BuildOutput;
  /** Port of the single BusyBox machine (set in its installed .nspawn). */
  httpdPort: number;
  /** Instance i of httpd@ listens on base + i. */
  instanceBase: number;
  systemdPort: number;
  /** Instance i of systemd-httpd@ listens on systemdBase + i. */
  systemdBase: number;
}

const scope = fileScope(test);
let host: Host | undefined;

/** A command in every namespace of the host's PID 1: what a shell on the host would run. */
function inside(command: string[], timeout = 30_000): Ran {
  return inHost(host!.init, command, timeout);
}

/** Why a start failed, for the assertion's message: the unit's status and last journal lines. */
function why(unit: string): string {
  return `${inside(["systemctl", "status", "--no-pager", "--lines=40", unit]).stdout}`;
}

function show(unit: string, ...props: string[]): Record<string, string> {
  return showUnit(host!.init, unit, ...props);
}

function curl(port: number): string {
  return run(["curl", "-sS", "--max-time", "10", `http://127.0.0.1:${port}/`], 15_000).stdout;
}

/** Every entry of a tree with its type, size, mode, owner and mtime: what a boot would change. */
function snapshot(dir: string): string {
  return run(["find", dir, "-printf", "%P %y %s %m %U %T@\\n"]).stdout.split("\n").sort().join("\n");
}

async function build(
  cache: string,
  out: string,
  mirror: string,
  recipe: string,
  formats: string,
): Promise<BuildOutput> {
  const result = await niftyc([
    "build",
    recipe,
    "--json",
    "--quiet",
    "--cache",
    cache,
    "--out",
    out,
    "--mirror",
    `debian=${mirror}`,
    "--mirror",
    `debian-security=${mirror}`,
    "--format",
    formats,
  ]);
  if (result.status !== 0)
    throw new Error(`niftyc build ${recipe} failed (${result.status}):\n${result.stderr}`);
  return JSON.parse(result.stdout) as BuildOutput;
}

async function niftycOk(args: string[]): Promise<string> {
  const result = await niftyc(args);
  if (result.status !== 0)
    throw new Error(`niftyc ${args.join(" ")} failed (${result.status}):\n${result.stderr}`);
  return result.stdout;
}

test.before(async (t) => {
  if (bootUnavailable() !== undefined) return; // each test says why (requireBoot)
  t.timeout(300_000);
  const mirror = await debianMirror(scope);
  const dir = tempDir(scope, "machine-host");
  const cache = join(dir, "cache");
  // One store for the three builds: the packages they share are fetched and unpacked once.
  const [hostBuild, httpd, systemdHttpd] = await Promise.all([
    build(cache, join(dir, "host"), mirror.url, "recipes/systemd-host.nifty", "rootfs"),
    build(cache, join(dir, "httpd"), mirror.url, "recipes/httpd.nifty", "rootfs,nspawn,systemd"),
    build(
      cache,
      join(dir, "systemd-httpd"),
      mirror.url,
      "recipes/systemd-httpd.nifty",
      "rootfs,nspawn,systemd",
    ),
  ]);
  const root = unpack(scope, hostBuild.rootfs);

  // The BusyBox machine: its tree and .nspawn, its unit where units go. Its port is
  // a setting of the machine, so it is changed where an administrator would: the .nspawn
  // file, which wins over the unit's command line (--settings=override).
  const httpdPort = await freePort();
  t.regex(
    await niftycOk(["install", httpd.outDir, "--root", root]),
    /installed httpd in \/var\/lib\/machines\/httpd of the machine at /,
  );
  copyFileSync(httpd.outputs.service!, join(root, "etc/systemd/system/httpd.service"));
  const settings = join(root, "etc/systemd/nspawn/httpd.nspawn");
  writeFileSync(
    settings,
    readFileSync(settings, "utf8").replace(/^Environment=PORT=8080$/m, `Environment=PORT=${httpdPort}`),
  );
  // Two instances on one shared tree, at the instances' default place on that machine.
  const base = await freePorts(2);
  t.regex(
    await niftycOk(["instances", httpd.outDir, "--root", root, "--count", "2", "--set", `PORT=${base}+i`]),
    /in \/var\/lib\/niftyc\/httpd of the machine at /,
  );

  // The systemd machine, its port set the same way (its httpd.service passes PORT on from systemd).
  const systemdPort = await freePort();
  await niftycOk(["install", systemdHttpd.outDir, "--root", root]);
  copyFileSync(systemdHttpd.outputs.service!, join(root, "etc/systemd/system/systemd-httpd.service"));
  const systemdSettings = join(root, "etc/systemd/nspawn/systemd-httpd.nspawn");
  writeFileSync(
    systemdSettings,
    readFileSync(systemdSettings, "utf8").replace(
      /^Environment=PORT=8080$/m,
      `Environment=PORT=${systemdPort}`,
    ),
  );
  const systemdBase = await freePorts(2);
  await niftycOk([
    "instances",
    systemdHttpd.outDir,
    "--root",
    root,
    "--count",
    "2",
    "--set",
    `PORT=${systemdBase}+i`,
  ]);

  const container = boot(scope, {
    root,
    machine: `nifty-host-${process.pid}`,
    args: ["--console=read-only"],
  });
  await waitForMultiUser(container, 60_000);
  const init = containerInit(container);
  if (!(init > 0)) throw new Error(`no PID 1 under nspawn:\n${container.output()}`);
  host = { root, init, httpd, httpdPort, instanceBase: base, systemdPort, systemdBase };
  let state = "";
  await until("the host reaching running", 30_000, () => {
    state = inside(["systemctl", "is-system-running"]).stdout.trim();
    return state !== "initializing" && state !== "starting" && state !== "";
  });
});

function ready(t: ExecutionContext): boolean {
  if (!requireBoot(t)) return false;
  t.timeout(120_000);
  return true;
}

test.serial(
  "the host: systemd with systemd-container, booted under nspawn, is running with no failed unit",
  (t) => {
    if (!ready(t)) return;
    const state = inside(["systemctl", "is-system-running"]).stdout.trim();
    t.is(state, "running", inside(["systemctl", "list-units", "--failed", "--plain", "--no-legend"]).stdout);
    t.is(inside(["systemctl", "is-active", "dbus.service"]).stdout.trim(), "active");
    // systemd-machined starts on demand, when machinectl or nspawn first asks for it.
    t.is(inside(["systemctl", "is-enabled", "systemd-machined.service"]).stdout.trim(), "static");
  },
);

test.serial(
  "systemctl start httpd boots the installed BusyBox machine, its port answers, and systemctl stop powers it off cleanly",
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    const start = inside(["systemctl", "start", "httpd.service"]);
    t.is(start.status, 0, `${start.stderr}\n${why("httpd.service")}`);
    await waitForPort(h.httpdPort, 15_000);
    t.regex(curl(h.httpdPort), /Served by BusyBox httpd from a niftyc image/);
    t.regex(inside(["machinectl", "list", "--no-legend"]).stdout, /^httpd\s+container\s+systemd-nspawn\b/m);

    const stop = inside(["systemctl", "stop", "httpd.service"]);
    t.is(stop.status, 0, stop.stderr);
    t.deepEqual(show("httpd.service", "ActiveState", "Result", "ExecMainStatus"), {
      ActiveState: "inactive",
      Result: "success",
      ExecMainStatus: "0",
    });
    // SIGTERM to nspawn, --kill-signal=SIGUSR2 to BusyBox init: its own poweroff ran.
    const journal = inside(["journalctl", "-u", "httpd.service", "-o", "cat", "--no-pager"]).stdout;
    t.regex(journal, /Requesting system poweroff/);
  },
);

test.serial(
  "systemctl start httpd@1 httpd@2 runs two instances on the overlay with their own ports and hostnames; the shared tree is unchanged",
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    const tree = join(h.root, "var/lib/niftyc/httpd/rootfs");
    const before = snapshot(tree);
    const link = inside([
      "systemctl",
      "link",
      "/var/lib/niftyc/httpd/systemd/httpd@.service",
      "/var/lib/niftyc/httpd/systemd/httpd.target",
    ]);
    t.is(link.status, 0, link.stderr);
    const start = inside(["systemctl", "start", "httpd@1", "httpd@2"]);
    t.is(start.status, 0, `${start.stderr}\n${why("httpd@1.service")}\n${why("httpd@2.service")}`);
    for (const i of [1, 2]) {
      await waitForPort(h.instanceBase + i, 15_000);
      t.regex(
        curl(h.instanceBase + i),
        /Served by BusyBox httpd/,
        `instance ${i} on port ${h.instanceBase + i}`,
      );
      const leader = inside([
        "machinectl",
        "show",
        `httpd-${i}`,
        "--property=Leader",
        "--value",
      ]).stdout.trim();
      t.regex(leader, /^\d+$/);
      // The instance's own UTS namespace, read with the host's BusyBox.
      t.is(
        inside(["busybox", "nsenter", "-t", leader, "-u", "busybox", "hostname"]).stdout.trim(),
        `httpd-${i}`,
      );
    }
    const machines = inside(["machinectl", "list", "--no-legend"]).stdout;
    t.regex(machines, /^httpd-1\s/m);
    t.regex(machines, /^httpd-2\s/m);

    // Stopping the target stops both (PartOf=); systemctl waits for the target's own job only.
    const stop = inside(["systemctl", "stop", "httpd.target"]);
    t.is(stop.status, 0, stop.stderr);
    await until("both instances stopping", 20_000, () =>
      [1, 2].every((i) => show(`httpd@${i}.service`, "ActiveState").ActiveState === "inactive"),
    );
    for (const i of [1, 2])
      t.deepEqual(show(`httpd@${i}.service`, "ActiveState", "Result", "ExecMainStatus"), {
        ActiveState: "inactive",
        Result: "success",
        ExecMainStatus: "0",
      });
    t.is(snapshot(tree), before, "no boot wrote into the shared tree");
  },
);

test.serial(
  "machinectl start httpd boots it through systemd-nspawn@.service and machinectl list shows it; machinectl poweroff does not stop BusyBox init, machinectl terminate stops it cleanly",
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    // The machine the previous test stopped may still be leaving machined's list: a name
    // still registered would make this start fail for a reason that is not the one tested.
    await until(
      "machine httpd leaving machinectl list",
      15_000,
      () => !/^httpd\s/m.test(inside(["machinectl", "list", "--no-legend"]).stdout),
    );
    const start = inside(["machinectl", "start", "httpd"]);
    t.is(start.status, 0, `${start.stderr}\n${why("systemd-nspawn@httpd.service")}`);
    await waitForPort(h.httpdPort, 15_000);
    t.regex(curl(h.httpdPort), /Served by BusyBox httpd/);
    t.regex(inside(["machinectl", "list", "--no-legend"]).stdout, /^httpd\s+container\s+systemd-nspawn\b/m);
    // poweroff (and its alias stop) send SIGRTMIN+4 to PID 1 only, which BusyBox init
    // ignores: the request is taken, and the machine keeps running (docs/outputs.md).
    for (const verb of ["poweroff", "stop"]) {
      const ignored = inside(["machinectl", verb, "httpd"]);
      t.is(ignored.status, 0, ignored.stderr);
    }
    await sleep(3000);
    t.is(
      show("systemd-nspawn@httpd.service", "ActiveState").ActiveState,
      "active",
      "BusyBox init ignored SIGRTMIN+4",
    );
    t.regex(curl(h.httpdPort), /Served by BusyBox httpd/);
    // terminate stops systemd-nspawn@httpd.service: nspawn gets SIGTERM and sends the
    // image's KillSignal=SIGUSR2 from the installed .nspawn, as systemctl stop does.
    const terminate = inside(["machinectl", "terminate", "httpd"]);
    t.is(terminate.status, 0, terminate.stderr);
    await until(
      "systemd-nspawn@httpd stopping",
      15_000,
      () => show("systemd-nspawn@httpd.service", "ActiveState").ActiveState === "inactive",
    );
    t.deepEqual(show("systemd-nspawn@httpd.service", "Result", "ExecMainStatus"), {
      Result: "success",
      ExecMainStatus: "0",
    });
    t.regex(
      inside(["journalctl", "-u", "systemd-nspawn@httpd.service", "-o", "cat", "--no-pager"]).stdout,
      /Requesting system poweroff/,
    );

    // Booted without --volatile, nspawn wrote into the machine's tree (and -U of
    // systemd-nspawn@.service moved its owners): niftyc install --replace puts the image back,
    // the same tree as the instances' untouched copy of that image.
    const installed = join(h.root, "var/lib/machines/httpd");
    const image = snapshot(join(h.root, "var/lib/niftyc/httpd/rootfs"));
    t.true(
      existsSync(join(installed, "etc/resolv.conf")) || existsSync(join(installed, "etc/localtime")),
      "the boots wrote etc/resolv.conf or etc/localtime",
    );
    t.not(snapshot(installed), image);
    await niftycOk(["install", h.httpd.outDir, "--root", h.root, "--replace"]);
    t.is(snapshot(installed), image);
  },
);

test.serial(
  "a systemd machine inside: systemctl start systemd-httpd returns once its systemd reports ready, it serves, and machinectl poweroff stops it cleanly",
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    // Type=notify with --notify-ready=yes: start returns only after the guest's READY=1.
    const start = inside(["systemctl", "start", "systemd-httpd.service"], 60_000);
    t.is(start.status, 0, `${start.stderr}\n${why("systemd-httpd.service")}`);
    t.is(show("systemd-httpd.service", "ActiveState").ActiveState, "active");
    t.regex(
      inside(["machinectl", "list", "--no-legend"]).stdout,
      /^systemd-httpd\s+container\s+systemd-nspawn\b/m,
    );
    await waitForPort(h.systemdPort, 15_000);
    t.regex(curl(h.systemdPort), /Served by BusyBox httpd under systemd/);

    const poweroff = inside(["machinectl", "poweroff", "systemd-httpd"]);
    t.is(poweroff.status, 0, poweroff.stderr);
    await until(
      "systemd-httpd powering off",
      20_000,
      () => show("systemd-httpd.service", "ActiveState").ActiveState === "inactive",
    );
    t.deepEqual(show("systemd-httpd.service", "Result", "ExecMainStatus"), {
      Result: "success",
      ExecMainStatus: "0",
    });
  },
);

test.serial(
  "niftyc instances of a systemd image: systemd-httpd@1 and @2 boot the shared tree ready, each with its own machine-id, hostname and port; the tree keeps its empty machine-id",
  async (t) => {
    if (!ready(t)) return;
    const h = host!;
    const tree = join(h.root, "var/lib/niftyc/systemd-httpd/rootfs");
    const before = snapshot(tree);
    const link = inside([
      "systemctl",
      "link",
      "/var/lib/niftyc/systemd-httpd/systemd/systemd-httpd@.service",
      "/var/lib/niftyc/systemd-httpd/systemd/systemd-httpd.target",
    ]);
    t.is(link.status, 0, link.stderr);
    const start = inside(["systemctl", "start", "systemd-httpd@1", "systemd-httpd@2"], 60_000);
    t.is(
      start.status,
      0,
      `${start.stderr}\n${why("systemd-httpd@1.service")}\n${why("systemd-httpd@2.service")}`,
    );
    const ids: string[] = [];
    for (const i of [1, 2]) {
      t.is(
        show(`systemd-httpd@${i}.service`, "ActiveState").ActiveState,
        "active",
        `instance ${i} reported ready`,
      );
      await waitForPort(h.systemdBase + i, 15_000);
      t.regex(
        curl(h.systemdBase + i),
        /Served by BusyBox httpd under systemd/,
        `instance ${i} on port ${h.systemdBase + i}`,
      );
      const leader = inside([
        "machinectl",
        "show",
        `systemd-httpd-${i}`,
        "--property=Leader",
        "--value",
      ]).stdout.trim();
      t.regex(leader, /^\d+$/);
      t.is(
        inside(["busybox", "nsenter", "-t", leader, "-u", "busybox", "hostname"]).stdout.trim(),
        `systemd-httpd-${i}`,
      );
      // The guest's own view of /etc/machine-id, with the guest's BusyBox.
      ids.push(
        inside(["busybox", "nsenter", "-t", leader, "-m", "busybox", "cat", "/etc/machine-id"]).stdout.trim(),
      );
    }
    for (const id of ids) t.regex(id, /^[0-9a-f]{32}$/);
    t.not(ids[0], ids[1]);
    const stop = inside(["systemctl", "stop", "systemd-httpd.target"]);
    t.is(stop.status, 0, stop.stderr);
    await until("both instances stopping", 30_000, () =>
      [1, 2].every((i) => show(`systemd-httpd@${i}.service`, "ActiveState").ActiveState === "inactive"),
    );
    for (const i of [1, 2])
      t.deepEqual(show(`systemd-httpd@${i}.service`, "Result", "ExecMainStatus"), {
        Result: "success",
        ExecMainStatus: "0",
      });
    t.is(readFileSync(join(tree, "etc/machine-id"), "utf8"), "");
    t.is(snapshot(tree), before, "no boot wrote into the shared tree");
  },
);
