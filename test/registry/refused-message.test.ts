// NIFTY702 when a registry refuses with an empty body: `HTTP 401`, then the
// registry's own words only when it sent any, never an empty part joined in.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import test from "ava";
import { formatDiagnostic } from "../../src/diagnostics/format.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { RegistryClient } from "../../src/registry/client.ts";

async function refusing(body: string): Promise<Server> {
  const server = createServer((_req, res) =>
    res.writeHead(401, { "content-type": "application/json" }).end(body),
  );
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return server;
}

async function refusal(t: import("ava").ExecutionContext, body: string): Promise<NiftyError> {
  const server = await refusing(body);
  t.teardown(() => server.close());
  const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new RegistryClient({ registry, insecure: true, retries: 0 });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.request({ method: "GET", url: "/v2/", scopes: [] }));
  t.true(error instanceof NiftyError);
  return error as NiftyError;
}

test("a 401 with an empty body reads `HTTP 401` with no trailing space", async (t) => {
  const error = await refusal(t, "");
  t.is(error.code, "NIFTY702");
  t.regex(error.message, /refused GET \/v2\/ without credentials: HTTP 401$/);
  const shown = formatDiagnostic(
    { severity: "error", code: error.code, message: error.message },
    { color: false },
  );
  t.regex(shown.split("\n")[0]!, /: HTTP 401 \[NIFTY702\]$/);
});

test("a 401 with the registry's errors names them after the status, one space apart", async (t) => {
  const error = await refusal(
    t,
    JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }),
  );
  t.regex(error.message, /without credentials: HTTP 401 UNAUTHORIZED: authentication required$/);
});

test("with credentials, the hint speaks of pushing for a push and of pulling for a read (verify, sign's look-up, --cache-from)", async (t) => {
  const server = await refusing("");
  t.teardown(() => server.close());
  const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const credentials = { username: "alice", password: "wrong" };
  for (const [readOnly, verb] of [
    [false, "push to"],
    [true, "pull from"],
  ] as const) {
    const client = new RegistryClient({ registry, insecure: true, retries: 0, credentials, readOnly });
    t.teardown(() => client.close());
    const error = (await t.throwsAsync(
      client.request({ method: "GET", url: "/v2/", scopes: [] }),
    )) as NiftyError;
    t.is(error.code, "NIFTY702");
    t.is(error.hint, `check the user name and password (and that the user may ${verb} this repository)`);
  }
});
