// Whatever the recipe, checkSource returns (never throws) and every
// diagnostic it hands out points inside the text, with line and column
// matching the offset.
import fc from "fast-check";
import { checkSpan, recipeArbitraries } from "../support/arbitrary-recipes.ts";
import test from "ava";
import { checkSource } from "../../src/check/source.ts";

const D = `sha256:${"0123456789abcdef".repeat(4)}`;

/** Lines that mean something to the checker, valid and not, so mutations reach deep checks. */
const validLines = [
  "ARG PORT=2200",
  "ARG NAME",
  `FETCH busybox https://example.test/busybox ${D} TO /bin/busybox`,
  `FETCH db debian:pool/main/d/db.deb ${D} EXTRACT usr/sbin/dropbear TO /bin/dropbear MODE 0755`,
  `FETCH dropbearkey https://example.test/k ${D} TO /bin/dropbearkey`,
  "LINK /bin/busybox APPLETS",
  "LINK /bin/busybox sh ls IN /usr/bin",
  "SYMLINK /sbin bin",
  "SYMLINK /a /b",
  "SYMLINK /b /a",
  "DIR /tmp /var/tmp MODE 1777 OWNER root:root",
  "FILE /etc/motd MODE 0644 OWNER luser:luser <<EOF",
  "hello ${PORT:-22} $NAME",
  "EOF",
  "COPY files/x /x MODE 0600",
  "GROUP wheel GID 10",
  "USER luser UID 1000 GID 10 HOME /home/luser SHELL /bin/sh GROUPS wheel PASSWORD secret:pw",
  "USER root PASSWORD-HASH ''",
  "KEYGEN dropbear ed25519 rsa AT boot",
  "KEYGEN dropbear dss AT build",
  "INITTAB respawn TTY console /bin/dropbear -F -p ${PORT}",
  "INITTAB once /bin/sh -c 'echo $HOME' # x",
  "STOPSIGNAL SIGRTMIN+3",
  "ENV PORT=2222 A=${B:-c}",
  "HOSTNAME nifty",
  "EXPOSE 2200/tcp 53/udp",
  "BIND RW /srv:/data",
  "LABEL \"a b\"=c d='$e'",
  "# a comment",
  "",
];

const fragments = [
  '"',
  "'",
  "\\",
  "$",
  "${",
  "}",
  "${A",
  "${A:-",
  "<<EOF",
  "EOF",
  "#",
  " ",
  "\t",
  "\n",
  "\r\n",
  "\\\n",
  "\uFEFF",
  "é",
  "😀",
  "\u0000",
  "/",
  "..",
  ":",
  "=",
  ",",
  "MODE",
  "OWNER",
  "TO",
  "APPLETS",
  "AT",
  "TTY",
  "RW",
  "0",
  "999",
  "root",
  "x",
  "FETCH",
  "USER",
  "INITTAB",
  "sha256:",
];

const { recipe, mutated } = recipeArbitraries(validLines, fragments, { validWeight: 3, maxMutatedLines: 14 });

const options = fc.record({
  args: fc.constantFrom(new Map<string, string>(), new Map([["NAME", "n"]]), new Map([["PORT", ""]])),
  strict: fc.boolean(),
});

async function checkAll(
  text: string,
  opts: { args: Map<string, string>; strict: boolean },
): Promise<boolean> {
  const result = await checkSource({ path: "fuzz.nifty", text }, opts);
  for (const d of result.diagnostics) {
    if (d.span === undefined) {
      // Only an unused --arg belongs to no line.
      if (d.code !== "NIFTY012") throw new Error(`diagnostic ${d.code} without span`);
      continue;
    }
    checkSpan(text, d.span, `diagnostic ${d.code}`);
    if (opts.strict && d.severity !== "error") throw new Error(`--strict left a ${d.severity}`);
  }
  const failed = result.diagnostics.some((d) => d.severity === "error");
  if (failed === (result.recipe !== undefined))
    throw new Error("a recipe must come back exactly when there is no error");
  return true;
}

test("generated recipes: checkSource never throws; spans inside the text", async (t) => {
  await fc.assert(fc.asyncProperty(recipe, options, checkAll), { numRuns: 5000 });
  t.pass();
});

test("mutated valid recipes: checkSource never throws; spans inside the text", async (t) => {
  await fc.assert(fc.asyncProperty(mutated, options, checkAll), { numRuns: 5000 });
  t.pass();
});

test("the property sees real diagnostics (the generators reach the checker)", async (t) => {
  const samples = fc.sample(mutated, { numRuns: 300, seed: 1 });
  const codes = new Set<string>();
  for (const text of samples)
    for (const d of (await checkSource({ path: "s.nifty", text }, { args: new Map(), strict: false }))
      .diagnostics)
      codes.add(d.code);
  // Checker codes (010+), not only syntax ones.
  t.true([...codes].filter((c) => c >= "NIFTY010").length >= 10, [...codes].join(" "));
});
