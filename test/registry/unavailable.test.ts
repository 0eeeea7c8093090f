// A registry that keeps answering 503: every command retries, then fails with NIFTY701. The
// hint says what to do for that command: a push keeps what it uploaded and wrote no manifest;
// verify and sign's look-up only read, and are run again.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { NODE, NIFTYC, baseEnv, tempDir } from "../pipeline/helpers.ts";
import { generateSigningKey } from "../../src/trust/keys.ts";
import { run, startFakeRegistry } from "./helpers.ts";

test("verify and sign of a registry that answers only 503: NIFTY701, with a hint that speaks of no push", async (t) => {
  t.timeout(120_000);
  const work = await tempDir("niftyc-registry-down-");
  t.teardown(() => fsp.rm(work, { recursive: true, force: true }));
  const fake = await startFakeRegistry((req, res) => {
    req.resume();
    res.writeHead(503, { "content-length": "0" }).end();
  });
  t.teardown(() => fake.close());
  const key = path.join(work, "cosign.key");
  await fsp.writeFile(key, (await generateSigningKey(undefined)).privatePem, { mode: 0o600 });
  const ref = `${fake.host}/team/app:1`;
  for (const args of [
    ["verify", ref, "--insecure", "--recipe", path.join(work, "app.nifty")],
    ["sign", ref, "--insecure", "--key", key],
  ]) {
    const r = await run(NODE, [NIFTYC, ...args], { env: baseEnv({ HOME: work }), timeoutMs: 100_000 });
    t.is(r.code, 1, r.stderr);
    t.regex(
      r.stderr,
      /looking up 1 failed after 5 attempts: GET \/v2\/team\/app\/manifests\/1: HTTP 503 \[NIFTY701\]/,
    );
    t.true(
      r.stderr.includes(
        `hint: check that the registry ${fake.host} is up and reachable, then run the command again\n`,
      ),
      r.stderr,
    );
    t.notRegex(r.stderr, /push again|no manifest was written/);
  }
});
