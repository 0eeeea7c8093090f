// The closure resolver on small hand-built universes: what gets selected,
// why, and the errors (with codes, chains and the requests' origins).
import fc from "fast-check";
import test from "ava";
import {
  MISSING_SIZE_KIB,
  ORDER_MARGIN,
  resolve,
  type PackageRequest,
  type Resolution,
  type ResolveError,
} from "../../src/debian/resolve.ts";
import type { PackageRecord } from "../../src/debian/types.ts";
import { buildUniverse } from "../../src/debian/universe.ts";
import { MAIN, pkg, SECURITY, UPDATES, universeOf } from "./helpers.ts";

const req = (name: string, extra: Partial<PackageRequest<string>> = {}): PackageRequest<string> => ({
  name,
  origin: `line of ${name}`,
  ...extra,
});

function run(records: readonly PackageRecord[], requests: readonly PackageRequest<string>[]) {
  return resolve(universeOf(records), requests, { arch: "amd64" });
}

function ok(t: { fail(m: string): void }, result: ReturnType<typeof run>): Resolution {
  if (!result.ok) {
    t.fail(`expected a resolution, got ${JSON.stringify(result.errors, null, 2)}`);
    throw new Error("unreachable");
  }
  return result.resolution;
}

function errors(t: { fail(m: string): void }, result: ReturnType<typeof run>): ResolveError<string>[] {
  if (result.ok) {
    t.fail(`expected errors, got ${JSON.stringify(names(result.resolution))}`);
    throw new Error("unreachable");
  }
  return result.errors;
}

const names = (r: Resolution) => r.packages.map((p) => `${p.record.name}=${p.record.version}`);

const base = [
  pkg("libc6", "2.36-9+deb12u9", { depends: "libgcc-s1", multiArch: "same", installedSize: 12000 }),
  pkg("libgcc-s1", "12.2.0-14", {
    depends: "gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)",
    multiArch: "same",
    installedSize: 140,
  }),
  pkg("gcc-12-base", "12.2.0-14", { multiArch: "same", installedSize: 100 }),
  pkg("bash", "5.2.15-2+b2", {
    essential: true,
    priority: "required",
    preDepends: "libc6 (>= 2.36), libtinfo6 (>= 6)",
    installedSize: 7000,
  }),
  pkg("coreutils", "9.1-1", {
    essential: true,
    priority: "required",
    preDepends: "libc6 (>= 2.34)",
    installedSize: 18000,
  }),
  pkg("dpkg", "1.21.22", {
    essential: true,
    priority: "required",
    preDepends: "libc6 (>= 2.34)",
    installedSize: 6000,
  }),
  pkg("libtinfo6", "6.4-4", { depends: "libc6 (>= 2.34)", installedSize: 500 }),
  pkg("zlib1g", "1:1.2.13.dfsg-1", {
    depends: "libc6 (>= 2.14)",
    multiArch: "same",
    priority: "optional",
    installedSize: 160,
  }),
];

test("a closure: dependencies followed, nothing else, sorted by name, with reasons", (t) => {
  const r = ok(
    t,
    run([...base, pkg("tool", "1.0-1", { depends: "libc6 (>= 2.34), zlib1g (>= 1:1.1.4)" })], [req("tool")]),
  );
  t.deepEqual(names(r), [
    "gcc-12-base=12.2.0-14",
    "libc6=2.36-9+deb12u9",
    "libgcc-s1=12.2.0-14",
    "tool=1.0-1",
    "zlib1g=1:1.2.13.dfsg-1",
  ]);
  const byName = new Map(r.packages.map((p) => [p.record.name, p]));
  t.deepEqual(byName.get("tool")!.reasons, [{ kind: "requested", request: "tool" }]);
  t.deepEqual(byName.get("libc6")!.reasons, [
    { kind: "dependency", of: "libgcc-s1", field: "Depends", relation: "libc6 (>= 2.35)" },
    { kind: "dependency", of: "tool", field: "Depends", relation: "libc6 (>= 2.34)" },
    { kind: "dependency", of: "zlib1g", field: "Depends", relation: "libc6 (>= 2.14)" },
  ]);
  t.deepEqual(byName.get("gcc-12-base")!.requestedBy, ["tool"]);
  t.deepEqual(r.providerChoices, []);
});

test("Essential and Priority: required packages are not pulled in by themselves", (t) => {
  const r = ok(t, run([...base, pkg("hello", "2.10-3", { depends: "libc6 (>= 2.34)" })], [req("hello")]));
  t.false(r.packages.some((p) => p.record.essential === true || p.record.priority === "required"));
  t.deepEqual(names(r), [
    "gcc-12-base=12.2.0-14",
    "hello=2.10-3",
    "libc6=2.36-9+deb12u9",
    "libgcc-s1=12.2.0-14",
  ]);
});

test("...but they are when something depends on them; Pre-Depends are followed", (t) => {
  const r = ok(t, run([...base, pkg("script", "1", { preDepends: "bash (>= 5)" })], [req("script")]));
  t.true(names(r).includes("bash=5.2.15-2+b2"));
  t.true(names(r).includes("libtinfo6=6.4-4"));
  const bash = r.packages.find((p) => p.record.name === "bash")!;
  t.deepEqual(bash.reasons, [
    { kind: "dependency", of: "script", field: "Pre-Depends", relation: "bash (>= 5)" },
  ]);
});

test("requestedBy lists each request whose closure holds the package", (t) => {
  const r = ok(
    t,
    run(
      [...base, pkg("a", "1", { depends: "zlib1g" }), pkg("b", "1", { depends: "libc6" })],
      [req("b"), req("a")],
    ),
  );
  const by = Object.fromEntries(r.packages.map((p) => [p.record.name, p.requestedBy]));
  t.deepEqual(by, {
    a: ["a"],
    b: ["b"],
    "gcc-12-base": ["a", "b"],
    libc6: ["a", "b"],
    "libgcc-s1": ["a", "b"],
    zlib1g: ["a"],
  });
});

test("cycles: a depends on b depends on a", (t) => {
  const r = ok(
    t,
    run(
      [
        pkg("a", "1", { depends: "b" }),
        pkg("b", "1", { depends: "a (>= 1)" }),
        pkg("c", "1", { depends: "a" }),
      ],
      [req("a")],
    ),
  );
  t.deepEqual(names(r), ["a=1", "b=1"]);
  t.deepEqual(r.packages[0]!.reasons, [
    { kind: "requested", request: "a" },
    { kind: "dependency", of: "b", field: "Depends", relation: "a (>= 1)" },
  ]);
});

// ---- alternatives

test("alternatives: the first satisfiable when none is selected", (t) => {
  const r = ok(
    t,
    run([pkg("x", "1", { depends: "gone | b | c" }), pkg("b", "1"), pkg("c", "1")], [req("x")]),
  );
  t.deepEqual(names(r), ["b=1", "x=1"]);
});

test("alternatives: a requested one wins, wherever it is in the list", (t) => {
  const r = ok(
    t,
    run([pkg("x", "1", { depends: "b | c" }), pkg("b", "1"), pkg("c", "1")], [req("x"), req("c")]),
  );
  t.deepEqual(names(r), ["c=1", "x=1"]);
});

test("alternatives: one that something else needs anyway wins (choices wait for hard dependencies)", (t) => {
  // x is visited first, but its choice is made after y's plain dependency on c.
  const r = ok(
    t,
    run(
      [pkg("x", "1", { depends: "b | c" }), pkg("y", "1", { depends: "c" }), pkg("b", "1"), pkg("c", "1")],
      [req("x"), req("y")],
    ),
  );
  t.deepEqual(names(r), ["c=1", "x=1", "y=1"]);
});

test("alternatives: a version that does not fit moves on to the next", (t) => {
  const r = ok(
    t,
    run([pkg("x", "1", { depends: "b (>= 2) | c" }), pkg("b", "1"), pkg("c", "1")], [req("x")]),
  );
  t.deepEqual(names(r), ["c=1", "x=1"]);
});

test("alternatives: none installable is one error naming the group", (t) => {
  const [e, ...rest] = errors(
    t,
    run([pkg("x", "1", { depends: "b (>= 2) | nope" }), pkg("b", "1")], [req("x")]),
  );
  t.deepEqual(rest, []);
  t.is(e!.code, "unsatisfiable");
  t.like(e, { relation: "b (>= 2) | nope", origins: ["line of x"], chain: ["x"] });
  t.regex(
    e!.message,
    /x 1 needs b \(>= 2\) \| nope, and none can be installed \(b \(>= 2\): no version fits; nope: no such package\)/,
  );
});

// ---- alternatives: the first, unless a later one is an order of magnitude smaller

/** KiB, as Installed-Size says. */
const kib = (installedSize: number) => ({ installedSize });

/** big pulls three more packages, 100 KiB in all; small pulls none, 10 KiB: a tenth. */
const bigAndSmall = [
  pkg("big", "1", { depends: "big-1, big-2", ...kib(70) }),
  pkg("big-1", "1", { depends: "big-3", ...kib(10) }),
  pkg("big-2", "1", kib(10)),
  pkg("big-3", "1", kib(10)),
  pkg("small", "1", kib(10)),
];

test("smallest closure: ORDER_MARGIN is 10", (t) => {
  t.is(ORDER_MARGIN, 10);
});

test("smallest closure: a later alternative adding a tenth of the first's Installed-Size wins, and the choice says why", (t) => {
  const r = ok(t, run([pkg("x", "1", { depends: "big | small" }), ...bigAndSmall], [req("x")]));
  t.deepEqual(names(r), ["small=1", "x=1"]);
  t.deepEqual(r.alternativeChoices, [
    {
      relation: "big | small",
      alternative: "small",
      chosen: "small",
      rule: "smallest-closure",
      sizes: [
        { alternative: "big", package: "big", kib: 100, packages: 4 },
        { alternative: "small", package: "small", kib: 10, packages: 1 },
      ],
      neededBy: "x",
    },
  ]);
});

test("smallest closure: a later alternative that is smaller, but not by ORDER_MARGIN, loses to the first", (t) => {
  // As fontconfig-config's `fonts-dejavu-core | ttf-bitstream-vera`: 2,960 KiB against 595.
  const records = [
    pkg("x", "1", { depends: "dejavu | vera" }),
    pkg("dejavu", "1", kib(2960)),
    pkg("vera", "1", kib(595)),
  ];
  const r = ok(t, run(records, [req("x")]));
  t.deepEqual(names(r), ["dejavu=1", "x=1"]);
  // vera may add at most 296 KiB to win; it is past that with itself.
  t.deepEqual(r.alternativeChoices[0], {
    relation: "dejavu | vera",
    alternative: "dejavu",
    chosen: "dejavu",
    rule: "first",
    sizes: [
      { alternative: "dejavu", package: "dejavu", kib: 2960, packages: 1 },
      { alternative: "vera", package: "vera", kib: 296, stopped: "cap" },
    ],
    neededBy: "x",
  });
  // One KiB more than a tenth is not enough either.
  const near = ok(
    t,
    run(
      [pkg("x", "1", { depends: "first | later" }), pkg("first", "1", kib(100)), pkg("later", "1", kib(11))],
      [req("x")],
    ),
  );
  t.deepEqual(names(near), ["first=1", "x=1"]);
  t.like(near.alternativeChoices[0], {
    rule: "first",
    sizes: [
      { package: "first", kib: 100 },
      { package: "later", kib: 10, stopped: "cap" },
    ],
  });
});

test("smallest closure: a third alternative must beat the second's total by ORDER_MARGIN once the second has won", (t) => {
  const records = (third: number) => [
    pkg("x", "1", { depends: "a | b | c" }),
    pkg("a", "1", kib(10_000)),
    pkg("b", "1", kib(1_000)),
    pkg("c", "1", kib(third)),
  ];
  // c is a tenth of a's total, but not of b's, which won before it.
  const r = ok(t, run(records(500), [req("x")]));
  t.deepEqual(names(r), ["b=1", "x=1"]);
  t.like(r.alternativeChoices[0], {
    rule: "smallest-closure",
    sizes: [
      { package: "a", kib: 10_000 },
      { package: "b", kib: 1_000 },
      { package: "c", kib: 100, stopped: "cap" },
    ],
  });
  const c = ok(t, run(records(100), [req("x")]));
  t.deepEqual(names(c), ["c=1", "x=1"]);
  t.like(c.alternativeChoices[0], {
    rule: "smallest-closure",
    sizes: [
      { package: "a", kib: 10_000 },
      { package: "b", kib: 1_000 },
      { package: "c", kib: 100, packages: 1 },
    ],
  });
});

/** huge is one package of 200,000 KiB; three is three packages of 10 KiB. */
const hugeAndThree = [
  pkg("huge", "1", kib(200_000)),
  pkg("three", "1", { depends: "three-1, three-2", ...kib(10) }),
  pkg("three-1", "1", kib(10)),
  pkg("three-2", "1", kib(10)),
];

test("smallest closure: fewer packages that are bigger in total lose", (t) => {
  const r = ok(t, run([pkg("x", "1", { depends: "huge | three" }), ...hugeAndThree], [req("x")]));
  t.deepEqual(names(r), ["three=1", "three-1=1", "three-2=1", "x=1"]);
  t.like(r.alternativeChoices[0], {
    chosen: "three",
    rule: "smallest-closure",
    sizes: [
      { package: "huge", kib: 200_000, packages: 1 },
      { package: "three", kib: 30, packages: 3 },
    ],
  });
});

test("smallest closure: an option stops summing once past a tenth of the winner's total, and says so", (t) => {
  // three comes first: 30 KiB; huge is past 3 with its first package and is not summed further.
  const r = ok(t, run([pkg("x", "1", { depends: "three | huge" }), ...hugeAndThree], [req("x")]));
  t.deepEqual(names(r), ["three=1", "three-1=1", "three-2=1", "x=1"]);
  t.deepEqual(r.alternativeChoices[0]!.sizes, [
    { alternative: "three", package: "three", kib: 30, packages: 3 },
    { alternative: "huge", package: "huge", kib: 3, stopped: "cap" },
  ]);
  t.is(r.alternativeChoices[0]!.rule, "first");
});

test("smallest closure: a record without Installed-Size counts as 1 KiB (MISSING_SIZE_KIB)", (t) => {
  t.is(MISSING_SIZE_KIB, 1);
  // bare has no Installed-Size: 1 KiB, a tenth of sized's 10.
  const alone = ok(
    t,
    run(
      [pkg("x", "1", { depends: "sized | bare" }), pkg("sized", "1", kib(10)), pkg("bare", "1")],
      [req("x")],
    ),
  );
  t.deepEqual(names(alone), ["bare=1", "x=1"]);
  t.deepEqual(alone.alternativeChoices[0]!.sizes, [
    { alternative: "sized", package: "sized", kib: 10, packages: 1 },
    { alternative: "bare", package: "bare", kib: 1, packages: 1 },
  ]);
  // With a dependency that has none either: 1 + 1 = 2, more than a tenth of sized's 10.
  const pair = ok(
    t,
    run(
      [
        pkg("x", "1", { depends: "sized | bare" }),
        pkg("sized", "1", kib(10)),
        pkg("bare", "1", { depends: "bare-lib" }),
        pkg("bare-lib", "1"),
      ],
      [req("x")],
    ),
  );
  t.deepEqual(names(pair), ["sized=1", "x=1"]);
  t.like(pair.alternativeChoices[0], {
    rule: "first",
    sizes: [
      { package: "sized", kib: 10, packages: 1 },
      { package: "bare", kib: 1, stopped: "cap" },
    ],
  });
});

test("smallest closure: packages already selected are not counted", (t) => {
  // y needs big-1 and big-2 anyway (and big-1 brings big-3): then big adds only itself, 70 KiB,
  // and small's 10 is not a tenth of that: big stays, as the first.
  const r = ok(
    t,
    run(
      [pkg("x", "1", { depends: "big | small" }), pkg("y", "1", { depends: "big-1, big-2" }), ...bigAndSmall],
      [req("x"), req("y")],
    ),
  );
  t.deepEqual(names(r), ["big=1", "big-1=1", "big-2=1", "big-3=1", "x=1", "y=1"]);
  t.like(r.alternativeChoices[0], {
    chosen: "big",
    rule: "first",
    sizes: [
      { alternative: "big", package: "big", kib: 70, packages: 1 },
      { alternative: "small", package: "small", kib: 7, stopped: "cap" },
    ],
  });
});

test("smallest closure: a tie goes to the first alternative", (t) => {
  const records = [
    pkg("x", "1", { depends: "one | two" }),
    pkg("one", "1", { depends: "one-lib", ...kib(15) }),
    pkg("one-lib", "1", kib(5)),
    pkg("two", "1", { depends: "two-lib", ...kib(5) }),
    pkg("two-lib", "1", kib(15)),
  ];
  const r = ok(t, run(records, [req("x")]));
  t.deepEqual(names(r), ["one=1", "one-lib=1", "x=1"]);
  t.like(r.alternativeChoices[0], {
    chosen: "one",
    rule: "first",
    sizes: [
      { alternative: "one", package: "one", kib: 20, packages: 2 },
      { alternative: "two", package: "two", kib: 2, stopped: "cap" },
    ],
  });
});

test("smallest closure: an already-selected alternative is used, however much it brought", (t) => {
  const r = ok(t, run([pkg("x", "1", { depends: "big | small" }), ...bigAndSmall], [req("x"), req("big")]));
  t.deepEqual(names(r), ["big=1", "big-1=1", "big-2=1", "big-3=1", "x=1"]);
  t.deepEqual(r.alternativeChoices, []);
});

test("smallest closure: the choice waits, so a later forced selection of big is reused", (t) => {
  // x's choice is pending when y's chain (y -> mid -> big) is followed: big is selected by then.
  const records = [
    pkg("x", "1", { depends: "big | small" }),
    pkg("y", "1", { depends: "mid" }),
    pkg("mid", "1", { depends: "big" }),
    ...bigAndSmall,
  ];
  const r = ok(t, run(records, [req("x"), req("y")]));
  t.deepEqual(names(r), ["big=1", "big-1=1", "big-2=1", "big-3=1", "mid=1", "x=1", "y=1"]);
  t.deepEqual(r.alternativeChoices, []);
  t.deepEqual(r.packages.find((p) => p.record.name === "big")!.reasons, [
    { kind: "dependency", of: "mid", field: "Depends", relation: "big" },
    { kind: "dependency", of: "x", field: "Depends", relation: "big" },
  ]);
});

test("smallest closure: choices inside a closure are summed as the resolver would take them", (t) => {
  // big's own choice (tiny | huge) takes tiny, the first: big adds 20 KiB, a tenth of mid's 210
  // or less (with huge it would add 230).
  const records = [
    pkg("x", "1", { depends: "mid | big" }),
    pkg("mid", "1", { depends: "mid-1, mid-2", ...kib(10) }),
    pkg("mid-1", "1", kib(100)),
    pkg("mid-2", "1", kib(100)),
    pkg("big", "1", { depends: "tiny | huge", ...kib(10) }),
    pkg("tiny", "1", kib(10)),
    pkg("huge", "1", { depends: "mid-1, mid-2", ...kib(10) }),
  ];
  const r = ok(t, run(records, [req("x")]));
  t.deepEqual(names(r), ["big=1", "tiny=1", "x=1"]);
  t.like(
    r.alternativeChoices.find((c) => c.neededBy === "x"),
    {
      chosen: "big",
      sizes: [
        { package: "mid", kib: 210, packages: 3 },
        { package: "big", kib: 20, packages: 2 },
      ],
    },
  );
});

test("smallest closure: an alternative whose closure cannot be installed is not taken for being small", (t) => {
  const records = [
    pkg("x", "1", { depends: "big | small" }),
    ...bigAndSmall.filter((p) => p.name !== "small"),
    pkg("small", "1", { depends: "gone", ...kib(10) }),
  ];
  const r = ok(t, run(records, [req("x")]));
  t.deepEqual(names(r), ["big=1", "big-1=1", "big-2=1", "big-3=1", "x=1"]);
  t.like(r.alternativeChoices[0], {
    chosen: "big",
    rule: "first",
    sizes: [
      { package: "big", kib: 100, packages: 4 },
      { package: "small", kib: 10, packages: 1, stopped: "dead-end" },
    ],
  });
});

test("smallest closure: a dead end first leaves the default to the next alternative", (t) => {
  const records = [
    pkg("x", "1", { depends: "gone-first | mid | small" }),
    pkg("gone-first", "1", { depends: "gone", ...kib(1) }),
    pkg("mid", "1", kib(50)),
    pkg("small", "1", kib(10)),
  ];
  const r = ok(t, run(records, [req("x")]));
  // mid is the first installable: small is smaller, but not a tenth of it.
  t.deepEqual(names(r), ["mid=1", "x=1"]);
  t.like(r.alternativeChoices[0], {
    chosen: "mid",
    rule: "first",
    sizes: [
      { package: "gone-first", kib: 1, packages: 1, stopped: "dead-end" },
      { package: "mid", kib: 50, packages: 1 },
      { package: "small", kib: 5, stopped: "cap" },
    ],
  });
});

test("smallest closure: when every alternative is a dead end, the first is taken and its error is the one reported", (t) => {
  const records = [
    pkg("x", "1", { depends: "p | q" }),
    pkg("p", "1", { depends: "gone-p" }),
    pkg("q", "1", { depends: "gone-q" }),
  ];
  const all = errors(t, run(records, [req("x")]));
  t.deepEqual(
    all.map((e) => [e.code, e.chain]),
    [["unknown-package", ["x", "p"]]],
  );
  t.regex(all[0]!.message, /^p 1 depends on unknown package 'gone-p'/);
});

/** mawk, Priority required, is one package of `mawkKiB`; gawk brings libgawk, 900 KiB in all. */
const awks = (mawkKiB: number) => [
  pkg("x", "1", { depends: "awk" }),
  pkg("mawk", "1", { provides: "awk", priority: "required", ...kib(mawkKiB) }),
  pkg("gawk", "1", { provides: "awk", depends: "libgawk", ...kib(600) }),
  pkg("libgawk", "1", kib(300)),
];

test("smallest closure: several providers, one adding a tenth of what the first by Priority adds wins, though it brings more packages", (t) => {
  const r = ok(t, run(awks(9000), [req("x")]));
  t.deepEqual(names(r), ["gawk=1", "libgawk=1", "x=1"]);
  t.deepEqual(r.providerChoices, [
    {
      virtual: "awk",
      chosen: "gawk",
      among: ["gawk", "mawk"],
      rule: "smallest-closure",
      sizes: [
        { package: "mawk", kib: 9000, packages: 1 },
        { package: "gawk", kib: 900, packages: 2 },
      ],
      neededBy: "x",
    },
  ]);
});

test("smallest closure: several providers, one smaller but not by ORDER_MARGIN loses to the first by Priority", (t) => {
  const r = ok(t, run(awks(8999), [req("x")]));
  t.deepEqual(names(r), ["mawk=1", "x=1"]);
  t.deepEqual(r.providerChoices, [
    {
      virtual: "awk",
      chosen: "mawk",
      among: ["gawk", "mawk"],
      rule: "priority",
      sizes: [
        { package: "mawk", kib: 8999, packages: 1 },
        { package: "gawk", kib: 899, stopped: "cap" },
      ],
      neededBy: "x",
    },
  ]);
});

const choiceRecords = [
  ...base,
  pkg("app", "1", { depends: "big | small, awk, tool | helper" }),
  ...bigAndSmall,
  pkg("tool", "1", { depends: "libc6, zlib1g", ...kib(10) }),
  pkg("helper", "1", { depends: "gone", ...kib(10) }),
  pkg("mawk", "1", { provides: "awk", priority: "required", depends: "zlib1g, libtinfo6", ...kib(10) }),
  pkg("gawk", "1", { provides: "awk", depends: "libc6", ...kib(10) }),
  pkg("busybox", "1", { provides: "awk", depends: "big-2 | small", ...kib(10) }),
  pkg("svc", "1", { depends: "two | one" }),
  pkg("one", "1", { depends: "libtinfo6", ...kib(10) }),
  pkg("two", "1", { depends: "libtinfo6, zlib1g", ...kib(10) }),
];

test("smallest closure: the same choices whatever the order of records and requests", (t) => {
  const requests = [req("app"), req("svc"), req("libc6")];
  const expected = ok(t, run(choiceRecords, requests));
  // Choices in the order they wait: big | small takes small (10 KiB against 100); awk takes busybox,
  // whose big-2 | small small now satisfies (10 against mawk's 670, with zlib1g and libtinfo6);
  // tool | helper takes tool (helper is a dead end), which brings zlib1g; so two | one is a tie
  // (510 each, with libtinfo6) and takes two.
  t.deepEqual(names(expected), [
    "app=1",
    "busybox=1",
    "gcc-12-base=12.2.0-14",
    "libc6=2.36-9+deb12u9",
    "libgcc-s1=12.2.0-14",
    "libtinfo6=6.4-4",
    "small=1",
    "svc=1",
    "tool=1",
    "two=1",
    "zlib1g=1:1.2.13.dfsg-1",
  ]);
  t.deepEqual(
    expected.alternativeChoices.map(
      (c) =>
        `${c.neededBy}: ${c.relation} -> ${c.chosen} (${c.rule}: ${c.sizes.map((s) => s.kib).join(", ")})`,
    ),
    [
      "app: big | small -> small (smallest-closure: 100, 10)",
      "app: tool | helper -> tool (first: 170, 10)",
      "svc: two | one -> two (first: 510, 51)",
    ],
  );
  t.like(expected.providerChoices[0], {
    virtual: "awk",
    chosen: "busybox",
    rule: "smallest-closure",
    sizes: [
      { package: "mawk", kib: 670 },
      { package: "busybox", kib: 10 },
      { package: "gawk", kib: 1, stopped: "cap" },
    ],
  });
  fc.assert(
    fc.property(
      fc.shuffledSubarray(choiceRecords, { minLength: choiceRecords.length }),
      fc.shuffledSubarray(requests, { minLength: requests.length }),
      (records, reqs) => {
        t.deepEqual(resolve(universeOf(records), reqs, { arch: "amd64" }), {
          ok: true,
          resolution: expected,
        });
      },
    ),
    { numRuns: 100 },
  );
});

// ---- virtual packages

test("virtual: the only provider is chosen and the choice recorded", (t) => {
  const r = ok(
    t,
    run(
      [
        pkg("srv", "1", { depends: "ssh-server" }),
        pkg("dropbear-bin", "2022.83-1", { provides: "ssh-server" }),
      ],
      [req("srv")],
    ),
  );
  t.deepEqual(names(r), ["dropbear-bin=2022.83-1", "srv=1"]);
  t.deepEqual(r.providerChoices, [
    {
      virtual: "ssh-server",
      chosen: "dropbear-bin",
      among: ["dropbear-bin"],
      rule: "only-provider",
      neededBy: "srv",
    },
  ]);
  t.deepEqual(r.packages[0]!.reasons, [
    { kind: "dependency", of: "srv", field: "Depends", relation: "ssh-server" },
  ]);
});

test("virtual: several providers, Priority required/important/standard first", (t) => {
  const providers = [
    pkg("mawk", "1.3.4", { provides: "awk", priority: "required" }),
    pkg("gawk", "5.2.1", { provides: "awk", priority: "optional" }),
    pkg("busybox-awk", "1", { provides: "awk", priority: "optional" }),
  ];
  const r = ok(t, run([pkg("x", "1", { depends: "awk" }), ...providers], [req("x")]));
  t.deepEqual(names(r), ["mawk=1.3.4", "x=1"]);
  // All add only themselves, with no Installed-Size (1 KiB each): mawk, the first by Priority, is
  // taken; the others would have to add at most 0 KiB, and stop summing at once.
  t.deepEqual(r.providerChoices, [
    {
      virtual: "awk",
      chosen: "mawk",
      among: ["busybox-awk", "gawk", "mawk"],
      rule: "priority",
      sizes: [
        { package: "mawk", kib: 1, packages: 1 },
        { package: "busybox-awk", kib: 0, stopped: "cap" },
        { package: "gawk", kib: 0, stopped: "cap" },
      ],
      neededBy: "x",
    },
  ]);
});

test("virtual: several providers of equal standing, name order", (t) => {
  const r = ok(
    t,
    run(
      [
        pkg("x", "1", { depends: "mail-transport-agent" }),
        pkg("postfix", "3", { provides: "mail-transport-agent" }),
        pkg("exim4", "4", { provides: "mail-transport-agent" }),
      ],
      [req("x")],
    ),
  );
  t.deepEqual(names(r), ["exim4=4", "x=1"]);
  t.is(r.providerChoices[0]!.rule, "name-order");
});

test("virtual: an already-selected provider is used, even a late one", (t) => {
  const records = [
    pkg("x", "1", { depends: "awk" }),
    pkg("y", "1", { depends: "gawk" }),
    pkg("mawk", "1", { provides: "awk", priority: "required" }),
    pkg("gawk", "5", { provides: "awk" }),
  ];
  const r = ok(t, run(records, [req("x"), req("y")]));
  t.deepEqual(names(r), ["gawk=5", "x=1", "y=1"]);
  t.deepEqual(r.providerChoices, []);
  t.deepEqual(r.packages[0]!.reasons, [
    { kind: "dependency", of: "x", field: "Depends", relation: "awk" },
    { kind: "dependency", of: "y", field: "Depends", relation: "gawk" },
  ]);
});

test("virtual: a real package of that name is preferred over providers", (t) => {
  const r = ok(
    t,
    run(
      [pkg("x", "1", { depends: "awk" }), pkg("awk", "1"), pkg("gawk", "5", { provides: "awk" })],
      [req("x")],
    ),
  );
  t.deepEqual(names(r), ["awk=1", "x=1"]);
});

test("virtual: a request for a virtual name", (t) => {
  const r = ok(
    t,
    run(
      [
        pkg("dropbear-bin", "1", { provides: "ssh-server" }),
        pkg("openssh-server", "1", { provides: "ssh-server", priority: "optional" }),
      ],
      [req("ssh-server")],
    ),
  );
  t.deepEqual(names(r), ["dropbear-bin=1"]);
  t.deepEqual(r.packages[0]!.reasons, [{ kind: "requested", request: "ssh-server" }]);
  t.deepEqual(r.packages[0]!.requestedBy, ["ssh-server"]);
  t.like(r.providerChoices[0], {
    virtual: "ssh-server",
    chosen: "dropbear-bin",
    neededBy: "ssh-server",
    rule: "name-order",
  });
});

test("virtual: a versioned dependency needs a versioned Provides that fits", (t) => {
  const records = [
    pkg("x", "1", { depends: "libfoo-abi (>= 2)" }),
    pkg("old", "1", { provides: "libfoo-abi (= 1)" }),
    pkg("plain", "1", { provides: "libfoo-abi" }),
    pkg("new", "1", { provides: "libfoo-abi (= 2.1)" }),
  ];
  const r = ok(t, run(records, [req("x")]));
  t.deepEqual(names(r), ["new=1", "x=1"]);
});

// ---- versions and suites

test("the highest version across suites is the candidate; an update in a later suite wins", (t) => {
  const r = ok(
    t,
    run(
      [
        pkg("x", "1", { depends: "lib" }),
        pkg("lib", "1.0-1"),
        pkg("lib", "1.0-1+deb12u1", { from: SECURITY }),
        pkg("lib", "1.0-1~bpo1", { from: UPDATES }),
      ],
      [req("x")],
    ),
  );
  t.deepEqual(names(r), ["lib=1.0-1+deb12u1", "x=1"]);
  t.deepEqual(r.packages[0]!.record.from, SECURITY);
});

test("a version constraint met only by a newer suite", (t) => {
  const r = ok(
    t,
    run(
      [pkg("x", "1", { depends: "lib (>= 1.1)" }), pkg("lib", "1.0"), pkg("lib", "1.1", { from: UPDATES })],
      [req("x")],
    ),
  );
  t.deepEqual(names(r), ["lib=1.1", "x=1"]);
  t.deepEqual(r.packages[0]!.record.from, UPDATES);
});

test("the same version in two suites: the earlier suite wins", (t) => {
  const records = [pkg("lib", "1.0", { from: SECURITY }), pkg("lib", "1.0", { from: MAIN })];
  t.deepEqual(ok(t, run(records, [req("lib")])).packages[0]!.record.from, MAIN);
  const reversed = resolve(universeOf(records, [SECURITY, MAIN]), [req("lib")], { arch: "amd64" });
  t.deepEqual(ok(t, reversed).packages[0]!.record.from, SECURITY);
});

test("a request's constraint picks an older version, and that version's dependencies", (t) => {
  const r = ok(
    t,
    run(
      [
        pkg("lib", "1.0", { depends: "old-dep" }),
        pkg("lib", "2.0", { depends: "new-dep" }),
        pkg("old-dep", "1"),
        pkg("new-dep", "1"),
      ],
      [req("lib", { constraint: { op: "<<", version: "2" } })],
    ),
  );
  t.deepEqual(names(r), ["lib=1.0", "old-dep=1"]);
});

test("a later upper bound reselects an older version, and drops the newer one's dependencies", (t) => {
  // a is selected at 2.0 first (x's plain dependency); y then needs a (<< 2).
  const records = [
    pkg("x", "1", { depends: "a" }),
    pkg("y", "1", { depends: "mid" }),
    pkg("mid", "1", { depends: "a (<< 2)" }),
    pkg("a", "2.0", { depends: "new-dep" }),
    pkg("a", "1.5", { depends: "old-dep" }),
    pkg("new-dep", "1"),
    pkg("old-dep", "1"),
  ];
  const r = ok(t, run(records, [req("x"), req("y")]));
  t.deepEqual(names(r), ["a=1.5", "mid=1", "old-dep=1", "x=1", "y=1"]);
});

test("unsatisfiable: no version fits, with what is available, the chain and the request's origin", (t) => {
  const [e, ...rest] = errors(
    t,
    run(
      [
        pkg("x", "1", { depends: "mid" }),
        pkg("mid", "1", { depends: "lib (>= 3)" }),
        pkg("lib", "2.0"),
        pkg("lib", "2.1", { from: SECURITY }),
      ],
      [req("x")],
    ),
  );
  t.deepEqual(rest, []);
  t.like(e, { code: "unsatisfiable", relation: "lib (>= 3)", origins: ["line of x"], chain: ["x", "mid"] });
  if (e?.code === "unsatisfiable")
    t.deepEqual(e.available, [
      "lib 2.1 amd64 (debian-security bookworm-security main)",
      "lib 2.0 amd64 (debian bookworm main)",
    ]);
  t.regex(e!.message, /^mid 1 needs lib \(>= 3\), and no candidate fits; available: lib 2\.1/);
});

test("unsatisfiable: a request's own constraint", (t) => {
  const [e] = errors(t, run([pkg("lib", "2.0")], [req("lib", { constraint: { op: ">=", version: "3" } })]));
  t.like(e, { code: "unsatisfiable", relation: "lib (>= 3)", origins: ["line of lib"], chain: ["lib"] });
});

test("conflicting constraints from two packages name both", (t) => {
  const records = [
    pkg("a", "1", { depends: "c (>= 2)" }),
    pkg("b", "1", { depends: "c (<< 2)" }),
    pkg("c", "1.0"),
    pkg("c", "2.0"),
  ];
  const [e, ...rest] = errors(t, run(records, [req("a"), req("b")]));
  t.deepEqual(rest, []);
  if (e?.code !== "conflicting-constraints") return t.fail(JSON.stringify(e));
  t.is(e.name, "c");
  t.deepEqual(e.constraints, [
    { relation: "c (>= 2)", by: "a 1", origins: ["line of a"] },
    { relation: "c (<< 2)", by: "b 1", origins: ["line of b"] },
  ]);
  t.deepEqual(e.origins, ["line of a", "line of b"]);
  t.regex(e.message, /no version of c meets both c \(>= 2\) \(from a 1\) and c \(<< 2\) \(from b 1\)/);
});

test("conflicting constraints between two requests", (t) => {
  const [e] = errors(
    t,
    run(
      [pkg("c", "1.0"), pkg("c", "2.0")],
      [
        req("c", { constraint: { op: ">=", version: "2" }, origin: "line 3" }),
        req("c", { constraint: { op: "<<", version: "2" }, origin: "line 7" }),
      ],
    ),
  );
  t.like(e, { code: "conflicting-constraints", name: "c" });
  t.deepEqual(e!.origins.sort(), ["line 3", "line 7"]);
});

test("conflicting constraints learned after a restart still name both requesters", (t) => {
  // b's (<< 2) restarts with c 1.0; then d needs c (>= 2): the clash is with b.
  const records = [
    pkg("a", "1", { depends: "c" }),
    pkg("b", "1", { depends: "c (<< 2)" }),
    pkg("d", "1", { depends: "c (>= 2)" }),
    pkg("c", "1.0"),
    pkg("c", "2.0"),
  ];
  const all = errors(t, run(records, [req("a"), req("b"), req("d")]));
  t.is(all.length, 1);
  const e = all[0]!;
  if (e.code !== "conflicting-constraints") return t.fail(JSON.stringify(e));
  t.deepEqual(e.constraints.map((s) => [s.relation, s.by]).sort(), [
    ["c (<< 2)", "b 1"],
    ["c (>= 2)", "d 1"],
  ]);
});

// ---- Multi-Arch and architectures

const i386 = (name: string, version: string, extra: Parameters<typeof pkg>[2] = {}) =>
  pkg(name, version, { architecture: "i386", ...extra });

test("Multi-Arch: foreign satisfies a dependency from another architecture", (t) => {
  const r = ok(
    t,
    run([pkg("x", "1", { depends: "tool" }), i386("tool", "1", { multiArch: "foreign" })], [req("x")]),
  );
  t.deepEqual(names(r), ["tool=1", "x=1"]);
});

test("without Multi-Arch: foreign, another architecture does not", (t) => {
  const [e] = errors(t, run([pkg("x", "1", { depends: "tool" }), i386("tool", "1")], [req("x")]));
  t.like(e, { code: "unsatisfiable", relation: "tool" });
});

test("`:any` needs Multi-Arch: allowed (or foreign)", (t) => {
  t.deepEqual(
    names(
      ok(
        t,
        run(
          [pkg("x", "1", { depends: "python3:any" }), pkg("python3", "3.11", { multiArch: "allowed" })],
          [req("x")],
        ),
      ),
    ),
    ["python3=3.11", "x=1"],
  );
  t.deepEqual(
    names(
      ok(
        t,
        run([pkg("x", "1", { depends: "perl:any" }), pkg("perl", "5", { multiArch: "foreign" })], [req("x")]),
      ),
    ),
    ["perl=5", "x=1"],
  );
  const [e] = errors(t, run([pkg("x", "1", { depends: "python3:any" }), pkg("python3", "3.11")], [req("x")]));
  t.like(e, { code: "unsatisfiable", relation: "python3:any" });
});

test("a selected package that fits the version but not `:any` is an error, not a loop", (t) => {
  // x selects foo 2 (Multi-Arch: no); y needs foo:any (>= 1), which only foo 1 meets.
  const records = [
    pkg("x", "1", { depends: "foo" }),
    pkg("y", "1", { depends: "foo:any (>= 1)" }),
    pkg("foo", "2"),
    pkg("foo", "1", { multiArch: "allowed" }),
  ];
  const [e, ...rest] = errors(t, run(records, [req("x"), req("y")]));
  t.deepEqual(rest, []);
  t.like(e, { code: "unsatisfiable", relation: "foo:any (>= 1)", chain: ["y"] });
  t.regex(
    e!.message,
    /the selected foo 2 amd64 \(debian bookworm main\) does not satisfy it \(Multi-Arch: no\)/,
  );
});

test("`:native` and an explicit architecture", (t) => {
  t.deepEqual(
    names(
      ok(t, run([pkg("x", "1", { depends: "lib:native" }), i386("lib", "2"), pkg("lib", "1")], [req("x")])),
    ),
    ["lib=1", "x=1"],
  );
  t.deepEqual(
    names(
      ok(t, run([pkg("x", "1", { depends: "lib:i386" }), i386("lib", "2"), pkg("lib", "1")], [req("x")])),
    ),
    ["lib=2", "x=1"],
  );
});

test("architecture all satisfies native dependencies, and its own dependencies are native", (t) => {
  const records = [
    pkg("x", "1", { depends: "data" }),
    pkg("data", "1", { architecture: "all", depends: "lib" }),
    i386("lib", "9"),
    pkg("lib", "1"),
  ];
  const r = ok(t, run(records, [req("x")]));
  t.deepEqual(
    r.packages.map((p) => `${p.record.name}:${p.record.architecture}=${p.record.version}`),
    ["data:all=1", "lib:amd64=1", "x:amd64=1"],
  );
});

test("an `all` version and an amd64 version of one name fill one slot", (t) => {
  const records = [
    pkg("x", "1", { depends: "p" }),
    pkg("y", "1", { depends: "p (<< 2)" }),
    pkg("p", "2", { architecture: "all" }),
    pkg("p", "1", { architecture: "amd64" }),
  ];
  const r = ok(t, run(records, [req("x"), req("y")]));
  t.deepEqual(names(r), ["p=1", "x=1", "y=1"]);
});

test("arch-restricted relations for other architectures are skipped", (t) => {
  const r = ok(
    t,
    run(
      [
        pkg("x", "1", { depends: "a [i386], b [!i386], c [linux-any]" }),
        pkg("a", "1"),
        pkg("b", "1"),
        pkg("c", "1"),
      ],
      [req("x")],
    ),
  );
  t.deepEqual(names(r), ["b=1", "c=1", "x=1"]);
});

// ---- errors

test("unknown package: up to three suggestions, real or virtual", (t) => {
  const records = [
    pkg("dropbear-bin", "1", { provides: "dropper-bin" }),
    pkg("dropbear", "1"),
    pkg("dropbear-run", "1"),
    pkg("zlib1g", "1"),
  ];
  const [e, ...rest] = errors(t, run(records, [req("dropber-bin")]));
  t.deepEqual(rest, []);
  if (e?.code !== "unknown-package") return t.fail(JSON.stringify(e));
  t.deepEqual(e.suggestions, ["dropbear-bin", "dropper-bin", "dropbear-run"]);
  t.deepEqual(e.origins, ["line of dropber-bin"]);
  t.is(e.message, "unknown package 'dropber-bin': no suite offers it or provides it");
});

test("unknown dependency: named with the package that needs it", (t) => {
  const [e] = errors(t, run([pkg("x", "1", { depends: "libmissing1" })], [req("x")]));
  t.like(e, {
    code: "unknown-package",
    name: "libmissing1",
    chain: ["x"],
    origins: ["line of x"],
    suggestions: [],
  });
  t.regex(e!.message, /^x 1 depends on unknown package 'libmissing1'/);
});

test("every error of a resolution comes back, sorted", (t) => {
  const all = errors(
    t,
    run([pkg("x", "1", { depends: "nope1, nope2" })], [req("x"), req("nope3"), req("Bad Name")]),
  );
  t.deepEqual(
    all.map((e) => e.code),
    ["invalid-request", "unknown-package", "unknown-package", "unknown-package"],
  );
});

test("a malformed Depends is reported for the package that has it", (t) => {
  const [e] = errors(
    t,
    run([pkg("x", "1", { depends: "y" }), pkg("y", "2", { depends: "z (>= 1" })], [req("x")]),
  );
  t.like(e, {
    code: "malformed-relation",
    package: "y",
    version: "2",
    field: "Depends",
    text: "z (>= 1",
    offset: 0,
    chain: ["x", "y"],
    origins: ["line of x"],
  });
});

test("invalid requests", (t) => {
  const all = errors(
    t,
    run(
      [pkg("a", "1")],
      [req("-a"), req("a", { constraint: { op: ">=", version: "x1" } }), req("a", { arch: "AMD" })],
    ),
  );
  t.deepEqual(
    all.map((e) => e.code),
    ["invalid-request", "invalid-request", "invalid-request"],
  );
});

test("identical requests merge, and their origins are kept", (t) => {
  const [e] = errors(t, run([], [req("x", { origin: "line 1" }), req("x", { origin: "line 2" })]));
  t.deepEqual(e!.origins, ["line 1", "line 2"]);
});

// ---- determinism

const universeRecords = [
  ...base,
  pkg("a", "1", { depends: "b | c, awk, lib (>= 1.1)" }),
  pkg("b", "1", { depends: "d" }),
  pkg("c", "1"),
  pkg("d", "1", { depends: "a" }),
  pkg("e", "1", { depends: "c | b, mail-transport-agent" }),
  pkg("mawk", "1", { provides: "awk" }),
  pkg("gawk", "1", { provides: "awk" }),
  pkg("postfix", "1", { provides: "mail-transport-agent" }),
  pkg("exim4", "1", { provides: "mail-transport-agent", priority: "standard" }),
  pkg("lib", "1.0"),
  pkg("lib", "1.1", { from: UPDATES, depends: "zlib1g" }),
  pkg("lib", "1.1", { from: SECURITY, depends: "zlib1g" }),
  pkg("lib", "1.2", { from: SECURITY, depends: "libc6" }),
];

test("the same resolution whatever the order of records and requests", (t) => {
  const requests = [req("a"), req("e"), req("zlib1g"), req("c")];
  const expected = ok(t, run(universeRecords, requests));
  // c is requested, so `b | c` takes c and b (with d) stays out.
  t.deepEqual(names(expected), [
    "a=1",
    "c=1",
    "e=1",
    "exim4=1",
    "gawk=1",
    "gcc-12-base=12.2.0-14",
    "lib=1.2",
    "libc6=2.36-9+deb12u9",
    "libgcc-s1=12.2.0-14",
    "zlib1g=1:1.2.13.dfsg-1",
  ]);
  fc.assert(
    fc.property(
      fc.shuffledSubarray(universeRecords, { minLength: universeRecords.length }),
      fc.shuffledSubarray(requests, { minLength: requests.length }),
      (records, reqs) => {
        const again = resolve(universeOf(records), reqs, { arch: "amd64" });
        t.deepEqual(again, { ok: true, resolution: expected });
      },
    ),
    { numRuns: 100 },
  );
});

test("the universe is the same whatever the order of records", (t) => {
  const canonical = universeOf(universeRecords);
  const flat = (u: ReturnType<typeof buildUniverse>) => ({
    packages: [...u.packages]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([n, cs]) => [n, cs.map((c) => c.record)]),
    providers: [...u.providers]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([n, ps]) => [n, ps.map((p) => [p.provider.record, p.version])]),
  });
  fc.assert(
    fc.property(fc.shuffledSubarray(universeRecords, { minLength: universeRecords.length }), (records) => {
      t.deepEqual(flat(universeOf(records)), flat(canonical));
    }),
    { numRuns: 50 },
  );
});

test("records with an invalid version are left out and reported", (t) => {
  const u = buildUniverse([
    { suite: MAIN, records: [pkg("a", "1"), pkg("b", "x1"), pkg("c", "1", { provides: "v (>= 1)" })] },
  ]);
  t.deepEqual([...u.packages.keys()].sort(), ["a", "c"]);
  t.deepEqual(
    u.problems.map((p) => [p.package, p.message]),
    [
      ["b", "version number does not start with digit; the record is left out"],
      ["c", "Provides: Provides takes only '(= version)', not '>=': 'v (>= 1)'; ignored"],
    ],
  );
});
