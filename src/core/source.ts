// Where things come from: a recipe file and places in it. The bottom of the
// house: the grammar, the diagnostics and every later stage point with these.

/** A place in the recipe text. line and column are 1-based; offset is 0-based (UTF-16 units). */
export interface Position {
  offset: number;
  line: number;
  column: number;
}

/** A half-open range [start, end) of the recipe text. */
export interface Span {
  start: Position;
  end: Position;
}

/** The start of a recipe, empty: where a diagnostic goes that no line of an empty recipe can take. */
export const START_OF_FILE: Span = {
  start: { offset: 0, line: 1, column: 1 },
  end: { offset: 0, line: 1, column: 1 },
};

/** A recipe as read: its path and its text. */
export interface SourceFile {
  path: string;
  text: string;
}
