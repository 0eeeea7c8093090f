// A bonus check on this machine's real apt lists, when it has them: the
// closure of dropbear-bin in bookworm (+ updates + security) is the few
// libraries it links, not the base system. The hand-built tests are the proof.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import test from "ava";
import { resolve } from "../../src/debian/resolve.ts";
import type { SuiteRef } from "../../src/debian/types.ts";
import { buildUniverse, type SuiteIndex } from "../../src/debian/universe.ts";
import { MAIN, SECURITY, UPDATES, readPackagesText } from "./helpers.ts";

const run = promisify(execFile);
const LISTS = "/var/lib/apt/lists";

/** The Packages list of one suite, plain or lz4 (apt's default on Debian), or a reason it cannot be read. */
async function readList(suite: string): Promise<{ text: string } | { skip: string }> {
  const names = existsSync(LISTS) ? readdirSync(LISTS) : [];
  const base = names.find((n) => n.endsWith(`_dists_${suite}_main_binary-amd64_Packages`));
  if (base) return { text: await readFile(join(LISTS, base), "utf8") };
  const lz4 = names.find((n) => n.endsWith(`_dists_${suite}_main_binary-amd64_Packages.lz4`));
  if (!lz4) return { skip: `no ${suite} main amd64 Packages list in ${LISTS}` };
  try {
    const { stdout } = await run("lz4cat", [join(LISTS, lz4)], { maxBuffer: 512 << 20, encoding: "utf8" });
    return { text: stdout };
  } catch (e) {
    return { skip: `cannot decompress ${lz4} with lz4cat: ${(e as Error).message}` };
  }
}

test("real bookworm: dropbear-bin's closure is its libraries, not the base system", async (t) => {
  const suites: Array<[string, SuiteRef]> = [["bookworm", MAIN], ["bookworm-updates", UPDATES], ["bookworm-security", SECURITY]];
  const indices: SuiteIndex[] = [];
  for (const [name, ref] of suites) {
    const list = await readList(name);
    if ("skip" in list) {
      if (name === "bookworm") {
        t.log(`SKIPPED: ${list.skip}`);
        t.pass();
        return;
      }
      t.log(`without ${name}: ${list.skip}`);
      continue;
    }
    indices.push({ suite: ref, records: readPackagesText(list.text, ref) });
  }
  const stanzas = indices.reduce((n, i) => n + i.records.length, 0);
  const t0 = performance.now();
  const universe = buildUniverse(indices);
  const t1 = performance.now();
  const result = resolve(universe, [{ name: "dropbear-bin", origin: "test" }], { arch: "amd64" });
  const t2 = performance.now();
  const again = resolve(universe, [{ name: "dropbear-bin", origin: "test" }], { arch: "amd64" });
  const t3 = performance.now();
  t.log(`${stanzas} stanzas from ${indices.length} suites; universe ${(t1 - t0).toFixed(1)} ms; resolve ${(t2 - t1).toFixed(2)} ms, again ${(t3 - t2).toFixed(2)} ms`);
  t.log(`universe problems: ${universe.problems.length}`);
  if (!result.ok) return t.fail(JSON.stringify(result.errors, null, 2));
  t.deepEqual(again, result);
  const names = result.resolution.packages.map((p) => p.record.name);
  t.log(result.resolution.packages.map((p) => `${p.record.name} ${p.record.version} (${p.record.from.suite})`).join("\n"));
  for (const lib of ["dropbear-bin", "libc6", "libtomcrypt1", "libtommath1", "zlib1g", "libcrypt1", "libgmp10"]) t.true(names.includes(lib), lib);
  for (const base of ["bash", "coreutils", "dpkg", "base-files", "perl-base"]) t.false(names.includes(base), base);
});
