// The store's keys hold everything that shapes what they give back: two builds that differ
// only in the recipe's name, its path, how it was given (a file or standard input), the
// formats, the epoch, an --arg or the --platform, made in either order into one store, each give the outputs
// a build into an empty store gives, named for themselves. And the name, which never reaches
// the tree, leaves the rootfs digest (and so the layers' sharing) alone.
import test from "ava";
import fc from "fast-check";
import * as fsp from "node:fs/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { main } from "../../src/cli/main.ts";
import type { CliIo } from "../../src/cli/io.ts";
import { compile } from "../../src/pipeline/compile.ts";
import { openStore } from "../../src/cache/store.ts";
import { describeOutputs } from "./helpers.ts";
import { firstKey, stepKey } from "../../src/pipeline/keys.ts";
import { NIFTYC_VERSION } from "../../src/core/version.ts";
import type { Instruction } from "../../src/instructions/index.ts";

const RECIPE =
  "ARG GREETING=hello\nFILE /etc/os-release <<EOF\nID=keys\nEOF\nFILE /etc/motd <<EOF\n${GREETING}\nEOF\nDIR /tmp MODE 1777\n";
/** Every format but the runtime bundle (which unpacks the whole tree): the default set. */
const ALL = ["rootfs", "nspawn", "systemd", "docker", "oci", "docker-archive", "sbom", "provenance"] as const;
/** What two builds may differ in: the default set, and the CycloneDX SBOM one asks for beside it. */
const CHOSEN = [...ALL, "cyclonedx"] as const;
type Fmt = (typeof CHOSEN)[number];

/** A build as the CLI takes it: where from, the recipe's file (or stdin), and its flags. */
interface Build {
  dir: string;
  /** File name of the recipe inside dir; "-" reads RECIPE from standard input. */
  file: string;
  formats: readonly Fmt[];
  epoch: string;
  greeting: string;
  /** --platform, when given. */
  platform?: string;
}

/** The recipe as given on the command line, from the root of the test's directory, and so as build.json shows it. */
const shownAs = (b: Build) => (b.file === "-" ? "-" : `${b.dir}/${b.file}`);
const nameOf = (b: Build) => (b.file === "-" ? "stdin" : b.file.replace(/\.nifty$/, ""));

async function cli(
  argv: string[],
  cwd: string,
  epoch: string,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: { SOURCE_DATE_EPOCH: epoch, NIFTY_NO_STAMPS: "1" },
    cwd,
    ...(stdin !== undefined ? { readStdin: async () => stdin } : {}),
  };
  return { code: await main(argv, io), stdout, stderr };
}

async function run(b: Build, root: string, cache: string, out: string): Promise<void> {
  const dir = path.join(root, b.dir);
  await fsp.mkdir(dir, { recursive: true });
  if (b.file !== "-") await fsp.writeFile(path.join(dir, b.file), RECIPE);
  const argv = [
    "build",
    shownAs(b),
    "--cache",
    cache,
    "--out",
    out,
    "--format",
    b.formats.join(","),
    "--arg",
    `GREETING=${b.greeting}`,
    "-q",
    ...(b.platform ? ["--platform", b.platform] : []),
  ];
  const r = await cli(argv, root, b.epoch, b.file === "-" ? RECIPE : undefined);
  if (r.code !== 0) throw new Error(`niftyc ${argv.join(" ")} exited ${r.code}:\n${r.stdout}${r.stderr}`);
}

/** The files each format writes, for a recipe of this name: said here, not taken from the code under test. */
function expectedFiles(name: string, formats: readonly Fmt[]): string[] {
  const files: Record<Fmt, string[]> = {
    rootfs: ["rootfs.tar"],
    nspawn: [`${name}.nspawn`],
    systemd: [`${name}.service`, `${name}@.service`],
    // The Dockerfile ADDs rootfs.tar, so the docker format writes it too.
    docker: ["Dockerfile", "docker-run.sh", "rootfs.tar"],
    oci: ["oci"],
    "docker-archive": ["image.tar"],
    sbom: ["sbom.spdx.json"],
    cyclonedx: ["sbom.cdx.json"],
    provenance: ["provenance.json"],
  };
  return [...new Set(["build.json", ...formats.flatMap((f) => files[f])])].sort();
}

/** What names the outputs: the files' names, build.json, docker-run.sh, the SBOM's name, the units' contents. */
async function namedFor(out: string, b: Build, shown: string): Promise<string[]> {
  const name = nameOf(b);
  const problems: string[] = [];
  const listed = (await fsp.readdir(out)).sort();
  const want = expectedFiles(name, b.formats);
  if (JSON.stringify(listed) !== JSON.stringify(want))
    problems.push(`out/ holds ${listed.join(" ")}, not ${want.join(" ")}`);
  const json = JSON.parse(await fsp.readFile(path.join(out, "build.json"), "utf8")) as {
    name: string;
    recipe: string;
    epoch: number;
    config: { created: number; name: string };
  };
  if (json.name !== name || json.config.name !== name)
    problems.push(`build.json names ${json.name} (config ${json.config.name}), not ${name}`);
  if (json.recipe !== shown) problems.push(`build.json's recipe is ${json.recipe}, not ${shown}`);
  if (String(json.epoch) !== b.epoch || String(json.config.created) !== b.epoch)
    problems.push(`build.json's epoch is ${json.epoch}, not ${b.epoch}`);
  const read = (file: string) => fsp.readFile(path.join(out, file), "utf8").catch(() => "");
  if (b.formats.includes("docker") && !(await read("docker-run.sh")).includes(`--name ${name} `))
    problems.push(`docker-run.sh does not say --name ${name}`);
  if (b.formats.includes("sbom")) {
    const sbom = JSON.parse(await read("sbom.spdx.json")) as { name: string };
    if (sbom.name !== name) problems.push(`the SBOM is named ${sbom.name}, not ${name}`);
  }
  if (b.formats.includes("cyclonedx")) {
    const cdx = JSON.parse(await read("sbom.cdx.json")) as { metadata: { component: { name: string } } };
    const named = cdx.metadata.component.name;
    if (named !== name) problems.push(`the CycloneDX SBOM names ${named}`);
  }
  if (b.formats.includes("provenance")) {
    // The provenance names the recipe as shown, the --arg and the epoch: each joins the outputs' key.
    type Params = { recipe: { path: string }; args: Record<string, string>; sourceDateEpoch: number };
    type Statement = { predicate: { buildDefinition: { externalParameters: Params } } };
    const said = (JSON.parse(await read("provenance.json")) as Statement).predicate.buildDefinition
      .externalParameters;
    const { recipe, args, sourceDateEpoch: epoch } = said;
    if (recipe.path !== json.recipe)
      problems.push(`the provenance names the recipe ${recipe.path}, not ${json.recipe}`);
    if (args.GREETING !== b.greeting)
      problems.push(`the provenance says GREETING=${args.GREETING}, not ${b.greeting}`);
    if (String(epoch) !== b.epoch) problems.push(`the provenance's epoch is ${epoch}, not ${b.epoch}`);
  }
  if (b.formats.includes("nspawn") && !(await read(`${name}.nspawn`)).startsWith(`# ${name}.nspawn,`))
    problems.push(`${name}.nspawn is not written for ${name}`);
  if (b.formats.includes("systemd")) {
    for (const unit of [`${name}.service`, `${name}@.service`]) {
      const text = await read(unit);
      if (!text.includes(`/var/lib/machines/${name}\n`) || !text.startsWith(`# ${unit},`))
        problems.push(`${unit} does not boot machine ${name}`);
    }
  }
  return problems;
}

const rootfsDigest = async (out: string) =>
  (JSON.parse(await fsp.readFile(path.join(out, "build.json"), "utf8")) as { digest: string }).digest;

const recipeFile = fc
  .stringMatching(/^[a-z][a-z0-9-]{0,8}$/)
  .filter((n) => n !== "stdin")
  .map((n) => `${n}.nifty`);
const formatSet = fc
  .subarray([...CHOSEN], { minLength: 1 })
  .map((fs) => CHOSEN.filter((f) => fs.includes(f)));
const base: fc.Arbitrary<Build> = fc.record({
  dir: fc.constant("a"),
  file: recipeFile,
  formats: fc.constant(ALL),
  epoch: fc.constant("0"),
  greeting: fc.constant("hello"),
});

/** Two builds that differ in one input only: which, and how. */
const pairs: fc.Arbitrary<{ what: string; x: Build; y: Build }> = fc.oneof(
  fc
    .tuple(base, recipeFile)
    .filter(([x, f]) => x.file !== f)
    .map(([x, file]) => ({ what: "name", x, y: { ...x, file } })),
  base.map((x) => ({ what: "path", x, y: { ...x, dir: "b/c" } })),
  base.map((x) => ({ what: "stdin", x, y: { ...x, file: "-" } })),
  fc
    .tuple(base, formatSet, formatSet)
    .map(([x, f1, f2]) => ({ what: "formats", x: { ...x, formats: f1 }, y: { ...x, formats: f2 } })),
  fc
    .tuple(base, fc.integer({ min: 1, max: 2_000_000_000 }))
    .map(([x, e]) => ({ what: "epoch", x, y: { ...x, epoch: String(e) } })),
  base.map((x) => ({ what: "arg", x, y: { ...x, greeting: "bye" } })),
  fc
    .tuple(base, fc.constantFrom("linux/arm64", "linux/arm/v7", "linux/riscv64"))
    .map(([x, platform]) => ({ what: "platform", x, y: { ...x, platform } })),
);

test("two builds that differ in one input, in either order into one store, each give their own outputs, as an empty store would", async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(pairs, fc.boolean(), async ({ what, x, y }, swap) => {
      const [first, second] = swap ? [y, x] : [x, y];
      const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
      try {
        const cache = path.join(root, "cache");
        const shown = (b: Build) => (b.file === "-" ? "stdin" : shownAs(b));
        await run(first, root, cache, path.join(root, "o1"));
        await run(second, root, cache, path.join(root, "o2"));
        // The same second build into the output directory of the first: found up to date only if nothing differs.
        await run(second, root, cache, path.join(root, "o1"));
        // The oracle: the second build alone, into an empty store.
        await run(second, root, path.join(root, "cold"), path.join(root, "o3"));
        const problems = [
          ...(await namedFor(path.join(root, "o1"), second, shown(second))).map(
            (p) => `over the first's out/: ${p}`,
          ),
          ...(await namedFor(path.join(root, "o2"), second, shown(second))),
        ];
        const cold = await describeOutputs(path.join(root, "o3"));
        if (JSON.stringify(await describeOutputs(path.join(root, "o2"))) !== JSON.stringify(cold))
          problems.push("out/ differs from a build into an empty store");
        if (JSON.stringify(await describeOutputs(path.join(root, "o1"))) !== JSON.stringify(cold))
          problems.push("the first's out/ rebuilt differs from a build into an empty store");
        if (
          ["name", "path", "stdin", "formats"].includes(what) &&
          (await rootfsDigest(path.join(root, "o1"))) !== (await rootfsDigest(path.join(root, "o2")))
        ) {
          problems.push("the rootfs digest changed with an input that does not reach the tree");
        }
        runs++;
        t.deepEqual(problems, [], `${what}: ${JSON.stringify(first)} then ${JSON.stringify(second)}`);
        return problems.length === 0;
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }),
    { numRuns: 24, seed: Number(process.env.NIFTY_TEST_SEED ?? 1), endOnFailure: true },
  );
  t.true(runs >= 24);
});

test("two builds differing only in the SBOM formats (SPDX alone, then SPDX and CycloneDX) into one store each get their own out/", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cache = path.join(root, "cache");
  const spdx: Build = {
    dir: "a",
    file: "sbom.nifty",
    formats: ["rootfs", "sbom"],
    epoch: "0",
    greeting: "hello",
  };
  const both: Build = { ...spdx, formats: ["rootfs", "sbom", "cyclonedx"] };
  // Each order, each into a fresh out/ after the other has filled the store, then over the other's out/.
  for (const [first, second] of [
    [spdx, both],
    [both, spdx],
  ] as const) {
    await run(first, root, cache, path.join(root, "o1"));
    await run(second, root, cache, path.join(root, "o2"));
    await run(second, root, cache, path.join(root, "o1"));
    await run(second, root, path.join(root, `cold-${second.formats.length}`), path.join(root, "o3"));
    for (const out of ["o1", "o2"]) {
      t.deepEqual(
        await namedFor(path.join(root, out), second, shownAs(second)),
        [],
        `${out} for ${second.formats}`,
      );
      const cold = await describeOutputs(path.join(root, "o3"));
      t.deepEqual(await describeOutputs(path.join(root, out)), cold, `${out} as from an empty store`);
    }
  }
});

test("a copied recipe built into a fresh --out after the original writes its own name's files", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cache = path.join(root, "cache");
  const httpd: Build = { dir: "recipes", file: "httpd.nifty", formats: ALL, epoch: "0", greeting: "hello" };
  const web2: Build = { ...httpd, dir: "x", file: "web2.nifty" };
  await run(httpd, root, cache, path.join(root, "out-httpd"));
  await run(web2, root, cache, path.join(root, "o2"));
  t.deepEqual(await namedFor(path.join(root, "o2"), web2, "x/web2.nifty"), []);
  t.is(
    await rootfsDigest(path.join(root, "o2")),
    await rootfsDigest(path.join(root, "out-httpd")),
    "the name does not reach the tree",
  );
});

test("a recipe read from standard input, then the same text from a file, writes the file's name's outputs", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cache = path.join(root, "cache");
  const piped: Build = { dir: "p", file: "-", formats: ALL, epoch: "0", greeting: "hello" };
  const myssh: Build = { ...piped, file: "myssh.nifty" };
  await run(piped, root, cache, path.join(root, "o1"));
  await run(myssh, root, cache, path.join(root, "o2"));
  t.deepEqual(await namedFor(path.join(root, "o1"), piped, "stdin"), []);
  t.deepEqual(await namedFor(path.join(root, "o2"), myssh, "p/myssh.nifty"), []);
});

test("instances of a copied recipe, after the original's, are named for the copy: units, target and what it says", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  await fsp.mkdir(path.join(root, "x"));
  await fsp.writeFile(path.join(root, "ssh.nifty"), RECIPE);
  await fsp.writeFile(path.join(root, "x/myssh.nifty"), RECIPE);
  const ssh = await cli(
    ["instances", "ssh.nifty", "--count", "2", "--cache", "cache", "--out", "i1"],
    root,
    "0",
  );
  t.is(ssh.code, 0, ssh.stderr);
  const myssh = await cli(
    ["instances", "x/myssh.nifty", "--count", "2", "--cache", "cache", "--out", "i2"],
    root,
    "0",
  );
  t.is(myssh.code, 0, myssh.stderr);
  t.deepEqual(
    (await fsp.readdir(path.join(root, "i2/systemd"))).filter((f) => f !== "instances.env").sort(),
    ["myssh.target", "myssh@.service"],
  );
  t.regex(myssh.stdout, /systemctl start myssh\.target/);
  const unit = await fsp.readFile(path.join(root, "i2/systemd/myssh@.service"), "utf8").catch(() => "");
  t.regex(unit, /machine myssh-%i/);
  t.notRegex(unit, /\bssh-%i/);
});

test("the compile cache keys the checked recipe by how the recipe is shown, which names it", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = await openStore(path.join(root, "cache"));
  const recipePath = path.join(root, "web.nifty");
  const options = { args: new Map<string, string>(), strict: false, recipePath };
  const first = await compile(store, { path: "web.nifty", text: RECIPE }, options);
  const second = await compile(store, { path: "web2.nifty", text: RECIPE }, options);
  t.is(first.recipe.name, "web");
  t.is(second.recipe.name, "web2");
  t.is(second.recipe.path, "web2.nifty");
});

/** The store's blobs that are gzip streams: here only the layers' gzip (the recipe writes small text files). */
async function gzipBlobs(cache: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await visit(file);
      else if ((await fsp.readFile(file)).subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))) found.push(file);
    }
  };
  await visit(path.join(cache, "blobs"));
  return found.sort();
}

test("a build whose formats take no gzip leaves the layers uncompressed; an OCI build after it into one store writes what an empty store gives", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cache = path.join(root, "cache");
  const plain: Build = {
    dir: "a",
    file: "gz.nifty",
    formats: ["rootfs", "docker-archive"],
    epoch: "0",
    greeting: "hi",
  };
  const oci: Build = { ...plain, formats: ["rootfs", "oci"] };
  await run(plain, root, cache, path.join(root, "o1"));
  t.deepEqual(await gzipBlobs(cache), [], "rootfs and docker-archive read no gzip, so none is made");
  const plainOut = await describeOutputs(path.join(root, "o1"));

  await run(oci, root, cache, path.join(root, "o2"));
  await run(oci, root, path.join(root, "cold"), path.join(root, "o3"));
  t.deepEqual(await describeOutputs(path.join(root, "o2")), await describeOutputs(path.join(root, "o3")));
  t.is((await gzipBlobs(cache)).length, 2, "each layer's gzip, kept for the next OCI build");

  // The gzip now in the store changes nothing a build without it writes.
  await run(plain, root, cache, path.join(root, "o1"));
  await run(plain, root, cache, path.join(root, "o4"));
  t.deepEqual(await describeOutputs(path.join(root, "o1")), plainOut);
  t.deepEqual(await describeOutputs(path.join(root, "o4")), plainOut);
});

test("a layer damaged in the store since a build without gzip is refused when an OCI build would compress it", async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), "niftyc-keys-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cache = path.join(root, "cache");
  const plain: Build = { dir: "a", file: "gz.nifty", formats: ["rootfs"], epoch: "0", greeting: "hi" };
  await run(plain, root, cache, path.join(root, "o1"));
  // Every tar in the store with a file in it (rootfs.tar and the second layer) gets a byte of its last block changed.
  const blobs = path.join(cache, "blobs");
  for (const file of (await fsp.readdir(blobs, { recursive: true })).map((f) => path.join(blobs, f))) {
    if (!(await fsp.stat(file)).isFile()) continue;
    const bytes = await fsp.readFile(file);
    if (bytes.length < 1024 || bytes.subarray(257, 262).toString() !== "ustar") continue;
    bytes[bytes.length - 1024 - 1]! ^= 0xff;
    await fsp.chmod(file, 0o644);
    await fsp.writeFile(file, bytes);
  }
  const argv = [
    "build",
    "a/gz.nifty",
    "--cache",
    cache,
    "--out",
    path.join(root, "o2"),
    "--format",
    "oci",
    "--arg",
    "GREETING=hi",
  ];
  const r = await cli(argv, root, "0");
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /NIFTY231/);
  t.false(
    await fsp.stat(path.join(root, "o2")).then(
      () => true,
      () => false,
    ),
    "nothing published",
  );
});

test("niftyc's version and the step format start every step's key: a release never replays a step another recorded", (t) => {
  const instruction = {
    kind: "HOSTNAME",
    span: { line: 1, col: 1 },
    name: "nifty",
  } as unknown as Instruction;
  const chain = (first: string) => stepKey(stepKey(first, instruction, []), instruction, ["sha256:0"]);
  t.not(chain(firstKey("linux/amd64", "0.1.0")), chain(firstKey("linux/amd64", "0.1.1")));
  t.is(firstKey(), firstKey("linux/amd64", NIFTYC_VERSION), "the running niftyc's version by default");
  t.not(firstKey("linux/amd64"), firstKey("linux/arm64"));
});
