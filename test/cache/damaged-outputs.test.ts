// A blob damaged in the store after it was written is never copied into out/ as the digest the
// build names: the copy is hashed, the blob set aside in quarantine/, and the output written
// afresh from the steps' records, the same bytes as before.
import test from "ava";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NIFTYC = join(import.meta.dirname, "../../bin/niftyc");

function project(t: { teardown(f: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-damaged-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const noise = randomBytes(48_000).toString("base64");
  writeFileSync(
    join(dir, "box.nifty"),
    `FILE /etc/os-release <<EOF\nID=box\nEOF\nFILE /noise <<EOF\n${noise}\nEOF\n`,
  );
  const build = (out: string, format: string) =>
    spawnSync(
      process.execPath,
      [NIFTYC, "build", "box.nifty", "--cache", "c", "--out", out, "--format", format, "--json"],
      {
        cwd: dir,
        encoding: "utf8",
        timeout: 60_000,
        env: { ...process.env, NIFTY_NO_STAMPS: "1" },
      },
    );
  /** Rewrite 4 bytes in the middle of a stored blob, as a failing disk or a stray write would. */
  const damage = (digest: string) => {
    const blob = join(dir, "c", "blobs", "sha256", digest.slice(7));
    const bytes = readFileSync(blob);
    bytes.write("ZZZZ", bytes.length >> 1);
    writeFileSync(blob, bytes);
  };
  const sha256 = (file: string) =>
    `sha256:${createHash("sha256")
      .update(readFileSync(join(dir, file)))
      .digest("hex")}`;
  return { dir, build, damage, sha256 };
}

for (const format of ["rootfs", "rootfs,oci,docker-archive"]) {
  test(`a damaged rootfs.tar blob is set aside and written afresh, never published damaged (--format ${format})`, (t) => {
    const { dir, build, damage, sha256 } = project(t);
    const first = build("o1", format);
    t.is(first.status, 0, first.stderr);
    const digest = (JSON.parse(first.stdout) as { digest: string }).digest;
    damage(digest);
    const healed = build("o2", format);
    t.is(healed.status, 0, healed.stderr);
    t.is(sha256("o2/rootfs.tar"), digest);
    t.is(readdirSync(join(dir, "c", "quarantine")).length, 1);
  });
}

test("a damaged gzip layer is set aside and made again when the OCI layout copies it", (t) => {
  const { dir, build, damage, sha256 } = project(t);
  const first = build("o1", "oci");
  t.is(first.status, 0, first.stderr);
  const layout = join(dir, "o1", "oci");
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as {
    manifests: Array<{ digest: string }>;
  };
  const manifest = JSON.parse(
    readFileSync(join(layout, "blobs/sha256", index.manifests[0]!.digest.slice(7)), "utf8"),
  ) as {
    layers: Array<{ digest: string }>;
  };
  const layer = manifest.layers.at(-1)!.digest;
  damage(layer);
  const healed = build("o2", "oci");
  t.is(healed.status, 0, healed.stderr);
  t.is(sha256(`o2/oci/blobs/sha256/${layer.slice(7)}`), layer);
  t.is(readdirSync(join(dir, "c", "quarantine")).length, 1);
});

test("a damaged kept output other than rootfs.tar (image.tar) is set aside and written afresh from the layers", (t) => {
  const { dir, build, damage, sha256 } = project(t);
  const first = build("o1", "rootfs,docker-archive");
  t.is(first.status, 0, first.stderr);
  const archive = sha256("o1/image.tar");
  damage(archive);
  const healed = build("o2", "rootfs,docker-archive");
  t.is(healed.status, 0, healed.stderr);
  t.is(sha256("o2/image.tar"), archive, "the same bytes as the first build wrote");
  t.is(readdirSync(join(dir, "c", "quarantine")).length, 1);
});
