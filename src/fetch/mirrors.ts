// Source resolution: a recipe names where bytes come from (`https://…` or a
// scheme such as `debian:pool/…`); mirrors come from the caller or, for
// Debian, from this machine's apt configuration. Never from the project.
import * as fsp from "node:fs/promises";
import path from "node:path";
import { FetchError } from "../cache/fetch-error.ts";
import { httpUrlProblem, sourceProblem, splitSource, type SourceProblem } from "./sources.ts";

export { MIRROR_SCHEMES, type MirrorScheme } from "./sources.ts";

export interface AptSource {
  /** The file the entry came from, for messages. */
  path: string;
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  enabled: boolean;
}

/**
 * Parse apt source files: the one-line `.list` format and deb822 `.sources`
 * stanzas. The format is chosen by file name, as apt does.
 */
export function parseAptSources(files: { path: string; text: string }[]): AptSource[] {
  const out: AptSource[] = [];
  for (const f of files) {
    if (f.path.endsWith(".sources")) out.push(...parseDeb822(f));
    else out.push(...parseOneLine(f));
  }
  return out;
}

function parseOneLine(f: { path: string; text: string }): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of f.text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    // deb [opt=val opt2=val] uri suite [component…]
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) continue;
    out.push({
      path: f.path,
      types: [m[1]!],
      uris: [m[3]!],
      suites: [m[4]!],
      components: (m[5] ?? "").split(/\s+/).filter(Boolean),
      enabled: true,
    });
  }
  return out;
}

function parseDeb822(f: { path: string; text: string }): AptSource[] {
  const out: AptSource[] = [];
  let fields = new Map<string, string>();
  let last: string | undefined;
  const flush = () => {
    if (fields.size > 0) {
      const words = (k: string) => (fields.get(k) ?? "").split(/\s+/).filter(Boolean);
      out.push({
        path: f.path,
        types: words("types"),
        uris: words("uris"),
        suites: words("suites"),
        components: words("components"),
        enabled: (fields.get("enabled") ?? "yes").trim().toLowerCase() !== "no",
      });
    }
    fields = new Map();
    last = undefined;
  };
  for (const raw of f.text.split("\n")) {
    if (raw.startsWith("#")) continue;
    if (raw.trim() === "") {
      flush();
      continue;
    }
    if (/^\s/.test(raw)) {
      // Continuation of the previous field (e.g. an inline Signed-By key).
      if (last !== undefined) fields.set(last, `${fields.get(last) ?? ""}\n${raw.trim()}`);
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
    if (!m) continue;
    last = m[1]!.toLowerCase();
    fields.set(last, m[2]!.trim());
  }
  flush();
  return out;
}

/** Archive URIs among apt entries: binary (`deb`) entries over http(s) whose path ends as `path` does, deduplicated, in file order. */
function archiveUris(entries: AptSource[], path: RegExp, keepSuite: (suite: string) => boolean): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of entries) {
    if (!e.enabled || !e.types.includes("deb") || !e.suites.some(keepSuite)) continue;
    for (const uri of e.uris) {
      let u: URL;
      try {
        u = new URL(uri);
      } catch {
        continue;
      }
      if ((u.protocol !== "http:" && u.protocol !== "https:") || !path.test(u.pathname)) continue;
      const norm = uri.replace(/\/+$/, "");
      if (seen.has(norm)) continue;
      seen.add(norm);
      out.push(norm);
    }
  }
  return out;
}

/** The main Debian archive's URIs: paths ending in `/debian`, entries with a suite other than a security one. */
export function debianArchiveUris(entries: AptSource[]): string[] {
  return archiveUris(entries, /\/debian\/?$/, (s) => !/-security$|\/updates$/.test(s));
}

/** Debian's security archive's URIs: paths ending in `/debian-security` (suites `<codename>-security`, pool `pool/updates/…`). */
export function debianSecurityUris(entries: AptSource[]): string[] {
  return archiveUris(entries, /\/debian-security\/?$/, () => true);
}

/** Read apt's source files under `root` (`/` on a real machine). */
export async function readAptSourceFiles(root = "/"): Promise<{ path: string; text: string }[]> {
  const files: string[] = [path.join(root, "etc/apt/sources.list")];
  const dir = path.join(root, "etc/apt/sources.list.d");
  try {
    for (const name of (await fsp.readdir(dir)).sort()) {
      if (name.endsWith(".list") || name.endsWith(".sources")) files.push(path.join(dir, name));
    }
  } catch {
    // No sources.list.d: only the main file, if any.
  }
  const out: { path: string; text: string }[] = [];
  for (const p of files) {
    try {
      out.push({ path: p, text: await fsp.readFile(p, "utf8") });
    } catch {
      // Absent or unreadable: apt skips it too.
    }
  }
  return out;
}

/**
 * The mirrors to use: those the caller gives (from flags or the environment),
 * and for Debian and its security archive (`debian-security`, the archive
 * name PACKAGE suites use; not a FETCH scheme), when none are given, this
 * machine's apt archive URIs.
 */
export async function loadMirrors(
  given: Record<string, string[]>,
  aptRoot = "/",
): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = { ...given };
  const needDebian = !out.debian || out.debian.length === 0;
  const needSecurity = !out["debian-security"] || out["debian-security"].length === 0;
  if (needDebian || needSecurity) {
    const entries = parseAptSources(await readAptSourceFiles(aptRoot));
    if (needDebian) out.debian = debianArchiveUris(entries);
    if (needSecurity) out["debian-security"] = debianSecurityUris(entries);
  }
  return out;
}

/**
 * Parse `NAME=URL` mirror settings (`--mirror debian=<url>`, or the
 * comma/space separated value of an environment variable) into a mirror map.
 */
export function parseMirrorSettings(settings: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of settings) {
    const m = /^([a-z][a-z0-9-]*)=(.+)$/.exec(s.trim());
    if (!m) {
      throw new FetchError(
        "NIFTY112",
        "sources",
        `invalid mirror setting ${JSON.stringify(s)}`,
        "write it as NAME=URL, e.g. debian=http://mirror.example/debian",
      );
    }
    checkHttpUrl(m[2]!, `mirror ${m[1]}`);
    // A mirror is a root that archive paths are appended to: after a query or a fragment they
    // would be part of it, and every download would ask for something else.
    const extra = /[?#]/.exec(m[2]!)?.[0];
    if (extra !== undefined)
      throw new FetchError(
        "NIFTY112",
        "sources",
        `mirror ${m[1]}: ${JSON.stringify(m[2])} has a ${extra === "?" ? "query (?…)" : "fragment (#…)"}, which the paths inside the archive cannot follow`,
        "give the archive's root URL alone, e.g. debian=http://mirror.example/debian",
      );
    (out[m[1]!] ??= []).push(m[2]!.replace(/\/+$/, ""));
  }
  return out;
}

/**
 * Turn each source into URLs, in order, without duplicates: http(s) URLs as
 * they are, `debian:<path>` once per Debian mirror.
 */
export function resolveSources(sources: string[], mirrors: Record<string, string[]>): string[] {
  const out: string[] = [];
  const add = (u: string) => {
    if (!out.includes(u)) out.push(u);
  };
  for (const src of sources) {
    const problem = sourceProblem(src);
    if (problem !== undefined) throw sourceError(problem);
    const { scheme, rest } = splitSource(src)!;
    if (scheme === "http" || scheme === "https") {
      add(src);
      continue;
    }
    const list = mirrors[scheme] ?? [];
    if (list.length === 0) {
      throw new FetchError(
        "NIFTY111",
        "sources",
        `no ${scheme} mirror for source ${src}`,
        `pass --mirror ${scheme}=<url> or set NIFTY_MIRROR_${scheme.toUpperCase()}${scheme === "debian" ? ", or add a Debian archive to apt's sources" : ""}`,
      );
    }
    for (const base of list) add(`${base.replace(/\/+$/, "")}/${rest}`);
  }
  return out;
}

function sourceError(problem: SourceProblem): FetchError {
  return new FetchError(problem.code, "sources", problem.message, problem.hint);
}

function checkHttpUrl(url: string, what: string): void {
  const problem = httpUrlProblem(url, what);
  if (problem !== undefined) throw sourceError(problem);
}
