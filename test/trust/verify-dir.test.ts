// niftyc verify of a build directory checks the directory's own files before it rebuilds: the
// rebuild compares digests only, while install, podman and skopeo use the files. A rootfs.tar or
// an OCI blob rewritten in place, a subject's file removed, or a subject's file swapped for a
// symbolic link, a FIFO or a directory is "not reproduced" (exit 1), named at that file; an
// untouched directory is still reproduced. The provenance lies in the directory it describes,
// so a subject name that climbs out of it is refused, and a layout it does not name is refused.
// No network: the recipe is files and directories only.
import test, { type ExecutionContext } from "ava";
import * as fsp from "node:fs/promises";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileSha256, niftyc, tempDir, writeRecipe } from "../pipeline/helpers.ts";

let work: string;
let recipe: string;
/** The honest single-platform build (every format) and its provenance's subjects. */
let honest: string;
let image: string;
let rootfs: string;
/** The honest build for linux/amd64 and linux/arm64. */
let multi: string;

interface Statement {
  subject: Array<{ name: string; digest: { sha256: string } }>;
}
interface Manifest {
  layers: Array<{ digest: string; size: number }>;
}
const readJson = async <T>(file: string) => JSON.parse(await fsp.readFile(file, "utf8")) as T;
const DIGEST = "sha256:[0-9a-f]{64}";

test.before(async () => {
  work = await tempDir("niftyc-verify-dir-");
  recipe = await writeRecipe(work, "app", "DIR /srv\nFILE /etc/motd <<EOF\nhello\nEOF\n");
  const build = async (out: string, ...extra: string[]) => {
    const r = await niftyc([
      "build",
      recipe,
      "--cache",
      path.join(work, "cache"),
      "--out",
      out,
      "-q",
      ...extra,
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  };
  honest = await build(path.join(work, "honest"), "--format", "all");
  multi = await build(path.join(work, "multi"), "--platform", "linux/amd64,linux/arm64");
  const statement = await readJson<Statement>(path.join(honest, "provenance.json"));
  image = `sha256:${statement.subject.find((s) => s.name === "app")!.digest.sha256}`;
  rootfs = `sha256:${statement.subject.find((s) => s.name === "rootfs.tar")!.digest.sha256}`;
});

test.after.always(async () => {
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

/** A copy of the build directory `from` (cp -a keeps its hard links) as `name`, in `work`. */
async function copyOf(from: string, name: string): Promise<string> {
  const to = path.join(work, name);
  execFileSync("cp", ["-a", from, to]);
  return to;
}

const verify = (dir: string) => niftyc(["verify", path.basename(dir), "--recipe", recipe], { cwd: work });

/** Write `bytes` over `file` at `offset`, keeping its size, as the reported attack did with dd. */
async function overwrite(file: string, offset: number, bytes: string): Promise<void> {
  const handle = await fsp.open(file, "r+");
  await handle.write(Buffer.from(bytes), 0, bytes.length, offset);
  await handle.close();
}

/** verify's answer for `dir`: exit 1, one "not reproduced" line at `at` (below the directory) matching `why`. */
async function notReproduced(t: ExecutionContext, dir: string, at: string, why: string): Promise<void> {
  const r = await verify(dir);
  const name = path.basename(dir);
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stdout,
    new RegExp(
      `^not reproduced: ${name} is not what its provenance names, first at ${name}/${at}: ${why}\\n$`,
    ),
  );
  t.false(/\n\s+at /.test(r.stderr));
}

test("an untouched build directory is still reproduced, of one platform and of two", async (t) => {
  const one = await verify(honest);
  t.is(one.code, 0, one.stderr);
  t.is(one.stdout, `reproduced: ${image}\n`);
  const two = await verify(multi);
  t.is(two.code, 0, two.stderr);
  t.regex(two.stdout, new RegExp(`^reproduced: ${DIGEST}\\n$`));
});

test("a rootfs.tar rewritten in place is not reproduced, named at rootfs.tar with both digests", async (t) => {
  const dir = await copyOf(honest, "tampered-rootfs");
  await overwrite(path.join(dir, "rootfs.tar"), 100, "EVIL");
  const now = await fileSha256(path.join(dir, "rootfs.tar"));
  await notReproduced(t, dir, "rootfs\\.tar", `it is ${now}; the provenance names ${rootfs}`);
});

test("an OCI layer blob rewritten in place is not reproduced, named at that blob", async (t) => {
  const dir = await copyOf(honest, "tampered-layer");
  const blobs = path.join(dir, "oci", "blobs", "sha256");
  const layer = (await readJson<Manifest>(path.join(blobs, image.slice(7)))).layers.at(-1)!;
  const file = path.join(blobs, layer.digest.slice(7));
  await overwrite(file, 20, "EVIL");
  await notReproduced(
    t,
    dir,
    `oci/blobs/sha256/${layer.digest.slice(7)}`,
    `it is ${await fileSha256(file)}, ${layer.size} bytes; oci/blobs/sha256/${image.slice(7)} names ${layer.digest}, ${layer.size} bytes`,
  );
});

test("a layer is checked whatever mediaType index.json gives the image, and a blob's digest never becomes a path out of the layout", async (t) => {
  const dir = await copyOf(honest, "relabelled");
  const index = path.join(dir, "oci", "index.json");
  const json = await readJson<{ manifests: Array<{ mediaType: string; digest: string }> }>(index);
  json.manifests[0]!.mediaType = "application/octet-stream";
  await fsp.writeFile(index, JSON.stringify(json));
  const blobs = path.join(dir, "oci", "blobs", "sha256");
  const layer = (await readJson<Manifest>(path.join(blobs, image.slice(7)))).layers[0]!.digest.slice(7);
  await overwrite(path.join(blobs, layer), 10, "EVIL");
  await notReproduced(
    t,
    dir,
    `oci/blobs/sha256/${layer}`,
    `it is ${DIGEST}, \\d+ bytes; oci/blobs/sha256/${image.slice(7)} names sha256:${layer}, \\d+ bytes`,
  );

  const climbing = await copyOf(honest, "climbing-blob");
  const climbingIndex = path.join(climbing, "oci", "index.json");
  const listed = await readJson<{ manifests: Array<{ digest: string }> }>(climbingIndex);
  listed.manifests[1]!.digest = "sha256:../../../../honest/rootfs.tar";
  await fsp.writeFile(climbingIndex, JSON.stringify(listed));
  await notReproduced(
    t,
    climbing,
    "oci/index\\.json",
    "it names a blob whose digest is not sha256 and 64 hex digits",
  );
});

test("a platform's rootfs.tar rewritten in a build of two platforms is named under its directory", async (t) => {
  const dir = await copyOf(multi, "tampered-arm64");
  await overwrite(path.join(dir, "linux-arm64", "rootfs.tar"), 100, "EVIL");
  await notReproduced(t, dir, "linux-arm64/rootfs\\.tar", `it is ${DIGEST}; the provenance names ${DIGEST}`);
});

test("a subject's file removed is not reproduced: rootfs.tar, a layer blob, the layout's index.json", async (t) => {
  const noRootfs = await copyOf(honest, "missing-rootfs");
  await fsp.rm(path.join(noRootfs, "rootfs.tar"));
  await notReproduced(t, noRootfs, "rootfs\\.tar", "it is missing");

  const noLayer = await copyOf(honest, "missing-layer");
  const blobs = path.join(noLayer, "oci", "blobs", "sha256");
  const layer = (await readJson<Manifest>(path.join(blobs, image.slice(7)))).layers[0]!.digest.slice(7);
  await fsp.rm(path.join(blobs, layer));
  await notReproduced(t, noLayer, `oci/blobs/sha256/${layer}`, "it is missing");

  const noIndex = await copyOf(honest, "missing-index");
  await fsp.rm(path.join(noIndex, "oci", "index.json"));
  await notReproduced(t, noIndex, "oci/index\\.json", "it is missing");
});

test("index.json tagging another image than the provenance names is not reproduced", async (t) => {
  const dir = await copyOf(honest, "retagged");
  const index = path.join(dir, "oci", "index.json");
  const json = await readJson<{ manifests: Array<{ digest: string }> }>(index);
  json.manifests[0]!.digest = `sha256:${"0".repeat(64)}`;
  await fsp.writeFile(index, JSON.stringify(json));
  await notReproduced(
    t,
    dir,
    "oci/index\\.json",
    `it names the image sha256:0{64}; the provenance names ${image}`,
  );
});

test("a subject's file swapped for a link out of the directory, a FIFO or a directory is refused, never followed or read", async (t) => {
  // An honest copy outside: following the link would find the right bytes.
  const outside = path.join(work, "outside.tar");
  await fsp.copyFile(path.join(honest, "rootfs.tar"), outside);
  const linked = await copyOf(honest, "linked-rootfs");
  await fsp.rm(path.join(linked, "rootfs.tar"));
  await fsp.symlink(outside, path.join(linked, "rootfs.tar"));
  await notReproduced(t, linked, "rootfs\\.tar", "it is a symbolic link, which verify does not follow");

  const linkedLayout = await copyOf(honest, "linked-oci");
  await fsp.rename(path.join(linkedLayout, "oci"), path.join(work, "outside-oci"));
  await fsp.symlink(path.join(work, "outside-oci"), path.join(linkedLayout, "oci"));
  await notReproduced(t, linkedLayout, "oci", "it is a symbolic link, which verify does not follow");

  const fifo = await copyOf(honest, "fifo-rootfs");
  await fsp.rm(path.join(fifo, "rootfs.tar"));
  execFileSync("mkfifo", [path.join(fifo, "rootfs.tar")]);
  await notReproduced(t, fifo, "rootfs\\.tar", "it is not a regular file");

  const directory = await copyOf(honest, "dir-rootfs");
  await fsp.rm(path.join(directory, "rootfs.tar"));
  await fsp.mkdir(path.join(directory, "rootfs.tar"));
  await notReproduced(t, directory, "rootfs\\.tar", "it is not a regular file");
});

test("a provenance whose subject names a path out of the directory is refused before any file is read (NIFTY735)", async (t) => {
  for (const [i, name] of ["../honest/rootfs.tar", "/etc/rootfs.tar", "oci/../rootfs.tar", ""].entries()) {
    const dir = await copyOf(honest, `climbing-${i}`);
    const file = path.join(dir, "provenance.json");
    const statement = await readJson<Statement>(file);
    statement.subject[1]!.name = name;
    await fsp.writeFile(file, JSON.stringify(statement));
    const r = await verify(dir);
    t.is(r.code, 1, name);
    t.is(r.stdout, "", name);
    t.true(
      r.stderr.includes(
        `the provenance ${path.basename(dir)}/provenance.json cannot be read: it names the subject ${JSON.stringify(name)}, which is no file of a build directory [NIFTY735]`,
      ),
      r.stderr,
    );
  }
});

test("a layout or rootfs.tar the provenance leaves out is refused: dropping a subject does not hide its files", async (t) => {
  const noImage = await copyOf(honest, "unnamed-oci");
  const file = path.join(noImage, "provenance.json");
  const statement = await readJson<Statement>(file);
  statement.subject = statement.subject.filter((s) => s.name === "rootfs.tar");
  await fsp.writeFile(file, JSON.stringify(statement));
  await overwrite(path.join(noImage, "oci", "blobs", "sha256", image.slice(7)), 0, " ");
  await notReproduced(t, noImage, "oci/index\\.json", "the provenance names no subject for it");

  const noArm64 = await copyOf(multi, "unnamed-arm64");
  const top = path.join(noArm64, "provenance.json");
  const multiStatement = await readJson<Statement>(top);
  multiStatement.subject = multiStatement.subject.filter((s) => !s.name.startsWith("linux-arm64/"));
  await fsp.writeFile(top, JSON.stringify(multiStatement));
  await overwrite(path.join(noArm64, "linux-arm64", "rootfs.tar"), 100, "EVIL");
  await notReproduced(t, noArm64, "linux-arm64/rootfs\\.tar", "the provenance names no subject for it");
});

test("a provenance.json that is a FIFO or a link (to /dev/zero, to an honest provenance) is NIFTY735, without waiting or following it", async (t) => {
  const outside = path.join(work, "outside-provenance.json");
  await fsp.copyFile(path.join(honest, "provenance.json"), outside);
  for (const [name, make] of [
    ["fifo-provenance", (file: string) => execFileSync("mkfifo", [file])],
    ["zero-provenance", (file: string) => fsp.symlink("/dev/zero", file)],
    ["linked-provenance", (file: string) => fsp.symlink(outside, file)],
  ] as const) {
    const dir = await copyOf(honest, name);
    const file = path.join(dir, "provenance.json");
    await fsp.rm(file);
    await make(file);
    const r = await verify(dir);
    t.is(r.code, 1, name);
    t.is(r.stdout, "", name);
    t.regex(
      r.stderr,
      new RegExp(`${name} has no provenance \\(no readable provenance\\.json: .*\\) \\[NIFTY735\\]`),
    );
  }
});
