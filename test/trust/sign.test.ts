// push --sign against a real registry (TLS, htpasswd): the signature sits where
// cosign and containers/image look (tag sha256-<hex>.sig, an OCI manifest with a
// simple-signing layer and the base64 signature in its annotation); openssl
// verifies it over the payload's bytes with the .pub and refuses it with another
// key; skopeo with a sigstoreSigned policy finds it and refuses an unsigned
// image. Debian 12's skopeo and podman are built with sigstore verification
// disabled ("Debian-local change: sigstore disabled"), so there skopeo's answer
// for a signed image is that refusal, after it found and fetched the signature.
import test from "ava";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { tempDir } from "../pipeline/helpers.ts";
import { registryUnavailable, requireTools, startFakeRegistry } from "../registry/helpers.ts";
import {
  PASSWORD,
  access,
  curl,
  niftyc,
  opensslVerifies,
  setUp,
  skopeoCopy,
  tearDown,
  type Setup,
} from "./helpers.ts";

const unavailable = registryUnavailable(["docker-registry", "skopeo", "openssl", "htpasswd", "curl"]);
let s: Setup;
let out: string;

test.before(async () => {
  if (unavailable) return;
  s = await setUp(await tempDir("niftyc-sign-"));
  const recipe = path.join(s.work, "small.nifty");
  await fsp.writeFile(recipe, "FILE /etc/os-release <<EOF\nID=nifty\nEOF\n");
  out = path.join(s.work, "out");
  const built = await niftyc(s, ["build", recipe, "--cache", s.cache, "--out", out, "-q"]);
  if (built.code !== 0) throw new Error(built.stderr);
});

test.after.always(() => tearDown(s));

async function keygen(prefix: string, passphrase?: string) {
  const args = [
    "keygen-signing",
    path.join(s.work, prefix),
    ...(passphrase ? ["--key-passphrase", "env:KEY_PASS"] : ["--no-passphrase"]),
  ];
  const r = await niftyc(s, args, { env: passphrase ? { KEY_PASS: passphrase } : {} });
  if (r.code !== 0) throw new Error(r.stderr);
  return { key: path.join(s.work, `${prefix}.key`), pub: path.join(s.work, `${prefix}.pub`) };
}

interface SigManifest {
  mediaType: string;
  layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }>;
}

test.serial(
  "push --sign with an encrypted key: cosign's tag layout, a payload openssl verifies with the .pub and not with another key; skopeo finds it, and refuses an unsigned image",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const { key, pub } = await keygen("signer", "key-pass-phrase-never-shown");
    const other = await keygen("other");
    t.regex(await fsp.readFile(key, "utf8"), /BEGIN ENCRYPTED SIGSTORE PRIVATE KEY/);
    t.is((await fsp.stat(key)).mode & 0o777, 0o600);
    const ref = `${s.registry.host}/team/signed:1`;
    const pushed = await niftyc(
      s,
      ["push", out, ref, ...access(s), "--sign", key, "--key-passphrase", "env:KEY_PASS", "--json"],
      { input: PASSWORD, env: { KEY_PASS: "key-pass-phrase-never-shown" } },
    );
    t.is(pushed.code, 0, pushed.stderr);
    t.false(pushed.stderr.includes("key-pass-phrase-never-shown"));
    const { digest, signature } = JSON.parse(pushed.stdout) as { digest: string; signature: string };
    const tag = `${digest.replace(":", "-")}.sig`;
    t.is(signature, `${s.registry.host}/team/signed:${tag}`);
    const manifest = JSON.parse(curl(s, `/v2/team/signed/manifests/${tag}`).toString()) as SigManifest;
    t.is(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
    t.is(manifest.layers.length, 1);
    const layer = manifest.layers[0]!;
    t.is(layer.mediaType, "application/vnd.dev.cosign.simplesigning.v1+json");
    const payload = curl(s, `/v2/team/signed/blobs/${layer.digest}`);
    t.deepEqual(JSON.parse(payload.toString()), {
      critical: {
        identity: { "docker-reference": `${s.registry.host}/team/signed` },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: { creator: "niftyc 0.1.0" },
    });
    const sig = layer.annotations["dev.cosignproject.cosign/signature"]!;
    t.true(await opensslVerifies(s.work, pub, payload, sig), "openssl verifies the signature with the .pub");
    t.false(await opensslVerifies(s.work, other.pub, payload, sig), "and refuses it with another key");

    // Signing again with the same key adds nothing; another key adds its own layer.
    const again = await niftyc(
      s,
      [
        "sign",
        ref,
        ...access(s).filter((a) => a !== "--cache" && a !== s.cache),
        "--key",
        key,
        "--key-passphrase",
        "env:KEY_PASS",
      ],
      { input: PASSWORD, env: { KEY_PASS: "key-pass-phrase-never-shown" } },
    );
    t.is(again.code, 0, again.stderr);
    t.regex(again.stderr, /already there/);

    // skopeo: the signed image's signature is found and fetched; the unsigned one has none.
    const signed = await skopeoCopy(s, ref, pub, true);
    t.log("skopeo, signed:", signed.stderr.trim().split("\n").at(-1));
    t.regex(
      signed.stderr,
      new RegExp(`Looking for sigstore attachments in ${s.registry.host}/team/signed:${tag}`),
    );
    t.regex(signed.stderr, /Found a sigstore attachment manifest with 1 layers/);
    t.regex(signed.stderr, new RegExp(`Fetching sigstore attachment 1/1: ${layer.digest}`));
    // A skopeo built with sigstore accepts it; Debian's refuses every sigstore signature, having found it.
    if (signed.code !== 0)
      t.regex(signed.stderr, /Source image rejected: Debian-local change: sigstore disabled/);
    const unsignedRef = `${s.registry.host}/team/unsigned:1`;
    t.is((await niftyc(s, ["push", out, unsignedRef, ...access(s)], { input: PASSWORD })).code, 0);
    const unsigned = await skopeoCopy(s, unsignedRef, pub);
    t.log("skopeo, unsigned:", unsigned.stderr.trim());
    t.not(unsigned.code, 0);
    t.regex(unsigned.stderr, /A signature was required, but no signature exists/);
    t.is((await skopeoCopy(s, unsignedRef, undefined)).code, 0, "the same image without the policy copies");
  },
);

test.serial(
  "a world-readable key, a wrong passphrase, a missing one, a malformed cosign key, an RSA key: clear errors before anything is pushed",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const { key } = await keygen("hostile", "right-passphrase");
    const ref = `${s.registry.host}/team/hostile:1`;
    const push = (k: string, env: Record<string, string> = {}, extra: string[] = []) =>
      niftyc(s, ["push", out, ref, ...access(s), "--sign", k, ...extra], { input: PASSWORD, env });
    const noStack = (r: { stderr: string }) => t.false(/\n\s+at |internal error/.test(r.stderr), r.stderr);

    await fsp.chmod(key, 0o644);
    const open = await push(key, { P: "right-passphrase" }, ["--key-passphrase", "env:P"]);
    t.is(open.code, 1);
    t.regex(
      open.stderr,
      /the signing key .*hostile\.key may be read by other users \(mode 0644\) \[NIFTY730\]\n  hint: chmod 600/,
    );
    noStack(open);
    await fsp.chmod(key, 0o600);

    const wrong = await push(key, { P: "wrong-passphrase" }, ["--key-passphrase", "env:P"]);
    t.is(wrong.code, 1);
    t.regex(wrong.stderr, /the passphrase for the signing key .* is wrong \[NIFTY732\]/);
    t.false(wrong.stderr.includes("wrong-passphrase"));
    noStack(wrong);
    const none = await push(key);
    t.regex(none.stderr, /is encrypted and no passphrase was given \[NIFTY732\]/);
    noStack(none);

    const cosignFormat = path.join(s.work, "cosign-format.key");
    await fsp.writeFile(
      cosignFormat,
      "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
      { mode: 0o600 },
    );
    const cosign = await push(cosignFormat);
    t.regex(
      cosign.stderr,
      /cosign-format\.key is not a usable signing key: its kdf is not scrypt \[NIFTY731\]/,
    );
    noStack(cosign);
    const rsa = path.join(s.work, "rsa.key");
    const { generateKeyPairSync } = await import("node:crypto");
    await fsp.writeFile(
      rsa,
      generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }),
      { mode: 0o600 },
    );
    const notEc = await push(rsa);
    t.regex(notEc.stderr, /a rsa key, not ECDSA P-256 \[NIFTY731\]/);
    noStack(notEc);
    // Nothing reached the registry: no tag for the repository.
    t.false(s.registry.log().includes("/v2/team/hostile/manifests/1"));
  },
);

test.serial(
  "a registry whose signature tag holds junk: NIFTY733, no stack, nothing pushed over it",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const { key } = await keygen("junk");
    // The image signed: a manifest the registry has, under its own digest.
    const image = JSON.stringify({ schemaVersion: 2, layers: [] });
    const digest = `sha256:${createHash("sha256").update(image).digest("hex")}`;
    for (const body of [
      "this is not JSON",
      JSON.stringify({ layers: "nope" }),
      JSON.stringify({ layers: [{ digest: "sha256:../../x", size: 1 }] }),
    ]) {
      const fake = await startFakeRegistry((req, res) => {
        if (req.method === "GET" && req.url!.endsWith(".sig")) {
          res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
          res.end(body);
          return;
        }
        if (req.method === "GET" && req.url === `/v2/team/app/manifests/${digest}`)
          return void res
            .writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" })
            .end(image);
        res.writeHead(500).end();
      });
      try {
        const r = await niftyc(s, ["sign", `${fake.host}/team/app@${digest}`, "--insecure", "--key", key]);
        t.is(r.code, 1, r.stderr);
        t.regex(
          r.stderr,
          /the signature tag sha256-[0-9a-f]{64}\.sig of 127\.0\.0\.1:\d+\/team\/app is not a cosign signature: .* \[NIFTY733\]/,
        );
        t.false(/\n\s+at /.test(r.stderr));
        t.false(
          fake.seen.some((x) => x.method !== "GET"),
          "nothing was pushed over it",
        );
      } finally {
        await fake.close();
      }
    }
  },
);

test.serial(
  "sign and verify of a tag or digest the registry has no manifest for: NIFTY714, and no signature is pushed",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const { key, pub } = await keygen("absent");
    const pushed = await niftyc(s, ["push", out, `${s.registry.host}/team/absent:1`, ...access(s), "-q"], {
      input: PASSWORD,
    });
    t.is(pushed.code, 0, pushed.stderr);
    const registryFlags = access(s).filter((a) => a !== "--cache" && a !== s.cache);
    const missing = `sha256:${"12".repeat(32)}`;
    for (const [ref, what] of [
      [`${s.registry.host}/team/absent:no-such-tag`, "tag"],
      [`${s.registry.host}/team/absent@${missing}`, "digest"],
    ] as const) {
      const signed = await niftyc(s, ["sign", ref, ...registryFlags, "--key", key], { input: PASSWORD });
      t.is(signed.code, 1, signed.stderr);
      t.true(
        signed.stderr.includes(
          `${ref} is not in the registry: it has no manifest of that ${what} [NIFTY714]`,
        ),
        signed.stderr,
      );
      t.false(/\n\s+at |internal error/.test(signed.stderr), signed.stderr);
      const verified = await niftyc(
        s,
        ["verify", ref, "--recipe", path.join(s.work, "small.nifty"), "--key", pub, ...registryFlags],
        { input: PASSWORD },
      );
      t.is(verified.code, 1, verified.stderr);
      t.regex(verified.stderr, /is not in the registry: .* \[NIFTY714\]/);
    }
    t.notRegex(
      s.registry.log(),
      /"PUT \/v2\/team\/absent\/manifests\/sha256-[0-9a-f]{64}\.sig /,
      "no signature tag was pushed",
    );
  },
);

test.serial(
  "sign against a registry whose Docker-Content-Digest is not its manifest's: NIFTY712, nothing pushed",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const { key } = await keygen("lied-to");
    const manifest = JSON.stringify({ schemaVersion: 2, layers: [] });
    const fake = await startFakeRegistry((req, res) => {
      req.resume();
      if ((req.method === "GET" || req.method === "HEAD") && req.url === "/v2/team/app/manifests/1") {
        res.writeHead(200, {
          "content-type": "application/vnd.oci.image.manifest.v1+json",
          "docker-content-digest": `sha256:${"cd".repeat(32)}`,
        });
        return void res.end(manifest);
      }
      res.writeHead(500).end();
    });
    t.teardown(() => fake.close());
    const r = await niftyc(s, ["sign", `${fake.host}/team/app:1`, "--insecure", "--key", key]);
    t.is(r.code, 1, r.stderr);
    t.regex(
      r.stderr,
      /answer to GET \/v2\/team\/app\/manifests\/1 cannot be read: the manifest it sent is sha256:[0-9a-f]{64}, not sha256:(cd){32} \[NIFTY712\]/,
    );
    t.false(
      fake.seen.some((x) => x.method !== "GET" && x.method !== "HEAD"),
      "nothing was pushed",
    );
  },
);
