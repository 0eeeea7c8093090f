// Package names for completion, offline: the recipe's lock names the signed
// InRelease of each suite, the store's records say which Packages index that
// release names and hold its parse. Nothing is downloaded and nothing in the
// store is written; without a lock or a parse, the lock's own packages are
// offered, or none.
import { readFile } from "node:fs/promises";
import { Store } from "../cache/store.ts";
import { parseLock } from "../debian/lockfile.ts";
import { readParsedIndex } from "../debian/index.ts";
import { hashText } from "../pipeline/keys.ts";
import type { PackageHint } from "./features.ts";

export interface Archives {
  archive: string;
  suites: string[];
}

/** The packages of the recipe's archives, one hint per name (the first suite that has it wins). */
export async function packageHints(
  storeDir: string | undefined,
  recipePath: string,
  archives: readonly Archives[],
): Promise<PackageHint[]> {
  let text: string;
  try {
    text = await readFile(`${recipePath}.lock`, "utf8");
  } catch {
    return [];
  }
  const parsed = parseLock(text);
  if (!parsed.ok) return [];
  const lock = parsed.lock;
  const byName = new Map<string, PackageHint>();
  const wanted = lock.suites.filter((s) =>
    archives.some((a) => a.archive === s.archive && a.suites.includes(s.suite)),
  );
  if (storeDir !== undefined) {
    // Store's constructor only names the directories: nothing is created or written.
    const store = new Store(storeDir);
    for (const suite of wanted) {
      const record = await store.readRecord<{ index: string }>(
        "debian-release-index",
        hashText(suite.inRelease, suite.component, lock.architecture),
      );
      if (record === undefined) continue;
      const records = await readParsedIndex(store, record.index, {
        archive: suite.archive,
        suite: suite.suite,
        component: suite.component,
      });
      for (const r of records ?? []) {
        if (byName.has(r.name)) continue;
        byName.set(r.name, {
          name: r.name,
          version: r.version,
          ...(r.description ? { description: r.description } : {}),
        });
      }
    }
  }
  for (const p of lock.packages)
    if (!byName.has(p.name)) byName.set(p.name, { name: p.name, version: p.version });
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
