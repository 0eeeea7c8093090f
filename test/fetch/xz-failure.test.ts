// FETCH … EXTRACT from an xz tarball that xz cannot decode: the failure is
// xz's, said as such (NIFTY114 with xz's message), not "member not in the
// archive" (NIFTY121), which is what an empty output used to look like.
import test from "ava";
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { openStore } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { extractMember } from "../../src/fetch/archive.ts";
import { tempDir } from "./helpers/util.ts";

const run = promisify(execFile);

test("an xz tarball whose stream header is damaged is a decompression error with xz's message, not a missing member", async (t) => {
  const dir = await tempDir("niftyc-xz-failure-");
  await fsp.writeFile(path.join(dir, "hello"), "hello\n");
  await run("tar", ["-C", dir, "-cf", path.join(dir, "a.tar"), "hello"]);
  const { stdout } = await run("xz", ["-c", path.join(dir, "a.tar")], {
    encoding: "buffer",
    maxBuffer: 1 << 20,
  });
  const good = Buffer.from(stdout);
  const bad = Buffer.from(good);
  bad[8] = bad[8]! ^ 0xff; // the stream header's CRC32: xz refuses before writing a byte
  await fsp.writeFile(path.join(dir, "good.tar.xz"), good);
  await fsp.writeFile(path.join(dir, "bad.tar.xz"), bad);
  const store = await openStore(path.join(dir, "c"));
  t.truthy((await extractMember(store, path.join(dir, "good.tar.xz"), "hello")).digest);
  const err = await t.throwsAsync(extractMember(store, path.join(dir, "bad.tar.xz"), "hello"), {
    instanceOf: NiftyError,
  });
  t.is(err?.code, "NIFTY114", err?.message);
  t.regex(err!.message, /^cannot decompress \S+bad\.tar\.xz: xz: .+/);
  t.notRegex(err!.message, /not in/);
});
