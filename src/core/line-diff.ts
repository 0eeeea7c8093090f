// A unified diff of two texts by lines (`niftyc fmt --check`): the common
// prefix and suffix trimmed, the rest matched by a longest common subsequence.

type Op = { kind: " " | "-" | "+"; line: string };

/** The LCS table is bounded; past it the middle is shown as removed and added whole. */
const MAX_CELLS = 4_000_000;

function lines(text: string): string[] {
  const split = text.split("\n");
  if (split[split.length - 1] === "") split.pop();
  return split;
}

function middleOps(a: readonly string[], b: readonly string[]): Op[] {
  if (a.length * b.length > MAX_CELLS)
    return [
      ...a.map((line) => ({ kind: "-" as const, line })),
      ...b.map((line) => ({ kind: "+" as const, line })),
    ];
  const cols = b.length + 1;
  const lcs = new Uint32Array((a.length + 1) * cols);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * cols + j] =
        a[i] === b[j]
          ? lcs[(i + 1) * cols + j + 1]! + 1
          : Math.max(lcs[(i + 1) * cols + j]!, lcs[i * cols + j + 1]!);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: " ", line: a[i++]! });
      j++;
    } else if (i < a.length && (j === b.length || lcs[(i + 1) * cols + j]! >= lcs[i * cols + j + 1]!)) {
      ops.push({ kind: "-", line: a[i++]! });
    } else ops.push({ kind: "+", line: b[j++]! });
  }
  return ops;
}

/** `--- a`/`+++ b` and hunks with three lines of context; "" when the texts are equal. */
export function unifiedDiff(
  before: string,
  after: string,
  nameA: string,
  nameB: string,
  context = 3,
): string {
  if (before === after) return "";
  const a = lines(before);
  const b = lines(after);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const ops: Op[] = [
    ...a.slice(0, head).map((line) => ({ kind: " " as const, line })),
    ...middleOps(a.slice(head, a.length - tail), b.slice(head, b.length - tail)),
    ...a.slice(a.length - tail).map((line) => ({ kind: " " as const, line })),
  ];
  let out = `--- ${nameA}\n+++ ${nameB}\n`;
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.kind === " ") {
      k++;
      continue;
    }
    let start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while the next change is within twice the context.
    for (;;) {
      while (end < ops.length && ops[end]!.kind !== " ") end++;
      let next = end;
      while (next < ops.length && ops[next]!.kind === " ") next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else break;
    }
    end = Math.min(ops.length, end + context);
    let aLine = 1;
    let bLine = 1;
    for (let m = 0; m < start; m++) {
      if (ops[m]!.kind !== "+") aLine++;
      if (ops[m]!.kind !== "-") bLine++;
    }
    const hunk = ops.slice(start, end);
    const aCount = hunk.filter((o) => o.kind !== "+").length;
    const bCount = hunk.filter((o) => o.kind !== "-").length;
    const from = aCount === 0 ? aLine - 1 : aLine;
    const to = bCount === 0 ? bLine - 1 : bLine;
    // As diff -u writes it: a count of 1 is left out.
    const range = (at: number, count: number) => (count === 1 ? `${at}` : `${at},${count}`);
    out += `@@ -${range(from, aCount)} +${range(to, bCount)} @@\n`;
    for (const o of hunk) out += `${o.kind}${o.line}\n`;
    k = end;
    start = end;
  }
  return out;
}
