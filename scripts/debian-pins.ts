// The shipped recipes pin Debian files by digest. This script
//   fetch [--cache DIR]  downloads every pinned file into the store (CI runs it
//                        before the tests, whose loopback mirror serves from it);
//   check                says which pins no longer resolve on the mirror, and what
//                        apt now offers instead (run by hand or on a schedule:
//                        Debian replaces package versions over time).
// Mirrors: --mirror debian=URL, NIFTY_MIRROR_DEBIAN, or this machine's apt sources.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { checkSource } from "../src/check/source.ts";
import { openStore } from "../src/cache/store.ts";
import { parseLock } from "../src/debian/lockfile.ts";
import { fetchBlob } from "../src/fetch/download.ts";
import { loadMirrors, parseMirrorSettings, resolveSources } from "../src/fetch/mirrors.ts";

export interface DebianPin {
  recipe: string;
  line: number;
  /** The archive (mirror name) the path is in: debian, or debian-security for locked security updates. */
  archive: string;
  /** Path in the archive, e.g. pool/main/b/busybox/busybox-static_…_amd64.deb */
  path: string;
  digest: string;
}

const ROOT = resolve(import.meta.dirname, "..");

/** The recipe docs/tutorial.md writes, step by step: every `cat > nifty.nifty` / `cat >> nifty.nifty` block, in order. */
export function tutorialRecipe(markdown: string): string {
  return [...markdown.matchAll(/^cat >>? nifty\.nifty <<'END'\n([\s\S]*?)^END$/gm)].map((m) => m[1]).join("");
}

/** Every debian: source and locked package of every recipe in recipes/ (and the tutorial's), once per path. */
export async function debianPins(recipesDir = join(ROOT, "recipes")): Promise<DebianPin[]> {
  const pins = new Map<string, DebianPin>();
  const recipes = readdirSync(recipesDir)
    .filter((f) => f.endsWith(".nifty"))
    .sort()
    .map((file) => ({
      file,
      path: join(recipesDir, file),
      text: readFileSync(join(recipesDir, file), "utf8"),
    }));
  const tutorial = join(ROOT, "docs", "tutorial.md");
  if (recipesDir === join(ROOT, "recipes") && existsSync(tutorial))
    recipes.push({
      file: "docs/tutorial.md",
      path: join(ROOT, "docs", "nifty.nifty"),
      text: tutorialRecipe(readFileSync(tutorial, "utf8")),
    });
  for (const { file, path, text } of recipes) {
    const checked = await checkSource({ path, text }, { args: new Map(), strict: false });
    for (const ins of checked.recipe?.instructions ?? []) {
      if (ins.kind !== "FETCH") continue;
      for (const source of ins.sources.filter((s) => s.startsWith("debian:"))) {
        const archivePath = source.slice("debian:".length);
        if (!pins.has(archivePath))
          pins.set(archivePath, {
            recipe: file,
            line: ins.span.start.line,
            archive: "debian",
            path: archivePath,
            digest: ins.digest,
          });
      }
    }
    // Packages a lockfile pins (PACKAGE lines): every .deb of the closure, of every platform's
    // section, from <recipe>.lock and from the locks of suites an --arg chooses (<recipe>.<suite>.lock).
    for (const lockPath of recipeLocks(path)) {
      const lockName = basename(lockPath);
      const parsed = parseLock(readFileSync(lockPath, "utf8"));
      if (!parsed.ok) {
        const where = parsed.errors.map((e) => `line ${e.line}: ${e.message}`).join("; ");
        throw new Error(`${lockName} is malformed: ${where}`);
      }
      for (const pkg of parsed.sections.flatMap((section) => section.lock.packages)) {
        const pin = {
          recipe: lockName,
          line: 0,
          archive: pkg.from.archive,
          path: pkg.filename,
          digest: pkg.sha256,
        };
        if (!pins.has(pkg.filename)) pins.set(pkg.filename, pin);
      }
    }
  }
  return [...pins.values()];
}

/** A recipe's locks: `<recipe>.lock`, then `<recipe>.<suite>.lock` files, sorted. */
function recipeLocks(recipePath: string): string[] {
  const dir = dirname(recipePath);
  const name = basename(recipePath);
  if (!existsSync(dir)) return [];
  const others = readdirSync(dir)
    .filter((f) => f.startsWith(`${name}.`) && f.endsWith(".lock") && f !== `${name}.lock`)
    .sort();
  return [
    ...(existsSync(`${recipePath}.lock`) ? [`${recipePath}.lock`] : []),
    ...others.map((f) => join(dir, f)),
  ];
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { cache: { type: "string" }, mirror: { type: "string", multiple: true } },
    allowPositionals: true,
  });
  const settings = [...(values.mirror ?? [])];
  if (process.env.NIFTY_MIRROR_DEBIAN) settings.push(`debian=${process.env.NIFTY_MIRROR_DEBIAN}`);
  const mirrors = await loadMirrors(parseMirrorSettings(settings));
  const pins = await debianPins();
  const command = positionals[0];
  if (command === "fetch") {
    const store = await openStore(resolve(values.cache ?? process.env.NIFTY_CACHE ?? join(ROOT, "cache")));
    for (const pin of pins) {
      const blob = await fetchBlob(store, {
        name: pin.path.split("/").pop()!,
        sources: pinSources(pin, mirrors),
        digest: pin.digest,
        offline: false,
      });
      process.stdout.write(`${blob.fromCache ? "have" : "got "} ${pin.digest}  ${pin.path}\n`);
    }
    return 0;
  }
  if (command === "check") {
    let moved = 0;
    for (const pin of pins) {
      const fresh = await openStore(mkdtempSync(join(tmpdir(), "niftyc-pins-")));
      try {
        await fetchBlob(fresh, {
          name: pin.path,
          sources: pinSources(pin, mirrors),
          digest: pin.digest,
          offline: false,
          retries: 1,
        });
        process.stdout.write(`ok     ${pin.path}\n`);
      } catch (error) {
        moved++;
        const pkg = pin.path.split("/").pop()!.split("_")[0]!;
        process.stdout.write(
          `moved  ${pin.path} (${pin.recipe}:${pin.line}): ${(error as Error).message.split("\n")[0]}\n`,
        );
        process.stdout.write(`       apt now offers: ${aptCandidate(pkg)}\n`);
      } finally {
        rmSync(fresh.dir, { recursive: true, force: true });
      }
    }
    process.stdout.write(`${pins.length - moved} of ${pins.length} pins resolve\n`);
    return moved === 0 ? 0 : 1;
  }
  process.stderr.write(
    "usage: node scripts/debian-pins.ts fetch [--cache DIR] | check   [--mirror debian=URL]\n",
  );
  return 2;
}

/** Where a pin is downloaded: its archive's mirrors (debian: sources, or a locked package's archive). */
function pinSources(pin: DebianPin, mirrors: Record<string, string[]>): string[] {
  if (pin.archive === "debian") return resolveSources([`debian:${pin.path}`], mirrors);
  return (mirrors[pin.archive] ?? []).map((root) => `${root.replace(/\/+$/, "")}/${pin.path}`);
}

function aptCandidate(pkg: string): string {
  try {
    const show = execFileSync("apt-cache", ["show", "--no-all-versions", pkg], { encoding: "utf8" });
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(show)?.[1] ?? "?";
    return `${field("Filename")} sha256:${field("SHA256")}`;
  } catch {
    return `nothing for ${pkg} (run apt-get update?)`;
  }
}

if (import.meta.main) process.exitCode = await main();
