// The identities a stamp keeps of what a build read (src/core/host-inputs.ts):
// every way a file can change under the same name is seen, and a file read
// too soon after it changed, or seen two ways in one build, makes the build
// one not to recall.
import test from "ava";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HostInputs, treeIdentities, unchanged } from "../../src/core/host-inputs.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dir(t: import("ava").ExecutionContext): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-host-inputs-"));
  t.teardown(() => fsp.rm(d, { recursive: true, force: true }));
  return d;
}

async function recorded(file: string): Promise<HostInputs> {
  const inputs = new HostInputs();
  inputs.file(file, await fsp.stat(file, { bigint: true }));
  return inputs;
}

test("a file rewritten with bytes of the same size and its mtime put back is seen as changed", async (t) => {
  const d = await dir(t);
  const file = path.join(d, "recipe.nifty");
  await fsp.writeFile(file, "HOSTNAME one\n");
  const { mtime } = await fsp.stat(file);
  await sleep(1100);
  const inputs = (await recorded(file)).list();
  t.truthy(inputs, "read a second after it was written: trusted");
  t.true(unchanged(inputs!));
  await fsp.writeFile(file, "HOSTNAME two\n");
  await fsp.utimes(file, mtime, mtime);
  t.false(unchanged(inputs!), "ctime still tells");
});

test("a file replaced by another (rename over it) and a mode change are seen", async (t) => {
  const d = await dir(t);
  const file = path.join(d, "pw");
  await fsp.writeFile(file, "secret");
  await sleep(1100);
  const inputs = (await recorded(file)).list()!;
  await fsp.chmod(file, 0o600);
  t.false(unchanged(inputs), "chmod");
  const again = (await recorded(file)).list();
  t.is(again, undefined, "just changed: not trusted");
  await sleep(1100);
  const settled = (await recorded(file)).list()!;
  await fsp.writeFile(path.join(d, "pw.new"), "secret");
  await fsp.rename(path.join(d, "pw.new"), file);
  t.false(unchanged(settled), "another inode");
});

test("an absent file that appears, a path whose symbolic link moves, and a directory that gains an entry are seen", async (t) => {
  const d = await dir(t);
  await fsp.mkdir(path.join(d, "a"));
  await fsp.mkdir(path.join(d, "b"));
  await fsp.symlink("a", path.join(d, "ctx"));
  await sleep(1100);
  const inputs = new HostInputs();
  inputs.absent(path.join(d, "app.nifty.lock"));
  inputs.resolved(path.join(d, "ctx"), await fsp.realpath(path.join(d, "ctx")));
  inputs.file(path.join(d, "a"), await fsp.stat(path.join(d, "a"), { bigint: true }));
  const list = inputs.list()!;
  t.true(unchanged(list));

  await fsp.writeFile(path.join(d, "app.nifty.lock"), "");
  t.false(unchanged(list), "the lock appeared");
  await fsp.rm(path.join(d, "app.nifty.lock"));
  t.true(unchanged(list));

  await fsp.rm(path.join(d, "ctx"));
  await fsp.symlink("b", path.join(d, "ctx"));
  t.false(unchanged(list), "ctx now leads to b");
  await fsp.rm(path.join(d, "ctx"));
  await fsp.symlink("a", path.join(d, "ctx"));
  t.true(unchanged(list));

  await fsp.writeFile(path.join(d, "a", "new"), "");
  t.false(unchanged(list), "a gained an entry");
});

test("a file read just after it changed, or seen two ways in one build, is not recorded", async (t) => {
  const d = await dir(t);
  const file = path.join(d, "recipe.nifty");
  await fsp.writeFile(file, "x");
  const fresh = await recorded(file);
  t.is(fresh.list(), undefined);
  t.regex(fresh.untrusted!, /changed less than a second before it was read/);

  await sleep(1100);
  const inputs = await recorded(file);
  const before = await fsp.stat(file, { bigint: true });
  await fsp.writeFile(file, "y");
  await sleep(1100);
  inputs.file(file, await fsp.stat(file, { bigint: true }));
  t.not(before.ctimeNs, (await fsp.stat(file, { bigint: true })).ctimeNs);
  t.is(inputs.list(), undefined);
  t.regex(inputs.untrusted!, /changed while the build read it/);
});

test("treeIdentities lists a directory, its subdirectories and files, and sees any of them change", async (t) => {
  const d = await dir(t);
  await fsp.mkdir(path.join(d, "oci/blobs"), { recursive: true });
  await fsp.writeFile(path.join(d, "rootfs.tar"), "tar");
  await fsp.writeFile(path.join(d, "oci/blobs/x"), "blob");
  const seen = treeIdentities(d)!;
  t.deepEqual(seen.map((s) => path.relative(d, s.path)).sort(), [
    "",
    "oci",
    "oci/blobs",
    "oci/blobs/x",
    "rootfs.tar",
  ]);
  t.true(unchanged(seen));
  await fsp.appendFile(path.join(d, "oci/blobs/x"), "!");
  t.false(unchanged(seen));
  t.is(treeIdentities(path.join(d, "missing")), undefined);
});
