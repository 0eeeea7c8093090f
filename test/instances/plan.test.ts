// The arithmetic of --set and the per-instance plan: values, names, and every
// mistake as a NiftyError with its code.
import test from "ava";
import fc from "fast-check";
import type { ErrorCode } from "../../src/diagnostics/codes.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { evalExpr, exprNames, parseExpr } from "../../src/instances/expr.ts";
import { planInstances, portVariables, type InstanceSetting } from "../../src/instances/plan.ts";
import { sshConfig } from "./helpers.ts";

const value = (source: string, vars: Record<string, number> = {}): number =>
  evalExpr(parseExpr(source), new Map(Object.entries(vars)), source);

function code(
  t: import("ava").ExecutionContext,
  run: () => unknown,
  expected: ErrorCode,
  message?: RegExp,
): NiftyError {
  const error = t.throws(run, { instanceOf: NiftyError })!;
  t.is(error.code, expected, error.message);
  if (message) t.regex(error.message, message);
  return error;
}

test("expressions: precedence, parentheses, unary minus, shell-style / and %", (t) => {
  t.is(value("2200+i", { i: 7 }), 2207);
  t.is(value("2200 + 10*i", { i: 3 }), 2230);
  t.is(value("(2200+i)*2", { i: 1 }), 4402);
  t.is(value("-i+10", { i: 3 }), 7);
  t.is(value("--5"), 5);
  t.is(value("+5"), 5);
  t.is(value("7/2"), 3);
  t.is(value("-7/2"), -3, "/ truncates toward zero, as $(( )) does");
  t.is(value("-7%3"), -1, "% takes the sign of the left side");
  t.is(value("i%10*1000+i/10", { i: 123 }), 3012);
  t.is(value("2-3-4"), -5, "left associative");
  t.is(value("64/4/2"), 8);
  t.is(Object.is(value("0*-1"), -0), false, "no negative zero");
  t.deepEqual(
    exprNames(parseExpr("PORT+i*n+i")).map((n) => n.name),
    ["PORT", "i", "n"],
  );
});

test("expression mistakes point at their column", (t) => {
  code(t, () => parseExpr(""), "NIFTY402", /empty/);
  code(t, () => parseExpr("2200+"), "NIFTY402", /ends .* at column 6/);
  code(t, () => parseExpr("2200 i"), "NIFTY402", /unexpected "i" after a complete expression at column 6/);
  code(t, () => parseExpr("(1+2"), "NIFTY402", /where "\)" was expected at column 5/);
  code(t, () => parseExpr("1+$(reboot)"), "NIFTY402", /unexpected "\$" at column 3/);
  code(t, () => parseExpr("2i"), "NIFTY402", /runs into a name/);
  code(t, () => parseExpr("1".repeat(201)), "NIFTY402", /longer than 200/);
  code(t, () => parseExpr("99999999999999999999"), "NIFTY402", /too large/);
  code(t, () => value("1/(i-1)", { i: 1 }), "NIFTY406", /divides by zero at column 2/);
  code(t, () => value("9007199254740991+1"), "NIFTY406", /overflows/);
  code(t, () => value("x+1"), "NIFTY403", /reads x/);
});

test("property: any text parses or fails with NIFTY402, and sums evaluate like numbers", (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (text) => {
      try {
        parseExpr(text);
      } catch (error) {
        return error instanceof NiftyError && error.code === "NIFTY402";
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.integer({ min: -1e6, max: 1e6 }),
      fc.integer({ min: -1e6, max: 1e6 }),
      fc.integer({ min: 0, max: 1e5 }),
      (a, b, i) => {
        return value(`${a} - (${b}) * i + i`, { i }) === a - b * i + i;
      },
    ),
  );
  t.pass();
});

const plan = (sets: InstanceSetting[], count = 3, first?: number, config = sshConfig()) =>
  planInstances({ config, count, sets, ...(first === undefined ? {} : { first }) });

test("a plan numbers instances from --first and evaluates each --set", (t) => {
  const p = plan(
    [
      { name: "PORT", expr: "2200+i" },
      { name: "WORKERS", expr: "WORKERS*n" },
    ],
    3,
  );
  t.deepEqual(p.instances, [
    {
      number: 1,
      id: "1",
      machine: "ssh-1",
      env: [
        ["PORT", "2201"],
        ["WORKERS", "12"],
      ],
    },
    {
      number: 2,
      id: "2",
      machine: "ssh-2",
      env: [
        ["PORT", "2202"],
        ["WORKERS", "12"],
      ],
    },
    {
      number: 3,
      id: "3",
      machine: "ssh-3",
      env: [
        ["PORT", "2203"],
        ["WORKERS", "12"],
      ],
    },
  ]);
  t.deepEqual(p.ports, ["PORT"]);
  const zero = plan([{ name: "PORT", expr: "PORT+i" }], 2, 0);
  t.deepEqual(
    zero.instances.map((i) => [i.machine, i.env]),
    [
      ["ssh-0", [["PORT", "2200"]]],
      ["ssh-1", [["PORT", "2201"]]],
    ],
  );
  t.is(plan([], 1).instances[0]!.env.length, 0, "one instance may keep the recipe's port");
  t.is(plan([{ name: "PORT", expr: "2200+i" }], 1000).instances.at(-1)!.env[0]![1], "3200");
});

test("ports are ENV named *PORT or holding an EXPOSEd port", (t) => {
  t.deepEqual(
    portVariables(
      sshConfig({
        env: [
          ["LISTEN", "2200"],
          ["ADMIN_PORT", "9000"],
          ["N", "2201"],
        ],
      }),
    ),
    ["LISTEN", "ADMIN_PORT"],
  );
});

test("plan mistakes are NiftyErrors with hints", (t) => {
  code(t, () => plan([], 0), "NIFTY400");
  code(t, () => plan([], 100_001), "NIFTY400");
  code(t, () => plan([], 1.5), "NIFTY400");
  code(t, () => plan([], 1, -1), "NIFTY401");
  const unknown = code(
    t,
    () => plan([{ name: "PROT", expr: "2200+i" }]),
    "NIFTY404",
    /no ENV PROT — did you mean PORT\?/,
  );
  t.regex(unknown.hint!, /PORT, WORKERS, GREETING/);
  code(t, () => plan([{ name: "X", expr: "1" }], 1, 1, sshConfig({ env: [] })), "NIFTY404");
  code(
    t,
    () =>
      plan([
        { name: "PORT", expr: "2200+i" },
        { name: "PORT", expr: "2300+i" },
      ]),
    "NIFTY405",
  );
  code(
    t,
    () => plan([{ name: "PORT", expr: "2200+j" }]),
    "NIFTY403",
    /unknown name j at column 6 — did you mean i\?/,
  );
  // GREETING is the recipe's ENV, not a number: said so, not "unknown".
  const text = code(
    t,
    () => plan([{ name: "PORT", expr: "GREETING+i" }]),
    "NIFTY403",
    /GREETING at column 1 is the recipe's ENV, but its value .* is not a whole number/,
  );
  t.regex(text.hint!, /quote it and put expressions in braces/);
  code(t, () => plan([{ name: "PORT", expr: "2200+" }]), "NIFTY402", /^--set PORT: /);
  code(t, () => plan([{ name: "PORT", expr: "65530+i" }], 10), "NIFTY407", /PORT=65536 for instance 6/);
  // Too low: the hint is about the first instance, not the last.
  const low = code(t, () => plan([{ name: "PORT", expr: "i-1" }], 2), "NIFTY407", /PORT=0/);
  t.regex(low.hint!, /keeps the first one at 1 or above/);
  const high = code(t, () => plan([{ name: "PORT", expr: "65530+i" }], 10), "NIFTY407", /PORT=65536/);
  t.regex(high.hint!, /keeps the last one at 65535 or below, e\.g\. --set PORT=2200\+i/);
  const clash = code(t, () => plan([], 2), "NIFTY408", /ssh-1 and ssh-2 would both use port 2200/);
  t.regex(clash.hint!, /--set PORT=2200\+i/);
  code(t, () => plan([{ name: "PORT", expr: "2200+i%2" }], 3), "NIFTY408", /ssh-1 and ssh-3/);
  code(
    t,
    () => plan([{ name: "PORT", expr: "2200+i" }], 1, 1, sshConfig({ name: "n".repeat(63) })),
    "NIFTY409",
  );
  code(
    t,
    () =>
      plan([
        { name: "PORT", expr: "2200+i" },
        { name: "WORKERS", expr: "1/(i-2)" },
      ]),
    "NIFTY406",
    /--set WORKERS \(instance 2\)/,
  );
});

test("a quoted --set value is text, with expressions in braces; unquoted text says how to quote it", (t) => {
  const plan = planInstances({
    config: sshConfig(),
    count: 2,
    sets: [
      { name: "GREETING", expr: '"web-{i}.of-{n}"' },
      { name: "PORT", expr: "2200+i" },
    ],
  });
  t.deepEqual(
    plan.instances.map((i) => Object.fromEntries(i.env)),
    [
      { GREETING: "web-1.of-2", PORT: "2201" },
      { GREETING: "web-2.of-2", PORT: "2202" },
    ],
  );
  t.deepEqual(
    Object.fromEntries(
      planInstances({ config: sshConfig(), count: 1, sets: [{ name: "GREETING", expr: '"hi"' }] })
        .instances[0]!.env,
    ),
    { GREETING: "hi" },
  );
  const bare = code(
    t,
    () => planInstances({ config: sshConfig(), count: 1, sets: [{ name: "GREETING", expr: "hi" }] }),
    "NIFTY403",
    /unknown name hi/,
  );
  t.regex(bare.hint ?? "", /for text, quote it/);
  code(
    t,
    () => planInstances({ config: sshConfig(), count: 1, sets: [{ name: "GREETING", expr: '"two words"' }] }),
    "NIFTY402",
    /cannot carry/,
  );
  code(
    t,
    () => planInstances({ config: sshConfig(), count: 1, sets: [{ name: "GREETING", expr: '"web-{i"' }] }),
    "NIFTY402",
    /no closing \}/,
  );
  code(
    t,
    () => planInstances({ config: sshConfig(), count: 1, sets: [{ name: "GREETING", expr: '"web-{j}"' }] }),
    "NIFTY403",
    /unknown name j/,
  );
});
