// niftyc verify of a multi-platform build (linux/amd64 and linux/arm64, an OCI image index)
// against a real registry (TLS, htpasswd): the build's provenance.json names the index and every
// platform's image, each platform's own names that platform; push attaches the first to the index
// and each platform's to its image. verify rebuilds every platform and says "reproduced" for the
// pushed index and for the build directory; an index whose arm64 image was built from a swapped
// FETCH, under the honest provenance, is named at that platform's file, and amd64 is not named.
import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { tempDir } from "../pipeline/helpers.ts";
import { registryUnavailable, requireTools } from "../registry/helpers.ts";
import {
  PASSWORD,
  access,
  buildInOwnStore,
  curl,
  forgeProvenance,
  listedReferrers,
  niftyc,
  serveFiles,
  setUp,
  tearDown,
  type Setup,
} from "./helpers.ts";

const unavailable = registryUnavailable(["docker-registry", "openssl", "htpasswd", "curl"]);
let s: Setup;
let server: http.Server;
let base: string;
const FILES: Record<string, Buffer> = {
  "/conf-amd64": Buffer.from("machine=amd64\n"),
  "/conf-arm64": Buffer.from("machine=arm64\n"),
  "/conf-arm64-swapped": Buffer.from("machine=arm64, swapped\n"),
};
const hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const recipeText = (arm64: string) =>
  `FETCH conf ${base}/conf-amd64 sha256:${hex(FILES["/conf-amd64"]!)} TO /etc/tool.conf PLATFORM linux/amd64\n` +
  `FETCH conf ${base}${arm64} sha256:${hex(FILES[arm64]!)} TO /etc/tool.conf PLATFORM linux/arm64\n` +
  "FILE /etc/motd <<EOF\nhello\nEOF\n";

test.before(async () => {
  if (unavailable) return;
  s = await setUp(await tempDir("niftyc-verify-platforms-"));
  ({ server, base } = await serveFiles(FILES));
});

test.after.always(() => tearDown(s, server));

interface Statement {
  subject: Array<{ name: string; digest: { sha256: string } }>;
  predicate: { buildDefinition: { externalParameters: { platforms: string[] } } };
}
const readJson = async <T>(file: string) => JSON.parse(await fsp.readFile(file, "utf8")) as T;

/** The recipe in its own directory, built for both platforms into its own store; the build directory. */
const build = (dir: string, arm64: string) =>
  buildInOwnStore(s, dir, recipeText(arm64), ["--platform", "linux/amd64,linux/arm64"]);

async function push(out: string, tag: string): Promise<string> {
  const r = await niftyc(s, ["push", out, `${s.registry.host}/team/multi:${tag}`, ...access(s), "--json"], {
    input: PASSWORD,
  });
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { digest: string }).digest;
}

/** The in-toto referrer of `subject` in the registry (the tag schema of distribution 2.8). */
function referrer(subject: string): Buffer {
  const listed = listedReferrers(s, "team/multi", subject);
  const entry = listed.manifests.find((m) => m.artifactType === "application/vnd.in-toto+json")!;
  const artifact = JSON.parse(curl(s, `/v2/team/multi/manifests/${entry.digest}`).toString()) as {
    layers: Array<{ digest: string }>;
  };
  return curl(s, `/v2/team/multi/blobs/${artifact.layers[0]!.digest}`);
}

async function checkProvenance(t: ExecutionContext, honest: string, index: string): Promise<void> {
  const top = await readJson<Statement>(path.join(honest, "provenance.json"));
  t.deepEqual(top.predicate.buildDefinition.externalParameters.platforms, ["linux/amd64", "linux/arm64"]);
  t.deepEqual(
    top.subject.map((x) => x.name),
    ["app", "linux-amd64/app", "linux-amd64/rootfs.tar", "linux-arm64/app", "linux-arm64/rootfs.tar"],
  );
  t.is(`sha256:${top.subject[0]!.digest.sha256}`, index);
  t.deepEqual(referrer(index), await fsp.readFile(path.join(honest, "provenance.json")));
  const arm64 = await readJson<Statement>(path.join(honest, "linux-arm64", "provenance.json"));
  t.deepEqual(arm64.predicate.buildDefinition.externalParameters.platforms, ["linux/arm64"]);
  const arm64Image = `sha256:${top.subject[3]!.digest.sha256}`;
  t.deepEqual(referrer(arm64Image), await fsp.readFile(path.join(honest, "linux-arm64", "provenance.json")));
}

test.serial(
  "verify of a pushed linux/amd64,linux/arm64 index and of its build directory: every platform rebuilt, reproduced; an arm64 input swapped under the honest provenance is named at its file",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const honest = await build("honest", "/conf-arm64");
    const index = await push(honest, "1");
    await checkProvenance(t, honest, index);

    const recipe = path.join(s.work, "honest", "app.nifty");
    const verify = (target: string) =>
      niftyc(s, ["verify", target, "--recipe", recipe, ...access(s).slice(0, 5)], { input: PASSWORD });
    const ok = await verify(`${s.registry.host}/team/multi:1`);
    t.is(ok.code, 0, ok.stderr);
    t.is(ok.stdout, `reproduced: ${index}\n`);
    const okDir = await verify(honest);
    t.is(okDir.code, 0, okDir.stderr);
    t.is(okDir.stdout, `reproduced: ${index}\n`);

    // The arm64 image built from another file, with the honest provenance but its own subjects.
    const tampered = await build("tampered", "/conf-arm64-swapped");
    await forgeProvenance(honest, tampered);
    await push(tampered, "tampered");
    const a = FILES["/conf-arm64-swapped"]!;
    const b = FILES["/conf-arm64"]!;
    const named = new RegExp(
      "^not reproduced: sha256:[0-9a-f]{64} \\(the rebuild's index is " +
        `${index}\\)\\n  linux/arm64: sha256:[0-9a-f]{64} differs from the rebuild sha256:[0-9a-f]{64} first at /etc/tool.conf: ` +
        `the original is file, ${a.length} bytes, mode 0755, sha256:${hex(a)}; the rebuild is file, ${b.length} bytes, mode 0755, sha256:${hex(b)}\\n$`,
    );
    for (const target of [`${s.registry.host}/team/multi:tampered`, tampered]) {
      const caught = await verify(target);
      t.is(caught.code, 1, caught.stderr);
      t.regex(caught.stdout, named, target);
      t.false(caught.stdout.includes("linux/amd64"), target);
      t.false(/\n\s+at /.test(caught.stderr));
    }
  },
);
