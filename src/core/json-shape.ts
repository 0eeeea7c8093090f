// Telling what parsed JSON holds before reading it as a type: files a user can edit
// (build.json, instances.json) and messages a client sends (the language server's params).

/** A JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
