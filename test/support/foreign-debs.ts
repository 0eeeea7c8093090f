// Debian packages built for another architecture than the image's, for the
// tests that an ELF of another machine is refused: pinned by pool path and
// sha256, downloaded once from this machine's apt mirror into
// cache/test-debs/ (scripts/test-debs.ts does it before the tests; the tests
// serve the file from loopback, never from the network).
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { TEST_DEBS_DIR } from "./debian-archive.ts";

export interface ForeignDeb {
  /** Path below the archive root, as the arm64 Packages index gives it. */
  pool: string;
  sha256: string;
}

/** Debian bookworm's BusyBox for arm64: a static aarch64 ELF at bin/busybox. */
export const BUSYBOX_ARM64: ForeignDeb = {
  pool: "pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb",
  sha256: "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5",
};

export const FOREIGN_DEBS: readonly ForeignDeb[] = [BUSYBOX_ARM64];

/** Where the .deb is kept: cache/test-debs/<its file name>. */
export function foreignDebPath(deb: ForeignDeb, dir = TEST_DEBS_DIR): string {
  return path.join(dir, path.basename(deb.pool));
}

/** The file, when it is there with its pinned digest. */
export function cachedForeignDeb(deb: ForeignDeb, dir = TEST_DEBS_DIR): Buffer | undefined {
  const file = foreignDebPath(deb, dir);
  if (!existsSync(file)) return undefined;
  const bytes = readFileSync(file);
  return createHash("sha256").update(bytes).digest("hex") === deb.sha256 ? bytes : undefined;
}

/** The first Debian archive in apt's sources (deb822 or one-line form). */
function aptMirror(): string {
  for (const file of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    const m =
      /^URIs:\s*(\S+\/debian)\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s/m.exec(text);
    if (m) return m[1]!;
  }
  return "http://deb.debian.org/debian";
}

/** Downloads each foreign .deb not yet cached, checking its pinned digest. */
export async function fetchForeignDebs(
  dir = TEST_DEBS_DIR,
  log: (line: string) => void = () => {},
): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (const deb of FOREIGN_DEBS) {
    const file = foreignDebPath(deb, dir);
    if (cachedForeignDeb(deb, dir) === undefined) {
      const url = `${aptMirror()}/${deb.pool}`;
      log(`download ${url}`);
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      const got = createHash("sha256").update(bytes).digest("hex");
      if (got !== deb.sha256) throw new Error(`${url}: sha256 ${got}, expected ${deb.sha256}`);
      const tmp = `${file}.${process.pid}.part`;
      await fsp.writeFile(tmp, bytes);
      await fsp.rename(tmp, file);
    }
    out.push(file);
  }
  return out;
}
