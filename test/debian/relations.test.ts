// Relation fields as Packages indices write them, and the malformed ones an
// index could carry: errors come back as data with the offset of the bad part.
import test from "ava";
import {
  archRestrictionAllows,
  formatRelation,
  parseProvides,
  parseRelationField,
  satisfies,
} from "../../src/debian/relations.ts";

test("Depends: groups, alternatives, versions, arch qualifiers", (t) => {
  const parsed = parseRelationField(
    "a (>= 1.2) | b:any, c [amd64], d:native (<< 2:1.0~), e:amd64 (=1.0-1), f (<=3), g (>>4)",
  );
  t.deepEqual(parsed, {
    ok: true,
    value: [
      [
        { name: "a", constraint: { op: ">=", version: "1.2" } },
        { name: "b", arch: "any" },
      ],
      [{ name: "c", archRestriction: { negated: false, arches: ["amd64"] } }],
      [{ name: "d", arch: "native", constraint: { op: "<<", version: "2:1.0~" } }],
      [{ name: "e", arch: "amd64", constraint: { op: "=", version: "1.0-1" } }],
      [{ name: "f", constraint: { op: "<=", version: "3" } }],
      [{ name: "g", constraint: { op: ">>", version: "4" } }],
    ],
  });
});

test("a real Depends line from bookworm", (t) => {
  const parsed = parseRelationField(
    "libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libtomcrypt1 (>= 1.18.2), libtommath1 (>= 1.2.0), zlib1g (>= 1:1.1.4)",
  );
  t.true(parsed.ok);
  if (parsed.ok)
    t.deepEqual(
      parsed.value.map((g) => g.map(formatRelation).join(" | ")),
      [
        "libc6 (>= 2.34)",
        "libcrypt1 (>= 1:4.1.0)",
        "libtomcrypt1 (>= 1.18.2)",
        "libtommath1 (>= 1.2.0)",
        "zlib1g (>= 1:1.1.4)",
      ],
    );
});

test("build profiles are dropped, arch restrictions kept; folded lines are whitespace", (t) => {
  const parsed = parseRelationField(
    "a <!nocheck> <stage1 cross>,\n b [!i386 !armel] <!nodoc>, c (>= 1) [linux-any]",
  );
  t.deepEqual(parsed, {
    ok: true,
    value: [
      [{ name: "a" }],
      [{ name: "b", archRestriction: { negated: true, arches: ["i386", "armel"] } }],
      [
        {
          name: "c",
          constraint: { op: ">=", version: "1" },
          archRestriction: { negated: false, arches: ["linux-any"] },
        },
      ],
    ],
  });
});

test("the obsolete < and > mean <= and >=, as dpkg reads them", (t) => {
  t.deepEqual(parseRelationField("a (< 1), b (> 2)"), {
    ok: true,
    value: [
      [{ name: "a", constraint: { op: "<=", version: "1" } }],
      [{ name: "b", constraint: { op: ">=", version: "2" } }],
    ],
  });
});

test("empty and absent fields are the empty list", (t) => {
  t.deepEqual(parseRelationField(""), { ok: true, value: [] });
  t.deepEqual(parseRelationField("  \n "), { ok: true, value: [] });
  t.deepEqual(parseProvides(""), { ok: true, value: [] });
});

const malformed: Array<[string, number, RegExp]> = [
  ["a, , b", 2, /missing package name/],
  ["a,", 2, /missing package name/],
  ["a | | b", 3, /missing package name/],
  ["a (>= 1.0", 0, /cannot read relation/],
  ["a (>= )", 0, /version string is empty/],
  ["a (1.0)", 0, /missing relation operator/],
  ["a (>= 1.0 2)", 0, /cannot read relation/],
  ["x, a (=> 1.0)", 3, /cannot read relation|unknown relation operator/],
  ["a (>= 1.0_1)", 0, /invalid character in version number/],
  ["a b", 0, /cannot read relation/],
  ["-a", 0, /must start with a letter or digit/],
  ["a:AMD64", 0, /invalid architecture qualifier/],
  ["a [amd64 !i386]", 0, /mixes negated/],
  ["a []", 0, /empty architecture list/],
  ["ok,  fo\u00e9", 5, /not allowed in a package name/],
];

for (const [text, offset, message] of malformed) {
  test(`malformed: ${JSON.stringify(text)}`, (t) => {
    const parsed = parseRelationField(text);
    t.false(parsed.ok);
    if (!parsed.ok) {
      t.is(parsed.error.code, "malformed-relation");
      t.is(parsed.error.offset, offset);
      t.is(parsed.error.text, text);
      t.regex(parsed.error.message, message);
    }
  });
}

test("Provides: names with optional (= version)", (t) => {
  t.deepEqual(parseProvides("ssh-server, libfoo-abi (= 1.2-3), awk"), {
    ok: true,
    value: [{ name: "ssh-server" }, { name: "libfoo-abi", version: "1.2-3" }, { name: "awk" }],
  });
});

test("Provides refuses alternatives, other operators and arch qualifiers", (t) => {
  const cases: Array<[string, RegExp]> = [
    ["a | b", /alternatives/],
    ["a (>= 1)", /only '\(= version\)'/],
    ["a:any", /no architecture/],
    ["a [amd64]", /no architecture/],
    ["a,,b", /missing package name/],
  ];
  for (const [text, message] of cases) {
    const parsed = parseProvides(text);
    t.false(parsed.ok, text);
    if (!parsed.ok) t.regex(parsed.error.message, message, text);
  }
});

test("satisfies: each operator", (t) => {
  const v = "1.2-3";
  t.true(satisfies(v, undefined));
  t.true(satisfies(v, { op: "<<", version: "1.2-4" }));
  t.false(satisfies(v, { op: "<<", version: "1.2-3" }));
  t.true(satisfies(v, { op: "<=", version: "1.2-3" }));
  t.true(satisfies(v, { op: "=", version: "0:1.2-3" }));
  t.false(satisfies(v, { op: "=", version: "1.2-3+b1" }));
  t.true(satisfies(v, { op: ">=", version: "1.2~" }));
  t.true(satisfies(v, { op: ">>", version: "1.2-2" }));
  t.false(satisfies(v, { op: ">>", version: "1.2-3" }));
});

test("arch restrictions against amd64", (t) => {
  t.true(archRestrictionAllows(undefined, "amd64"));
  t.true(archRestrictionAllows({ negated: false, arches: ["amd64"] }, "amd64"));
  t.false(archRestrictionAllows({ negated: false, arches: ["i386"] }, "amd64"));
  t.false(archRestrictionAllows({ negated: true, arches: ["amd64"] }, "amd64"));
  t.true(archRestrictionAllows({ negated: true, arches: ["i386"] }, "amd64"));
  t.true(archRestrictionAllows({ negated: false, arches: ["linux-any"] }, "amd64"));
  t.true(archRestrictionAllows({ negated: false, arches: ["any-amd64"] }, "amd64"));
  t.false(archRestrictionAllows({ negated: false, arches: ["hurd-any"] }, "amd64"));
});
