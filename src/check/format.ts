// `niftyc fmt` and the language server's formatting: grammar/format.ts's layout, with the option
// words upper-cased. Which words are option words depends on the instruction and on where the word
// stands (`LINK /bin/busybox tty` names an applet, `INITTAB … TTY tty1` is an option), which only
// the check knows: each line's check records the words it took as option words.
import type { Span } from "../core/source.ts";
import type { SourceFile } from "../core/source.ts";
import type { FormatResult } from "../../grammar/format.ts";

/** The recipe in the one layout, or its syntax errors. */
export async function formatRecipe(source: SourceFile): Promise<FormatResult> {
  const [{ formatNiftyfile }, { checkTree }] = await Promise.all([
    import("../../grammar/format.ts"),
    import("./check.ts"),
  ]);
  return formatNiftyfile(source, (tree) => {
    const optionWords: Span[] = [];
    checkTree(tree, { optionWords });
    return new Set(optionWords.map((span) => span.start.offset));
  });
}
