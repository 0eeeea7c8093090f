// chevrotain's runtime, from the single-file ES module it ships
// (lib/chevrotain.mjs, lodash bundled in) instead of its package entry, which
// loads chevrotain's own files and every module of lodash-es, about 690
// files: that module loading, not parsing, was most of `niftyc check`'s time.
// Same version, same code; the package's types describe both. Falls back to
// the package entry if the bundle is not where chevrotain 11 puts it.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

type Chevrotain = typeof import("chevrotain");

const entry = createRequire(import.meta.url).resolve("chevrotain");
const bundle = join(dirname(entry), "..", "chevrotain.mjs");

const chevrotain: Chevrotain = existsSync(bundle)
  ? ((await import(pathToFileURL(bundle).href)) as Chevrotain)
  : await import("chevrotain");

export const { CstParser, Lexer, createToken, createSyntaxDiagramsCode } = chevrotain;
