// The layer tarballs are kept by the tree they hold (src/pipeline/layers.ts tarballsKey), not by the
// recipe's steps: a rebuild after an edit that never reaches the tree (LABEL, ENV, EXPOSE, STOPSIGNAL)
// takes them from the store, and writes what an empty store gives. Everything that shapes their
// bytes is in that key: each pair below differs in one such thing only, is built into one store
// in either order, and each build gives what it gives into an empty store.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { describeOutputs, jsonOf, niftyc, useFixture, writeRecipe } from "./helpers.ts";

const files = useFixture(test);

const TREE = `FILE /etc/os-release <<EOF
ID=reuse
EOF
FILE /etc/motd MODE 0644 <<EOF
hello
EOF
DIR /srv MODE 0755
SYMLINK /srv/link /etc/motd
`;

interface Built {
  digest: string;
  stages: string[];
  out: string[];
  /** The layers build.json names. */
  layers: unknown[];
}

let runs = 0;
const LAYERED = "rootfs,oci,docker-archive";

/** Build `text` (named `name`) into `cache`, OCI and docker-archive too by default (they read the layers), with SOURCE_DATE_EPOCH `epoch`. */
async function build(
  name: string,
  text: string,
  cache: string,
  epoch = "0",
  formats = LAYERED,
): Promise<Built> {
  const dir = path.join(files.work, `r${runs++}`);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, "busybox"), files.fixture.busybox.bytes, { mode: 0o755 });
  const recipe = await writeRecipe(dir, name, text);
  const out = path.join(dir, "out");
  // Run from the recipe's directory, so every build.json names the recipe alike.
  const result = await niftyc(
    ["build", path.basename(recipe), "--cache", cache, "--out", out, "--format", formats, "--json"],
    { cwd: dir, env: { SOURCE_DATE_EPOCH: epoch, NIFTY_NO_STAMPS: "1" } },
  );
  if (result.code !== 0) throw new Error(`build ${name} exited ${result.code}:\n${result.stderr}`);
  const json = jsonOf(result) as ReturnType<typeof jsonOf> & { stages: Array<{ name: string }> };
  const { layers } = JSON.parse(await fsp.readFile(path.join(out, "build.json"), "utf8")) as {
    layers: unknown[];
  };
  return {
    digest: json.digest,
    stages: json.stages.map((s) => s.name),
    out: await describeOutputs(out),
    layers,
  };
}

const freshCache = () => path.join(files.work, `cache-${runs++}`);

test("an edit that never reaches the tree takes the tarballs from the store and writes what an empty store gives", async (t) => {
  const cache = freshCache();
  const first = await build("meta", TREE, cache);
  t.true(first.stages.includes("tarballs"));
  const edited = `${TREE}LABEL org.example.edited=yes\nENV GREETING=hi\nEXPOSE 8080/tcp\nSTOPSIGNAL SIGTERM\n`;
  const again = await build("meta", edited, cache);
  t.false(again.stages.includes("tarballs"), `stages: ${again.stages.join(", ")}`);
  t.is(again.digest, first.digest, "the same tree");
  t.deepEqual(again.out, (await build("meta", edited, freshCache())).out);
  // The first recipe again, into the store both filled: unchanged.
  t.deepEqual((await build("meta", TREE, cache)).out, first.out);
});

/** Pairs of recipes (with the epoch) that differ in one thing the tarballs' bytes depend on. */
const busybox = (how: "fetch" | "copy") =>
  how === "fetch"
    ? `FETCH busybox ${files.fixture.url}/files/busybox ${files.fixture.busybox.digest} TO /bin/busybox\n`
    : "COPY busybox /bin/busybox MODE 0755\n";
/** Each text is made when its test runs: the fixture's address is known only then. */
const PAIRS: Array<{
  what: string;
  x: () => [string, string];
  y: () => [string, string];
  sameRootfs?: boolean;
}> = [
  { what: "a file's bytes", x: () => [TREE, "0"], y: () => [TREE.replace("hello", "hullo"), "0"] },
  { what: "a file's mode", x: () => [TREE, "0"], y: () => [TREE.replace("MODE 0644", "MODE 0600"), "0"] },
  {
    what: "a link's target",
    x: () => [TREE, "0"],
    y: () => [TREE.replace("/srv/link /etc/motd", "/srv/link /etc/os-release"), "0"],
  },
  { what: "the epoch", x: () => [TREE, "0"], y: () => [TREE, "1700000000"] },
  {
    what: "which layer a file is in (FETCH puts it in the first, COPY in the second)",
    x: () => [`${busybox("fetch")}${TREE}`, "0"],
    y: () => [`${busybox("copy")}${TREE}`, "0"],
    sameRootfs: true,
  },
];

for (const { what, x: xText, y: yText, sameRootfs } of PAIRS) {
  test(`two trees that differ only in ${what}, built into one store in either order, each give an empty store's outputs`, async (t) => {
    const [x, y] = [xText(), yText()];
    const [alone, shared] = [
      [await build("pair", x[0], freshCache(), x[1]), await build("pair", y[0], freshCache(), y[1])],
      freshCache(),
    ] as const;
    const xy = [await build("pair", x[0], shared, x[1]), await build("pair", y[0], shared, y[1])];
    const shared2 = freshCache();
    const yx = [await build("pair", y[0], shared2, y[1]), await build("pair", x[0], shared2, x[1])];
    t.deepEqual(xy[0]!.out, alone[0]!.out);
    t.deepEqual(xy[1]!.out, alone[1]!.out);
    t.deepEqual(yx[0]!.out, alone[1]!.out);
    t.deepEqual(yx[1]!.out, alone[0]!.out);
    t.notDeepEqual(alone[0]!.out, alone[1]!.out, "the pair's outputs differ");
    // The layer pair proves the layer split is keyed: the same rootfs, other layers.
    if (sameRootfs) t.is(alone[0]!.digest, alone[1]!.digest, "the same rootfs.tar");
  });
}

/** The blobs of a store, by digest. */
const blobsOf = async (cache: string) => new Set(await fsp.readdir(path.join(cache, "blobs", "sha256")));

test("formats that read no layer get rootfs.tar alone; a layered build after it, or before it, into one store gives an empty store's outputs", async (t) => {
  const [rootfsOnly, layered] = ["rootfs,nspawn,systemd", "rootfs,oci"];
  const alone = [
    await build("fmt", TREE, freshCache(), "0", rootfsOnly),
    await build("fmt", TREE, freshCache(), "0", layered),
  ];
  t.is(alone[0]!.digest, alone[1]!.digest, "the same rootfs.tar");
  t.false(
    alone[0]!.out.some((line) => line.startsWith("oci")),
    "no OCI layout asked for",
  );

  // Rootfs first: no layer written; the layered build then writes them, as into an empty store.
  const shared = freshCache();
  const first = await build("fmt", TREE, shared, "0", rootfsOnly);
  t.deepEqual(first.out, alone[0]!.out);
  t.deepEqual(first.layers, [], "build.json names no layer where none was made");
  t.is(alone[1]!.layers.length, 2);
  const beforeLayers = await blobsOf(shared);
  const second = await build("fmt", TREE, shared, "0", layered);
  t.true(second.stages.includes("tarballs"), `the layers written: ${second.stages.join(", ")}`);
  t.deepEqual(second.out, alone[1]!.out);
  const added = [...(await blobsOf(shared))].filter((b) => !beforeLayers.has(b));
  t.true(added.length >= 4, `two layer tars and their gzip, at least: ${added.length} new blobs`);

  // Layered first: the rootfs-only build takes rootfs.tar from the store.
  const shared2 = freshCache();
  t.deepEqual((await build("fmt", TREE, shared2, "0", layered)).out, alone[1]!.out);
  const again = await build("fmt", TREE, shared2, "0", rootfsOnly);
  t.false(again.stages.includes("tarballs"), `stages: ${again.stages.join(", ")}`);
  t.deepEqual(again.out, alone[0]!.out);
});
