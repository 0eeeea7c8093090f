// The journals of unsynced blobs (Store.journalUnsynced): where they are, how
// they are named, and the one question the up-to-date short cut asks of them.
// Light on purpose: src/cli/build-stamp.ts loads it before anything else.
import { bootId } from "../core/process.ts";

const { readdirSync } = process.getBuiltinModule("node:fs");
const { join } = process.getBuiltinModule("node:path");

/** The journals' directory in a store. */
export function journalsDir(storeDir: string): string {
  return join(storeDir, "unsynced");
}

/** A journal's name: the boot, the writer's process id, its thread's tag, when it began. */
export function journalName(boot: string, pid: number, threadTag: string, ms: number): string {
  return `${boot}.${pid}.${threadTag}.${ms}.list`;
}

/** What a journal's name says, or undefined for a name that is not a journal's. */
export function parseJournalName(name: string): { boot: string; pid: number } | undefined {
  const m = /^([0-9a-f-]{36})\.(\d+)\.[0-9a-f]+\.\d+\.list$/.exec(name);
  return m === null ? undefined : { boot: m[1]!, pid: Number(m[2]) };
}

/**
 * Whether the store holds a journal of an earlier boot: blobs that may have lost their bytes in a
 * restart and are not checked yet (opening the store checks them).
 */
export function journalsOfEarlierBoot(storeDir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(journalsDir(storeDir));
  } catch {
    return false;
  }
  const boot = bootId();
  return names.some((name) => {
    const journal = parseJournalName(name);
    return journal !== undefined && journal.boot !== boot;
  });
}
