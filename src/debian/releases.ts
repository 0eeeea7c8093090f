// Which Debian release a suite belongs to, as the package URLs of an SBOM name it: the
// distribution and its version, `debian-12`, the way syft and trivy write the purl's `distro`
// qualifier (from os-release's ID and VERSION_ID) and read it back to choose the advisories a
// package is matched against. A suite is a pocket of a release (`bookworm-security`,
// `bookworm-updates`), not a release of its own.

/** Debian's codenames and their version numbers. */
const VERSIONS: Readonly<Record<string, string>> = {
  wheezy: "7",
  jessie: "8",
  stretch: "9",
  buster: "10",
  bullseye: "11",
  bookworm: "12",
  trixie: "13",
  forky: "14",
  duke: "15",
};

/** The pockets a release's suites add to its codename (`bookworm-security`, or `buster/updates` before bullseye). */
const POCKET = /(?:-security|-updates|-proposed-updates|-backports-sloppy|-backports|\/updates)$/;

/**
 * `debian-<version>` for a suite of a known release (`bookworm-security` → `debian-12`), else
 * `debian-<codename>` (`sid`, `stable`: a name that moves, or one newer than this table).
 */
export function debianDistro(suite: string): string {
  const codename = suite.replace(POCKET, "");
  return `debian-${VERSIONS[codename] ?? codename}`;
}
