// The instances directory is judged before anything is changed: a refused --out keeps its mode and
// files, / is never one, and only the directory itself is made private, not its new parents.
import test from "ava";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBox, niftyc } from "./helpers.ts";

const mode = (path: string) => statSync(path).mode & 0o7777;

test("a refused --out is left as it was; / is refused; new parents are 0755 and only the directory 0700", (t) => {
  const { dir, built } = buildBox(t, "FILE /etc/os-release <<EOF\nID=box\nEOF\nDIR /srv\n", "out");
  t.is(built.status, 0, built.stderr);
  const instances = (...args: string[]) => niftyc(dir, "instances", "out", "--count", "1", ...args);

  // Someone's files: refused, and neither the files nor the mode change.
  mkdirSync(join(dir, "shared"));
  chmodSync(join(dir, "shared"), 0o1777);
  writeFileSync(join(dir, "shared", "f"), "mine\n");
  const foreign = instances("--out", join(dir, "shared"));
  t.is(foreign.status, 1, foreign.stderr);
  t.regex(foreign.stderr, /\[NIFTY422\]/);
  t.is(mode(join(dir, "shared")), 0o1777);
  // Shared (sticky, world-writable, as /tmp) and in use by others, with --replace: closing it would
  // lock its users out. Empty (a fresh tmpfs is 1777), it is simply made private.
  const open = join(dir, "open");
  mkdirSync(open);
  chmodSync(open, 0o1777);
  writeFileSync(join(open, "someone-else"), "x\n");
  const shared = instances("--out", open, "--replace");
  t.is(shared.status, 1, shared.stderr);
  t.regex(shared.stderr, /is shared \(mode 1777.*and in use.*\[NIFTY522\]/);
  t.is(mode(open), 0o1777);
  mkdirSync(join(dir, "fresh"));
  chmodSync(join(dir, "fresh"), 0o1777);
  const fresh = instances("--out", join(dir, "fresh"));
  t.is(fresh.status, 0, fresh.stderr);
  t.is(mode(join(dir, "fresh")), 0o700);
  // A file: an error, not a crash.
  writeFileSync(join(dir, "file"), "x\n");
  const file = instances("--out", join(dir, "file"));
  t.is(file.status, 1, file.stderr);
  t.regex(file.stderr, /is a file, not an instances directory \[NIFTY422\]/);
  // The root of a machine.
  mkdirSync(join(dir, "host"));
  const hostMode = mode(join(dir, "host"));
  const root = instances("--root", join(dir, "host"), "--out", "/");
  t.is(root.status, 1, root.stderr);
  t.regex(root.stderr, /cannot be \/ .*\[NIFTY436\]/);
  t.is(mode(join(dir, "host")), hostMode);
  // New parents are ordinary directories; the instances directory alone is private.
  const deep = instances("--out", join(dir, "deep", "a", "b"));
  t.is(deep.status, 0, deep.stderr);
  // niftyc's umask is the test's: the parents are 0755 less it.
  const umask = Number.parseInt(spawnSync("sh", ["-c", "umask"], { encoding: "utf8" }).stdout.trim(), 8);
  t.is(mode(join(dir, "deep")), 0o755 & ~umask);
  t.is(mode(join(dir, "deep", "a")), 0o755 & ~umask);
  t.is(mode(join(dir, "deep", "a", "b")), 0o700);
});

test("given a recipe, what the arguments alone decide is told before it is built", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-instances-args-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "box.nifty"), "ENV PORT=2200\nFILE /etc/os-release <<EOF\nID=box\nEOF\n");
  for (const [args, status, said] of [
    [["--count", "0"], 2, /--count takes a whole number from 1 to 100000, got "0"/],
    [["--count", "2", "--set", "PORT=2200+("], 1, /\[NIFTY402\]/],
  ] as const) {
    const r = niftyc(dir, "instances", "box.nifty", ...args, "--cache", "c", "--out", join(dir, "i"));
    t.is(r.status, status, r.stderr);
    t.regex(r.stderr, said);
    t.false(existsSync(join(dir, "out")), "nothing was built");
  }
});

test("an instances.json that is not niftyc's manifest (null, [], {}) is NIFTY422, for a run and for status, not a TypeError", (t) => {
  const { dir, built } = buildBox(t, "FILE /etc/os-release <<EOF\nID=box\nEOF\nDIR /srv\n", "out");
  t.is(built.status, 0, built.stderr);
  mkdirSync(join(dir, "inst"));
  for (const text of ["null", "[]", "{}", '{"name":"box","digest":"d","instances":[null]}']) {
    writeFileSync(join(dir, "inst", "instances.json"), text);
    for (const [args, hint] of [
      [["instances", "out", "--count", "1", "--out", "inst"], /hint: remove the directory or pass --replace/],
      [["instances", "status", "inst"], /hint: give the --out directory of niftyc instances/],
    ] as const) {
      const r = niftyc(dir, ...args);
      t.is(r.status, 1, `${text}: ${r.stderr}`);
      t.regex(r.stderr, /instances\.json is not the manifest niftyc instances writes \[NIFTY422\]/, text);
      t.regex(r.stderr, hint, text);
    }
  }
  // A file where the directory should be: status says it is not an instances directory.
  const file = niftyc(dir, "instances", "status", "box.nifty");
  t.is(file.status, 1);
  t.regex(file.stderr, /box\.nifty is not an instances directory \(no instances\.json\) \[NIFTY422\]/);
});
