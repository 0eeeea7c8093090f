// A fresh --out from a warm cache holds exactly what a cold build wrote, for
// every format: same entries, types, owners, modes, link targets and bytes.
// (The runtime bundle's rootfs has symlinks and files owned by other users:
// a record that kept only files and directories restored it broken.)
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { createHash } from "node:crypto";
import { busyboxRecipe, jsonOf, niftyc, writeRecipe, useFixture } from "./helpers.ts";

const files = useFixture(test);

/** One line per entry: path, type, owner, mode, and the link target or a digest of the bytes. */
async function describeTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(path.join(dir, rel))).sort()) {
      const child = rel === "" ? name : `${rel}/${name}`;
      const full = path.join(dir, child);
      const st = await fsp.lstat(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink())
        out.push(`${child} symlink ${st.uid}:${st.gid} -> ${await fsp.readlink(full)}`);
      else if (st.isDirectory()) {
        out.push(`${child} dir ${st.uid}:${st.gid} ${mode}`);
        await visit(child);
      } else if (child === "build.json") out.push(`${child} file`);
      else
        out.push(
          `${child} file ${st.uid}:${st.gid} ${mode} ${createHash("sha256")
            .update(await fsp.readFile(full))
            .digest("hex")}`,
        );
    }
  };
  await visit("");
  return out;
}

test("every format, restored from a warm cache into a fresh --out, matches the cold build entry by entry", async (t) => {
  const dir = path.join(files.work, "warm");
  await fsp.mkdir(dir);
  const recipe = await writeRecipe(
    dir,
    "warm",
    busyboxRecipe(
      files.fixture,
      "USER luser UID 1000 SHELL /bin/sh LOCKED\nDIR /srv/data OWNER luser:luser MODE 0750\n",
    ),
  );
  const cache = path.join(dir, "cache");
  const formats = "rootfs,nspawn,systemd,docker,oci,docker-archive,bundle";
  const cold = await niftyc([
    "build",
    recipe,
    "--cache",
    cache,
    "--out",
    path.join(dir, "a"),
    "--format",
    formats,
    "--json",
    "-q",
  ]);
  t.is(cold.code, 0, cold.stderr);
  const first = await describeTree(path.join(dir, "a"));
  t.true(
    first.some((line) => /^bundle\/rootfs\/sbin symlink/.test(line)),
    "the bundle's rootfs has the /sbin link",
  );
  t.true(
    first.some((line) => /^bundle\/rootfs\/srv\/data dir 1000:1000 750$/.test(line)),
    "and luser's directory",
  );
  await fsp.rm(path.join(dir, "a"), { recursive: true });
  const warm = await niftyc([
    "build",
    recipe,
    "--cache",
    cache,
    "--out",
    path.join(dir, "a"),
    "--format",
    formats,
    "--json",
    "-q",
  ]);
  t.is(warm.code, 0, warm.stderr);
  t.is(jsonOf(warm).digest, jsonOf(cold).digest);
  t.deepEqual(await describeTree(path.join(dir, "a")), first);

  // Without the step records the outputs are not restored on their own: the steps run again.
  await fsp.rm(path.join(cache, "steps"), { recursive: true });
  const rerun = await niftyc([
    "build",
    recipe,
    "--cache",
    cache,
    "--out",
    path.join(dir, "b"),
    "--format",
    formats,
    "--json",
    "-q",
  ]);
  t.is(rerun.code, 0, rerun.stderr);
  t.false(jsonOf(rerun).steps.some((s) => s.reused));
  t.deepEqual(await describeTree(path.join(dir, "b")), first);
});
