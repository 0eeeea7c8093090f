// The OCI runtime bundle run by runc, the rootfs unpacker and `niftyc install`.
import test from "ava";
import { spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { lstat, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import { renderNspawnFile } from "../../src/emit/nspawn.ts";
import { installMachine } from "../../src/emit/install.ts";
import { writeRuntimeBundle } from "../../src/emit/runtime-bundle.ts";
import { unpackRootfs } from "../../src/emit/unpack.ts";
import { spellSignal } from "../../src/emit/signals.ts";
import { requireParts } from "../support/skip.ts";
import { OS_RELEASE, expectedTree, fixtureConfig, listTree, makeFixture, type Fixture } from "./fixture.ts";
import { Watched, run, sortedRecord, tempDir } from "./helpers.ts";

let work: { path: string; remove: () => Promise<void> };
let fixture: Fixture;

test.before(async () => {
  work = await tempDir("bundle");
  fixture = await makeFixture(work.path);
});

test.after.always(async () => {
  await work?.remove();
});

async function runcDelete(id: string): Promise<void> {
  await run("runc", ["delete", "-f", id], { timeoutMs: 30_000 });
}

test.serial("runc boots /sbin/init from the bundle and the image's stop signal powers it off", async (t) => {
  const bundle = join(work.path, "bundle-boot");
  const config = fixtureConfig();
  await writeRuntimeBundle(bundle, { config, rootfsTar: fixture.rootfsTar });
  t.deepEqual(sortedRecord(await listTree(join(bundle, "rootfs"))), sortedRecord(await expectedTree()));
  const id = `niftyc-test-${process.pid}-boot`;
  const runc = new Watched("runc", ["run", id], { cwd: bundle });
  try {
    await runc.waitFor("NIFTY-SYSINIT-REACHED", 30_000);
    await runc.waitFor("NIFTY-ENV GREETING=[hello world] INSTANCE=[] HOST=[nifty-host]", 30_000);
    t.true(runc.output.includes(OS_RELEASE.trim()));
    const kill = await run("runc", ["kill", id, spellSignal(config.stopSignal, "runc-kill")], {
      timeoutMs: 30_000,
    });
    t.is(kill.code, 0, kill.stderr);
    const exit = await runc.waitExit(60_000);
    t.truthy(exit, `runc still running after the stop signal:\n${runc.output}`);
    // Poweroff inside a PID namespace ends init as if by SIGINT: 128 + 2.
    t.is(exit?.code, 130);
    t.true(runc.output.includes("NIFTY-SHUTDOWN"));
  } finally {
    await runc.kill();
    await runcDelete(id);
  }
});

test.serial("with process.args replaced, runc prints the fixture's os-release", async (t) => {
  const bundle = join(work.path, "bundle-cat");
  await writeRuntimeBundle(bundle, { config: fixtureConfig(), rootfsTar: fixture.rootfsTar });
  const path = join(bundle, "config.json");
  const spec = JSON.parse(await readFile(path, "utf8")) as {
    process: { args: string[]; env: string[] };
    root: { readonly: boolean };
    hostname: string;
  };
  t.false(spec.root.readonly, "writable, as nspawn and docker boot it: the boot writes keys and logs");
  t.is(spec.hostname, "nifty-host");
  t.true(spec.process.env.includes("container=oci"));
  spec.process.args = ["/bin/cat", "/etc/os-release"];
  await writeFile(path, JSON.stringify(spec));
  const id = `niftyc-test-${process.pid}-cat`;
  try {
    const result = await run("runc", ["run", id], { cwd: bundle, timeoutMs: 60_000 });
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, OS_RELEASE);
  } finally {
    await runcDelete(id);
  }
});

type Spec = {
  process: { args: string[]; capabilities: { bounding: string[] } };
  mounts: Array<{ destination: string; type: string; source: string; options?: string[] }>;
};

/** What root inside tries against a BIND RO on /mnt/ro (a tmpfs mounted below it), then a write to the BIND RW on /mnt/rw. */
const BIND_ATTACK = [
  "cat /mnt/ro/file /mnt/ro/sub/file",
  "echo pwned > /mnt/ro/file; echo write=$?",
  "echo pwned > /mnt/ro/sub/file; echo below=$?",
  "mount -o remount,rw /mnt/ro; echo remount=$?",
  "mount -o remount,bind,rw /mnt/ro; echo rebind=$?",
  "mount -o remount,bind,rw /mnt/ro/sub; echo rebindbelow=$?",
  "mkdir -p /tmp/again; mount --bind /mnt/ro /tmp/again && mount -o remount,bind,rw /tmp/again && echo pwned > /tmp/again/file; echo again=$?",
  "umount /mnt/ro/sub; umount /mnt/ro; echo umount=$?",
  "echo pwned > /mnt/ro/file; echo umountwrite=$?",
  "echo written > /mnt/rw/new; echo rw=$?",
].join("; ");

test.serial(
  "binds under runc: BIND RO shows the host's files, and root inside can neither write them (below too) nor remount, rebind or unmount them, systemd's bundle included; BIND RW writes reach the host",
  async (t) => {
    const why =
      process.getuid?.() !== 0
        ? "a tmpfs below the bind needs root"
        : spawnSync("sh", ["-c", "command -v runc"]).status !== 0
          ? "runc is not installed"
          : undefined;
    if (!requireParts(t, "the runc bind test", why)) return;
    const ro = join(work.path, "bind-ro");
    const rw = join(work.path, "bind-rw");
    await mkdir(join(ro, "sub"), { recursive: true });
    await mkdir(rw);
    await writeFile(join(ro, "file"), "original\n");
    // A mount below the host path: "ro" alone would leave it writable inside.
    t.is(spawnSync("mount", ["-t", "tmpfs", "tmpfs", join(ro, "sub")]).status, 0);
    t.teardown(() => {
      spawnSync("umount", [join(ro, "sub")]);
    });
    await writeFile(join(ro, "sub", "file"), "below\n");
    const binds = [
      { readOnly: true, hostPath: ro, containerPath: "/mnt/ro" },
      { readOnly: false, hostPath: rw, containerPath: "/mnt/rw" },
    ];
    for (const kind of ["busybox", "systemd"] as const) {
      const bundle = join(work.path, `bundle-binds-${kind}`);
      const config = fixtureConfig({ binds, init: { kind, command: ["/sbin/init"] } });
      await writeRuntimeBundle(bundle, { config, rootfsTar: fixture.rootfsTar });
      const path = join(bundle, "config.json");
      const spec = JSON.parse(await readFile(path, "utf8")) as Spec;
      t.deepEqual(
        spec.mounts.slice(-2),
        [
          {
            destination: "/mnt/ro",
            type: "bind",
            source: ro,
            options: ["rbind", "ro", "rro", "nosuid", "nodev"],
          },
          { destination: "/mnt/rw", type: "bind", source: rw, options: ["rbind", "rw", "nosuid", "nodev"] },
        ],
        kind,
      );
      t.false(spec.process.capabilities.bounding.includes("CAP_SYS_ADMIN"), kind);
      // PID 1 runs the attack with the capabilities the image's init would have.
      spec.process.args = ["/bin/sh", "-c", BIND_ATTACK];
      await writeFile(path, JSON.stringify(spec));
      const id = `niftyc-test-${process.pid}-binds-${kind}`;
      try {
        const result = await run("runc", ["run", id], { cwd: bundle, timeoutMs: 60_000 });
        const said = `${kind}:\n${result.stdout}${result.stderr}`;
        t.regex(result.stdout, /^original\nbelow\n/, said);
        const refused = ["write", "below", "remount", "rebind", "rebindbelow", "again"];
        for (const step of [...refused, "umount", "umountwrite"])
          t.not(
            Number(new RegExp(`^${step}=(\\d+)$`, "m").exec(result.stdout)?.[1] ?? 0),
            0,
            `${step}: ${said}`,
          );
        t.regex(result.stdout, /^rw=0$/m, said);
      } finally {
        await runcDelete(id);
      }
      t.is(await readFile(join(ro, "file"), "utf8"), "original\n", `${kind}: the host's file is unchanged`);
      t.is(await readFile(join(ro, "sub", "file"), "utf8"), "below\n", `${kind}: and the one below`);
      t.is(await readFile(join(rw, "new"), "utf8"), "written\n", `${kind}: BIND RW reached the host`);
      await writeFile(join(rw, "new"), "");
    }
    // Only a read-only bind costs systemd CAP_SYS_ADMIN.
    const onlyRw = join(work.path, "bundle-binds-rw");
    await writeRuntimeBundle(onlyRw, {
      config: fixtureConfig({ binds: [binds[1]!], init: { kind: "systemd", command: ["/sbin/init"] } }),
      rootfsTar: fixture.rootfsTar,
    });
    const spec = JSON.parse(await readFile(join(onlyRw, "config.json"), "utf8")) as Spec;
    t.true(spec.process.capabilities.bounding.includes("CAP_SYS_ADMIN"));
  },
);

test.serial("bundles are written whole: byte-identical config.json, no staging left", async (t) => {
  const a = join(work.path, "bundle-a");
  await writeRuntimeBundle(a, {
    config: fixtureConfig(),
    rootfsTar: fixture.rootfsTar,
    privateNetwork: true,
  });
  const first = await readFile(join(a, "config.json"));
  await writeRuntimeBundle(a, {
    config: fixtureConfig(),
    rootfsTar: fixture.rootfsTar,
    privateNetwork: true,
  });
  t.deepEqual(await readFile(join(a, "config.json")), first);
  const spec = JSON.parse(first.toString()) as { linux: { namespaces: Array<{ type: string }> } };
  t.deepEqual(
    spec.linux.namespaces.map((n) => n.type),
    ["pid", "ipc", "uts", "mount", "network"],
  );
  t.deepEqual(
    (await readdir(work.path)).filter((n) => n.includes("staging")),
    [],
  );
});

type Item = {
  name: string;
  type?: "file" | "directory" | "symlink" | "link";
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  body?: string;
};

async function tarOf(path: string, items: Item[]): Promise<string> {
  const pack = tarStream.pack();
  const done = pipeline(pack, createWriteStream(path));
  for (const item of items) {
    const { body, ...header } = item;
    await new Promise<void>((resolve, reject) => {
      const cb = (e?: Error | null): void => (e ? reject(e) : resolve());
      const h = { type: "file" as const, mode: 0o644, mtime: new Date(0), ...header };
      if (h.type === "file") pack.entry(h, body ?? "", cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return path;
}

test.serial("unpackRootfs keeps owners, setuid modes, symlinks and hard links", async (t) => {
  const tar = await tarOf(join(work.path, "owners.tar"), [
    { name: "./", type: "directory", mode: 0o755 },
    { name: "bin/", type: "directory", mode: 0o755 },
    { name: "bin/su", mode: 0o4755, body: "x" },
    { name: "bin/su-again", type: "link", linkname: "bin/su" },
    { name: "home/user/", type: "directory", mode: 0o750, uid: 1000, gid: 1001 },
    { name: "home/user/.profile", mode: 0o600, uid: 1000, gid: 1001, body: "export A=1\n" },
    { name: "home/user/link", type: "symlink", linkname: "/etc/passwd", uid: 1000, gid: 1001 },
  ]);
  const dir = join(work.path, "unpacked-owners");
  await unpackRootfs(tar, dir);
  const su = await stat(join(dir, "bin/su"));
  t.is(su.mode & 0o7777, 0o4755);
  t.is((await stat(join(dir, "bin/su-again"))).ino, su.ino);
  const home = await stat(join(dir, "home/user"));
  t.deepEqual([home.mode & 0o7777, home.uid, home.gid], [0o750, 1000, 1001]);
  const profile = await stat(join(dir, "home/user/.profile"));
  t.deepEqual([profile.mode & 0o7777, profile.uid, profile.gid, profile.mtimeMs], [0o600, 1000, 1001, 0]);
  const link = await lstat(join(dir, "home/user/link"));
  t.true(link.isSymbolicLink());
  t.deepEqual([link.uid, link.gid], [1000, 1001]);
});

test.serial("unpackRootfs refuses entries that would land outside the root", async (t) => {
  const cases: Array<[string, Item[]]> = [
    ["absolute", [{ name: "/escape-abs", body: "x" }]],
    ["dotdot", [{ name: "../escape-dotdot", body: "x" }]],
    ["inner-dotdot", [{ name: "a/../../escape-inner", body: "x" }]],
    [
      "through-symlink",
      [
        { name: "evil", type: "symlink", linkname: work.path },
        { name: "evil/escape-symlink", body: "x" },
      ],
    ],
    ["hardlink-out", [{ name: "h", type: "link", linkname: "../escape-hard" }]],
    ["hardlink-abs", [{ name: "h", type: "link", linkname: "/etc/passwd" }]],
    [
      "hardlink-via-symlink",
      [
        { name: "s", type: "symlink", linkname: "/etc" },
        { name: "h", type: "link", linkname: "s/passwd" },
      ],
    ],
  ];
  for (const [name, items] of cases) {
    const tar = await tarOf(join(work.path, `${name}.tar`), items);
    await t.throwsAsync(
      unpackRootfs(tar, join(work.path, `unsafe-${name}`)),
      { code: "NIFTY510" } as never,
      name,
    );
  }
  const left = (await readdir(work.path)).filter((n) => n.startsWith("escape") || n.startsWith("unsafe-"));
  t.deepEqual(left, []);
});

test.serial(
  "installMachine unpacks via staging, installs the .nspawn file, and refuses to overwrite",
  async (t) => {
    const machinesDir = join(work.path, "machines");
    const settingsDir = join(work.path, "nspawn");
    const config = fixtureConfig();
    const nspawnText = renderNspawnFile(config);
    const result = await installMachine({
      rootfsTar: fixture.rootfsTar,
      nspawnText,
      name: "nifty",
      machinesDir,
      settingsDir,
    });
    t.deepEqual(result, {
      root: join(machinesDir, "nifty"),
      settingsFile: join(settingsDir, "nifty.nspawn"),
    });
    t.is(await readFile(result.settingsFile, "utf8"), nspawnText);
    t.deepEqual(sortedRecord(await listTree(result.root)), sortedRecord(await expectedTree()));
    await t.throwsAsync(
      installMachine({ rootfsTar: fixture.rootfsTar, nspawnText, name: "nifty", machinesDir, settingsDir }),
      { code: "NIFTY521" },
    );
    await writeFile(join(result.root, "etc", "stale"), "old");
    await installMachine({
      rootfsTar: fixture.rootfsTar,
      nspawnText,
      name: "nifty",
      machinesDir,
      settingsDir,
      replace: true,
    });
    t.deepEqual(sortedRecord(await listTree(result.root)), sortedRecord(await expectedTree()));
    t.deepEqual(await readdir(machinesDir), ["nifty"]);
    t.deepEqual(await readdir(settingsDir), ["nifty.nspawn"]);
  },
);
