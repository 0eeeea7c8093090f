// cosign's own encrypted private key format (ENCRYPTED SIGSTORE PRIVATE KEY): read against
// fixed vectors written by cosign's Go code, so a format that were only consistent with
// itself would fail here; written by keygen-signing and read back; hostile envelopes.
import test from "ava";
import { createPublicKey, createVerify, createSign } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { decryptCosignKey } from "../../src/trust/cosign-key.ts";
import { loadSigningKey } from "../../src/trust/keys.ts";
import { niftyc, tempDir } from "../pipeline/helpers.ts";

// cosign's own test key, encrypted by cosign under the passphrase "hello": `pemsigstorekey` in
// sigstore/cosign, pkg/cosign/keys_test.go (TestReadingPrivatePemTypes loads it with "hello").
const COSIGN_TEST_KEY = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
`;

// The envelope alone, from the package cosign encrypts with: TestDecrypt in
// secure-systems-lab/go-securesystemslib, encrypted/encrypted_test.go ("reallyimportant"
// under "supersecret").
const SSL_VECTOR = `{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}`;

function pem(json: string, type = "ENCRYPTED SIGSTORE PRIVATE KEY"): string {
  const body = Buffer.from(json).toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN ${type}-----\n${body.trimEnd()}\n-----END ${type}-----\n`;
}

let work: string;
test.before(async () => {
  work = await tempDir("niftyc-cosign-key-");
});
test.after.always(async () => {
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

async function keyFile(name: string, text: string): Promise<string> {
  const file = path.join(work, name);
  await fsp.writeFile(file, text, { mode: 0o600 });
  return file;
}

const given = (secret: string | undefined) => async () =>
  secret === undefined ? undefined : Buffer.from(secret);

async function refusal(t: import("ava").ExecutionContext, promise: Promise<unknown>) {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof NiftyError, String(error));
  return error as NiftyError;
}

test("cosign's own test key (sigstore/cosign keys_test.go) opens with its passphrase to a P-256 key that signs", async (t) => {
  const file = await keyFile("cosign-test.key", COSIGN_TEST_KEY);
  const key = await loadSigningKey(file, "cosign-test.key", given("hello"));
  t.is(key.privateKey.asymmetricKeyType, "ec");
  t.is(key.privateKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  const signature = createSign("sha256").update("payload").sign(key.privateKey);
  t.true(createVerify("sha256").update("payload").verify(createPublicKey(key.publicPem), signature));

  const wrong = await refusal(t, loadSigningKey(file, "cosign-test.key", given("hellO")));
  t.is(wrong.code, "NIFTY732");
  t.regex(wrong.message, /the passphrase for the signing key cosign-test\.key is wrong/);
  t.false(wrong.message.includes("hellO"));
  const none = await refusal(t, loadSigningKey(file, "cosign-test.key", given(undefined)));
  t.is(none.code, "NIFTY732");
  t.regex(none.message, /is encrypted and no passphrase was given/);
});

test("go-securesystemslib's TestDecrypt vector decrypts to its plaintext", async (t) => {
  const plain = await decryptCosignKey(pem(SSL_VECTOR), Buffer.from("supersecret"));
  t.is(plain?.toString(), "reallyimportant");
  t.is(await decryptCosignKey(pem(SSL_VECTOR), Buffer.from("supersecreT")), undefined);
  const legacyLabel = await decryptCosignKey(
    pem(SSL_VECTOR, "ENCRYPTED COSIGN PRIVATE KEY"),
    Buffer.from("supersecret"),
  );
  t.is(legacyLabel?.toString(), "reallyimportant");
});

test("keygen-signing writes cosign's envelope (scrypt 2^15/8/1, 32-byte salt, 24-byte nonce) that opens to the .pub's key; --key-format pkcs8 writes PKCS#8", async (t) => {
  const r = await niftyc(["keygen-signing", path.join(work, "made"), "--key-passphrase", "env:P"], {
    env: { P: "made-pass-never-shown" },
  });
  t.is(r.code, 0, r.stderr);
  const text = await fsp.readFile(path.join(work, "made.key"), "utf8");
  t.regex(
    text,
    /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n$/,
  );
  t.is((await fsp.stat(path.join(work, "made.key"))).mode & 0o777, 0o600);
  const envelope = JSON.parse(Buffer.from(text.split("\n").slice(1, -2).join(""), "base64").toString());
  t.deepEqual(Object.keys(envelope), ["kdf", "cipher", "ciphertext"]);
  t.deepEqual(envelope.kdf.params, { N: 32768, r: 8, p: 1 });
  t.is(envelope.kdf.name, "scrypt");
  t.is(Buffer.from(envelope.kdf.salt, "base64").length, 32);
  t.is(envelope.cipher.name, "nacl/secretbox");
  t.is(Buffer.from(envelope.cipher.nonce, "base64").length, 24);
  const key = await loadSigningKey(path.join(work, "made.key"), "made.key", given("made-pass-never-shown"));
  t.is(key.publicPem, await fsp.readFile(path.join(work, "made.pub"), "utf8"));
  // The ciphertext is secretbox's 16-byte tag and the PKCS#8 DER of a P-256 key.
  const der = key.privateKey.export({ type: "pkcs8", format: "der" });
  t.is(Buffer.from(envelope.ciphertext, "base64").length, der.length + 16);

  const p8 = await niftyc(
    ["keygen-signing", path.join(work, "p8"), "--key-passphrase", "env:P", "--key-format", "pkcs8"],
    { env: { P: "p8-pass" } },
  );
  t.is(p8.code, 0, p8.stderr);
  t.regex(await fsp.readFile(path.join(work, "p8.key"), "utf8"), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  const bad = await niftyc(["keygen-signing", path.join(work, "x"), "--no-passphrase", "--key-format", "x"]);
  t.is(bad.code, 2, bad.stderr);
});

test("hostile cosign envelopes: scrypt settings cosign never writes, junk, a tampered ciphertext; an empty passphrase", async (t) => {
  const envelope = JSON.parse(SSL_VECTOR);
  const greedy = { ...envelope, kdf: { ...envelope.kdf, params: { N: 1 << 22, r: 8, p: 1 } } };
  for (const [name, text, why] of [
    ["greedy.key", pem(JSON.stringify(greedy)), /scrypt parameters are not ones cosign writes/],
    ["empty.key", pem("{}"), /its kdf is not scrypt/],
    ["junk.key", pem("not json"), /its content is not JSON/],
    [
      "short-nonce.key",
      pem(SSL_VECTOR.replace("2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik", "AAAA")),
      /nonce is 3 bytes/,
    ],
  ] as const) {
    const error = await refusal(t, loadSigningKey(await keyFile(name, text), name, given("supersecret")));
    t.is(error.code, "NIFTY731", name);
    t.regex(error.message, why, name);
  }
  const bytes = Buffer.from(envelope.ciphertext, "base64");
  bytes[20] = bytes[20]! ^ 1;
  const tampered = pem(JSON.stringify({ ...envelope, ciphertext: bytes.toString("base64") }));
  t.is(await decryptCosignKey(tampered, Buffer.from("supersecret")), undefined);

  // cosign generate-key-pair with an empty password still encrypts: it opens with none given.
  const { generateKeyPairSync } = await import("node:crypto");
  const { encryptCosignKey } = await import("../../src/trust/cosign-key.ts");
  const der = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    type: "pkcs8",
    format: "der",
  });
  const blank = await keyFile("blank.key", await encryptCosignKey(der, Buffer.alloc(0)));
  const opened = await loadSigningKey(blank, "blank.key", given(undefined));
  t.deepEqual(opened.privateKey.export({ type: "pkcs8", format: "der" }), der);
});
