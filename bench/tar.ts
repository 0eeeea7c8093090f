// Tar benchmark: writing the tarball of a 1 GiB tree (a few large files and
// many small ones) with niftyc's writer, from the content store, against
// `tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf` on the
// same files. Each writer runs in its own process so peak RSS is its own.
// Run: npx node bench/tar.ts [--runs N] [--gib N]
import { spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fmtMb, fmtMs, machine, median, NODE, timed, writeSection, type Run, option } from "./util.ts";

// Child mode: write the tarball of a tree description, then exit.
if (process.argv[2] === "--write") {
  const [, , , treeFile, storeDir, out] = process.argv as [string, string, string, string, string, string];
  const { Tree } = await import("../src/image/tree.ts");
  const { openStore } = await import("../src/cache/store.ts");
  const { writeTar } = await import("../src/emit/tar.ts");
  const store = await openStore(storeDir);
  const tree = new Tree();
  tree.apply(JSON.parse(await fsp.readFile(treeFile, "utf8")));
  await writeTar(createWriteStream(out), tree, tree.sortedPaths(), {
    mtime: 0,
    blobPath: (d) => store.blobPath(d),
  });
  process.exit(0);
}

const RUNS = Number(option("--runs") ?? 3);
const GIB = Number(option("--gib") ?? 1);
const LARGE = 4;
const SMALL = 20_000;

const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-tar-"));
try {
  // The input tree: LARGE files sharing 80% of the bytes, SMALL files of 1–20 KiB for the rest, in 100 directories.
  const src = path.join(work, "tree");
  const total = GIB * 1024 ** 3;
  const largeSize = Math.floor((total * 0.8) / LARGE);
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  await fsp.mkdir(path.join(src, "large"), { recursive: true });
  for (let f = 0; f < LARGE; f++) {
    const handle = await fsp.open(path.join(src, "large", `blob-${f}.bin`), "w");
    for (let written = 0; written < largeSize; written += chunk.length) {
      chunk[0] = f;
      chunk[1] = written / chunk.length;
      await handle.write(chunk, 0, Math.min(chunk.length, largeSize - written));
    }
    await handle.close();
  }
  const smallBudget = total - largeSize * LARGE;
  const smallSize = Math.floor(smallBudget / SMALL);
  for (let d = 0; d < 100; d++)
    await fsp.mkdir(path.join(src, "small", `d${String(d).padStart(3, "0")}`), { recursive: true });
  for (let f = 0; f < SMALL; f++) {
    const size = Math.max(1024, (f * 7919) % (2 * smallSize));
    const body = chunk.subarray(f % 1024, (f % 1024) + size);
    await fsp.writeFile(
      path.join(src, "small", `d${String(f % 100).padStart(3, "0")}`, `file-${f}.dat`),
      body,
    );
  }

  // The same tree in the store and as a Tree description (import not timed: a build does it once).
  const { openStore } = await import("../src/cache/store.ts");
  const { Tree } = await import("../src/image/tree.ts");
  const storeDir = path.join(work, "store");
  const store = await openStore(storeDir);
  const tree = new Tree();
  const visit = async (host: string, image: string): Promise<void> => {
    for (const entry of (await fsp.readdir(host, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const h = path.join(host, entry.name);
      const p = image === "/" ? `/${entry.name}` : `${image}/${entry.name}`;
      if (entry.isDirectory()) {
        tree.set(p, { type: "dir", mode: 0o755, uid: 0, gid: 0 });
        await visit(h, p);
      } else {
        const blob = await store.putFile(h);
        tree.set(p, {
          type: "file",
          mode: 0o644,
          uid: 0,
          gid: 0,
          content: { digest: blob.digest, size: blob.size },
        });
      }
    }
  };
  await visit(src, "/");
  const treeFile = path.join(work, "tree.json");
  await fsp.writeFile(treeFile, JSON.stringify(tree.takeChanges()));
  const entries = tree.nodes.size;

  // Both writers read settled files: the writeback of the 2 GiB just written would slow whichever runs first.
  spawnSync("sync");
  const ours = path.join(work, "niftyc.tar");
  const gnu = path.join(work, "gnu.tar");
  const runsOurs: Run[] = [];
  const runsGnu: Run[] = [];
  // Alternate the two so the page cache favours neither.
  for (let i = 0; i < RUNS; i++) {
    await fsp.rm(ours, { force: true });
    runsOurs.push(await timed(NODE, [import.meta.filename, "--write", treeFile, storeDir, ours]));
    await fsp.rm(gnu, { force: true });
    runsGnu.push(
      await timed(
        "tar",
        [
          "--sort=name",
          "--owner=0",
          "--group=0",
          "--numeric-owner",
          "--mtime=@0",
          "-cf",
          gnu,
          "-C",
          src,
          ".",
        ],
        { env: { PATH: process.env.PATH, LC_ALL: "C" } },
      ),
    );
  }
  const size = (await fsp.stat(ours)).size;
  const summary = (runs: Run[]) => ({
    ms: median(runs.map((r) => r.ms)),
    cpu: median(runs.map((r) => r.cpuMs)),
    rss: Math.max(...runs.map((r) => r.maxRssKb)),
  });
  const o = summary(runsOurs);
  const g = summary(runsGnu);
  const body = `## Tarball writing

\`npx node bench/tar.ts\`: a ${GIB} GiB tree of ${entries.toLocaleString("en")} entries (${LARGE} files of
${(largeSize / 1024 ** 2).toFixed(0)} MiB, ${SMALL.toLocaleString("en")} files of 1–${((2 * smallSize) / 1024).toFixed(0)} KiB in 100 directories), tarball
${(size / 1024 ** 2).toFixed(0)} MiB. niftyc's \`writeTar\` streams each file from the content store
(a child process that also loads the tree); GNU tar reads the same files from a directory.
Median of ${RUNS} alternating runs, output to the same file system; peak RSS from \`/usr/bin/time\`.

| Writer | Time | CPU time (user + system) | Peak RSS |
| --- | --- | --- | --- |
| niftyc \`writeTar\` | ${fmtMs(o.ms)} | ${fmtMs(o.cpu)} | ${fmtMb(o.rss)} |
| \`tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf\` | ${fmtMs(g.ms)} | ${fmtMs(g.cpu)} | ${fmtMb(g.rss)} |
| ratio | ${(o.ms / g.ms).toFixed(2)}× GNU tar (target ≤ 1.5×) | ${(o.cpu / g.cpu).toFixed(2)}× | peak RSS target < 200 MB |

Measured with ${machine()}, load average ${os.loadavg()[0]!.toFixed(1)} at the end (other work may share the machine).`;
  await writeSection("tar", body);
  process.stdout.write(body + "\n");
} finally {
  await fsp.rm(work, { recursive: true, force: true });
}
