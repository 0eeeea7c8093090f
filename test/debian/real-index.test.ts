// A bonus check on this machine's real apt lists, when it has them: the
// closure of dropbear-bin in bookworm (+ updates + security) is the few
// libraries it links, not the base system; gawk's takes install-info for
// readline-common's `dpkg | install-info`, not dpkg and what dpkg needs;
// postgresql-15's `locales | locales-all` takes locales, the first and smaller
// by Installed-Size though it is more packages; fontconfig-config's font keeps
// fonts-dejavu-core, the first, over fonts a few times smaller (not ten).
// The hand-built tests are the proof.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import test from "ava";
import type { ExecutionContext } from "ava";
import { ORDER_MARGIN, resolve, type Resolution, type Tally } from "../../src/debian/resolve.ts";
import type { SuiteRef } from "../../src/debian/types.ts";
import { buildUniverse, type SuiteIndex, type Universe } from "../../src/debian/universe.ts";
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

/** The three suites' universe, read once for the tests of this file; a reason when bookworm's list is missing. */
const loaded: Promise<{ universe: Universe; notes: string[] } | { skip: string }> = (async () => {
  const suites: Array<[string, SuiteRef]> = [
    ["bookworm", MAIN],
    ["bookworm-updates", UPDATES],
    ["bookworm-security", SECURITY],
  ];
  const indices: SuiteIndex[] = [];
  const notes: string[] = [];
  for (const [name, ref] of suites) {
    const list = await readList(name);
    if ("skip" in list) {
      if (name === "bookworm") return { skip: list.skip };
      notes.push(`without ${name}: ${list.skip}`);
      continue;
    }
    indices.push({ suite: ref, records: readPackagesText(list.text, ref) });
  }
  const stanzas = indices.reduce((n, i) => n + i.records.length, 0);
  const t0 = performance.now();
  const universe = buildUniverse(indices);
  notes.push(
    `${stanzas} stanzas from ${indices.length} suites; universe ${(performance.now() - t0).toFixed(1)} ms; problems: ${universe.problems.length}`,
  );
  return { universe, notes };
})();

/** One option of a choice as the log shows it: "locales 22730 KiB in 4", "locales-all >2273 KiB". */
function tally(s: Tally): string {
  const kib = `${s.stopped === "cap" ? ">" : ""}${s.kib} KiB`;
  return `${s.package} ${kib}${s.packages !== undefined ? ` in ${s.packages}` : ""}${s.stopped === "dead-end" ? ", dead end" : ""}`;
}

/**
 * The resolution of requests for `names`, resolved twice (the same both
 * times), with the times and choices logged, and the universe it came from;
 * undefined when skipped or failed.
 */
async function resolved(
  t: ExecutionContext,
  names: string[],
): Promise<{ resolution: Resolution; universe: Universe } | undefined> {
  const data = await loaded;
  if ("skip" in data) {
    // CI runs apt-get update and installs lz4 (.ci/run): there the real index must be read.
    if (process.env.CI) t.fail(`the real-index check cannot run in CI: ${data.skip}`);
    else {
      t.log(`SKIPPED outside CI: ${data.skip}`);
      t.pass();
    }
    return undefined;
  }
  for (const note of data.notes) t.log(note);
  const requests = names.map((name) => ({ name, origin: "test" }));
  const t0 = performance.now();
  const result = resolve(data.universe, requests, { arch: "amd64" });
  const t1 = performance.now();
  const again = resolve(data.universe, requests, { arch: "amd64" });
  const t2 = performance.now();
  t.log(`${names.join(" + ")}: resolve ${(t1 - t0).toFixed(2)} ms, again ${(t2 - t1).toFixed(2)} ms`);
  if (!result.ok) {
    t.fail(JSON.stringify(result.errors, null, 2));
    return undefined;
  }
  t.deepEqual(again, result);
  const { packages, alternativeChoices, providerChoices } = result.resolution;
  t.log(packages.map((p) => `${p.record.name} ${p.record.version} (${p.record.from.suite})`).join("\n"));
  for (const c of alternativeChoices)
    t.log(`${c.neededBy}: ${c.relation} -> ${c.chosen} (${c.rule}: ${c.sizes.map(tally).join("; ")})`);
  for (const c of providerChoices)
    t.log(
      `${c.neededBy}: ${c.virtual} -> ${c.chosen} (${c.rule}${c.sizes ? `: ${c.sizes.map(tally).join("; ")}` : ""})`,
    );
  return { resolution: result.resolution, universe: data.universe };
}

/** The names in the closure of `name`'s request, as `resolved` logs them. */
async function closureOf(t: ExecutionContext, name: string): Promise<string[] | undefined> {
  return (await resolved(t, [name]))?.resolution.packages.map((p) => p.record.name);
}

test("real bookworm: dropbear-bin's closure is its libraries, not the base system", async (t) => {
  const names = await closureOf(t, "dropbear-bin");
  if (names === undefined) return;
  for (const lib of [
    "dropbear-bin",
    "libc6",
    "libtomcrypt1",
    "libtommath1",
    "zlib1g",
    "libcrypt1",
    "libgmp10",
  ])
    t.true(names.includes(lib), lib);
  for (const base of ["bash", "coreutils", "dpkg", "base-files", "perl-base"])
    t.false(names.includes(base), base);
});

test("real bookworm: gawk's closure takes install-info for readline-common, not dpkg and tar", async (t) => {
  const names = await closureOf(t, "gawk");
  if (names === undefined) return;
  for (const needed of [
    "gawk",
    "libreadline8",
    "readline-common",
    "install-info",
    "libmpfr6",
    "libgmp10",
    "libsigsegv2",
  ])
    t.true(names.includes(needed), needed);
  for (const dragged of ["dpkg", "tar", "libselinux1", "libzstd1"]) t.false(names.includes(dragged), dragged);
});

// postgresql-15 has `Depends: locales | locales-all`. locales brings libc-l10n,
// libc-bin and debconf (4 packages, about 22 MiB); locales-all brings libc-l10n
// (2 packages, about 226 MiB, 222 of them its own). Counting packages took
// locales-all; Installed-Size keeps locales, the first (locales-all is not a tenth of it).
test("real bookworm: postgresql-15's `locales | locales-all` takes locales, the smaller by Installed-Size", async (t) => {
  const got = await resolved(t, ["postgresql-15"]);
  if (got === undefined) return;
  const names = got.resolution.packages.map((p) => p.record.name);
  for (const needed of ["postgresql-15", "locales", "libc-l10n"]) t.true(names.includes(needed), needed);
  t.false(names.includes("locales-all"), "locales-all");
  const choice = got.resolution.alternativeChoices.find(
    (c) => c.neededBy === "postgresql-15" && c.relation === "locales | locales-all",
  );
  if (choice === undefined) {
    t.fail("no recorded choice for locales | locales-all");
    return;
  }
  const [locales, localesAll] = choice.sizes;
  t.like(locales, { package: "locales" });
  t.like(localesAll, { package: "locales-all", stopped: "cap" });
  t.true(locales!.packages! > 2, `locales brings ${locales!.packages} packages, more than locales-all's 2`);
  // locales-all alone is past all of locales' closure.
  const localesAllSize = got.universe.packages.get("locales-all")?.[0]?.record.installedSize;
  t.true(
    localesAllSize !== undefined && locales!.kib < localesAllSize,
    `locales ${locales!.kib} KiB < locales-all ${localesAllSize} KiB`,
  );

  // Asking for locales as well: it is selected, so the choice is not even measured.
  const both = await resolved(t, ["locales", "postgresql-15"]);
  if (both === undefined) return;
  t.false(
    both.resolution.packages.some((p) => p.record.name === "locales-all"),
    "locales-all",
  );
  t.false(both.resolution.alternativeChoices.some((c) => c.relation === "locales | locales-all"));
});

// fontconfig-config has `Depends: fonts-dejavu-core | ttf-bitstream-vera |
// fonts-liberation | ...`. ttf-bitstream-vera adds about a fifth of
// fonts-dejavu-core (595 KiB against 2,960 on bookworm): smaller, but not by
// ORDER_MARGIN, so Debian's first choice stands.
test("real bookworm: fontconfig-config's font is fonts-dejavu-core, the first, not a smaller one", async (t) => {
  const got = await resolved(t, ["fontconfig-config"]);
  if (got === undefined) return;
  const names = got.resolution.packages.map((p) => p.record.name);
  t.true(names.includes("fonts-dejavu-core"), "fonts-dejavu-core");
  for (const other of [
    "ttf-bitstream-vera",
    "fonts-liberation",
    "fonts-liberation2",
    "fonts-croscore",
    "fonts-freefont-otf",
    "fonts-freefont-ttf",
    "fonts-urw-base35",
    "fonts-texgyre",
  ]) {
    t.false(names.includes(other), other);
  }
  const choice = got.resolution.alternativeChoices.find(
    (c) => c.neededBy === "fontconfig-config" && c.relation.startsWith("fonts-dejavu-core | "),
  );
  if (choice === undefined) {
    t.fail("no recorded choice for fontconfig-config's fonts");
    return;
  }
  t.like(choice, { chosen: "fonts-dejavu-core", rule: "first" });
  t.like(choice.sizes[0], { package: "fonts-dejavu-core" });
  // Some later font is smaller, yet none was taken: the margin, not the size, kept the first.
  const dejavu = choice.sizes[0]!.kib;
  const vera = got.universe.packages.get("ttf-bitstream-vera")?.[0]?.record.installedSize;
  t.true(
    vera !== undefined && vera < dejavu && vera * ORDER_MARGIN > dejavu,
    `ttf-bitstream-vera ${vera} KiB against fonts-dejavu-core ${dejavu} KiB`,
  );
});
