// `niftyc lock` shows a live line for each Packages index it downloads when stderr is a terminal,
// and only its notes when stderr is a log.
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { main } from "../../src/cli/main.ts";
import { debianArchive, mirrorFlags, requireArchive } from "../support/debian-archive.ts";

async function lock(tty: boolean): Promise<{ code: number; stderr: string }> {
  const archive = await debianArchive();
  const dir = mkdtempSync(join(tmpdir(), "niftyc-lock-progress-"));
  try {
    writeFileSync(
      join(dir, "app.nifty"),
      `ARCHIVE debian bookworm KEYRING ${archive.keyring}\nPACKAGE nifty-pager\n`,
    );
    const stderr = Object.assign(new PassThrough(), tty ? { isTTY: true, columns: 120 } : { isTTY: false });
    let text = "";
    stderr.on("data", (d: Buffer) => (text += d.toString("utf8")));
    const io = {
      stdout: { write: () => true, isTTY: false },
      stderr,
      env: { SOURCE_DATE_EPOCH: "0" },
      cwd: dir,
    };
    const code = await main(["lock", "app.nifty", "--cache", "c", ...mirrorFlags(archive.view())], io);
    return { code, stderr: text };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("on a terminal, lock draws a progress line for the index it downloads; in a log it prints only its note", async (t) => {
  if (!requireArchive(t)) return;
  const live = await lock(true);
  t.is(live.code, 0, live.stderr);
  t.regex(live.stderr, /main\/binary-amd64\/Packages\.\w+ of bookworm/);
  t.regex(live.stderr, /note: wrote app\.nifty\.lock/);
  const log = await lock(false);
  t.is(log.code, 0, log.stderr);
  t.is(log.stderr.replace(/^note: wrote app\.nifty\.lock: .*\n/, ""), "");
});
