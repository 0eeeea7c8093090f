// The source files of src/ and grammar/ and the relative imports each makes, static, dynamic and
// type-only alike: what the architecture tests read the code's shape from.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

export const ROOT = join(import.meta.dirname, "../..");

export function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(dir, f));
}

const IMPORT = /(?:from\s+|import\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g;

/** The files `file` imports, as paths from the root; `text` stands for the file's own text in tests. */
export function imports(file: string, text = readFileSync(join(ROOT, file), "utf8")): string[] {
  return [...text.matchAll(IMPORT)].map((m) => normalize(join(dirname(file), m[1]!)));
}
