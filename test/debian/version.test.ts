// dpkg's version order, from a table of known pairs and, when dpkg is on the
// machine, against `dpkg --compare-versions` itself on generated versions.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import fc from "fast-check";
import test from "ava";
import { compareVersions, isValidVersion, splitVersion, versionProblem } from "../../src/debian/version.ts";

const run = promisify(execFile);

// [lower, higher]
const ordered: Array<[string, string]> = [
  ["1.0~rc1", "1.0"],
  ["1.0~~", "1.0~"],
  ["1.0~", "1.0"],
  ["1.0", "1.0a"],
  ["1.0a", "1.0+"],
  ["1.0", "1.0.1"],
  ["1.0", "1.0-1"],
  ["2.0", "1:0.1"],
  ["1:1.0", "2:0"],
  ["1.0-1", "1.0-1+deb12u1"],
  ["2.36-9+deb12u9", "2.36-9+deb12u14"],
  ["1.2.13.dfsg-1", "1.2.13.dfsg-1+b1"],
  ["1.2.13-1", "1.2.13.dfsg-1"],
  ["1.9", "1.10"],
  ["1.09", "1.10"],
  ["9", "10"],
  ["1.0-9", "1.0-10"],
  ["1.0-1~bpo12+1", "1.0-1"],
  ["2022.83-1", "2022.83-1+deb12u3"],
  ["1:4.1.0", "1:4.4.33-2"],
  ["a", "b"],
  ["1.0Z", "1.0a"],
  ["1.0+", "1.0."],
  ["12345678901234567890", "12345678901234567891"],
  ["0:1.0", "1:1.0"],
];

const equal: Array<[string, string]> = [
  ["1.0", "0:1.0"],
  ["1.0", "1.0-0"],
  ["1.01", "1.1"],
  ["1.0-00", "1.0"],
  ["2.36-9+deb12u14", "2.36-9+deb12u14"],
];

for (const [lo, hi] of ordered) {
  test(`${lo} < ${hi}`, (t) => {
    t.is(compareVersions(lo, hi), -1);
    t.is(compareVersions(hi, lo), 1);
  });
}

for (const [a, b] of equal) {
  test(`${a} = ${b}`, (t) => {
    t.is(compareVersions(a, b), 0);
    t.is(compareVersions(b, a), 0);
  });
}

test("the revision is after the last hyphen, the epoch before the first colon", (t) => {
  t.deepEqual(splitVersion("1:2.0-rc-3"), { epoch: 1, upstream: "2.0-rc", revision: "3" });
  t.deepEqual(splitVersion("1.2"), { epoch: 0, upstream: "1.2", revision: "" });
  t.deepEqual(splitVersion("2:1:2-1"), { epoch: 2, upstream: "1:2", revision: "1" });
});

test("validation says what dpkg would say", (t) => {
  for (const v of ["1.0", "1:2.0-1", "0.1~rc1+dfsg-2~bpo1", "2:1:2-1", "1.0-1.2+b3"])
    t.true(isValidVersion(v), v);
  t.is(versionProblem(""), "version string is empty");
  t.is(versionProblem("1.0 1"), "version string has embedded spaces");
  t.is(versionProblem(" 1.0"), "version string has leading or trailing spaces");
  t.is(versionProblem(":1.0"), "epoch in version is empty");
  t.is(versionProblem("a:1.0"), "epoch in version is not number");
  t.is(versionProblem("99999999999:1"), "epoch in version is too big");
  t.is(versionProblem("1.0-"), "revision number is empty");
  t.is(versionProblem("-1"), "version number is empty");
  t.is(versionProblem("a1.0"), "version number does not start with digit");
  t.is(versionProblem("1.0_2"), "invalid character in version number");
  t.is(versionProblem("1.0-1_2"), "invalid character in revision number");
});

// Versions built from pieces that stress the order: ~, letters vs symbols,
// leading zeros, long digit runs, epochs, hyphens inside the upstream part.
const piece = fc.constantFrom(
  "0",
  "1",
  "2",
  "9",
  "10",
  "01",
  "007",
  "123456789012",
  "a",
  "b",
  "Z",
  "z",
  "~",
  "~~",
  "+",
  ".",
  "rc",
  "dfsg",
  "deb12u",
);
const upstreamArb = (withHyphen: boolean, withColon: boolean) =>
  fc
    .tuple(
      fc.constantFrom("0", "1", "2", "10"),
      fc.array(
        fc.oneof(piece, ...(withHyphen ? [fc.constant("-")] : []), ...(withColon ? [fc.constant(":")] : [])),
        { maxLength: 5 },
      ),
    )
    .map(([first, rest]) => first + rest.join(""));
const versionArb = fc
  .record({
    epoch: fc.constantFrom(undefined, "0", "1", "2"),
    revision: fc.option(fc.array(piece, { minLength: 1, maxLength: 4 }), { nil: undefined }),
  })
  .chain(({ epoch, revision }) =>
    upstreamArb(revision !== undefined, epoch !== undefined).map(
      (up) =>
        `${epoch === undefined ? "" : `${epoch}:`}${up}${revision === undefined ? "" : `-${revision.join("")}`}`,
    ),
  )
  .filter((v) => isValidVersion(v));
// Pairs that share a prefix compare on their interesting parts.
const pairArb = fc
  .oneof(
    fc.tuple(versionArb, versionArb),
    fc
      .tuple(versionArb, fc.array(piece, { maxLength: 3 }), fc.array(piece, { maxLength: 3 }))
      .map(([v, a, b]) => [v + a.join(""), v + b.join("")] as [string, string]),
  )
  .filter(([a, b]) => isValidVersion(a) && isValidVersion(b));

async function dpkgAvailable(): Promise<boolean> {
  try {
    await run("dpkg", ["--compare-versions", "1", "lt", "2"]);
    return true;
  } catch {
    return false;
  }
}

/** dpkg's answer for many pairs from one shell (a process per pair from node is slower). */
async function dpkgCompare(pairs: ReadonlyArray<readonly [string, string]>): Promise<number[]> {
  // Valid versions hold only [A-Za-z0-9.+~:-], safe inside single quotes.
  const script = pairs
    .map(
      ([a, b]) =>
        `if dpkg --compare-versions '${a}' lt '${b}'; then echo -1; elif dpkg --compare-versions '${a}' eq '${b}'; then echo 0; else echo 1; fi`,
    )
    .join("\n");
  const { stdout } = await run("sh", ["-c", script], { maxBuffer: 1 << 20 });
  return stdout.trim().split("\n").map(Number);
}

test("agrees with dpkg --compare-versions on 300 generated pairs", async (t) => {
  if (!(await dpkgAvailable())) {
    t.log("SKIPPED: dpkg is not installed");
    t.pass();
    return;
  }
  const pairs = fc.sample(pairArb, { numRuns: 300, seed: 20240601 });
  const answers = await dpkgCompare(pairs);
  t.is(answers.length, pairs.length);
  const disagreements = pairs.flatMap(([a, b], i) =>
    compareVersions(a, b) === answers[i]
      ? []
      : [`${a} vs ${b}: dpkg ${answers[i]}, ours ${compareVersions(a, b)}`],
  );
  t.deepEqual(disagreements, []);
  // The sample must exercise all three outcomes, or the check proves little.
  t.true(answers.includes(-1) && answers.includes(0) && answers.includes(1));
});

test("the order is antisymmetric and transitive (generated versions)", (t) => {
  fc.assert(
    fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
      if (compareVersions(a, b) !== -compareVersions(b, a)) return false;
      if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0 && compareVersions(a, c) > 0) return false;
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
