// The universe read on demand from the stored indices (src/debian/lazy-universe.ts) against the
// one buildUniverse makes from every record: on this machine's real bookworm lists (the three
// suites, through the production parser and the stored form), every name's candidates and every
// virtual name's provisions are the same, and the shipped recipes' requests resolve to the same
// lock text either way. Skipped, saying why, where apt's lists are missing.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { isDeepStrictEqual } from "node:util";
import test from "ava";
import { parsePackages } from "../../src/debian/index.ts";
import { lazyUniverse, type StoredSuite } from "../../src/debian/lazy-universe.ts";
import { lockFromResolution, parseLock, serializeLock } from "../../src/debian/lockfile.ts";
import { PackageIndex, encodePackageIndex } from "../../src/debian/package-index.ts";
import { resolve } from "../../src/debian/resolve.ts";
import type { PackageRecord, SuiteRef } from "../../src/debian/types.ts";
import { buildUniverse, type Candidate, type SuiteIndex, type Universe } from "../../src/debian/universe.ts";
import { MAIN, SECURITY, UPDATES, pkg } from "./helpers.ts";

const run = promisify(execFile);
const LISTS = "/var/lib/apt/lists";
const DIGEST = `sha256:${"00".repeat(32)}`;

function stored(suite: SuiteRef, records: readonly PackageRecord[]): PackageIndex {
  return new PackageIndex(encodePackageIndex(records, DIGEST), DIGEST, suite);
}

/** The suites' records from apt's lists (plain or lz4), or why they cannot be read. */
const real: Promise<SuiteIndex[] | string> = (async () => {
  const names = existsSync(LISTS) ? readdirSync(LISTS) : [];
  const out: SuiteIndex[] = [];
  for (const [suite, ref] of [
    ["bookworm", MAIN],
    ["bookworm-updates", UPDATES],
    ["bookworm-security", SECURITY],
  ] as const) {
    const file = names.find((n) => n.includes(`_dists_${suite}_main_binary-amd64_Packages`));
    if (file === undefined) return `no ${suite} main amd64 Packages list in ${LISTS}`;
    const text = file.endsWith(".lz4")
      ? (await run("lz4cat", [join(LISTS, file)], { maxBuffer: 1 << 30, encoding: "buffer" })).stdout
      : await readFile(join(LISTS, file));
    out.push({ suite: ref, records: await parsePackages(chunks(text), ref, file) });
  }
  return out;
})();

async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

const shape = (c: Candidate) => ({ record: c.record, suiteIndex: c.suiteIndex, provides: c.provides });

function differences(eager: Universe, lazy: Universe): string[] {
  const bad: string[] = [];
  for (const [name, list] of eager.packages)
    if (!isDeepStrictEqual(list.map(shape), lazy.packages.get(name)?.map(shape))) bad.push(name);
  for (const [name, list] of eager.providers) {
    const as = (l: typeof list) => l.map((p) => ({ version: p.version, ...shape(p.provider) }));
    if (!isDeepStrictEqual(as(list), as(lazy.providers.get(name) ?? []))) bad.push(`virtual ${name}`);
  }
  if (eager.packages.size !== lazy.packages.size) bad.push("the number of names");
  if (eager.providers.size !== lazy.providers.size) bad.push("the number of virtual names");
  return bad;
}

test("on the real bookworm suites, the universe read on demand equals the one built from every record", async (t) => {
  const indices = await real;
  if (typeof indices === "string") return t.pass(`skipped: ${indices}`);
  const eager = buildUniverse(indices);
  const lazy = lazyUniverse(indices.map((i) => ({ suite: i.suite, index: stored(i.suite, i.records) })));
  t.deepEqual(differences(eager, lazy), []);
  t.deepEqual(lazy.problems, eager.problems);
  t.true(eager.packages.size > 60_000);
});

test("the shipped recipes' requests resolve to the same lock through the stored indices as through every record", async (t) => {
  const indices = await real;
  if (typeof indices === "string") return t.pass(`skipped: ${indices}`);
  const eager = buildUniverse(indices);
  const sources: StoredSuite[] = indices.map((i) => ({ suite: i.suite, index: stored(i.suite, i.records) }));
  const locks = readdirSync("recipes").filter((f) => f.endsWith(".nifty.lock"));
  let compared = 0;
  for (const file of locks) {
    const parsed = parseLock(await readFile(join("recipes", file), "utf8"));
    if (!parsed.ok || parsed.lock.suites.some((s) => !s.suite.startsWith("bookworm"))) continue;
    const { lock } = parsed;
    const requests = lock.requests.map((r) => ({ ...r, origin: file }));
    const texts = [eager, lazyUniverse(sources)].map((universe) => {
      const result = resolve(universe, requests, { arch: lock.architecture });
      if (!result.ok) return result.errors.map((e) => e.message).join("\n");
      return serializeLock(lockFromResolution(result.resolution, lock));
    });
    t.is(texts[1], texts[0], file);
    compared++;
  }
  t.true(compared >= 5, `${compared} locks compared`);
});

test("a name's records narrowed per suite (lock --update NAME) give what buildUniverse gives over the narrowed records", (t) => {
  const records = [
    pkg("a", "1.0", { depends: "b" }),
    pkg("a", "2.0", { depends: "b" }),
    pkg("b", "1.0", { provides: "v" }),
    pkg("b", "2.0", { provides: "v (= 2)" }),
    pkg("b", "3.0", { from: UPDATES }),
    pkg("c", "1.0", { provides: "v" }),
  ];
  const keep = (rs: PackageRecord[]) => {
    const pinned = rs.some((r) => r.name === "b" && r.version === "1.0");
    return pinned ? rs.filter((r) => r.version === "1.0") : rs;
  };
  const suites = [MAIN, UPDATES];
  const of = (s: SuiteRef) => records.filter((r) => r.from === s);
  const eager = buildUniverse(
    suites.map((s) => ({
      suite: s,
      records: of(s).filter((r) => keep(of(s).filter((x) => x.name === r.name)).includes(r)),
    })),
  );
  const lazy = lazyUniverse(suites.map((s) => ({ suite: s, index: stored(s, of(s)), keep })));
  t.deepEqual(differences(eager, lazy), []);
  t.deepEqual(
    lazy.packages.get("b")?.map((c) => c.record.version),
    ["3.0", "1.0"],
  );
  t.deepEqual(
    lazy.providers.get("v")?.map((p) => p.provider.record.name),
    ["b", "c"],
  );
  t.is(lazy.providers.get("w"), undefined);
  t.false(lazy.packages.has("v"));
});
