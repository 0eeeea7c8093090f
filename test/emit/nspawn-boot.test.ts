// systemd-nspawn boots the fixture with the generated settings and stops it
// through the generated KillSignal=; the template unit's command line runs
// two instances on one tree. nspawn runs in a private mount namespace with a
// tmpfs /run (no systemd as PID 1 here), as reference.md §0 describes.
import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { renderNspawnFile } from "../../src/emit/nspawn.ts";
import { unpackRootfs } from "../../src/emit/unpack.ts";
import { renderTemplateUnit } from "../../src/emit/systemd.ts";
import { fixtureConfig, makeFixture } from "./fixture.ts";
import { Watched, tempDir } from "./helpers.ts";

let work: { path: string; remove: () => Promise<void> };
let root: string;

test.before(async () => {
  work = await tempDir("nspawn");
  const fixture = await makeFixture(work.path);
  root = join(work.path, "root");
  await unpackRootfs(fixture.rootfsTar, root);
});

test.after.always(async () => {
  await work?.remove();
});

test.serial("nspawn boots with the generated .nspawn file and SIGTERM powers the machine off", async (t) => {
  const machine = `niftyc-test-${process.pid}`;
  const share = join(work.path, "share");
  await mkdir(share);
  await writeFile(join(share, "marker"), "NIFTY-BIND-SEEN\n");
  const config = fixtureConfig({
    env: [["GREETING", `it's "quoted" \\ 100% $HOME`]],
    binds: [{ readOnly: true, hostPath: share, containerPath: "/mnt/bind" }],
  });
  const settings = join(work.path, `${machine}.nspawn`);
  await writeFile(settings, renderNspawnFile(config));
  const script = [
    "mount -t tmpfs tmpfs /run",
    "mkdir -p /run/systemd/nspawn",
    `cp "$1" /run/systemd/nspawn/${machine}.nspawn`,
    `exec systemd-nspawn --register=no --keep-unit --machine=${machine} -bD "$2"`,
  ].join(" && ");
  // unshare and sh exec, so this PID is nspawn's.
  const nspawn = new Watched("unshare", ["-m", "sh", "-c", script, "sh", settings, root]);
  try {
    await nspawn.waitFor("NIFTY-SYSINIT-REACHED", 60_000);
    await nspawn.waitFor(
      `NIFTY-ENV GREETING=[it's "quoted" \\ 100% $HOME] INSTANCE=[] HOST=[nifty-host]`,
      30_000,
    );
    await nspawn.waitFor("NIFTY-BIND-SEEN", 30_000);
    t.true(nspawn.output.includes("Nifty fixture rootfs"));
    const start = process.hrtime.bigint();
    process.kill(nspawn.pid, "SIGTERM");
    const exit = await nspawn.waitExit(60_000);
    t.log(`nspawn exited ${Number(process.hrtime.bigint() - start) / 1e9} s after SIGTERM`);
    t.truthy(exit, `nspawn still running:\n${nspawn.output}`);
    // Exit 0 is poweroff; SIGTERM to BusyBox init would reboot (133).
    t.is(exit?.code, 0, nspawn.output);
    t.true(nspawn.output.includes("NIFTY-SHUTDOWN"));
  } finally {
    await nspawn.kill();
  }
});

/** ExecStart of a unit as argv for instance `instance`, the way systemd expands it (for unquoted words). */
function execStart(unit: string, instance: string, env: Record<string, string>): string[] {
  const line = unit.split("\n").find((l) => l.startsWith("ExecStart="));
  if (line === undefined) throw new Error("no ExecStart");
  const words = line.slice("ExecStart=".length).split(" ");
  if (words.some((w) => /["'\\]/.test(w))) throw new Error("this helper only expands unquoted words");
  return words.map((w) =>
    w.replaceAll("%i", instance).replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, k: string) => env[k] ?? ""),
  );
}

test.serial(
  "the template's command line runs two instances on one tree, each with its own environment",
  async (t) => {
    const config = fixtureConfig({ name: `tpl${process.pid}` });
    const machinesDir = join(work.path, "machines");
    await mkdir(machinesDir);
    const { symlink } = await import("node:fs/promises");
    await symlink(root, join(machinesDir, config.name));
    const unit = renderTemplateUnit(config, { machinesDir });
    // One mount namespace (shared lock directory in its /run) for both instances.
    const holder = new Watched("unshare", [
      "-m",
      "sh",
      "-c",
      "mount -t tmpfs tmpfs /run && echo NS-READY && exec sleep 600",
    ]);
    const instances: Watched[] = [];
    try {
      await holder.waitFor("NS-READY", 30_000);
      for (const [instance, greeting] of [
        ["1", "one"],
        ["2", "two two"],
      ] as const) {
        const [cmd, ...args] = execStart(unit, instance, { GREETING: greeting, PORT: "2200" });
        // No systemd here: nspawn must not try to register the machine.
        instances.push(
          new Watched("nsenter", ["-t", String(holder.pid), "-m", cmd as string, "--register=no", ...args]),
        );
      }
      const [one, two] = instances as [Watched, Watched];
      await one.waitFor(`NIFTY-ENV GREETING=[one] INSTANCE=[1] HOST=[${config.name}-1]`, 60_000);
      await two.waitFor(`NIFTY-ENV GREETING=[two two] INSTANCE=[2] HOST=[${config.name}-2]`, 60_000);
      for (const w of instances) {
        process.kill(w.pid, "SIGTERM");
        const exit = await w.waitExit(60_000);
        t.is(exit?.code, 0, w.output);
      }
    } finally {
      for (const w of instances) await w.kill();
      await holder.kill();
    }
  },
);
