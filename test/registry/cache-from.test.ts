// What a pulled build cache may change. A real registry on loopback holds a
// cache --cache-to pushed, then an attacker's records beside it; a hostile
// loopback registry answers with malformed artifacts. A build with
// --cache-from must give the clean build's digest, or say why it cannot use
// the cache and build without it: never the attacker's bytes, never a stack.
import test from "ava";
import { execFileSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { openStore } from "../../src/cache/store.ts";
import {
  busyboxRecipe,
  jsonOf,
  niftyc,
  sha256,
  startFixture,
  tempDir,
  writeRecipe,
  type Fixture,
} from "../pipeline/helpers.ts";
import { freePort } from "../support/net.ts";
import { registryUnavailable, requireTools, startRegistry, type Registry } from "./helpers.ts";

const unavailable = registryUnavailable(["docker-registry"]);
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const CACHE = "application/vnd.niftyc.cache.v1";
const RECORDS = "application/vnd.niftyc.cache.records.v1+json";
const BLOB = "application/octet-stream";
const EMPTY = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
};
const env = { SOURCE_DATE_EPOCH: "1700000000" };

let fixture: Fixture | undefined;
let registry: Registry;
let work: string;
let recipe: string;
let clean: string;

test.before(async () => {
  if (unavailable) return;
  fixture = await startFixture();
  work = await tempDir("niftyc-cache-from-");
  registry = await startRegistry(work);
  recipe = await writeRecipe(work, "app", busyboxRecipe(fixture));
  const built = await build("clean", ["--json", "-q"]);
  if (built.code !== 0) throw new Error(built.stderr);
  clean = jsonOf(built).digest;
});

test.after.always(async () => {
  await registry?.stop();
  await fixture?.close();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

/** niftyc build of the recipe into the store and output directory named `name`. */
function build(name: string, args: string[]) {
  const dirs = ["--cache", path.join(work, `cache-${name}`), "--out", path.join(work, `out-${name}`)];
  return niftyc(["build", recipe, ...dirs, ...args], { env });
}

async function putBlob(repo: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  const start = await fetch(`http://${registry.host}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status}`);
  const url = new URL(start.headers.get("location")!, `http://${registry.host}`);
  url.searchParams.set("digest", digest);
  const put = await fetch(url, { method: "PUT", body: bytes, headers: { "content-type": BLOB } });
  if (put.status !== 201) throw new Error(`upload: HTTP ${put.status} ${await put.text()}`);
  return { digest, size: bytes.length };
}

function listing(tarball: string): string {
  return execFileSync("tar", ["-tvf", tarball], { encoding: "utf8" });
}

test.serial(
  "a cache whose step records were rewritten (attacker bytes, a setuid-root file) gives the clean " +
    "build's digest: records from an artifact are not trusted",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(180_000);
    const ref = `${registry.host}/poisoned:main`;
    const a = await build("a", ["--cache-to", ref, "--insecure", "--json"]);
    t.is(a.code, 0, a.stderr);
    t.is(jsonOf(a).digest, clean);

    // The attacker, who may push to the cache's repository, adds to every step's record a
    // setuid-root shell of their own and new bytes for /etc/os-release, and tags the result.
    const store = await openStore(path.join(work, "cache-a"));
    const evil = Buffer.from("#!/bin/sh\nexec /bin/sh -p\n");
    const osRelease = Buffer.from('NAME="owned"\n');
    const file = (bytes: Buffer, mode: number) => ({
      type: "file",
      mode,
      uid: 0,
      gid: 0,
      content: { digest: sha256(bytes), size: bytes.length, inline: bytes.toString("base64") },
    });
    const steps: Record<string, unknown> = {};
    for (const step of jsonOf(a).steps) {
      const raw = await store.readJson<{ format: number; record: { changes: unknown[] } }>("steps", step.key);
      t.truthy(raw, `a record for step ${step.index}`);
      raw!.record.changes.push(
        ["/bin/evil", file(evil, 0o4755)],
        ["/etc/os-release", file(osRelease, 0o644)],
      );
      steps[step.key] = raw;
    }
    const records = await putBlob("poisoned", Buffer.from(JSON.stringify({ steps })));
    const manifestUrl = `http://${registry.host}/v2/poisoned/manifests/main`;
    const got = await fetch(manifestUrl, { headers: { accept: MANIFEST } });
    const pushed = (await got.json()) as { layers: Array<{ mediaType: string }> };
    const layers = [
      ...pushed.layers.filter((l) => l.mediaType !== RECORDS),
      { mediaType: RECORDS, ...records },
    ];
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      artifactType: CACHE,
      config: EMPTY,
      layers,
    });
    const put = await fetch(manifestUrl, {
      method: "PUT",
      body: manifest,
      headers: { "content-type": MANIFEST },
    });
    t.is(put.status, 201, await put.text());

    // Another machine, an empty store, offline: everything comes from the artifact.
    const hits = fixture!.server.hits();
    const b = await build("b", ["--cache-from", ref, "--insecure", "--offline", "--json"]);
    t.is(b.code, 0, b.stderr);
    t.is(jsonOf(b).digest, clean, "the digest of a clean build");
    t.is(
      fixture!.server.hits(),
      hits,
      "nothing fetched from the inputs' server: the blobs came from the cache",
    );
    t.true(
      jsonOf(b).steps.every((s) => !s.reused),
      "every step ran here, from the pulled blobs",
    );
    const files = listing(path.join(work, "out-b", "rootfs.tar"));
    t.notRegex(files, /bin\/evil/);
    t.notRegex(files, /rws/, "no setuid file");
    t.regex(b.stderr, /holds step records, which are not trusted.*NIFTY722/);
    const rootfs = path.join(work, "out-b", "rootfs.tar");
    const shipped = execFileSync("tar", ["-xOf", rootfs, "etc/os-release"], { encoding: "utf8" });
    t.is(shipped, 'NAME="Nifty test"\nID=nifty\n');
  },
);

test.serial(
  "--cache-to pushes blobs only: the artifact holds no step records for another machine to trust",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(180_000);
    const ref = `${registry.host}/blobs-only:main`;
    const a = await build("c", ["--cache-to", ref, "--insecure", "-q"]);
    t.is(a.code, 0, a.stderr);
    const got = await fetch(`http://${registry.host}/v2/blobs-only/manifests/main`, {
      headers: { accept: MANIFEST },
    });
    const manifest = (await got.json()) as { artifactType: string; layers: Array<{ mediaType: string }> };
    t.is(manifest.artifactType, CACHE);
    t.true(manifest.layers.length > 0);
    t.deepEqual([...new Set(manifest.layers.map((l) => l.mediaType))], [BLOB]);
  },
);

/** A registry that answers each tag of `hostile` with what the test says, and any blob from `blobs`. */
async function hostileRegistry(
  manifests: Map<string, string | Buffer>,
  blobs: Map<string, Buffer>,
): Promise<{ host: string; close(): Promise<void> }> {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    const m = /^\/v2\/hostile\/(manifests|blobs)\/([^/?]+)$/.exec(req.url ?? "");
    const body = m?.[1] === "manifests" ? manifests.get(m[2]!) : m ? blobs.get(m[2]!) : undefined;
    if (body === undefined) {
      const errors = { errors: [{ code: "NOT_FOUND", message: "no such thing" }] };
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify(errors));
      return;
    }
    res.writeHead(200, {
      "content-type": m![1] === "manifests" ? MANIFEST : BLOB,
      "content-length": body.length,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((done) => server.listen(port, "127.0.0.1", done));
  const close = () => new Promise<void>((done) => server.close(() => done()));
  return { host: `127.0.0.1:${port}`, close };
}

test.serial(
  "a malformed cache artifact is a warning with a code and a hint, and the build goes on without it",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(300_000);
    const good = Buffer.from("a blob the cache holds\n");
    const absent = sha256(Buffer.from("a blob nobody serves\n"));
    const other = Buffer.from("bytes that are not the ones named\n");
    const named = sha256(Buffer.from("the bytes the digest names\n"));
    const blobs = new Map([
      [sha256(good), good],
      [named, other],
      [sha256(Buffer.from("null")), Buffer.from("null")],
    ]);
    const cache = (layers: unknown, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        artifactType: CACHE,
        config: EMPTY,
        layers,
        ...extra,
      });
    const indexType = "application/vnd.oci.image.index.v1+json";
    const index = { schemaVersion: 2, mediaType: indexType, artifactType: CACHE, manifests: [] };
    const imageLayer = "application/vnd.oci.image.layer.v1.tar+gzip";
    const blob = (digest: string, size: number, mediaType = BLOB) => ({ mediaType, digest, size });
    const cases: Array<[tag: string, manifest: string | Buffer, code: RegExp, why: RegExp]> = [
      ["not-json", '{"layers": [', /NIFTY720/, /not JSON/],
      ["null", "null", /NIFTY720/, /not a JSON object/],
      ["null-layers", cache(null), /NIFTY720/, /layers/],
      ["null-layer", cache([null]), /NIFTY720/, /layer 1/],
      ["layer-without-size", cache([{ mediaType: BLOB, digest: sha256(good) }]), /NIFTY720/, /layer 1/],
      ["image-layer", cache([blob(sha256(good), good.length, imageLayer)]), /NIFTY720/, /media type/],
      ["index", JSON.stringify(index), /NIFTY720/, /media type/],
      ["bad-digest", cache([blob("sha256:../../../etc/passwd", 1)]), /NIFTY720/, /digest/],
      ["huge", cache([], { annotations: { pad: "x".repeat(5 * 1024 * 1024) } }), /NIFTY720/, /over 4 MiB/],
      [
        "missing-blob",
        cache([blob(sha256(good), good.length), blob(absent, 10)]),
        /NIFTY721/,
        /not in the registry/,
      ],
      ["wrong-bytes", cache([blob(named, other.length)]), /NIFTY721/, /do not match/],
      ["longer-than-said", cache([blob(sha256(good), 5)]), /NIFTY721/, /digest or size/],
      ["over-the-limit", cache([blob(sha256(good), 9 * 1024 ** 3)]), /NIFTY721/, /over the download limit/],
      ["null-records", cache([blob(sha256(Buffer.from("null")), 4, RECORDS)]), /NIFTY722/, /not trusted/],
    ];
    // A reference by digest gets another manifest (a valid one): not used either.
    const pinned = sha256(Buffer.from(cache([])));
    const served = new Map<string, string | Buffer>(cases.map(([tag, manifest]) => [tag, manifest]));
    served.set(pinned, cache([blob(sha256(good), good.length)]));
    const hostile = await hostileRegistry(served, blobs);
    t.teardown(() => hostile.close());
    for (const [tag, , code, why] of cases) {
      const r = await build(`hostile-${tag}`, [
        "--cache-from",
        `${hostile.host}/hostile:${tag}`,
        "--insecure",
        "--json",
      ]);
      t.is(r.code, 0, `${tag}: ${r.stderr}`);
      t.regex(r.stderr, code, tag);
      t.regex(r.stderr, why, tag);
      t.regex(r.stderr, /hint: /, tag);
      t.notRegex(r.stderr, /internal error|\n\s+at /, `${tag}: no stack`);
      t.is(jsonOf(r).digest, clean, `${tag}: the clean build's digest`);
    }
    const byDigestFrom = ["--cache-from", `${hostile.host}/hostile@${pinned}`, "--insecure"];
    const byDigest = await build("hostile-by-digest", byDigestFrom);
    t.is(byDigest.code, 0, byDigest.stderr);
    t.regex(
      byDigest.stderr,
      /its manifest is sha256:[0-9a-f]{64}, not the sha256:[0-9a-f]{64} asked for.*NIFTY720/,
    );
    t.false(await openStore(path.join(work, "cache-hostile-by-digest")).then((s) => s.has(sha256(good))));

    // --strict: a cache that cannot be used fails the build, as any warning does, before a step runs.
    const strictFrom = ["--cache-from", `${hostile.host}/hostile:null`, "--insecure", "--strict", "--json"];
    const strict = await build("hostile-strict", strictFrom);
    t.is(strict.code, 1, strict.stderr);
    t.regex(strict.stderr, /error: the cache .* cannot be used: its manifest is not a JSON object.*NIFTY720/);
    t.deepEqual(
      JSON.parse(strict.stdout).diagnostics.map((d: { code: string }) => d.code),
      ["NIFTY720"],
    );
    await t.throwsAsync(fsp.access(path.join(work, "out-hostile-strict")));

    // What the cache held and matched its digest was kept; nothing else was.
    const store = await openStore(path.join(work, "cache-hostile-missing-blob"));
    t.true(await store.has(sha256(good)));
    t.false(await store.has(named));
    t.false(await openStore(path.join(work, "cache-hostile-wrong-bytes")).then((s) => s.has(named)));
    for (const tag of ["longer-than-said", "over-the-limit"]) {
      t.false(await openStore(path.join(work, `cache-hostile-${tag}`)).then((s) => s.has(sha256(good))), tag);
    }
  },
);
