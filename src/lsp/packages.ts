// Package names for completion, offline: the recipe's lock names the signed
// InRelease of each suite, the store's records say which Packages index that
// release names, and its stored form (src/debian/package-index.ts) gives the
// names from its name table; a version and description are decoded only for
// the names a completion shows. Nothing is downloaded and nothing in the store
// is written; without a lock or a parse, the lock's own packages are offered,
// or none.
import { Store } from "../cache/store.ts";
import { parseLock } from "../debian/lockfile.ts";
import { openParsedIndex } from "../debian/index.ts";
import type { PackageIndex } from "../debian/package-index.ts";
import { byteOrder } from "../debian/universe.ts";
import { hashText } from "../pipeline/keys.ts";
import { readLockBytes } from "../pipeline/lock-file.ts";
import { NO_PACKAGES, type PackageCatalog, type PackageHint } from "./features.ts";

export interface Archives {
  archive: string;
  suites: string[];
}

/** The packages of the recipe's archives: every name, each hint from the first suite that has it. */
export async function packageCatalog(
  storeDir: string | undefined,
  recipePath: string,
  archives: readonly Archives[],
): Promise<PackageCatalog> {
  let text: string;
  try {
    // A regular file of at most MAX_LOCK_BYTES: a FIFO or /dev/zero as the lock holds no completion.
    const bytes = await readLockBytes(`${recipePath}.lock`, `${recipePath}.lock`);
    if (bytes === undefined) return NO_PACKAGES;
    text = bytes.toString("utf8");
  } catch {
    return NO_PACKAGES;
  }
  const parsed = parseLock(text);
  if (!parsed.ok) return NO_PACKAGES;
  const lock = parsed.lock;
  const wanted = lock.suites.filter((s) =>
    archives.some((a) => a.archive === s.archive && a.suites.includes(s.suite)),
  );
  const indices: PackageIndex[] = [];
  if (storeDir !== undefined) {
    // Store's constructor only names the directories: nothing is created or written.
    const store = new Store(storeDir);
    for (const suite of wanted) {
      const record = await store.readRecord<{ index: string }>(
        "debian-release-index",
        hashText(suite.inRelease, suite.component, lock.architecture),
      );
      if (record === undefined) continue;
      const from = { archive: suite.archive, suite: suite.suite, component: suite.component };
      const opened = await openParsedIndex(store, record.index, from);
      if (opened !== undefined) indices.push(opened.packages);
    }
  }
  const locked = new Map<string, PackageHint>();
  for (const p of lock.packages)
    if (!locked.has(p.name)) locked.set(p.name, { name: p.name, version: p.version });
  const names = new Set<string>();
  for (const index of indices) for (const name of index.names()) names.add(name);
  for (const name of locked.keys()) names.add(name);
  return {
    names: [...names].sort(byteOrder),
    hint: (name) => {
      for (const index of indices) {
        const [first] = index.recordsOf(name);
        if (first !== undefined)
          return {
            name,
            version: first.version,
            ...(first.description ? { description: first.description } : {}),
          };
      }
      return locked.get(name);
    },
    close: async () => {
      await Promise.all(indices.map((i) => i.close()));
    },
  };
}
