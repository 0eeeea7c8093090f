// A shared cache only saves downloads: a --cache-from registry that is down, or that answers
// 503 or nonsense, is a warning (NIFTY720) and the build goes on, giving what a build without
// the cache gives; --strict refuses it as any warning. A wrong reference stays an error.
import test from "ava";
import * as fsp from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { NODE, NIFTYC, baseEnv, tempDir } from "../pipeline/helpers.ts";
import { run, startFakeRegistry } from "./helpers.ts";

const RECIPE = "FILE /etc/os-release <<EOF\nID=cache-down\nEOF\n";

async function project(t: import("ava").ExecutionContext): Promise<string> {
  const work = await tempDir("niftyc-cache-down-");
  t.teardown(() => fsp.rm(work, { recursive: true, force: true }));
  await fsp.writeFile(path.join(work, "app.nifty"), RECIPE);
  return work;
}

const build = (work: string, ...args: string[]) =>
  run(
    NODE,
    [
      NIFTYC,
      "build",
      path.join(work, "app.nifty"),
      "--cache",
      path.join(work, "c"),
      "--format",
      "rootfs",
      ...args,
    ],
    { env: baseEnv({ HOME: work }), timeoutMs: 100_000 },
  );

test("--cache-from a registry answering only 503, or nothing at all: a warning, and the build's own digest", async (t) => {
  t.timeout(180_000);
  const work = await project(t);
  const clean = await build(work, "--out", path.join(work, "clean"));
  t.is(clean.code, 0, clean.stderr);
  const digest = /sha256:[0-9a-f]{64}/.exec(clean.stdout)?.[0];
  t.truthy(digest, clean.stdout);

  const fake = await startFakeRegistry((req, res) => {
    req.resume();
    res.writeHead(503, { "content-length": "0" }).end();
  });
  t.teardown(() => fake.close());
  const down = await build(
    work,
    "--out",
    path.join(work, "o1"),
    "--cache-from",
    `${fake.host}/team/cache:app`,
    "--insecure",
  );
  t.is(down.code, 0, down.stderr);
  t.true(down.stdout.includes(digest!), down.stdout);
  t.regex(
    down.stderr,
    /warning: the cache 127\.0\.0\.1:\d+\/team\/cache:app cannot be used: reading the cache app failed after \d+ attempts: .*HTTP 503 \[NIFTY701\]; building without it \[NIFTY720\]/,
  );
  t.notRegex(down.stderr, /blobs downloaded/);
  const strict = await build(
    work,
    "--out",
    path.join(work, "o2"),
    "--cache-from",
    `${fake.host}/team/cache:app`,
    "--insecure",
    "--strict",
  );
  t.is(strict.code, 1, strict.stderr);
  t.regex(strict.stderr, /error: the cache .* cannot be used: .*\[NIFTY720\]/);

  // A port nothing listens on: the connection is refused at every attempt.
  const closed = createServer();
  const port = await new Promise<number>((done) =>
    closed.listen(0, "127.0.0.1", () => done((closed.address() as { port: number }).port)),
  );
  await new Promise<void>((done) => closed.close(() => done()));
  const refused = await build(
    work,
    "--out",
    path.join(work, "o3"),
    "--cache-from",
    `127.0.0.1:${port}/team/cache:app`,
    "--insecure",
  );
  t.is(refused.code, 0, refused.stderr);
  t.true(refused.stdout.includes(digest!), refused.stdout);
  t.regex(refused.stderr, /cannot be used: .*ECONNREFUSED.* \[NIFTY701\]; building without it \[NIFTY720\]/);
});

test("--cache-from naming an image rather than a cache is still an error (NIFTY709)", async (t) => {
  t.timeout(120_000);
  const work = await project(t);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: `sha256:${"0".repeat(64)}`,
      size: 2,
    },
    layers: [],
  });
  const fake = await startFakeRegistry((req, res) => {
    req.resume();
    res
      .writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": String(manifest.length),
      })
      .end(manifest);
  });
  t.teardown(() => fake.close());
  const r = await build(
    work,
    "--out",
    path.join(work, "o"),
    "--cache-from",
    `${fake.host}/team/app:1`,
    "--insecure",
  );
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /is not a niftyc cache .*\[NIFTY709\]/);
});
