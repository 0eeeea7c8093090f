// niftyc push to a real registry with TLS (a CA made here, a certificate for
// IP:127.0.0.1) and htpasswd basic auth: credentials from --password-stdin,
// the containers and Docker auth files and a credential helper; refusals
// without them or without the CA; the password in no output or file. The
// image is the shipped recipes/console.nifty, from the pinned Debian files.
import test from "ava";
import { execFileSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { buildRecipe, debianMirror, type BuildOutput } from "../boot/harness.ts";
import { NODE, NIFTYC, baseEnv, tempDir } from "../pipeline/helpers.ts";
import { checkSpdx, containers } from "./spdx.ts";
import {
  makeCertificates,
  registryUnavailable,
  requireTools,
  run,
  startRegistry,
  type Registry,
} from "./helpers.ts";

const USER = "pusher";
const PASSWORD = "s3cret-Pa55word-never-shown";
const unavailable = registryUnavailable();
let registry: Registry;
let work: string;
let certs: { ca: string; cert: string; key: string };
let home: string;

test.before(async () => {
  if (unavailable) return;
  work = await tempDir("niftyc-push-tls-");
  certs = makeCertificates(work);
  const htpasswd = path.join(work, "htpasswd");
  await fsp.writeFile(
    htpasswd,
    execFileSync("htpasswd", ["-Bbn", USER, PASSWORD], { timeout: 30_000, killSignal: "SIGKILL" }),
  );
  registry = await startRegistry(work, { tls: certs, htpasswd });
  home = path.join(work, "home");
  await fsp.mkdir(home);
});

test.after.always(async () => {
  await registry?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

/** The CLI with a HOME of its own, so the host's auth files never take part. */
function niftyc(args: string[], options: { input?: string; env?: Record<string, string> } = {}) {
  return run(NODE, [NIFTYC, ...args], {
    env: baseEnv({ HOME: home, SOURCE_DATE_EPOCH: "0", ...options.env }),
    timeoutMs: 180_000,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}

let console_: BuildOutput | undefined;
async function consoleBuild(t: import("ava").ExecutionContext): Promise<BuildOutput> {
  if (!console_) {
    const mirror = await debianMirror(t);
    console_ = await buildRecipe(t, "recipes/console.nifty", mirror.url, { "root-password": "toor-secret" });
    // buildRecipe's directory goes with the test that made it: keep a copy for the others.
    const keep = path.join(work, "console");
    await fsp.cp(console_.outDir, keep, { recursive: true });
    console_ = { ...console_, outDir: keep };
  }
  return console_;
}

async function smallBuild(): Promise<string> {
  const out = path.join(work, "out-small");
  try {
    await fsp.stat(path.join(out, "build.json"));
    return out;
  } catch {}
  const recipe = path.join(work, "small.nifty");
  await fsp.writeFile(
    recipe,
    "FILE /etc/os-release <<EOF\nID=nifty\nEOF\nFILE /etc/motd <<EOF\nsmall\nEOF\n",
  );
  const r = await niftyc(["build", recipe, "--cache", path.join(work, "cache"), "--out", out, "-q"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return out;
}

async function filesContaining(dir: string, text: string): Promise<string[]> {
  const hits: string[] = [];
  for (const rel of await fsp.readdir(dir, { recursive: true })) {
    const file = path.join(dir, rel);
    const st = await fsp.lstat(file);
    if (st.isFile() && (await fsp.readFile(file)).includes(text)) hits.push(rel);
  }
  return hits;
}

test.serial(
  "the console recipe pushed over TLS with --username and --password-stdin: skopeo gets back its digests",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(300_000);
    const built = await consoleBuild(t);
    const cache = path.join(work, "cache-console");
    const r = await niftyc(
      [
        "push",
        built.outDir,
        `${registry.host}/seed/console:1`,
        "--ca-file",
        certs.ca,
        "--username",
        USER,
        "--password-stdin",
        "--json",
        "--cache",
        cache,
      ],
      { input: `${PASSWORD}\n` },
    );
    t.is(r.code, 0, r.stderr);
    const pushed = JSON.parse(r.stdout) as { pushed: string; digest: string; layers: string[] };
    t.is(pushed.pushed, `${registry.host}/seed/console@${pushed.digest}`);

    // skopeo trusts the CA from a directory of *.crt files.
    const certDir = path.join(work, "certs.d");
    await fsp.mkdir(certDir, { recursive: true });
    await fsp.copyFile(certs.ca, path.join(certDir, "ca.crt"));
    const inspect = await run("skopeo", [
      "inspect",
      "--cert-dir",
      certDir,
      "--creds",
      `${USER}:${PASSWORD}`,
      `docker://${registry.host}/seed/console:1`,
    ]);
    t.is(inspect.code, 0, inspect.stderr);
    const image = JSON.parse(inspect.stdout) as { Digest: string; Layers: string[] };
    t.is(image.Digest, pushed.digest);
    t.deepEqual(image.Layers, pushed.layers);
    const copied = await run("skopeo", [
      "copy",
      "--src-cert-dir",
      certDir,
      "--src-creds",
      `${USER}:${PASSWORD}`,
      `docker://${registry.host}/seed/console:1`,
      `oci:${path.join(work, "console-copy")}:1`,
    ]);
    t.is(copied.code, 0, copied.stderr);

    // The SBOM: every locked package (console.nifty holds a file of each) and suite, with version, digest, URL and purl; busybox's file tied to its package.
    const doc = checkSpdx(t, await fsp.readFile(path.join(built.outDir, "sbom.spdx.json"), "utf8"));
    const lock = await fsp.readFile(
      path.join(import.meta.dirname, "../../recipes/console.nifty.lock"),
      "utf8",
    );
    const locked = [
      ...lock.matchAll(
        /^Package: (.+)\nVersion: (.+)\nArchitecture: (.+)\nSuite: .+\nFilename: (.+)\nSize: .+\nSHA256: (.+)$/gm,
      ),
    ];
    t.true(locked.length > 0);
    for (const [, name, version, arch, filename, sha256] of locked) {
      const p = doc.packages.find((x) => x.name === name && x.versionInfo === version);
      t.truthy(p, `${name} is listed`);
      t.deepEqual(p!.checksums, [{ algorithm: "SHA256", checksumValue: sha256! }]);
      // The release, as syft and trivy name it, whichever of its suites the package came from;
      // busybox-static's source is busybox at the version before its binary-only rebuild.
      const upstream = name === "busybox-static" ? "&upstream=busybox%401%3A1.35.0-4%2Bdeb12u1" : "";
      t.is(
        p!.externalRefs![0]!.referenceLocator,
        `pkg:deb/debian/${name}@${encodeURIComponent(version!)}?arch=${arch}&distro=debian-12${upstream}`,
      );
      t.true(
        p!.downloadLocation.startsWith("https://") && p!.downloadLocation.endsWith(`/${filename}`),
        p!.downloadLocation,
      );
    }
    const suites = [...lock.matchAll(/^ (debian\S*) (\S+) (\S+) (sha256:[0-9a-f]{64})/gm)];
    for (const [, archive, suite, component, digest] of suites) {
      const p = doc.packages.find((x) => x.name === `${archive} ${suite} ${component}`);
      t.truthy(p, `the suite ${archive} ${suite} is listed`);
      t.is(p!.checksums![0]!.checksumValue, digest!.slice(7));
    }
    const busybox = doc.files.find((f) => f.fileName === "./bin/busybox")!;
    t.truthy(busybox);
    const owner = doc.packages.find((p) => p.SPDXID === containers(doc, busybox.SPDXID)[0]);
    t.is(owner?.name, "busybox-static");

    t.false(r.stdout.includes(PASSWORD) || r.stderr.includes(PASSWORD), "the password is in no message");
    t.deepEqual(await filesContaining(cache, PASSWORD), []);
    t.deepEqual(await filesContaining(built.outDir, PASSWORD), []);
  },
);

test.serial(
  "without credentials or with a wrong password the registry's 401 is a clear error that says what to do",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const out = await smallBuild();
    const r = await niftyc([
      "push",
      out,
      `${registry.host}/small:anon`,
      "--ca-file",
      certs.ca,
      "--cache",
      path.join(work, "cache"),
    ]);
    t.is(r.code, 1);
    t.regex(r.stderr, /refused HEAD \/v2\/small\/blobs\/sha256:[0-9a-f]{64} without credentials: HTTP 401/);
    t.regex(r.stderr, /NIFTY702/);
    t.regex(r.stderr, /--password-stdin/);
    const wrong = await niftyc(
      [
        "push",
        out,
        `${registry.host}/small:anon`,
        "--ca-file",
        certs.ca,
        "--username",
        USER,
        "--password-stdin",
      ],
      { input: "wrong-password\n" },
    );
    t.is(wrong.code, 1);
    t.regex(wrong.stderr, /as "pusher": HTTP 401/);
    t.false(wrong.stderr.includes("wrong-password"));
    const half = await niftyc(
      ["push", out, `${registry.host}/small:anon`, "--ca-file", certs.ca, "--password-stdin"],
      { input: "x\n" },
    );
    t.is(half.code, 1);
    t.regex(half.stderr, /NIFTY706/);
  },
);

test.serial(
  "without --ca-file the registry's certificate is not trusted: NIFTY707 says what to do",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const out = await smallBuild();
    const r = await niftyc(
      ["push", out, `${registry.host}/small:v1`, "--username", USER, "--password-stdin"],
      { input: PASSWORD },
    );
    t.is(r.code, 1);
    t.regex(r.stderr, /TLS with 127\.0\.0\.1:\d+ failed: [A-Z_]+ \[NIFTY707\]/);
    t.regex(r.stderr, /--ca-file/);
    const missing = await niftyc([
      "push",
      out,
      `${registry.host}/small:v1`,
      "--ca-file",
      path.join(work, "nope.pem"),
    ]);
    t.regex(missing.stderr, /cannot read the CA file .*nope\.pem: ENOENT/);
    // Plain http is for loopback only, and refused before anything is sent.
    const remote = await niftyc(["push", out, "registry.example.com/small:v1", "--insecure"]);
    t.is(remote.code, 1);
    t.regex(remote.stderr, /NIFTY705/);
  },
);

test.serial(
  "credentials come from $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json and credHelpers",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const out = await smallBuild();
    const auth = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");
    const authJson = JSON.stringify({ auths: { [registry.host]: { auth } } });
    const dir = path.join(work, "auth");
    await fsp.mkdir(path.join(dir, "runtime/containers"), { recursive: true });
    await fsp.writeFile(path.join(dir, "registry-auth.json"), authJson);
    await fsp.writeFile(
      path.join(dir, "runtime/containers/auth.json"),
      JSON.stringify({ auths: { [`https://${registry.host}/v2/`]: { auth } } }),
    );
    // A credential helper as Docker runs one: the server on stdin, JSON on stdout.
    const bin = path.join(dir, "bin");
    await fsp.mkdir(bin);
    await fsp.writeFile(
      path.join(bin, "docker-credential-niftytest"),
      `#!/bin/sh\nread server\n[ "$server" = "${registry.host}" ] || exit 1\nprintf '{"Username":"${USER}","Secret":"${PASSWORD}"}'\n`,
      { mode: 0o755 },
    );

    const cases: Array<{ name: string; env?: Record<string, string>; docker?: string }> = [
      { name: "registry-auth-file", env: { REGISTRY_AUTH_FILE: path.join(dir, "registry-auth.json") } },
      { name: "xdg-runtime", env: { XDG_RUNTIME_DIR: path.join(dir, "runtime") } },
      { name: "docker-config", docker: authJson },
      {
        name: "cred-helper",
        docker: JSON.stringify({ credHelpers: { [registry.host]: "niftytest" } }),
        env: { PATH: `${bin}:${process.env.PATH}` },
      },
    ];
    for (const c of cases) {
      await fsp.rm(path.join(home, ".docker"), { recursive: true, force: true });
      if (c.docker) {
        await fsp.mkdir(path.join(home, ".docker"));
        await fsp.writeFile(path.join(home, ".docker/config.json"), c.docker);
      }
      const r = await niftyc(
        [
          "push",
          out,
          `${registry.host}/small:${c.name}`,
          "--ca-file",
          certs.ca,
          "--cache",
          path.join(work, "cache"),
        ],
        { env: c.env ?? {} },
      );
      t.is(r.code, 0, `${c.name}: ${r.stderr}`);
      t.regex(r.stdout, new RegExp(`^${registry.host}/small@sha256:[0-9a-f]{64}\\n$`), c.name);
      t.false(r.stderr.includes(PASSWORD), c.name);
    }
    await fsp.rm(path.join(home, ".docker"), { recursive: true, force: true });
    await fsp.writeFile(path.join(dir, "broken.json"), "{ not json");
    const broken = await niftyc(["push", out, `${registry.host}/small:broken`, "--ca-file", certs.ca], {
      env: { REGISTRY_AUTH_FILE: path.join(dir, "broken.json") },
    });
    t.is(broken.code, 1);
    t.regex(broken.stderr, /cannot read the credentials file .*broken\.json.*NIFTY706/);
    t.deepEqual(await filesContaining(path.join(work, "cache"), PASSWORD), []);
  },
);

test.serial(
  "the console recipe's cache through the TLS registry: a fresh store with --cache-from --offline rebuilds the same digest, .debs included",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(300_000);
    const mirror = await debianMirror(t);
    const recipe = path.join(import.meta.dirname, "../../recipes/console.nifty");
    const authFile = path.join(work, "cache-auth.json");
    await fsp.writeFile(
      authFile,
      JSON.stringify({
        auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } },
      }),
    );
    const env = { REGISTRY_AUTH_FILE: authFile, ROOT_PASSWORD: "toor-secret" };
    const common = [
      "--secret",
      "root-password=env:ROOT_PASSWORD",
      "--ca-file",
      certs.ca,
      "--json",
      "--locked",
    ];
    const a = await niftyc(
      [
        "build",
        recipe,
        "--cache",
        path.join(work, "cache-console-a"),
        "--out",
        path.join(work, "console-a"),
        "--mirror",
        `debian=${mirror.url}`,
        "--mirror",
        `debian-security=${mirror.url}`,
        "--cache-to",
        `${registry.host}/seed/cache:console`,
        ...common,
      ],
      { env },
    );
    t.is(a.code, 0, a.stderr);
    const requests = mirror.requests.length;
    const b = await niftyc(
      [
        "build",
        recipe,
        "--cache",
        path.join(work, "cache-console-b"),
        "--out",
        path.join(work, "console-b"),
        "--offline",
        "--cache-from",
        `${registry.host}/seed/cache:console`,
        ...common,
      ],
      { env },
    );
    t.is(b.code, 0, b.stderr);
    t.is(
      (JSON.parse(b.stdout) as { digest: string }).digest,
      (JSON.parse(a.stdout) as { digest: string }).digest,
    );
    t.is(mirror.requests.length, requests, "nothing from the Debian mirror");
    t.is(
      await fsp.readFile(path.join(work, "console-b/sbom.spdx.json"), "utf8"),
      await fsp.readFile(path.join(work, "console-a/sbom.spdx.json"), "utf8"),
    );
    t.false(a.stderr.includes(PASSWORD) || b.stderr.includes(PASSWORD));
  },
);
