// Downloads the real Debian packages the Debian archive test fixture serves
// (test/support/debian-archive.ts) into cache/test-debs/, once: files already
// there are kept, so a second run makes no request. CI runs it before the
// tests; the fixture would fetch them itself otherwise. Also the packages of
// another architecture in test/support/foreign-debs.ts, from apt's mirror.
//   node scripts/test-debs.ts [--dir DIR]
import { parseArgs } from "node:util";
import { fetchTestDebs, TEST_DEBS_DIR } from "../test/support/debian-archive.ts";
import { fetchForeignDebs } from "../test/support/foreign-debs.ts";

const { values } = parseArgs({ options: { dir: { type: "string" } } });
const debs = await fetchTestDebs(values.dir ?? TEST_DEBS_DIR, (line) => process.stdout.write(`${line}\n`));
for (const file of debs.values()) process.stdout.write(`have ${file}\n`);
// Packages of another architecture, for the tests that refuse their programs.
for (const file of await fetchForeignDebs(values.dir ?? TEST_DEBS_DIR, (line) =>
  process.stdout.write(`${line}\n`),
))
  process.stdout.write(`have ${file}\n`);
