// Bearer-token auth as registries with a token service use it: the registry
// (distribution 2.8 with `auth.token`) answers 401 with a Bearer challenge,
// niftyc asks the realm for a token with its scopes and its basic
// credentials, and uses the token. The token server here is small but real:
// it checks the password and signs RS256 JWTs with a key whose certificate
// the registry trusts (x5c header).
import test from "ava";
import { execFileSync } from "node:child_process";
import { createPrivateKey, createSign, X509Certificate } from "node:crypto";
import * as fsp from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { NODE, NIFTYC, baseEnv, tempDir } from "../pipeline/helpers.ts";
import { freePort } from "../support/net.ts";
import { registryUnavailable, requireTools, run, startRegistry, type Registry } from "./helpers.ts";

const USER = "robot";
const PASSWORD = "bearer-Pa55-not-in-any-output";
const unavailable = registryUnavailable(["docker-registry", "skopeo", "openssl"]);
let registry: Registry;
let tokens: http.Server;
let work: string;
const asked: Array<{ scopes: string[]; service: string | null; user: string | undefined }> = [];

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

test.before(async () => {
  if (unavailable) return;
  work = await tempDir("niftyc-push-bearer-");
  const key = path.join(work, "token.key");
  const cert = path.join(work, "token.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=niftyc test token issuer",
    ],
    { stdio: "pipe", timeout: 60_000, killSignal: "SIGKILL" },
  );
  const signer = createPrivateKey(await fsp.readFile(key));
  const der = new X509Certificate(await fsp.readFile(cert)).raw;
  const port = await freePort();
  tokens = http.createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const [user, password] = basic ? Buffer.from(basic, "base64").toString().split(":") : [];
    const scopes = url.searchParams.getAll("scope");
    asked.push({ scopes, service: url.searchParams.get("service"), user });
    if (user !== USER || password !== PASSWORD) {
      res.writeHead(401).end();
      return;
    }
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(":");
      return { type, name, actions: actions!.split(",") };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", x5c: [der.toString("base64")] }));
    const claims = b64url(
      JSON.stringify({
        iss: "niftyc-test-issuer",
        sub: user,
        aud: "niftyc-test",
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: String(asked.length),
        access,
      }),
    );
    const signature = createSign("RSA-SHA256").update(`${header}.${claims}`).sign(signer);
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ token: `${header}.${claims}.${b64url(signature)}`, expires_in: 300 }));
  });
  await new Promise<void>((done) => tokens.listen(port, "127.0.0.1", done));
  registry = await startRegistry(work, {
    token: {
      realm: `http://127.0.0.1:${port}/token`,
      service: "niftyc-test",
      issuer: "niftyc-test-issuer",
      rootCert: cert,
    },
  });
});

test.after.always(async () => {
  await registry?.stop();
  await new Promise((done) => (tokens ? tokens.close(done) : done(undefined)));
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

const niftyc = (args: string[], input?: string) =>
  run(NODE, [NIFTYC, ...args], {
    env: baseEnv({ HOME: work, SOURCE_DATE_EPOCH: "0" }),
    timeoutMs: 180_000,
    ...(input !== undefined ? { input } : {}),
  });

test.serial(
  "a Bearer challenge: niftyc gets a token for repository:<repo>:pull,push with its credentials, pushes, and mounts with a token for both repositories",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const recipe = path.join(work, "tiny.nifty");
    await fsp.writeFile(recipe, "FILE /etc/os-release <<EOF\nID=nifty\nEOF\n");
    const out = path.join(work, "out");
    const cache = path.join(work, "cache");
    const built = await niftyc(["build", recipe, "--cache", cache, "--out", out, "-q"]);
    t.is(built.code, 0, built.stderr);

    const anonymous = await niftyc(["push", out, `${registry.host}/tiny:v1`, "--insecure", "--cache", cache]);
    t.is(anonymous.code, 1);
    t.regex(
      anonymous.stderr,
      /the token server http:\/\/127\.0\.0\.1:\d+\/token refused a token for repository:tiny:pull,push: HTTP 401 \[NIFTY702\]/,
    );

    const r = await niftyc(
      [
        "push",
        out,
        `${registry.host}/tiny:v1`,
        "--insecure",
        "--cache",
        cache,
        "--username",
        USER,
        "--password-stdin",
        "--json",
      ],
      `${PASSWORD}\n`,
    );
    t.is(r.code, 0, r.stderr);
    const pushed = JSON.parse(r.stdout) as { digest: string; layers: string[] };
    t.true(
      asked.some(
        (a) =>
          a.user === USER &&
          a.service === "niftyc-test" &&
          a.scopes.join(" ") === "repository:tiny:pull,push",
      ),
    );

    const mounted = await niftyc(
      [
        "push",
        out,
        `${registry.host}/other:v1`,
        "--insecure",
        "--cache",
        cache,
        "--username",
        USER,
        "--password-stdin",
        "--json",
      ],
      PASSWORD,
    );
    t.is(mounted.code, 0, mounted.stderr);
    t.true((JSON.parse(mounted.stdout) as { mounted: number }).mounted > 0);
    t.true(asked.some((a) => a.scopes.join(" ") === "repository:other:pull,push repository:tiny:pull"));

    // skopeo, as a client of the same token service, sees what niftyc printed.
    const inspect = await run("skopeo", [
      "inspect",
      "--tls-verify=false",
      "--creds",
      `${USER}:${PASSWORD}`,
      `docker://${registry.host}/tiny:v1`,
    ]);
    t.is(inspect.code, 0, inspect.stderr);
    const image = JSON.parse(inspect.stdout) as { Digest: string; Layers: string[] };
    t.is(image.Digest, pushed.digest);
    t.deepEqual(image.Layers, pushed.layers);
    t.false([anonymous, r, mounted].some((x) => x.stdout.includes(PASSWORD) || x.stderr.includes(PASSWORD)));
  },
);
