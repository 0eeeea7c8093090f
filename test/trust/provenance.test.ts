// Provenance and niftyc verify against a real registry (TLS, htpasswd): the
// pushed image's in-toto referrer parses as a Statement v1 with the SLSA v1
// predicate and names the recipe, lock-free inputs, --arg values, the secrets'
// names only, and each FETCH by digest; two builds of the same inputs write the
// same bytes, and a swapped FETCH changes them. verify rebuilds in a fresh store
// (offline from --cache-from with the file server gone) and says "reproduced";
// an image whose FETCHed file was swapped under an honest provenance is named
// at that file; a signature by another key and a recipe that is not the one
// named are refused with their codes.
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
const TOOL_A = Buffer.from("#!/bin/sh\necho honest tool\n");
const TOOL_B = Buffer.from("#!/bin/sh\necho swapped tool, longer\n");
const hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const recipeText = (file: string, bytes: Buffer) =>
  `ARG GREETING=hello\nFETCH tool ${base}/files/${file} sha256:${hex(bytes)} TO /usr/bin/tool MODE 0755\n` +
  "FILE /etc/motd <<EOF\n${GREETING}\nEOF\nUSER luser SHELL /usr/bin/tool PASSWORD secret:note\n";

test.before(async () => {
  if (unavailable) return;
  s = await setUp(await tempDir("niftyc-provenance-"));
  ({ server, base } = await serveFiles({ "/files/tool-a": TOOL_A, "/files/tool-b": TOOL_B }));
});

test.after.always(() => tearDown(s, server));

interface Statement {
  _type: string;
  predicateType: string;
  subject: Array<{ name: string; digest: { sha256: string } }>;
  predicate: {
    buildDefinition: {
      externalParameters: Record<string, unknown>;
      resolvedDependencies: Array<{ name: string; uri?: string; digest: { sha256: string } }>;
    };
  };
}

/** Write the recipe in its own directory and build it into a fresh store; the build directory. */
async function build(dir: string, file: string, bytes: Buffer, extra: string[] = []): Promise<string> {
  await fsp.writeFile(path.join(s.work, "note.txt"), "do not print me\n");
  const note = `note=${path.join(s.work, "note.txt")}`;
  const args = ["--arg", "GREETING=hi", "--secret", note, ...extra];
  return buildInOwnStore(s, dir, recipeText(file, bytes), args, PASSWORD);
}

test.serial(
  "provenance.json: in-toto v1 with the SLSA v1 predicate; the same bytes from two builds; another FETCHed file changes it",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const one = await build("same-1", "tool-a", TOOL_A);
    const two = await build("same-1", "tool-a", TOOL_A);
    const bytes = await fsp.readFile(path.join(one, "provenance.json"));
    await fsp.rm(path.join(s.work, "same-1", "cache"), { recursive: true });
    const fresh = await build("same-1", "tool-a", TOOL_A);
    t.deepEqual(await fsp.readFile(path.join(two, "provenance.json")), bytes);
    t.deepEqual(
      await fsp.readFile(path.join(fresh, "provenance.json")),
      bytes,
      "a fresh store writes the same bytes",
    );
    const p = JSON.parse(bytes.toString()) as Statement;
    t.is(p._type, "https://in-toto.io/Statement/v1");
    t.is(p.predicateType, "https://slsa.dev/provenance/v1");
    const built = JSON.parse(await fsp.readFile(path.join(one, "build.json"), "utf8")) as { digest: string };
    t.true(p.subject.some((x) => x.name === "rootfs.tar" && `sha256:${x.digest.sha256}` === built.digest));
    const params = p.predicate.buildDefinition.externalParameters;
    t.deepEqual(params.args, { GREETING: "hi" });
    t.deepEqual(params.secrets, [{ name: "note", used: true }]);
    t.false(bytes.toString().includes("do not print me"), "a secret's value is never in it");
    t.deepEqual(params.platforms, ["linux/amd64"]);
    t.is(
      (params.recipe as { digest: { sha256: string } }).digest.sha256,
      hex(Buffer.from(recipeText("tool-a", TOOL_A))),
    );
    const fetch = p.predicate.buildDefinition.resolvedDependencies.find((d) => d.name === "tool")!;
    t.deepEqual(fetch.digest, { sha256: hex(TOOL_A) });
    t.is(fetch.uri, `${base}/files/tool-a`);
    const swapped = await build("same-2", "tool-b", TOOL_B);
    // niftyc verify of a build directory: its provenance.json, the recipe it names, a fresh store.
    const recipe = path.join(s.work, "same-1", "app.nifty");
    const note = `note=${path.join(s.work, "note.txt")}`;
    const verified = await niftyc(s, ["verify", fresh, "--recipe", recipe, "--secret", note]);
    t.is(verified.code, 0, verified.stderr);
    t.is(verified.stdout, `reproduced: sha256:${p.subject[0]!.digest.sha256}\n`);
    const other = JSON.parse(await fsp.readFile(path.join(swapped, "provenance.json"), "utf8")) as Statement;
    t.deepEqual(other.predicate.buildDefinition.resolvedDependencies.find((d) => d.name === "tool")!.digest, {
      sha256: hex(TOOL_B),
    });
  },
);

/** The provenance is a referrer of the pushed image: listed in the sha256-<hex> tag, its layer the file. */
async function providedReferrer(t: ExecutionContext, honest: string): Promise<string> {
  const index = JSON.parse(await fsp.readFile(path.join(honest, "oci", "index.json"), "utf8")) as {
    manifests: Array<{ digest: string; artifactType?: string }>;
  };
  const image = index.manifests.find((m) => m.artifactType === undefined)!.digest;
  const referrers = listedReferrers(s, "team/app", image);
  const listed = referrers.manifests.find((m) => m.artifactType === "application/vnd.in-toto+json");
  t.truthy(listed, "the provenance is a referrer of the image");
  const artifact = JSON.parse(curl(s, `/v2/team/app/manifests/${listed!.digest}`).toString()) as {
    layers: Array<{ digest: string }>;
    subject: { digest: string };
  };
  t.is(artifact.subject.digest, image);
  t.deepEqual(
    curl(s, `/v2/team/app/blobs/${artifact.layers[0]!.digest}`),
    await fsp.readFile(path.join(honest, "provenance.json")),
  );

  return image;
}

/** An image built from a swapped file, pushed with the honest build's provenance but its own subjects. */
async function pushTampered(honest: string): Promise<void> {
  await fsp.mkdir(path.join(s.work, "tampered"));
  await fsp.writeFile(path.join(s.work, "tampered", "app.nifty"), recipeText("tool-b", TOOL_B));
  server.listen(Number(new URL(base).port), "127.0.0.1");
  const tampered = await build("tampered", "tool-b", TOOL_B);
  await forgeProvenance(honest, tampered);
  const pushed = await niftyc(s, ["push", tampered, `${s.registry.host}/team/app:tampered`, ...access(s)], {
    input: PASSWORD,
  });
  if (pushed.code !== 0) throw new Error(pushed.stderr);
}

/** Two key pairs in keys/; the honest image signed with "signer". */
async function signHonest(t: ExecutionContext): Promise<string> {
  const keys = path.join(s.work, "keys");
  await fsp.mkdir(keys);
  for (const k of ["signer", "other"])
    t.is((await niftyc(s, ["keygen-signing", path.join(keys, k), "--no-passphrase"])).code, 0);
  const signed = await niftyc(
    s,
    [
      "sign",
      `${s.registry.host}/team/app:1`,
      "--key",
      path.join(keys, "signer.key"),
      ...access(s).slice(0, 5),
    ],
    { input: PASSWORD },
  );
  t.is(signed.code, 0, signed.stderr);
  return keys;
}

test.serial(
  "niftyc verify: the pushed image is reproduced offline from --cache-from; a swapped FETCH is named at its file; another key and another recipe are refused",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const honest = await build("honest", "tool-a", TOOL_A, [
      "--push",
      `${s.registry.host}/team/app:1`,
      "--cache-to",
      `${s.registry.host}/team/cache:app`,
      ...access(s).slice(0, 5),
    ]);
    const keys = await signHonest(t);

    const image = await providedReferrer(t, honest);

    // Reproduced, offline, with the file server gone: every download from the shared cache.
    server.close();
    const recipe = path.join(s.work, "honest", "app.nifty");
    const note = `note=${path.join(s.work, "note.txt")}`;
    const verify = (ref: string, extra: string[] = []) =>
      niftyc(s, ["verify", ref, "--recipe", recipe, "--secret", note, ...access(s).slice(0, 5), ...extra], {
        input: PASSWORD,
      });
    const ok = await verify(`${s.registry.host}/team/app:1`, [
      "--cache-from",
      `${s.registry.host}/team/cache:app`,
      "--offline",
      "--key",
      path.join(keys, "signer.pub"),
    ]);
    t.is(ok.code, 0, ok.stderr);
    t.is(ok.stdout, `reproduced: ${image}\n`);
    t.regex(ok.stderr, /signature: verified with/);

    const otherKey = await verify(`${s.registry.host}/team/app:1`, [
      "--key",
      path.join(keys, "other.pub"),
      "--offline",
    ]);
    t.is(otherKey.code, 1);
    t.regex(
      otherKey.stderr,
      /has no signature by the key .*other\.pub: the signature does not verify with this key \[NIFTY734\]/,
    );

    await pushTampered(honest);
    server.close();
    const caught = await verify(`${s.registry.host}/team/app:tampered`, [
      "--cache-from",
      `${s.registry.host}/team/cache:app`,
      "--offline",
    ]);
    t.is(caught.code, 1, caught.stderr);
    t.regex(
      caught.stdout,
      new RegExp(
        `^not reproduced: sha256:[0-9a-f]{64} differs from the rebuild ${image} first at /usr/bin/tool: ` +
          `the original is file, ${TOOL_B.length} bytes, mode 0755, sha256:${hex(TOOL_B)}; the rebuild is file, ${TOOL_A.length} bytes, mode 0755, sha256:${hex(TOOL_A)}\\n$`,
      ),
    );

    // A recipe that is not the one the provenance names.
    const wrong = await niftyc(
      s,
      [
        "verify",
        `${s.registry.host}/team/app:1`,
        "--recipe",
        path.join(s.work, "tampered", "app.nifty"),
        ...access(s).slice(0, 5),
      ],
      { input: PASSWORD },
    );
    t.is(wrong.code, 1);
    t.regex(
      wrong.stderr,
      /the recipe .*app\.nifty is sha256:[0-9a-f]{64}, but the provenance names sha256:[0-9a-f]{64} \[NIFTY270\]/,
    );
    t.false(/\n\s+at /.test(wrong.stderr + caught.stderr + otherKey.stderr));
  },
);
