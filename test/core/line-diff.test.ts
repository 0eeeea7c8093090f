// niftyc fmt --check's diff reads as GNU diff -u's: the same hunks, headers aside.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unifiedDiff } from "../../src/core/line-diff.ts";

function gnuHunks(a: string, b: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-diff-"));
  writeFileSync(join(dir, "a"), a);
  writeFileSync(join(dir, "b"), b);
  const r = spawnSync("diff", ["-u", join(dir, "a"), join(dir, "b")], { encoding: "utf8" });
  return r.error ? undefined : r.stdout.split("\n").slice(2).join("\n");
}

test("hunks match diff -u: changes far apart, near each other, at both ends, lines only added", (t) => {
  const lines = Array.from({ length: 40 }, (_, i) => `line ${i}`);
  const cases: Array<[string[], string[]]> = [
    [lines, lines.map((l, i) => (i === 2 || i === 30 ? `${l} changed` : l))],
    [lines, lines.map((l, i) => (i === 10 || i === 15 ? l.toUpperCase() : l))],
    [lines, ["first", ...lines.slice(1, -1), "last"]],
    [lines, [...lines.slice(0, 20), "new a", "new b", ...lines.slice(20)]],
    [lines, lines.filter((_, i) => i % 7 !== 3)],
    [["one"], ["ONE"]],
    [["a", "b"], ["a"]],
    [["a"], []],
  ];
  for (const [a, b] of cases) {
    const before = `${a.join("\n")}\n`;
    const after = `${b.join("\n")}\n`;
    const gnu = gnuHunks(before, after);
    if (gnu === undefined) return t.pass("no diff(1) here");
    t.is(unifiedDiff(before, after, "a", "b").split("\n").slice(2).join("\n"), gnu);
  }
  t.is(unifiedDiff("same\n", "same\n", "a", "b"), "");
});
