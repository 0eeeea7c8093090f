// What a registry sent is hashed as sent: a manifest whose bytes are not valid UTF-8 has the
// digest of those bytes, not of their UTF-8 reading written back.
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import test from "ava";
import { resolveDigest } from "../../src/registry/signature.ts";

const MANIFEST = Buffer.concat([
  Buffer.from(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"',
  ),
  Buffer.from([0xff, 0xfe]),
  Buffer.from('"},"layers":[]}'),
]);
const DIGEST = `sha256:${createHash("sha256").update(MANIFEST).digest("hex")}`;

test("sign's look-up takes the digest of the manifest's bytes as sent, not of their UTF-8 reading", async (t) => {
  t.not(
    `sha256:${createHash("sha256")
      .update(Buffer.from(MANIFEST.toString("utf8")))
      .digest("hex")}`,
    DIGEST,
    "the bytes are ones a UTF-8 reading changes",
  );
  const server = createServer((req, res) => {
    req.resume();
    res
      .writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": String(MANIFEST.length),
        "docker-content-digest": DIGEST,
      })
      .end(MANIFEST);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  t.teardown(() => server.close());
  const registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const target = { registry, repository: "team/app" };
  t.is(await resolveDigest({ target: { ...target, tag: "1" }, insecure: true, retries: 0 }), DIGEST);
  t.is(await resolveDigest({ target: { ...target, digest: DIGEST }, insecure: true, retries: 0 }), DIGEST);
});
