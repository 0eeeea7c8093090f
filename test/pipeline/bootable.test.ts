// Warnings on the finished image: what a container manager needs to boot it.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { buildNamed, busyboxRecipe, niftyc, writeRecipe, useFixture } from "./helpers.ts";

const files = useFixture(test);

test("an image without os-release or /sbin/init builds, with warnings that say why it will not boot", async (t) => {
  const text = `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\nLINK /bin/busybox sh\n`;
  const recipe = await writeRecipe(files.work, "bare", text);
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(files.work, "cache"),
    "--out",
    path.join(files.work, "out"),
    "-q",
  ]);
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stderr,
    /bare\.nifty: warning: the image has no \/etc\/os-release: systemd-nspawn --boot refuses to start it \[NIFTY224\]/,
  );
  t.regex(
    result.stderr,
    /warning: the image has no \/sbin\/init: it cannot boot as a container \[NIFTY225\]/,
  );
});

test("a build that reuses the outputs warns as the one that made them did, and --strict refuses it", async (t) => {
  // Line 3's setuid file is warned about at its line (NIFTY232), which shows where a warning points.
  const text = `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\nLINK /bin/busybox sh\nFILE /usr/local/bin/tool MODE 4755 <<EOF\n#!/bin/sh\nEOF\n`;
  const recipe = await writeRecipe(files.work, "again", text);
  const setuidAt = (line: number) => new RegExp(`again\\.nifty:${line}:1: warning: .*\\[NIFTY232\\]`);
  const cache = path.join(files.work, "cache-again");
  const out = path.join(files.work, "out-again");
  const build = (...extra: string[]) =>
    niftyc(["build", recipe, "--cache", cache, "--out", out, "-q", ...extra]);
  const both = (stderr: string) => /\[NIFTY224\][\s\S]*\[NIFTY225\]/.test(stderr);
  const first = await build();
  t.is(first.code, 0, first.stderr);
  t.true(both(first.stderr), first.stderr);
  t.regex(first.stderr, setuidAt(3));
  // Up to date: nothing is built, the warnings are said again.
  const upToDate = await build();
  t.regex(upToDate.stdout, /up to date/);
  t.true(both(upToDate.stderr), upToDate.stderr);
  t.regex(upToDate.stderr, setuidAt(3));
  // out/ gone: restored from the store, the same warnings.
  await fsp.rm(out, { recursive: true });
  const restored = await build();
  t.is(restored.code, 0, restored.stderr);
  t.true(both(restored.stderr), restored.stderr);
  t.regex(restored.stderr, setuidAt(3));
  // --strict refuses what the first build only warned about, reused or not.
  const strict = await build("--strict");
  t.is(strict.code, 1, strict.stderr);
  t.regex(strict.stderr, /error: the image has no \/etc\/os-release.*\[NIFTY224\]/);
  // The same outputs under another text (a comment moves the lines): checked again, warned at the new lines.
  await fsp.writeFile(recipe, `# moved down a line\n${text}`);
  const moved = await build();
  t.is(moved.code, 0, moved.stderr);
  t.true(both(moved.stderr), moved.stderr);
  t.regex(moved.stderr, setuidAt(4), "the warning follows its line, not the record's");
});

test("an empty recipe, and one of comments only, build an empty image, with both warnings", async (t) => {
  for (const [name, text] of [
    ["empty", ""],
    ["comments", "# nothing yet\n"],
  ] as const) {
    const recipe = await writeRecipe(files.work, name, text);
    const result = await buildNamed(files.work, name, recipe, "-q");
    t.is(result.code, 0, result.stderr);
    t.notRegex(result.stderr, /internal error|TypeError/);
    t.regex(
      result.stderr,
      new RegExp(`${name}\\.nifty: warning: the image has no /etc/os-release.*\\[NIFTY224\\]`),
    );
    t.regex(
      result.stderr,
      /warning: the image has no \/sbin\/init: it cannot boot as a container \[NIFTY225\]/,
    );
    const listing = spawnSync("tar", ["-tf", path.join(files.work, `out-${name}`, "rootfs.tar")], {
      encoding: "utf8",
    });
    t.is(listing.stdout, "./\n", "only the root directory");
  }
});

test("a bootable image gets neither warning", async (t) => {
  const text = `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\nLINK /bin/busybox APPLETS\nSYMLINK /sbin bin\nFILE /etc/os-release <<EOF\nID=nifty\nEOF\n`;
  const recipe = await writeRecipe(files.work, "bootable", text);
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(files.work, "cache"),
    "--out",
    path.join(files.work, "out2"),
    "-q",
  ]);
  t.is(result.code, 0, result.stderr);
  t.notRegex(result.stderr, /NIFTY22[45]/);
});

test("KEYGEN at boot without dropbearkey passes the checks (any applet might be it) but fails the build", async (t) => {
  const text = busyboxRecipe(files.fixture, "KEYGEN dropbear ed25519\n");
  const recipe = await writeRecipe(files.work, "nokeygen", text);
  const check = await niftyc(["check", recipe]);
  t.is(check.code, 0, check.stderr);
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(files.work, "cache"),
    "--out",
    path.join(files.work, "out3"),
    "-q",
  ]);
  t.is(result.code, 1);
  t.regex(
    result.stderr,
    new RegExp(
      `nokeygen\\.nifty:${text.split("\n").indexOf("KEYGEN dropbear ed25519") + 1}:1: error: KEYGEN at boot needs dropbearkey in the image \\[NIFTY013\\]`,
    ),
  );
});

const systemdBase = (files: { fixture: { url: string; busybox: { digest: string } } }) =>
  `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\nFILE /lib/systemd/systemd MODE 0755 <<EOF\nnot really systemd\nEOF\nFILE /etc/os-release <<EOF\nID=nifty\nEOF\n`;

test("a systemd image warns about what would break its boot: /sbin/init elsewhere, a machine ID, files under /run and /tmp", async (t) => {
  const text = `${systemdBase(files)}SYMLINK /sbin/init /bin/busybox\nFILE /etc/machine-id <<EOF\n0123456789abcdef0123456789abcdef\nEOF\nDIR /run/app\nFILE /tmp/note <<EOF\nx\nEOF\n`;
  const recipe = await writeRecipe(files.work, "sdbad", text);
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(files.work, "cache"),
    "--out",
    path.join(files.work, "out4"),
    "-q",
  ]);
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stderr,
    /sdbad\.nifty:8:1: warning: systemd is in the image, but \/sbin\/init leads to \/bin\/busybox: that boots instead of systemd \[NIFTY226\]/,
  );
  t.notRegex(result.stderr, /NIFTY22[78]/, "the rest applies only when systemd is what boots");
  const booting = text.replace(
    "SYMLINK /sbin/init /bin/busybox\n",
    "SYMLINK /sbin/init /lib/systemd/systemd\n",
  );
  const recipe2 = await writeRecipe(files.work, "sdbad2", booting);
  const result2 = await niftyc([
    "build",
    recipe2,
    "--cache",
    path.join(files.work, "cache"),
    "--out",
    path.join(files.work, "out5"),
    "-q",
  ]);
  t.is(result2.code, 0, result2.stderr);
  t.notRegex(result2.stderr, /NIFTY226/);
  t.regex(
    result2.stderr,
    /sdbad2\.nifty:9:1: warning: \/etc\/machine-id is not empty: every container made from this image gets the same machine ID \[NIFTY227\]/,
  );
  t.regex(
    result2.stderr,
    /sdbad2\.nifty:12:1: warning: \/run\/app is under \/run, which every run config of a systemd image mounts a tmpfs over: it is hidden at boot \[NIFTY228\]/,
  );
  t.regex(result2.stderr, /sdbad2\.nifty:13:1: warning: \/tmp\/note is under \/tmp, .* \[NIFTY228\]/);
});

test("a systemd image with an empty machine-id and nothing under /run or /tmp gets no systemd warning", async (t) => {
  const text = `${systemdBase(files)}SYMLINK /sbin/init /lib/systemd/systemd\nFILE /etc/machine-id <<EOF\nEOF\nDIR /run /tmp MODE 1777\n`;
  const recipe = await writeRecipe(files.work, "sdgood", text);
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(files.work, "cache"),
    "--out",
    path.join(files.work, "out6"),
    "-q",
  ]);
  t.is(result.code, 0, result.stderr);
  t.notRegex(result.stderr, /NIFTY22[4-8]/);
});

test("SERVICE warns when nothing would start what it enables: no systemd in the image, or a WantedBy= unit the image lacks", async (t) => {
  const unit = (name: string, wantedBy: string) =>
    `FILE /etc/systemd/system/${name} <<EOF\n[Service]\nExecStart=/bin/busybox true\n[Install]\nWantedBy=${wantedBy}\nEOF\n`;
  const target = "FILE /lib/systemd/system/multi-user.target <<EOF\n[Unit]\nDescription=Multi-User\nEOF\n";
  const build = async (name: string, text: string) => {
    const recipe = await writeRecipe(files.work, name, text);
    const cache = path.join(files.work, "cache");
    return niftyc(["build", recipe, "--cache", cache, "--out", path.join(files.work, `out-${name}`), "-q"]);
  };
  // BusyBox init never reads /etc/systemd/system.
  const busybox = `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\nFILE /etc/os-release <<EOF\nID=nifty\nEOF\n${unit("web.service", "multi-user.target")}SERVICE enable web.service\n`;
  const none = await build("svcbusybox", busybox);
  t.is(none.code, 0, none.stderr);
  t.regex(
    none.stderr,
    /svcbusybox\.nifty:11:1: warning: SERVICE enable does nothing here: the image has no systemd \(\/lib\/systemd\/systemd or \/usr\/lib\/systemd\/systemd\) to read its links \[NIFTY234\]/,
  );
  // With systemd: a misspelt target is warned about at the unit's word, a real one is not.
  const systemd = `${systemdBase(files)}SYMLINK /sbin/init /lib/systemd/systemd\nFILE /etc/machine-id <<EOF\nEOF\n${target}${unit("web.service", "multi-user.targte")}${unit("ok.service", "multi-user.target")}SERVICE enable ok.service web.service\n`;
  const typo = await build("svctypo", systemd);
  t.is(typo.code, 0, typo.stderr);
  t.regex(
    typo.stderr,
    /svctypo\.nifty:27:27: warning: web\.service is enabled for multi-user\.targte, which is not in the image: nothing will start it that way \[NIFTY234\]\n[\s\S]*hint: check the name in its \[Install\] section \(WantedBy=, RequiredBy=\): did you mean multi-user\.target\?/,
  );
  t.is(typo.stderr.match(/NIFTY234/g)?.length, 1, typo.stderr);
});
