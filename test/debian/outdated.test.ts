// `niftyc outdated` on a lock against newer indices: newest versions, and
// which of them are security fixes.
import test from "ava";
import type { Lock } from "../../src/debian/lockfile.ts";
import { findOutdated, isSecuritySuite, summarizeOutdated } from "../../src/debian/outdated.ts";
import type { SuiteRef } from "../../src/debian/types.ts";
import { MAIN, pkg, SECURITY, UPDATES, universeOf } from "./helpers.ts";

const H = "c".repeat(64);

function locked(name: string, version: string, from: SuiteRef = MAIN, architecture = "amd64") {
  const r = pkg(name, version, { from, architecture });
  return {
    name,
    version,
    architecture,
    from,
    filename: r.filename,
    size: r.size,
    sha256: r.sha256,
    requestedBy: ["app"],
  };
}

const lock: Lock = {
  architecture: "amd64",
  suites: [MAIN, UPDATES, SECURITY].map((s) => ({
    ...s,
    date: "Sat, 11 Jul 2026 10:16:37 UTC",
    inRelease: `sha256:${H}`,
  })),
  requests: [{ name: "app" }],
  packages: [
    locked("app", "1.0-1"),
    locked("libc6", "2.36-9+deb12u9"),
    locked("tzdata", "2024a-0+deb12u1", MAIN, "all"),
    locked("zlib1g", "1:1.2.13.dfsg-1"),
    locked("libssl3", "3.0.11-1~deb12u2"),
  ],
};

const now = universeOf([
  pkg("app", "1.0-1"),
  pkg("libc6", "2.36-9+deb12u9"),
  pkg("libc6", "2.36-9+deb12u14", { from: SECURITY }),
  pkg("tzdata", "2025b-0+deb12u1", { from: UPDATES, architecture: "all" }),
  pkg("zlib1g", "1:1.2.13.dfsg-1"),
  pkg("zlib1g", "1:1.2.13.dfsg-1+deb12u1", { from: SECURITY }),
  pkg("zlib1g", "1:1.2.13.dfsg-1+deb12u2", { from: UPDATES }),
  pkg("libssl3", "3.0.11-1~deb12u2"),
  pkg("libssl3", "3.0.9-1", { from: SECURITY }),
  pkg("libc6", "2.99", { architecture: "i386" }),
]);

test("newer versions, and whether a security suite has one", (t) => {
  const rows = findOutdated(lock, now);
  t.deepEqual(rows, [
    {
      name: "libc6",
      architecture: "amd64",
      locked: "2.36-9+deb12u9",
      lockedFrom: MAIN,
      newest: "2.36-9+deb12u14",
      newestFrom: SECURITY,
      security: true,
      securityVersion: "2.36-9+deb12u14",
      securityFrom: SECURITY,
    },
    {
      name: "tzdata",
      architecture: "all",
      locked: "2024a-0+deb12u1",
      lockedFrom: MAIN,
      newest: "2025b-0+deb12u1",
      newestFrom: UPDATES,
      security: false,
    },
    {
      // The newest is in updates, but a security fix lies between: flagged.
      name: "zlib1g",
      architecture: "amd64",
      locked: "1:1.2.13.dfsg-1",
      lockedFrom: MAIN,
      newest: "1:1.2.13.dfsg-1+deb12u2",
      newestFrom: UPDATES,
      security: true,
      securityVersion: "1:1.2.13.dfsg-1+deb12u1",
      securityFrom: SECURITY,
    },
  ]);
  t.deepEqual(summarizeOutdated(lock, rows), {
    status: "security-updates",
    locked: 5,
    updates: 3,
    securityUpdates: 2,
  });
});

test("a suite the caller marks as security counts as one", (t) => {
  const LTS: SuiteRef = { archive: "debian", suite: "bookworm-lts", component: "main" };
  const u = universeOf([pkg("app", "1.0-1"), pkg("app", "1.0-2", { from: LTS })], [MAIN, LTS]);
  t.false(findOutdated(lock, u)[0]!.security);
  t.true(findOutdated(lock, u, { securitySuites: [LTS] })[0]!.security);
  t.true(isSecuritySuite(SECURITY));
  t.false(isSecuritySuite(UPDATES));
});

test("up to date, and updates without security ones", (t) => {
  t.deepEqual(summarizeOutdated(lock, findOutdated(lock, universeOf([pkg("app", "1.0-1")]))), {
    status: "current",
    locked: 5,
    updates: 0,
    securityUpdates: 0,
  });
  const rows = findOutdated(lock, universeOf([pkg("app", "1.1-1", { from: UPDATES })]));
  t.deepEqual(summarizeOutdated(lock, rows), {
    status: "updates",
    locked: 5,
    updates: 1,
    securityUpdates: 0,
  });
});

test("rows are sorted whatever the lock's order", (t) => {
  const reversed: Lock = { ...lock, packages: [...lock.packages].reverse() };
  t.deepEqual(findOutdated(reversed, now), findOutdated(lock, now));
});
