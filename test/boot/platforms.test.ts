// recipes/ssh.nifty for three platforms from one recipe: each tree's programs are its machine's,
// the arm64 and armhf trees boot under systemd-nspawn through qemu-user (binfmt_misc) and let
// luser in over SSH, and the image index is reproducible and holds the amd64-only image as it is.
import test, { type ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  niftyc,
  tempDir,
  boot,
  buildRecipe,
  debianMirror,
  freePort,
  requireBoot,
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
