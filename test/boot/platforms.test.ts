// recipes/ssh.nifty for three platforms from one recipe: each tree's programs are its machine's,
// the arm64 and armhf trees boot under systemd-nspawn through qemu-user (binfmt_misc) and let
// luser in over SSH, and the image index is reproducible and holds the amd64-only image as it is.
import test, { type ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  containerInit,
  inside,
  niftyc,
  tempDir,
  boot,
  buildRecipe,
  debianMirror,
  freePort,
  requireBoot,
  sleep,
  ssh,
  unpack,
  waitForPort,
} from "./harness.ts";
import { registerQemu } from "../support/binfmt.ts";
import { registryUnavailable, startRegistry } from "../registry/helpers.ts";
import { createHash } from "node:crypto";
import { requireParts } from "../support/skip.ts";

const PASSWORD = "correct horse battery";
const PLATFORMS = ["--platform", "linux/amd64,linux/arm64,linux/arm/v7"];

/** The manifests of out/<name>/oci/'s image index, by platform. */
function indexOf(outDir: string): { digest: string; manifests: Record<string, string> } {
  const layout = join(outDir, "oci");
  const top = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as {
    manifests: Array<{ digest: string }>;
  };
  const digest = top.manifests[0]!.digest;
  const index = JSON.parse(readFileSync(join(layout, "blobs", "sha256", digest.slice(7)), "utf8")) as {
    manifests: Array<{ digest: string; platform: { architecture: string; variant?: string } }>;
  };
  const manifests = Object.fromEntries(
    index.manifests.map((m) => [
      [m.platform.architecture, m.platform.variant].filter(Boolean).join("/"),
      m.digest,
    ]),
  );
  return { digest, manifests };
}

function machineOf(file: string): string {
  const out = spawnSync("readelf", ["-h", file], { encoding: "utf8" });
  return /Machine:\s+(.*)/.exec(out.stdout)?.[1]?.trim() ?? out.stderr;
}

async function bootsUnderQemu(t: ExecutionContext, dir: string, cpu: string): Promise<void> {
  const root = unpack(t, join(dir, "rootfs.tar"));
  const port = await freePort();
  const container = boot(t, {
    root,
    machine: `nifty-${cpu}`,
    settings: join(dir, "ssh.nspawn"),
    args: [`--setenv=PORT=${port}`],
  });
  // Emulated: init, the first-boot key and Dropbear start slower than natively; bounded all the same.
  await waitForPort(port, 180_000);
  const session = ssh(t, port, "luser", PASSWORD, "id; uname -m");
  t.is(session.status, 0, session.stderr);
  t.regex(session.stdout, /uid=1000\(luser\)/);
  t.regex(session.stdout, new RegExp(`^${cpu === "arm" ? "armv7l" : "aarch64"}$`, "m"));
  const stopped = await container.stop("SIGTERM", 60_000);
  t.is(stopped.code, 0);
}

test.serial(
  "ssh.nifty for amd64, arm64 and arm/v7: each tree's machine and applets; arm64 and armhf boot under qemu and let luser in over SSH",
  async (t) => {
    if (!requireBoot(t)) return;
    for (const cpu of ["aarch64", "arm"]) if (!requireParts(t, "qemu-user boots", registerQemu(cpu))) return;
    t.timeout(900_000);
    const mirror = await debianMirror(t);
    const built = await buildRecipe(
      t,
      "recipes/ssh.nifty",
      mirror.url,
      { "luser-password": PASSWORD },
      PLATFORMS,
    );
    const machines: Record<string, string> = {
      "linux-amd64": "Advanced Micro Devices X86-64",
      "linux-arm64": "AArch64",
      "linux-arm-v7": "ARM",
    };
    const applets: Record<string, string[]> = {};
    for (const [dir, machine] of Object.entries(machines)) {
      const root = unpack(t, join(built.outDir, dir, "rootfs.tar"));
      for (const program of ["bin/busybox", "usr/sbin/dropbear"])
        t.is(machineOf(join(root, program)), machine, `${dir}/${program}`);
      t.is(
        machineOf(
          join(
            root,
            "lib",
            dir === "linux-amd64"
              ? "x86_64-linux-gnu"
              : dir === "linux-arm64"
                ? "aarch64-linux-gnu"
                : "arm-linux-gnueabihf",
            "libc.so.6",
          ),
        ),
        machine,
      );
      applets[dir] = readdirSync(join(root, "bin")).sort();
    }
    // LINK … APPLETS read each foreign BusyBox's own table (without running it): the same applets.
    t.true(applets["linux-amd64"]!.length > 250);
    t.deepEqual(applets["linux-arm64"], applets["linux-amd64"]);
    t.deepEqual(applets["linux-arm-v7"], applets["linux-amd64"]);
    t.deepEqual(Object.keys(indexOf(built.outDir).manifests), ["amd64", "arm64/v8", "arm/v7"]);
    await bootsUnderQemu(t, join(built.outDir, "linux-arm64"), "aarch64");
    await bootsUnderQemu(t, join(built.outDir, "linux-arm-v7"), "arm");
  },
);

test.serial(
  "two builds of the multi-platform recipe give the same index; its amd64 manifest is the amd64-only build's; pushed, skopeo inspect --raw shows all three platforms",
  async (t) => {
    if (!requireBoot(t)) return;
    t.timeout(600_000);
    const mirror = await debianMirror(t);
    const secrets = { "luser-password": PASSWORD };
    const first = await buildRecipe(t, "recipes/ssh.nifty", mirror.url, secrets, PLATFORMS);
    const second = await buildRecipe(t, "recipes/ssh.nifty", mirror.url, secrets, PLATFORMS);
    const alone = await buildRecipe(t, "recipes/ssh.nifty", mirror.url, secrets);
    t.is(indexOf(first.outDir).digest, indexOf(second.outDir).digest);
    const single = JSON.parse(readFileSync(join(alone.outDir, "oci", "index.json"), "utf8")) as {
      manifests: Array<{ digest: string }>;
    };
    t.is(indexOf(first.outDir).manifests.amd64, single.manifests[0]!.digest);
    t.not(indexOf(first.outDir).manifests["arm64/v8"], single.manifests[0]!.digest);

    // Pushed to a registry on loopback: the tag names that index, with every platform.
    if (!requireParts(t, "the registry", registryUnavailable(["docker-registry", "skopeo"]))) return;
    const work = tempDir(t, "registry");
    const registry = await startRegistry(work);
    t.teardown(() => registry.stop());
    const ref = `${registry.host}/ssh:multi`;
    const pushed = await niftyc(["push", first.outDir, ref, "--insecure", "--cache", join(work, "cache")]);
    t.is(pushed.status, 0, pushed.stderr);
    const raw = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`], {
      encoding: "utf8",
    });
    t.is(raw.status, 0, raw.stderr);
    const index = JSON.parse(raw.stdout) as {
      manifests: Array<{ digest: string; platform: Record<string, string> }>;
    };
    t.is(`sha256:${createHash("sha256").update(raw.stdout).digest("hex")}`, indexOf(first.outDir).digest);
    const built = indexOf(first.outDir).manifests;
    t.deepEqual(
      index.manifests.map((m) => [m.platform.architecture, m.platform.variant ?? "", m.digest]),
      [
        ["amd64", "", built.amd64],
        ["arm64", "v8", built["arm64/v8"]],
        ["arm", "v7", built["arm/v7"]],
      ],
    );
  },
);

/** The ELF files under `root` (symbolic links not followed), by the e_machine of their header. */
function elfMachines(root: string): Map<number, string[]> {
  const found = new Map<number, string[]>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const fd = openSync(file, "r");
    const head = Buffer.alloc(20);
    const read = readSync(fd, head, 0, 20, 0);
    closeSync(fd);
    if (read < 20 || head.readUInt32BE(0) !== 0x7f454c46) continue;
    const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
    found.set(machine, [...(found.get(machine) ?? []), file]);
  }
  return found;
}

/** A command in every namespace of the container's PID 1, given a minute: an emulated systemd's programs run through qemu too. */
function insideEmulated(init: number, command: string[]): { status: number; stdout: string; stderr: string } {
  return inside(init, command, 60_000);
}

// Units that fail under qemu-user 7.2 with systemd 252, and why: qemu refuses clone() with
// CLONE_NEWNS (EINVAL), which systemd uses to set up a unit's credentials (LoadCredential=,
// ImportCredential=): sysusers and tmpfiles exit 243/CREDENTIALS (systemd/systemd#21511; systemd 255
// retries without it), so messagebus is never added and dbus cannot start. Native arm64 boots clean.
const QEMU_FAILURES = [
  "dbus.service",
  "dbus.socket",
  "systemd-sysusers.service",
  "systemd-tmpfiles-setup-dev.service",
  "systemd-tmpfiles-setup.service",
];

test.serial(
  "systemd-httpd.nifty for linux/arm64 from its lock: every program is AArch64, systemd boots as PID 1 under qemu-user and nspawn, httpd's unit serves the page, systemctl halt stops it",
  async (t) => {
    if (!requireBoot(t)) return;
    if (!requireParts(t, "qemu-user boots", registerQemu("aarch64"))) return;
    t.timeout(900_000);
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, "recipes/systemd-httpd.nifty", mirror.url, {}, [
      "--locked",
      "--platform",
      "linux/arm64",
    ]);
    const root = unpack(t, built.rootfs);
    for (const program of [
      "usr/lib/systemd/systemd",
      "usr/bin/busybox",
      "usr/bin/dbus-daemon",
      "usr/lib/aarch64-linux-gnu/libc.so.6",
    ])
      t.is(machineOf(join(root, program)), "AArch64", program);
    // Every ELF file of the tree, by its header's e_machine (183, EM_AARCH64): not one of the host's.
    const machines = elfMachines(root);
    t.true(machines.size === 1 && machines.has(183), `e_machine values: ${[...machines.keys()].join(", ")}`);
    t.log(`${machines.get(183)?.length} ELF files, every one AArch64`);

    const port = await freePort();
    const dropIn = join(tempDir(t, "dropin"), "port.conf");
    writeFileSync(dropIn, `[Service]\nEnvironment=PORT=${port}\n`);
    const started = performance.now();
    const container = boot(t, {
      root,
      machine: `sd-arm64-${process.pid}`,
      settings: built.outputs.nspawn!,
      args: ["--console=read-only", `--bind-ro=${dropIn}:/etc/systemd/system/httpd.service.d/port.conf`],
    });
    await container.waitFor(/Started .*httpd\.service/, 300_000);
    t.regex(container.output(), /Detected architecture arm64/);
    await waitForPort(port, 120_000);
    t.log(`httpd answered ${Math.round(performance.now() - started)} ms after nspawn started`);
    const page = spawnSync("curl", ["-sS", "--max-time", "30", `http://127.0.0.1:${port}/`], {
      encoding: "utf8",
    });
    t.is(page.status, 0, page.stderr);
    t.regex(page.stdout, /Served by BusyBox httpd under systemd from a niftyc image/);

    const init = containerInit(container);
    t.true(init > 0, "found the container's PID 1");
    t.is(insideEmulated(init, ["busybox", "uname", "-m"]).stdout.trim(), "aarch64");
    t.regex(insideEmulated(init, ["systemctl", "--version"]).stdout, /^systemd 252 /);
    t.is(insideEmulated(init, ["systemctl", "is-active", "httpd.service"]).stdout.trim(), "active");
    const failed = insideEmulated(init, ["systemctl", "list-units", "--failed", "--plain", "--no-legend"])
      .stdout.trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split(/\s+/)[0]!);
    t.log(`failed units under qemu-user: ${failed.join(" ") || "none"}`);
    for (const unit of failed) t.true(QEMU_FAILURES.includes(unit), `${unit} failed:\n${container.output()}`);
    // Why it failed, from systemd rather than the console (whose lines may not all reach it):
    // 243 is EXIT_CREDENTIALS, the credentials setup that qemu-user's refused clone(CLONE_NEWNS) breaks.
    if (failed.includes("systemd-sysusers.service"))
      t.is(
        insideEmulated(init, [
          "systemctl",
          "show",
          "-p",
          "ExecMainStatus",
          "systemd-sysusers.service",
        ]).stdout.trim(),
        "ExecMainStatus=243",
      );

    // Not SIGTERM to nspawn: qemu-user shifts real-time signals by two (host SIGRTMIN+3, nspawn's
    // KillSignal, reaches the guest as SIGRTMIN+1, rescue mode). systemctl speaks to PID 1 directly.
    insideEmulated(init, ["systemctl", "--no-block", "halt"]);
    for (const until = Date.now() + 120_000; !container.exited() && Date.now() < until; ) await sleep(200);
    t.true(container.exited(), `the container did not halt within 120 s:\n${container.output()}`);
    t.regex(container.output(), /Halting system[\s\S]*has been shut down/);
  },
);
