// What the Debian package work passes between its parts: one binary package
// as an index describes it, and where that index came from.

/** One suite of one archive, as a recipe's ARCHIVE line names it. */
export interface SuiteRef {
  /** The archive's name in the recipe, also its mirror scheme: "debian", "debian-security". */
  archive: string;
  suite: string;
  component: string;
}

/** One binary package stanza of a Packages index, with the fields niftyc uses. */
export interface PackageRecord {
  name: string;
  version: string;
  /** "amd64", "all", … */
  architecture: string;
  multiArch?: "same" | "foreign" | "allowed" | "no";
  /** Relation fields, raw as the index writes them ("" when absent). */
  depends: string;
  preDepends: string;
  provides: string;
  /** Essential: yes packages are never pulled in implicitly; recorded for the report. */
  essential?: boolean;
  priority?: string;
  /** Pool path relative to the archive root: pool/main/b/busybox/…deb */
  filename: string;
  size: number;
  /** "sha256:<hex>" of the .deb */
  sha256: string;
  /** Installed-Size in KiB, as the index says; for the dpkg status file. */
  installedSize?: number;
  description?: string;
  from: SuiteRef;
}
