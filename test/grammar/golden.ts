// Shared by the golden tests: a stable, readable form of a parse result,
// and UPDATE_GOLDEN=1 to rewrite expected files (check them by eye).
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Span } from "../../src/core/source.ts";

export const updateGolden = process.env["UPDATE_GOLDEN"] === "1";

/** Spans as `line:column-line:column` so expected files stay short and exact. */
export function spanText(s: Span): string {
  return `${s.start.line}:${s.start.column}-${s.end.line}:${s.end.column}`;
}

export function stable(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key, v: unknown) => {
      if (key === "source") return undefined;
      if (v !== null && typeof v === "object" && "start" in v && "end" in v) return spanText(v as Span);
      return v;
    }),
  );
}

export function caseDirs(root: URL): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** The expected text of a golden file, writing `actual` first when updating. */
export function expected(file: URL, actual: string): string | undefined {
  if (updateGolden) writeFileSync(file, actual);
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}
