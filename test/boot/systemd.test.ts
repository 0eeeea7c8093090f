// systemd as PID 1: recipes/systemd-httpd.nifty, built from Debian's packages,
// booted with systemd-nspawn and the generated .nspawn file, spoken to with
// curl, systemctl (inside, through nsenter) and journalctl (from the host).
// Its instances (niftyc instances: own machine-id, hostname, port) run under a
// real systemd in machine-host.test.ts, from the files as written.
import test, { type ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import {
  ROOT,
  boot,
  containerInit,
  inside,
  buildRecipe,
  debianMirror,
  freePort,
  requireBoot,
  requireRunc,
  runcRun,
  sleep,
  type RuncContainer,
  tempDir,
  unpack,
  waitForMultiUser,
  waitForPort,
} from "./harness.ts";
import { requireParts } from "../support/skip.ts";

/** How long a boot may take to reach multi-user.target before the test calls it hung. */
const BOOT_HANG_MS = 180_000;

function failedUnits(init: number): string {
  return inside(init, ["systemctl", "list-units", "--failed", "--plain", "--no-legend"]).stdout.trim();
}

/** Build systemd-httpd.nifty (with `extra` build arguments), boot it, see it serve and journal, stop it. */
async function bootsServesJournals(t: ExecutionContext, machine: string, extra: string[]): Promise<void> {
  const mirror = await debianMirror(t);
  const built = await buildRecipe(t, "recipes/systemd-httpd.nifty", mirror.url, {}, extra);
  t.is(built.stopSignal.name, "SIGRTMIN+3");
  const listing = spawnSync("tar", ["-tvf", built.rootfs], { encoding: "utf8" }).stdout;
  t.regex(
    listing,
    /^-rw-r--r-- 0\/0 +0 [\d-]+ [\d:]+ etc\/machine-id$/m,
    "an empty machine-id ships in the image",
  );
  const settings = readFileSync(built.outputs.nspawn!, "utf8");
  t.regex(settings, /^Boot=yes$/m);
  t.regex(settings, /^KillSignal=SIGRTMIN\+3$/m);
  t.regex(settings, /^LinkJournal=try-guest$/m);

  const root = unpack(t, built.rootfs);
  // The unit listens on $PORT (8080 in the image); a drop-in bound over the
  // image moves it to a free port so tests sharing the machine do not collide.
  const port = await freePort();
  const dropIn = join(tempDir(t, "dropin"), "port.conf");
  writeFileSync(dropIn, `[Service]\nEnvironment=PORT=${port}\n`);
  const started = performance.now();
  const container = boot(t, {
    root,
    machine,
    settings: built.outputs.nspawn!,
    args: ["--console=read-only", `--bind-ro=${dropIn}:/etc/systemd/system/httpd.service.d/port.conf`],
  });
  // A hang detector, not a speed limit (BOOT_HANG_MS).
  await waitForMultiUser(container, BOOT_HANG_MS);
  const init = containerInit(container);
  t.true(init > 0, "found the container's PID 1");

  let state = "";
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(200)) {
    state = inside(init, ["systemctl", "is-system-running"]).stdout.trim();
    if (state !== "starting" && state !== "initializing" && state !== "") break;
  }
  const bootMs = Math.round(performance.now() - started);
  t.log(`is-system-running: ${state} after ${bootMs} ms`);
  const failed = failedUnits(init);
  if (failed !== "") t.log(`failed units: ${failed}`);
  // Every unit starts: on Debian 13 too (the recipe keeps ldconfig.service from running without ldconfig).
  t.is(state, "running", `failed units:\n${failed}`);
  t.false(/httpd\.service/.test(failed), `the recipe's unit failed:\n${failed}`);
  t.is(inside(init, ["systemctl", "is-active", "httpd.service"]).stdout.trim(), "active");

  await waitForPort(port, 15_000);
  const page = spawnSync("curl", ["-sS", "--max-time", "10", `http://127.0.0.1:${port}/`], {
    encoding: "utf8",
  });
  t.is(page.status, 0, page.stderr);
  t.regex(page.stdout, /Served by BusyBox httpd under systemd from a niftyc image/);

  // LinkJournal=try-guest: the guest's journal sits in its tree, and nspawn
  // links /var/log/journal/<machine-id> on the host to it.
  const machineId = inside(init, ["busybox", "cat", "/etc/machine-id"]).stdout.trim();
  t.regex(machineId, /^[0-9a-f]{32}$/);
  const hostLink = `/var/log/journal/${machineId}`;
  t.teardown(() => {
    // Only the link this boot made, and only while it still points into our root.
    try {
      if (readlinkSync(hostLink).startsWith(root)) rmSync(hostLink);
    } catch {
      // Not there.
    }
  });
  const journalDir = join(root, "var/log/journal", machineId);
  t.true(existsSync(journalDir), `${journalDir} exists`);
  inside(init, ["journalctl", "--flush"]);
  const journal = spawnSync(
    "journalctl",
    ["-D", journalDir, "--no-pager", "-o", "cat", "-u", "httpd.service"],
    { encoding: "utf8" },
  );
  t.regex(journal.stdout, /Started httpd\.service/, journal.stderr);

  // Still running 5 s after the boot: no unit failed later (a getty restarting until its start limit, 1–2 s, would).
  await sleep(Math.max(0, started + bootMs + 5000 - performance.now()));
  t.is(inside(init, ["systemctl", "is-system-running"]).stdout.trim(), "running", failedUnits(init));
  const stopped = await container.stop("SIGTERM", 10_000);
  t.log(`shut down in ${stopped.ms} ms`);
  t.is(stopped.code, 0);
  // SIGRTMIN+3 is systemd's halt: every unit stopped, then nspawn sees the container exit. The
  // console's lines come in order; nspawn's own line may be captured before the console's last
  // bytes (two streams, seen once in a trixie boot), so it is looked for on its own.
  t.regex(container.output(), /Reached target .*final\.target[\s\S]*Halting system/);
  t.regex(container.output(), /Container \S+ has been shut down/);
}

test.serial(
  "systemd-httpd.nifty: systemd boots to running under nspawn, serves the page, journals to the host and shuts down on SIGTERM",
  async (t) => {
    if (!requireBoot(t)) return;
    await bootsServesJournals(t, "systemd-httpd", []);
  },
);

test.serial(
  "systemd-httpd.nifty --arg SUITE=trixie: Debian 13's systemd boots the same way, from the trixie lock",
  async (t) => {
    if (!requireBoot(t)) return;
    await bootsServesJournals(t, "systemd-httpd-trixie", ["--locked", "--arg", "SUITE=trixie"]);
  },
);

type RuntimeSpec = {
  process: { env: string[]; capabilities: { bounding: string[] } };
  mounts: Array<{ destination: string; type: string; source: string; options?: string[] }>;
  linux: { cgroupsPath?: string };
};

/**
 * Build systemd-httpd.nifty's runtime bundle (with a BIND RO of a host directory on /mnt/ro, when
 * given), run it with runc to running, see it serve the page, let `check` look inside, and halt it
 * with SIGRTMIN+3.
 */
async function runcRunsSystemdBundle(
  t: ExecutionContext,
  bindRo: string | undefined,
  check: (container: RuncContainer, spec: RuntimeSpec) => void,
): Promise<void> {
  const mirror = await debianMirror(t);
  let recipe = "recipes/systemd-httpd.nifty";
  if (bindRo !== undefined) {
    const dir = tempDir(t, "bind-recipe");
    const copy = join(dir, "systemd-httpd.nifty");
    writeFileSync(copy, `${readFileSync(join(ROOT, recipe), "utf8")}BIND RO ${bindRo}:/mnt/ro\n`);
    copyFileSync(join(ROOT, "recipes/systemd-httpd.nifty.lock"), `${copy}.lock`);
    recipe = relative(ROOT, copy);
  }
  const built = await buildRecipe(t, recipe, mirror.url, {}, ["--format", "bundle"]);
  const bundle = built.outputs.bundle!;
  const configPath = join(bundle, "config.json");
  const config = JSON.parse(readFileSync(configPath, "utf8")) as RuntimeSpec;
  t.true(config.process.env.includes("container=oci"));
  t.truthy(config.linux.cgroupsPath);
  t.deepEqual(config.mounts.find((m) => m.destination === "/sys/fs/cgroup")?.options?.includes("rw"), true);
  for (const dir of ["/run", "/run/lock", "/tmp"])
    t.is(config.mounts.find((m) => m.destination === dir)?.type, "tmpfs", dir);

  // runc shares the host's network here: move httpd to a free port with a bound drop-in.
  const port = await freePort();
  const dropIn = join(tempDir(t, "dropin"), "port.conf");
  writeFileSync(dropIn, `[Service]\nEnvironment=PORT=${port}\n`);
  config.mounts.push({
    destination: "/etc/systemd/system/httpd.service.d/port.conf",
    type: "bind",
    source: dropIn,
    options: ["bind", "ro"],
  });
  writeFileSync(configPath, JSON.stringify(config));

  const container = runcRun(t, bundle, `niftyc-sd-${process.pid}${bindRo === undefined ? "" : "-bindro"}`);
  const init = await container.init(15_000);
  let state = "";
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(200)) {
    state = inside(init, ["systemctl", "is-system-running"]).stdout.trim();
    if (state === "running" || state === "degraded" || state === "maintenance") break;
  }
  t.is(state, "running", `failed units:\n${failedUnits(init)}\n${container.output()}`);
  await waitForPort(port, 15_000);
  const page = spawnSync("curl", ["-sS", "--max-time", "10", `http://127.0.0.1:${port}/`], {
    encoding: "utf8",
  });
  t.regex(page.stdout, /Served by BusyBox httpd under systemd/);
  check(container, config);
  // runc kill refuses the name SIGRTMIN+3: the number.
  t.is(container.kill("37"), 0);
  const code = await Promise.race([container.exited, sleep(10_000).then(() => "timeout" as const)]);
  t.not(code, "timeout", `systemd did not halt within 10 s:\n${container.output()}`);
  // runc run exits as the container's PID 1 ended. systemd halts by calling reboot(2), which
  // in a PID namespace ends PID 1 with SIGINT (halt, poweroff; SIGHUP for reboot): 128 + 2.
  // A crash, a re-exec gone wrong or a SIGKILL after a timeout would give another status.
  t.is(code, 130, container.output());
}

test.serial(
  "systemd-httpd.nifty: runc runs the runtime bundle to running, serves the page, and SIGRTMIN+3 (37) halts it",
  async (t) => {
    if (!requireRunc(t)) return;
    await runcRunsSystemdBundle(t, undefined, (_, spec) => {
      t.true(spec.process.capabilities.bounding.includes("CAP_SYS_ADMIN"), "no read-only bind to guard");
    });
  },
);

test.serial(
  "systemd-httpd.nifty with a BIND RO: runc runs the bundle to running without CAP_SYS_ADMIN; root inside cannot remount, rebind, unmount or write the bind",
  async (t) => {
    if (!requireRunc(t)) return;
    const host = tempDir(t, "bind-host");
    writeFileSync(join(host, "file"), "original\n");
    await runcRunsSystemdBundle(t, host, (container, spec) => {
      t.false(spec.process.capabilities.bounding.includes("CAP_SYS_ADMIN"));
      t.deepEqual(spec.mounts.find((m) => m.destination === "/mnt/ro")?.options, [
        "rbind",
        "ro",
        "rro",
        "nosuid",
        "nodev",
      ]);
      t.is(container.exec(["busybox", "cat", "/mnt/ro/file"]).stdout, "original\n", "the bind is readable");
      const b = "busybox";
      const attack = [
        `${b} mount -o remount,rw /mnt/ro; echo remount=$?`,
        `${b} mount -o remount,bind,rw /mnt/ro; echo rebind=$?`,
        "echo pwned > /mnt/ro/file; echo write=$?",
        `${b} mkdir -p /tmp/again; ${b} mount --bind /mnt/ro /tmp/again && ${b} mount -o remount,bind,rw /tmp/again && echo pwned > /tmp/again/file; echo again=$?`,
        `${b} umount /mnt/ro; echo umount=$?`,
        "echo pwned > /mnt/ro/file; echo umountwrite=$?",
      ].join("; ");
      // runc exec runs it as the bundle's process: root with the capabilities systemd has.
      const result = container.exec([b, "sh", "-c", attack]);
      for (const step of ["remount", "rebind", "write", "again", "umount", "umountwrite"]) {
        t.not(
          Number(new RegExp(`^${step}=(\\d+)$`, "m").exec(result.stdout)?.[1] ?? 0),
          0,
          `${step} is refused:\n${result.stdout}${result.stderr}`,
        );
      }
      t.is(readFileSync(join(host, "file"), "utf8"), "original\n", "the host's file is unchanged");
      t.deepEqual(readdirSync(host), ["file"]);
    });
  },
);

test.serial(
  "systemd-httpd.nifty: podman runs it with docker-run.sh's flags to running, and podman stop halts it",
  async (t) => {
    if (!requireBoot(t)) return;
    if (
      !requireParts(
        t,
        "the podman boot",
        spawnSync("sh", ["-c", "command -v podman && command -v runc"]).status !== 0
          ? "podman or runc is not installed"
          : undefined,
      )
    )
      return;
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, "recipes/systemd-httpd.nifty", mirror.url, {}, [
      "--format",
      "docker,docker-archive",
    ]);
    const loaded = spawnSync("podman", ["load", "-i", built.outputs.dockerArchive!], { encoding: "utf8" });
    t.is(loaded.status, 0, loaded.stderr);
    const image = /Loaded image: (\S+)/.exec(loaded.stdout)?.[1];
    t.truthy(image, loaded.stdout);
    const name = `niftyc-sd-${process.pid}`;
    t.teardown(() => {
      spawnSync("podman", ["rm", "-f", name]);
      spawnSync("podman", ["rmi", "-f", image!]);
    });
    const port = await freePort();
    const dropIn = join(tempDir(t, "dropin"), "port.conf");
    writeFileSync(dropIn, `[Service]\nEnvironment=PORT=${port}\n`);
    // The ulimits: podman asks for more than this host's hard limits (docs/systemd.md).
    const run = spawnSync(
      "sh",
      [
        built.outputs.dockerRun!,
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=20000:20000",
        "-v",
        `${dropIn}:/etc/systemd/system/httpd.service.d/port.conf:ro`,
      ],
      {
        encoding: "utf8",
        env: { ...process.env, DOCKER: "podman --runtime runc" },
        timeout: 60_000,
      },
    );
    t.is(run.status, 0, run.stderr);
    let state = "";
    for (const until = Date.now() + 30_000; Date.now() < until; await sleep(200)) {
      state = spawnSync("podman", ["exec", name, "systemctl", "is-system-running"], {
        encoding: "utf8",
      }).stdout.trim();
      if (state === "running" || state === "degraded") break;
    }
    const failed = spawnSync(
      "podman",
      ["exec", name, "systemctl", "list-units", "--failed", "--plain", "--no-legend"],
      { encoding: "utf8" },
    ).stdout;
    t.is(state, "running", failed);
    await waitForPort(port, 15_000);
    const page = spawnSync("curl", ["-sS", "--max-time", "10", `http://127.0.0.1:${port}/`], {
      encoding: "utf8",
    });
    t.regex(page.stdout, /Served by BusyBox httpd under systemd/);
    const started = performance.now();
    const stop = spawnSync("podman", ["stop", "-t", "10", name], { encoding: "utf8" });
    t.is(stop.status, 0, stop.stderr);
    const ms = Math.round(performance.now() - started);
    t.log(`podman stop took ${ms} ms`);
    t.true(ms < 10_000, "halted by SIGRTMIN+3, not killed at the timeout");
  },
);

test.serial(
  "systemd-httpd.nifty with a BIND RO: systemd boots in a user namespace of its own; root inside cannot remount, rebind or write the bind",
  async (t) => {
    if (!requireBoot(t)) return;
    const mirror = await debianMirror(t);
    const host = tempDir(t, "bind-host");
    writeFileSync(join(host, "file"), "original\n");
    const dir = tempDir(t, "bind-recipe");
    const recipe = join(dir, "systemd-httpd.nifty");
    writeFileSync(
      recipe,
      `${readFileSync(join(ROOT, "recipes/systemd-httpd.nifty"), "utf8")}BIND RO ${host}:/mnt/ro\n`,
    );
    copyFileSync(join(ROOT, "recipes/systemd-httpd.nifty.lock"), `${recipe}.lock`);
    const built = await buildRecipe(t, relative(ROOT, recipe), mirror.url, {});
    const settings = readFileSync(built.outputs.nspawn!, "utf8");
    t.regex(settings, /^PrivateUsers=pick$/m);
    t.regex(settings, new RegExp(`^BindReadOnly=${host}:/mnt/ro:idmap$`, "m"));

    const root = unpack(t, built.rootfs);
    const port = await freePort();
    const container = boot(t, {
      root,
      machine: `sd-bindro-${process.pid}`,
      settings: built.outputs.nspawn!,
      // No console at all: the boot is seen up through systemctl inside alone (waitForMultiUser).
      args: ["--console=passive", `--setenv=PORT=${port}`],
    });
    await waitForMultiUser(container, BOOT_HANG_MS);
    t.notRegex(container.output(), /Reached target/, "nothing of the boot reached nspawn's output");
    const init = containerInit(container);
    t.true(init > 0, "found the container's PID 1");
    t.is(
      inside(init, ["systemctl", "is-active", "httpd.service"]).stdout.trim(),
      "active",
      "the recipe's unit runs in the user namespace",
    );
    t.is(
      inside(init, ["busybox", "cat", "/mnt/ro/file"]).stdout,
      "original\n",
      "the bind is readable, id-mapped",
    );

    const b = "busybox";
    const attack = [
      `${b} mount -o remount,rw /mnt/ro; echo remount=$?`,
      `${b} mount -o remount,bind,rw /mnt/ro; echo rebind=$?`,
      "echo pwned > /mnt/ro/file; echo write=$?",
      `${b} mkdir -p /tmp/again && ${b} mount --bind /mnt/ro /tmp/again; ${b} mount -o remount,bind,rw /tmp/again; echo again=$?`,
      "echo pwned > /tmp/again/file; echo againwrite=$?",
      `${b} umount /mnt/ro; echo umount=$?`,
      "echo pwned > /mnt/ro/file; echo umountwrite=$?",
    ].join("; ");
    const result = inside(init, [b, "sh", "-c", attack]);
    for (const step of ["remount", "rebind", "write", "again", "againwrite", "umount", "umountwrite"]) {
      t.not(
        Number(new RegExp(`^${step}=(\\d+)$`, "m").exec(result.stdout)?.[1] ?? 0),
        0,
        `${step} is refused:\n${result.stdout}${result.stderr}`,
      );
    }
    t.is(readFileSync(join(host, "file"), "utf8"), "original\n", "the host's file is unchanged");
    t.deepEqual(readdirSync(host), ["file"]);
    const stopped = await container.stop("SIGTERM", 20_000);
    t.is(stopped.code, 0);
  },
);
