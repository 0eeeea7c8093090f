// Warnings on the finished image: what a container manager needs to boot it.
import test from "ava";
import path from "node:path";
import { busyboxRecipe, niftyc, writeRecipe, useFixture } from "./helpers.ts";

const files = useFixture(test);

test("an image without os-release or /sbin/init builds, with warnings that say why it will not boot", async (t) => {
  const text = `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\nLINK /bin/busybox sh\n`;
  const recipe = await writeRecipe(files.work, "bare", text);
  const result = await niftyc(["build", recipe, "--cache", path.join(files.work, "cache"), "--out", path.join(files.work, "out"), "-q"]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /bare\.nifty: warning: the image has no \/etc\/os-release: systemd-nspawn --boot refuses to start it \[NIFTY224\]/);
  t.regex(result.stderr, /warning: the image has no \/sbin\/init: it cannot boot as a container \[NIFTY225\]/);
});

test("a bootable image gets neither warning", async (t) => {
  const text = `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\nLINK /bin/busybox APPLETS\nSYMLINK /sbin bin\nFILE /etc/os-release <<EOF\nID=nifty\nEOF\n`;
  const recipe = await writeRecipe(files.work, "bootable", text);
  const result = await niftyc(["build", recipe, "--cache", path.join(files.work, "cache"), "--out", path.join(files.work, "out2"), "-q"]);
  t.is(result.code, 0, result.stderr);
  t.notRegex(result.stderr, /NIFTY22[45]/);
});

test("KEYGEN at boot without dropbearkey passes the checks (any applet might be it) but fails the build", async (t) => {
  const text = busyboxRecipe(files.fixture, "KEYGEN dropbear ed25519\n");
  const recipe = await writeRecipe(files.work, "nokeygen", text);
  const check = await niftyc(["check", recipe]);
  t.is(check.code, 0, check.stderr);
  const result = await niftyc(["build", recipe, "--cache", path.join(files.work, "cache"), "--out", path.join(files.work, "out3"), "-q"]);
  t.is(result.code, 1);
  t.regex(result.stderr, new RegExp(`nokeygen\\.nifty:${text.split("\n").indexOf("KEYGEN dropbear ed25519") + 1}:1: error: KEYGEN at boot needs dropbearkey in the image \\[NIFTY013\\]`));
});
