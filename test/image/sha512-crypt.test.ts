import test from "ava";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { sha512Crypt, deriveSalt } from "../../src/image/sha512-crypt.ts";

const ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

test("known-answer vectors", (t) => {
  t.is(
    sha512Crypt("Hello world!", "saltstring"),
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
  );
  t.is(
    sha512Crypt("Hello world!", "rounds=10000$saltstringsaltstring"),
    "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
  );
  t.is(
    sha512Crypt("This is just a test", "rounds=5000$toolongsaltstring"),
    "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
  );
  t.is(
    sha512Crypt("secret", "niftyc"),
    "$6$niftyc$z92TZPy4zkjuEwC3xrs9p52yyf7DidHj1LfcXw5dumW48N0.lhCMVhb/I/2EJ6pDeqdnCqEGgniKsfbjT0/ir0",
  );
});

test("rounds argument: echoed, clamped, same as the salt form", (t) => {
  t.is(
    sha512Crypt("Hello world!", "saltstringsaltstring", 10000),
    sha512Crypt("Hello world!", "rounds=10000$saltstringsaltstring"),
  );
  t.true(sha512Crypt("x", "abc", 5000).startsWith("$6$rounds=5000$abc$"));
  t.true(sha512Crypt("x", "abc", 100).startsWith("$6$rounds=1000$abc$"));
  t.is(sha512Crypt("x", "abc", 100), sha512Crypt("x", "abc", 1000));
  t.is(sha512Crypt("x", "$6$abc$ignored"), sha512Crypt("x", "abc"));
  t.is(sha512Crypt(Buffer.from("Hello world!"), "saltstring"), sha512Crypt("Hello world!", "saltstring"));
});

test("salts that libcrypt would refuse are errors", (t) => {
  t.throws(() => sha512Crypt("x", ""), { message: /empty/ });
  t.throws(() => sha512Crypt("x", "a:b"), { message: /printable ASCII/ });
  t.throws(() => sha512Crypt("x", "sél"), { message: /printable ASCII/ });
  t.throws(() => sha512Crypt("x", "a b"), { message: /printable ASCII/ });
});

test("empty password matches libcrypt", (t) => {
  const perl = execFileSync("perl", ["-e", 'print crypt("", q($6$abc$))'], { encoding: "utf8" });
  t.is(sha512Crypt("", "abc"), perl);
  t.is(perl, "$6$abc$mJP3a6FyA8uCnzRtlnNypPwjnvpi5TP9qOrInzrfDmwxUQG38PkpCPdqfTb8JQfAngapMxeim4AZ..hSdRRzD.");
});

// Deterministic pseudo-random cases so a failure can be reproduced.
function* cases(): Generator<[string, string]> {
  const pieces = ["a", "Z", "0", " ", "!", "$", ":", "é", "ß", "日本", "🔑", "\t", "~", "pass", "word"];
  for (let i = 0; i < 36; i++) {
    const h = createHash("sha512").update(`case ${i}`).digest();
    const len = i === 35 ? 200 : i % 5 === 0 ? 1 : 1 + (h[0]! % 40);
    let pw = "";
    for (let j = 0; pw.length < len; j++) pw += pieces[h[(j + 1) % 64]! % pieces.length];
    let salt = "";
    const saltLen = 1 + (h[63]! % 16);
    for (let j = 0; j < saltLen; j++) salt += ALPHABET[h[(j + 32) % 64]! & 0x3f];
    yield [pw, salt];
  }
}

test("agrees with openssl passwd -6 on random passwords and salts", (t) => {
  let n = 0;
  for (const [pw, salt] of cases()) {
    const expected = execFileSync("openssl", ["passwd", "-6", "-salt", salt, pw], {
      encoding: "utf8",
    }).trim();
    t.is(sha512Crypt(pw, salt), expected, JSON.stringify([pw, salt]));
    n++;
  }
  t.is(n, 36);
});

test("deriveSalt: deterministic, 16 chars of the crypt alphabet, varies with user and secret", (t) => {
  const secret = Buffer.from("build secret");
  const s = deriveSalt("alice", secret);
  t.regex(s, /^[./0-9A-Za-z]{16}$/);
  t.is(deriveSalt("alice", Buffer.from("build secret")), s);
  t.not(deriveSalt("bob", secret), s);
  t.not(deriveSalt("alice", Buffer.from("build secret2")), s);
  t.false(s.includes("build"));
  t.is(sha512Crypt("pw", deriveSalt("alice", secret)), sha512Crypt("pw", s));
  const many = new Set<string>();
  for (let i = 0; i < 200; i++) many.add(deriveSalt(`user${i}`, secret));
  t.is(many.size, 200);
});
