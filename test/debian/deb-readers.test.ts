// The .deb reader threads must never keep a finished niftyc alive: a build
// that reads fewer .debs than there are threads (a one-package recipe) has to
// exit by itself once it has printed its result.
import test from "ava";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawnCli, collect } from "../pipeline/helpers.ts";
import { debianArchive, requireArchive } from "../support/debian-archive.ts";

test("a cold build of one package exits by itself: the idle reader threads hold nothing open", async (t) => {
  if (!requireArchive(t)) return;
  const archive = await debianArchive();
  const view = archive.view();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-readers-"));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  await fsp.writeFile(
    path.join(dir, "one.nifty"),
    `ARCHIVE debian bookworm KEYRING ${archive.keyring}\nPACKAGE nifty-data\n`,
  );
  const child = spawnCli(
    ["build", "one.nifty", "--format", "rootfs", "--quiet", "--mirror", `debian=${view.mirrors.debian![0]}`],
    { cwd: dir },
  );
  // A hang detector, not a speed limit: the result is printed, then the process must end.
  const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const r = await collect(child);
  clearTimeout(killer);
  t.regex(r.stdout, /built one: sha256:/, r.stderr);
  t.is(r.signal, null, "killed: a reader thread held the finished process open");
  t.is(r.code, 0, r.stderr);
});
