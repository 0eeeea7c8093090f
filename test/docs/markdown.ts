// The runnable parts of a Markdown document: its fenced code blocks, in order.
//   ```sh       a command block the reader types (run by the tutorial test);
//   ```console  what the reader types on a container's console after the
//               command block before it (prompts, typed text and output);
//   ```         expected output of the command block before it.

export type BlockKind = "sh" | "console" | "output";

export interface Block {
  kind: BlockKind;
  text: string;
  /** 1-based line of the opening fence. */
  line: number;
}

export interface Step {
  command: Block;
  /** What the command prints (lines the real output must contain). */
  expect?: Block;
  /** A console session driven after the command starts. */
  console?: Block;
}

export function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const info = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && lines[j] !== "```") body.push(lines[j++]!);
    if (j === lines.length) throw new Error(`line ${i + 1}: code block never closed`);
    const kind: BlockKind | undefined =
      info === "sh" ? "sh" : info === "console" ? "console" : info === "" ? "output" : undefined;
    if (kind === undefined)
      throw new Error(
        `line ${i + 1}: code block tagged ${JSON.stringify(info)}; use sh, console, or no tag for output`,
      );
    blocks.push({ kind, text: body.join("\n"), line: i + 1 });
    i = j;
  }
  return blocks;
}

/** Pair each command block with the output or console block that follows it. */
export function steps(blocks: Block[]): Step[] {
  const result: Step[] = [];
  for (const block of blocks) {
    const last = result.at(-1);
    if (block.kind === "sh") result.push({ command: block });
    else if (last === undefined || last.expect !== undefined || last.console !== undefined)
      throw new Error(`line ${block.line}: a ${block.kind} block must follow a sh block`);
    else if (block.kind === "output") last.expect = block;
    else last.console = block;
  }
  return result;
}

/**
 * Expected lines as patterns: blanks are collapsed, `…` matches anything, a
 * line that is only `…` is skipped. Each pattern must match a whole line.
 */
export function expectedPatterns(text: string): { line: string; pattern: RegExp }[] {
  return text
    .split("\n")
    .map((line) => normalise(line))
    .filter((line) => line !== "" && line !== "…")
    .map((line) => ({ line, pattern: new RegExp(`^${line.split("…").map(escapeRegExp).join(".*")}$`) }));
}

/** Lines never seen in `output`, each given as the expected text. */
export function missingLines(expected: string, output: string): string[] {
  const lines = cleanOutput(output).split("\n").map(normalise);
  return expectedPatterns(expected)
    .filter(({ pattern }) => !lines.some((l) => pattern.test(l)))
    .map(({ line }) => line);
}

/** Terminal output made comparable: no carriage returns, no colour or cursor escapes. */
export function cleanOutput(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]/g, "").replace(/\r/g, "");
}

function normalise(line: string): string {
  return line.replace(/\s+/g, " ").trim();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
