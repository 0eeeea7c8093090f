// What a build may replace whole: its output directory is published by renaming a
// finished staging directory over it, so whatever was there goes. Only a directory a
// build wrote (its build.json, or a several-platform build's platform directories),
// an empty one, or none at all may be replaced, and never one that holds the recipe
// or the store.
// Builtins taken as the stamp short cut takes them (src/cli/build-restore.ts): no ESM import.
const { readdirSync, statSync } = process.getBuiltinModule("node:fs");
const { isAbsolute, relative, resolve } = process.getBuiltinModule("node:path");

/** Names a several-platform build writes at the top of its output directory, beside linux-*. */
const TOP_LEVEL = new Set(["oci", "provenance.json"]);

/** Why `outDir` must not be replaced, or undefined when it may be. `keep`: paths it must not hold. */
export function outDirRefusal(
  outDir: string,
  keep: ReadonlyArray<{ path: string; what: string }>,
): string | undefined {
  for (const { path, what } of keep) {
    const inside = relative(resolve(outDir), resolve(path));
    if (inside === "" || !(inside.startsWith("..") || isAbsolute(inside)))
      return `it holds ${what} (${path}), and a build replaces its output directory whole`;
  }
  let names: string[];
  try {
    names = readdirSync(outDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ENOTDIR")
      return isFile(outDir)
        ? "it is a file, not a directory"
        : "a part of its path is a file, not a directory";
    if (code === "ELOOP") return "its path goes round a loop of symbolic links";
    return `it cannot be listed: ${(error as Error).message}`;
  }
  if (names.length === 0 || names.includes("build.json")) return undefined;
  const platformBuild = names.every(
    (name) => TOP_LEVEL.has(name) || (name.startsWith("linux-") && holdsBuildJson(`${outDir}/${name}`)),
  );
  if (platformBuild) return undefined;
  const shown = names.slice(0, 3).join(", ") + (names.length > 3 ? ", …" : "");
  return `it holds files no build wrote (${shown}), and a build replaces its output directory whole`;
}

function isFile(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function holdsBuildJson(dir: string): boolean {
  try {
    return statSync(`${dir}/build.json`).isFile();
  } catch {
    return false;
  }
}
