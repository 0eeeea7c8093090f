// The language server's package catalog: names from the stored indices' name tables, a hint
// (version, description) decoded only for a name asked about, the first suite that has it winning.
import test from "ava";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdirSync, openSync, symlinkSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/cache/store.ts";
import { writeParsedIndex } from "../../src/debian/index.ts";
import { serializeLock } from "../../src/debian/lockfile.ts";
import { indexRecord, MAIN, SECURITY } from "../debian/helpers.ts";
import { packageCatalog } from "../../src/lsp/packages.ts";
import { hashText } from "../../src/pipeline/keys.ts";

test("the catalog lists every suite's names and decodes a hint for a name when asked, the first suite winning", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "niftyc-lsp-packages-"));
  const store = await openStore(join(dir, "cache"));
  const suites = [
    {
      ref: MAIN,
      records: [indexRecord(MAIN, "zlib1g", "1:1.2.13"), indexRecord(MAIN, "busybox", "1:1.35.0-4", "Tiny")],
    },
    {
      ref: SECURITY,
      records: [indexRecord(SECURITY, "zlib1g", "1:1.2.13+deb12u1"), indexRecord(SECURITY, "libc6", "2.36")],
    },
  ];
  const locked = [];
  for (const [i, s] of suites.entries()) {
    const indexDigest = `sha256:${String(i).repeat(64)}`;
    await writeParsedIndex(store, indexDigest, s.records);
    const inRelease = `sha256:${String(i + 5).repeat(64)}`;
    await store.writeRecord("debian-release-index", hashText(inRelease, "main", "amd64"), {
      index: indexDigest,
    });
    locked.push({ ...s.ref, date: "Sat, 11 Jul 2026 10:16:37 UTC", inRelease });
  }
  const recipePath = join(dir, "r.nifty");
  const lockedPackage = { ...indexRecord(MAIN, "only-in-lock", "1.0"), requestedBy: ["only-in-lock"] };
  await writeFile(
    `${recipePath}.lock`,
    serializeLock({
      architecture: "amd64",
      suites: locked,
      requests: [{ name: "only-in-lock" }],
      packages: [lockedPackage],
    }),
  );
  const catalog = await packageCatalog(join(dir, "cache"), recipePath, [
    { archive: "debian", suites: ["bookworm"] },
    { archive: "debian-security", suites: ["bookworm-security"] },
  ]);
  t.teardown(() => catalog.close());
  t.deepEqual(catalog.names, ["busybox", "libc6", "only-in-lock", "zlib1g"]);
  t.deepEqual(catalog.hint("busybox"), { name: "busybox", version: "1:1.35.0-4", description: "Tiny" });
  t.deepEqual(catalog.hint("zlib1g"), { name: "zlib1g", version: "1:1.2.13" });
  t.deepEqual(catalog.hint("libc6"), { name: "libc6", version: "2.36" });
  t.deepEqual(catalog.hint("only-in-lock"), { name: "only-in-lock", version: "1.0" });
  t.is(catalog.hint("absent"), undefined);
});

test("a lock that is a FIFO, a link to /dev/zero or a directory offers no packages, at once", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "niftyc-lsp-packages-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const recipe = join(dir, "app.nifty");
  const archives = [{ archive: "debian", suites: ["bookworm"] }];
  const kinds: Array<[string, () => void]> = [
    ["a FIFO", () => execFileSync("mkfifo", [`${recipe}.lock`])],
    ["a link to /dev/zero", () => symlinkSync("/dev/zero", `${recipe}.lock`)],
    ["a directory", () => mkdirSync(`${recipe}.lock`)],
  ];
  for (const [what, make] of kinds) {
    await rm(`${recipe}.lock`, { recursive: true, force: true });
    make();
    const late = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000).unref());
    const catalog = await Promise.race([packageCatalog(undefined, recipe, archives), late]);
    // A reader stuck opening the FIFO is let go, so a failure here does not hold the test process.
    if (catalog === undefined)
      closeSync(openSync(`${recipe}.lock`, constants.O_WRONLY | constants.O_NONBLOCK));
    t.deepEqual(catalog?.names, [], what);
  }
});
