// Blobs named before their bytes are synced, with a synced journal of their names standing for them
// (Store.journalUnsynced, src/cache/unsynced.ts): a package's members are written so; a journal of
// an earlier boot makes the next opening of the store hash what it names and quarantine what lost
// its bytes; a journal of this boot whose writer exited, last written a minute or more ago, is retired
// after a sync of the file system.
import test from "ava";
import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { journalName, journalsOfEarlierBoot } from "../../src/cache/journals.ts";
import { openStore } from "../../src/cache/store.ts";
import { RETIRED_AFTER_MS, RETIRED_AT_ONCE } from "../../src/cache/unsynced.ts";
import { bootId } from "../../src/core/process.ts";
import { readDebFile } from "../../src/debian/deb.ts";
import { tempDir } from "../fetch/helpers/util.ts";

const run = promisify(execFile);
const sha256 = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Date a journal back past the age at which an exited writer's journal is retired. */
async function aged(journal: string): Promise<void> {
  const then = new Date(Date.now() - RETIRED_AFTER_MS - 5_000);
  await fsp.utimes(journal, then, then);
}

/** Another boot's id: any id that is not this one. */
function otherBoot(): string {
  for (;;) {
    const id = randomUUID();
    if (id !== bootId()) return id;
  }
}

async function journalLines(dir: string): Promise<string[]> {
  const lines: string[] = [];
  for (const name of await fsp.readdir(dir).catch(() => [] as string[]))
    lines.push(...(await fsp.readFile(path.join(dir, name), "utf8")).split("\n").filter(Boolean));
  return lines.sort();
}

test("a package's members are named after one synced journal of this boot lists them all", async (t) => {
  t.truthy(bootId(), "Linux gives a boot id");
  const dir = await tempDir("niftyc-unsynced-deb-");
  const root = path.join(dir, "pkg");
  await fsp.mkdir(path.join(root, "DEBIAN"), { recursive: true });
  await fsp.mkdir(path.join(root, "usr/share/a"), { recursive: true });
  await fsp.writeFile(
    path.join(root, "DEBIAN/control"),
    "Package: a\nVersion: 1\nArchitecture: all\nMaintainer: t <t@localhost>\nDescription: t\n",
  );
  const members = ["one\n", "two\n", "three\n"];
  for (const [i, text] of members.entries()) await fsp.writeFile(path.join(root, `usr/share/a/${i}`), text);
  await run("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", root, path.join(dir, "a.deb")]);
  const store = await openStore(path.join(dir, "cache"));
  const deb = await store.putFile(path.join(dir, "a.deb"));
  const contents = await readDebFile(store, deb.path, deb.digest, "a 1 (all)");
  const named = contents.entries.flatMap((e) => (e.type === "file" ? [e.digest!] : []));
  t.deepEqual(named.sort(), members.map(sha256).sort());
  const journals = await fsp.readdir(store.unsyncedDir);
  t.true(
    journals.every((n) => n.startsWith(`${bootId()}.${process.pid}.`)),
    journals.join(", "),
  );
  // The .deb itself was streamed in (putFile), and is journaled as well.
  t.deepEqual(await journalLines(store.unsyncedDir), [...named, deb.digest].sort());
  for (const digest of named) t.true(await store.has(digest));
});

test("a blob streamed into the store (a download, a tarball) is named after its digest is in this boot's synced journal", async (t) => {
  const dir = path.join(await tempDir("niftyc-unsynced-stream-"), "cache");
  const store = await openStore(dir);
  const writer = store.createWriter();
  writer.write(Buffer.alloc(3 << 20, 1));
  const blob = await writer.commit();
  const small = await store.putBuffer(Buffer.from("small\n"));
  t.deepEqual(await journalLines(store.unsyncedDir), [blob.digest, small.digest].sort());
  const journals = await fsp.readdir(store.unsyncedDir);
  t.is(journals.length, 1, "one journal for the thread");
  t.true(journals[0]!.startsWith(`${bootId()}.${process.pid}.`), journals[0]);
  t.is((await fsp.stat(blob.path)).mode & 0o777, 0o444);
  t.deepEqual(await fsp.readdir(store.tmpDir), [], "no temp file left");
});

test("a journal of an earlier boot: each blob it names is hashed, one that lost its bytes is quarantined, and the journal goes", async (t) => {
  const dir = path.join(await tempDir("niftyc-unsynced-boot-"), "cache");
  const store = await openStore(dir);
  const good = await store.putBuffer(Buffer.from("kept\n"));
  // A blob whose bytes were lost in the restart: named for "lost\n", holding zeros.
  const lost = sha256("lost\n");
  await fsp.writeFile(store.blobPath(lost), Buffer.alloc(5), { mode: 0o444 });
  const never = sha256("never named\n");
  const journal = path.join(store.unsyncedDir, journalName(otherBoot(), 12345, "ab12", Date.now()));
  await fsp.mkdir(store.unsyncedDir, { recursive: true });
  // The last line cut short, as a crash in the middle of an append leaves it.
  await fsp.writeFile(journal, `${good.digest}\n${lost}\n${never}\n${lost.slice(0, 20)}`);
  t.true(journalsOfEarlierBoot(dir));

  await openStore(dir);
  t.true(await store.has(good.digest), "a blob whose bytes match stays");
  t.false(await store.has(lost), "a blob whose bytes do not match is out of the store");
  const quarantined = await fsp.readdir(store.quarantineDir);
  t.is(quarantined.length, 1);
  t.true(quarantined[0]!.startsWith(lost.slice("sha256:".length)));
  const left = await fsp.readdir(store.unsyncedDir);
  t.false(left.includes(path.basename(journal)), "the journal is gone");
  t.true(
    left.every((n) => n.startsWith(`${bootId()}.${process.pid}.`)),
    `only this process's own journal stays: ${left.join(", ")}`,
  );
  t.false(journalsOfEarlierBoot(dir));
});

test("a journal of this boot whose writer exited a minute ago is retired after a sync of the file system; a live writer's stays, and so does a young one", async (t) => {
  const dir = path.join(await tempDir("niftyc-unsynced-retire-"), "cache");
  const store = await openStore(dir);
  await fsp.mkdir(store.unsyncedDir, { recursive: true });
  const blob = await store.putBuffer(Buffer.from("written\n"));
  // A writer that has exited: a process id no process has (beyond the kernel's limit).
  const exited = path.join(store.unsyncedDir, journalName(bootId()!, 99_999_999, "cd34", Date.now()));
  const live = path.join(store.unsyncedDir, journalName(bootId()!, process.pid, "ef56", Date.now()));
  // An exited writer's journal written just now: the kernel has not written its blobs back yet.
  const young = path.join(store.unsyncedDir, journalName(bootId()!, 99_999_998, "ab12", Date.now()));
  await fsp.writeFile(exited, `${blob.digest}\n`);
  await fsp.writeFile(live, `${blob.digest}\n`);
  await fsp.writeFile(young, `${blob.digest}\n`);
  await aged(exited);
  await aged(live);
  await openStore(dir);
  // The retiring runs detached: wait for it (a hang detector, not a speed limit).
  const deadline = Date.now() + 30_000;
  while ((await fsp.readdir(store.unsyncedDir)).includes(path.basename(exited)) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  const left = await fsp.readdir(store.unsyncedDir);
  t.false(left.includes(path.basename(exited)), "the exited writer's journal is retired");
  t.true(left.includes(path.basename(live)), "the live writer's journal stays");
  t.true(left.includes(path.basename(young)), "an exited writer's journal younger than a minute waits");
  t.true(await store.has(blob.digest), "retiring removes journals, never blobs");
  t.false(journalsOfEarlierBoot(dir));
});

test("more exited writers' journals than one command line takes are retired over several openings", async (t) => {
  const dir = path.join(await tempDir("niftyc-unsynced-many-"), "cache");
  const store = await openStore(dir);
  await fsp.mkdir(store.unsyncedDir, { recursive: true });
  const count = RETIRED_AT_ONCE + 20;
  for (let i = 0; i < count; i++) {
    const journal = path.join(store.unsyncedDir, journalName(bootId()!, 99_999_999, `a${i}`, i));
    await fsp.writeFile(journal, "");
    await aged(journal);
  }
  const left = async () => (await fsp.readdir(store.unsyncedDir)).length;
  const settled = async (want: number) => {
    const deadline = Date.now() + 30_000; // a hang detector, not a speed limit
    while ((await left()) > want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return left();
  };
  await openStore(dir);
  t.is(await settled(20), 20, "one opening retires as many as one command line takes");
  await openStore(dir);
  t.is(await settled(0), 0, "the next opening the rest");
});
