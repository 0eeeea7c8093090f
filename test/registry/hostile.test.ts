// niftyc push against a malicious registry on loopback (scripted, over TLS
// where the attack needs it): a Location that downgrades to plain http on the
// same host and port, a redirect and an upload Location on another origin
// that asks for credentials, an error that echoes the Authorization header,
// a slow-loris answer, and answers built to crash a client (a file:// realm,
// 60 KB of headers, 600 MiB bodies and tokens, a token with a line break,
// JSON that is not). Each ends in a diagnostic with a code and no stack, and
// no credential leaves for another origin or reaches stderr.
import test from "ava";
import * as fsp from "node:fs/promises";
import type http from "node:http";
import path from "node:path";
import { NODE, NIFTYC, baseEnv, tempDir } from "../pipeline/helpers.ts";
import {
  makeCertificates,
  registryUnavailable,
  requireTools,
  run,
  startFakeRegistry,
  streamHuge,
  type FakeRegistry,
  type Handler,
} from "./helpers.ts";

const USER = "pusher";
const PASSWORD = "hostile-Pa55word-never-sent-elsewhere";
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
const unavailable = registryUnavailable(["openssl"]);
let work: string;
let certs: { ca: string; cert: string; key: string };
let out: string;

test.before(async () => {
  if (unavailable) return;
  work = await tempDir("niftyc-push-hostile-");
  certs = makeCertificates(work);
  const recipe = path.join(work, "small.nifty");
  await fsp.writeFile(recipe, "FILE /etc/os-release <<EOF\nID=nifty\nEOF\n");
  out = path.join(work, "out");
  const built = await niftyc(["build", recipe, "--cache", path.join(work, "cache"), "--out", out, "-q"]);
  if (built.code !== 0) throw new Error(built.stderr);
});

test.after.always(async () => {
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

function niftyc(args: string[], input?: string) {
  return run(NODE, [NIFTYC, ...args], {
    env: baseEnv({ HOME: work, SOURCE_DATE_EPOCH: "0" }),
    timeoutMs: 120_000,
    ...(input !== undefined ? { input } : {}),
  });
}

/** Push the small build to `host` as USER; TLS with the test CA unless `insecure`. */
function push(host: string, options: { insecure?: boolean; extra?: string[] } = {}) {
  const how = options.insecure ? ["--insecure"] : ["--ca-file", certs.ca];
  return niftyc(
    [
      "push",
      out,
      `${host}/app:1`,
      ...how,
      "--username",
      USER,
      "--password-stdin",
      "--cache",
      path.join(work, "cache"),
      ...(options.extra ?? []),
    ],
    PASSWORD,
  );
}

/**
 * A registry that takes everything after basic auth, but lets `attack` answer
 * first (it returns true when it did).
 */
function registry(
  attack: (req: http.IncomingMessage, res: http.ServerResponse, scheme: string) => boolean,
  basic = true,
): Handler {
  let uploads = 0;
  return (req, res, scheme) => {
    req.resume();
    if (attack(req, res, scheme)) return;
    if (basic && req.headers.authorization !== BASIC) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="fake"', "content-length": "0" }).end();
      return;
    }
    const url = req.url!;
    if (req.method === "HEAD") return void res.writeHead(404, { "content-length": "0" }).end();
    if (req.method === "POST" && url.includes("/blobs/uploads/")) {
      return void res
        .writeHead(202, { location: `/v2/app/blobs/uploads/u${++uploads}`, "content-length": "0" })
        .end();
    }
    if (req.method === "PUT" || req.method === "PATCH")
      return void req.on("end", () => res.writeHead(201, { "content-length": "0" }).end());
    res.writeHead(404, { "content-length": "0" }).end();
  };
}

/** A failed push that says why with `code`, without a stack or an internal error, and never shows the password. */
function failsWith(
  t: import("ava").ExecutionContext,
  r: { code: number | null; stderr: string },
  code: string,
): void {
  t.is(r.code, 1, r.stderr);
  t.true(r.stderr.includes(`[${code}]`), r.stderr);
  t.notRegex(r.stderr, /\n\s+at |NIFTY000|internal error/);
  t.false(r.stderr.includes(PASSWORD) || r.stderr.includes(BASIC.slice(6)), "no credential in stderr");
}

async function fake(t: import("ava").ExecutionContext, handler: Handler, tls = true): Promise<FakeRegistry> {
  const f = await startFakeRegistry(handler, tls ? certs : undefined);
  t.teardown(() => f.close());
  return f;
}

test(
  "an upload Location from https down to http on the same host and port gets nothing:" +
    " no request, no credential, NIFTY710",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const f = await fake(
      t,
      registry(() => false),
    );
    f.handler = registry((req, res, scheme) => {
      if (scheme === "https" && req.method === "POST" && req.headers.authorization === BASIC) {
        res
          .writeHead(202, { location: `http://${f.host}/v2/app/blobs/uploads/stolen`, "content-length": "0" })
          .end();
        return true;
      }
      return false;
    });
    const r = await push(f.host);
    failsWith(t, r, "NIFTY710");
    t.regex(r.stderr, /from https down to plain http/);
    const plain = f.seen.filter((s) => s.scheme === "http");
    t.deepEqual(
      plain.filter((s) => s.authorization !== undefined),
      [],
      "no credential over plain http",
    );
    t.deepEqual(plain, [], "nothing sent over plain http at all");
    t.true(
      f.seen.some((s) => s.authorization === BASIC),
      "the registry's own origin got the credentials",
    );
  },
);

test(
  "an upload Location on another origin that answers with a Bearer challenge gets no" +
    " credentials, nor does its realm",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const other = await fake(t, (req, res) => {
      req.resume();
      if (req.url!.startsWith("/token"))
        return void res.writeHead(200, { "content-type": "application/json" }).end('{"token":"stolen"}');
      res
        .writeHead(401, {
          "www-authenticate": `Bearer realm="https://${other.host}/token",service="evil"`,
          "content-length": "0",
        })
        .end();
    });
    const f = await fake(
      t,
      registry((req, res) => {
        if (req.method === "POST" && req.headers.authorization === BASIC) {
          res.writeHead(202, { location: `https://${other.host}/upload/1`, "content-length": "0" }).end();
          return true;
        }
        return false;
      }),
    );
    const r = await push(f.host);
    failsWith(t, r, "NIFTY702");
    t.true(
      other.seen.some((s) => s.method === "PUT"),
      "the upload went to the other origin",
    );
    t.deepEqual(
      other.seen.filter((s) => s.authorization !== undefined),
      [],
      "the other origin got no credentials, on the upload or as a token realm",
    );
  },
);

test("a redirect of a GET or HEAD to another origin is followed without credentials", async (t) => {
  if (!requireTools(t, unavailable)) return;
  const other = await fake(t, (req, res) => {
    req.resume();
    res.writeHead(404, { "content-length": "0" }).end();
  });
  const f = await fake(
    t,
    registry((req, res) => {
      if (req.method === "HEAD" && req.url!.includes("/blobs/") && req.headers.authorization === BASIC) {
        res
          .writeHead(307, { location: `https://${other.host}/storage${req.url}`, "content-length": "0" })
          .end();
        return true;
      }
      return false;
    }),
  );
  const r = await push(f.host);
  t.is(r.code, 0, r.stderr);
  t.true(
    other.seen.some((s) => s.method === "HEAD" && s.url.startsWith("/storage/v2/app/blobs/")),
    "the redirect was followed",
  );
  t.deepEqual(
    other.seen.filter((s) => s.authorization !== undefined),
    [],
    "the other origin got no credentials",
  );
});

test(
  "an error that echoes the Authorization header is printed with the credentials" +
    " starred out, and cut to a few KiB",
  async (t) => {
    if (!requireTools(t, unavailable)) return;
    const f = await fake(
      t,
      registry((req, res) => {
        if (req.method === "POST" && req.headers.authorization === BASIC) {
          const echoed = `you sent Authorization: ${req.headers.authorization} and the password ${PASSWORD}`;
          const message = `bad upload; ${echoed} ${"padding ".repeat(2_000)}`;
          res
            .writeHead(400, { "content-type": "application/json" })
            .end(JSON.stringify({ errors: [{ code: "DENIED", message }] }));
          return true;
        }
        return false;
      }),
    );
    const r = await push(f.host);
    failsWith(t, r, "NIFTY703");
    t.regex(r.stderr, /DENIED: bad upload; you sent Authorization: Basic \*\*\* and the password \*\*\*/);
    t.regex(r.stderr, /more characters cut/);
    t.true(r.stderr.length < 8 * 1024, `stderr is ${r.stderr.length} characters`);
  },
);

test("an upload answered one byte every second is cut after about --timeout with NIFTY713, not retried", async (t) => {
  if (!requireTools(t, unavailable)) return;
  t.timeout(90_000);
  const f = await fake(
    t,
    registry((req, res) => {
      if (req.method !== "PUT") return false;
      req.on("end", () => {
        res.writeHead(201, { "content-length": "1000" });
        const timer = setInterval(() => res.write("x"), 1000);
        res.on("close", () => clearInterval(timer));
      });
      return true;
    }, false),
    false,
  );
  const r = await push(f.host, { insecure: true, extra: ["--timeout", "3"] });
  failsWith(t, r, "NIFTY713");
  t.regex(
    r.stderr,
    /sent PUT \/v2\/app\/blobs\/uploads\/u1 too slowly: the request did not end within 3 s plus 1 s per 16 KiB moved/,
  );
  t.is(f.seen.filter((s) => s.method === "PUT").length, 1, "not retried");
});

// Answers built to crash a client: each is a diagnostic with its code.
const crashes: Array<{ title: string; code: string; message: RegExp; attack: (f: FakeRegistry) => Handler }> =
  [
    {
      title: "a Bearer realm of file:///etc/passwd",
      code: "NIFTY712",
      message: /its Bearer realm "file:\/\/\/etc\/passwd" is not an http\(s\) URL/,
      attack: () => (req, res) =>
        void (req.resume(),
        res
          .writeHead(401, { "www-authenticate": 'Bearer realm="file:///etc/passwd"', "content-length": "0" })
          .end()),
    },
    {
      title: "a Bearer realm that is not a URL",
      code: "NIFTY712",
      message: /its Bearer realm "not a url" is not an http\(s\) URL/,
      attack: () => (req, res) =>
        void (req.resume(),
        res.writeHead(401, { "www-authenticate": 'Bearer realm="not a url"', "content-length": "0" }).end()),
    },
    {
      title: "60 KB of response headers",
      code: "NIFTY711",
      message: /its headers are over 16 KiB/,
      attack: () => (req, res) =>
        void (req.resume(), res.writeHead(404, { "x-big": "a".repeat(60_000), "content-length": "0" }).end()),
    },
    {
      title: "a 600 MiB token",
      code: "NIFTY711",
      message: /the token server http:\/\/127\.0\.0\.1:\d+\/token's answer is too large: over 4 MiB/,
      attack: (f) => (req, res) => {
        req.resume();
        if (req.url!.startsWith("/token"))
          return void (res.writeHead(200, { "content-type": "application/json" }),
          streamHuge(res, 600 << 20, '{"token":"'));
        res
          .writeHead(401, {
            "www-authenticate": `Bearer realm="http://${f.host}/token"`,
            "content-length": "0",
          })
          .end();
      },
    },
    {
      title: "a token with a line break",
      code: "NIFTY712",
      message: /its token is not a string of visible ASCII/,
      attack: (f) => (req, res) => {
        req.resume();
        if (req.url!.startsWith("/token"))
          return void res.writeHead(200).end(JSON.stringify({ token: "abc\r\nX-Injected: 1" }));
        res
          .writeHead(401, {
            "www-authenticate": `Bearer realm="http://${f.host}/token"`,
            "content-length": "0",
          })
          .end();
      },
    },
    {
      title: "a token answer that is not JSON",
      code: "NIFTY712",
      message: /the token server .*'s answer cannot be read: it is not JSON/,
      attack: (f) => (req, res) => {
        req.resume();
        if (req.url!.startsWith("/token")) return void res.writeHead(200).end("<html>hello</html>");
        res
          .writeHead(401, {
            "www-authenticate": `Bearer realm="http://${f.host}/token"`,
            "content-length": "0",
          })
          .end();
      },
    },
    {
      title: "an answer whose Content-Length is negative",
      code: "NIFTY712",
      message:
        /answer to HEAD \/v2\/app\/blobs\/sha256:[0-9a-f]{64} cannot be read: it is not HTTP\/1\.1 \(Invalid character in Content-Length\)/,
      attack: () =>
        registry((req, res) => {
          if (req.method !== "HEAD") return false;
          res.writeHead(200, { "content-length": "-2147483648" }).end();
          return true;
        }, false),
    },
    {
      title: "a 600 MiB answer to an upload",
      code: "NIFTY711",
      message: /answer to POST \/v2\/app\/blobs\/uploads\/ is too large: over 4 MiB/,
      attack: () =>
        registry((req, res) => {
          if (req.method !== "POST") return false;
          res.writeHead(202, { location: "/v2/app/blobs/uploads/u1", "content-length": String(600 << 20) });
          streamHuge(res, 600 << 20);
          return true;
        }, false),
    },
    {
      title: "a 600 MiB error",
      code: "NIFTY703",
      message:
        /answered POST \/v2\/app\/blobs\/uploads\/ with HTTP 400: a{2048}… \(63488 more characters cut\)/,
      attack: () =>
        registry((req, res) => {
          if (req.method !== "POST") return false;
          res.writeHead(400);
          streamHuge(res, 600 << 20);
          return true;
        }, false),
    },
    {
      title: "an upload Location that is not a URL",
      code: "NIFTY710",
      message: /sent PUT .* to "http:\/\/\[::1": not a URL/,
      attack: () =>
        registry((req, res) => {
          if (req.method !== "POST") return false;
          res.writeHead(202, { location: "http://[::1", "content-length": "0" }).end();
          return true;
        }, false),
    },
    {
      title: "a referrers index whose manifests are not a list",
      code: "NIFTY712",
      message: /answer to GET \/v2\/app\/manifests\/sha256-[0-9a-f]{64} cannot be read: not an image index/,
      attack: () =>
        registry((req, res) => {
          if (req.method !== "GET" || !/\/manifests\/sha256-/.test(req.url!)) return false;
          res
            .writeHead(200, { "content-type": "application/vnd.oci.image.index.v1+json" })
            .end('{"manifests":5}');
          return true;
        }, false),
    },
  ];

for (const c of crashes) {
  test(`${c.title}: ${c.code}, no stack, not an internal error`, async (t) => {
    if (!requireTools(t, unavailable)) return;
    t.timeout(90_000);
    const f = await fake(t, () => {}, false);
    f.handler = c.attack(f);
    const r = await push(f.host, { insecure: true });
    failsWith(t, r, c.code);
    t.regex(r.stderr, c.message);
  });
}
