// Debian version strings: comparison exactly as dpkg does it (lib/dpkg/version.c
// verrevcmp) and validation as dpkg's parseversion does it. Pure string work,
// no numbers parsed from digit runs, so versions of any length compare right.

/** A version split as dpkg splits it: `[epoch:]upstream[-revision]`. */
export interface DebVersion {
  epoch: number;
  upstream: string;
  /** "" when there is no hyphen; dpkg compares "" and "0" as equal. */
  revision: string;
}

/**
 * Split a version without judging it (dpkg compares even versions it warns
 * about). The epoch is the part before the first colon when that part is all
 * digits; the revision is after the last hyphen of the rest.
 */
export function splitVersion(text: string): DebVersion {
  const s = text.trim();
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(":");
  if (colon > 0 && /^\d+$/.test(s.slice(0, colon))) {
    epoch = Number(s.slice(0, colon));
    rest = s.slice(colon + 1);
  }
  const hyphen = rest.lastIndexOf("-");
  if (hyphen < 0) return { epoch, upstream: rest, revision: "" };
  return { epoch, upstream: rest.slice(0, hyphen), revision: rest.slice(hyphen + 1) };
}

const CH_0 = 48;
const CH_9 = 57;
const CH_TILDE = 126;

function isDigit(c: number): boolean {
  return c >= CH_0 && c <= CH_9;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** dpkg's order(): `~` before the end, the end before letters, letters before other characters. */
function order(c: number): number {
  if (c === 0 || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === CH_TILDE) return -1;
  return c + 256;
}

/** Character code at i, 0 past the end (C's terminating NUL). */
function at(s: string, i: number): number {
  return i < s.length ? s.charCodeAt(i) : 0;
}

/** dpkg's verrevcmp: alternate non-digit runs (by order()) and digit runs (numerically). */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(at(a, i))) || (j < b.length && !isDigit(at(b, j)))) {
      const ac = order(at(a, i));
      const bc = order(at(b, j));
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (at(a, i) === CH_0) i++;
    while (at(b, j) === CH_0) j++;
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (firstDiff === 0) firstDiff = at(a, i) - at(b, j);
      i++;
      j++;
    }
    if (isDigit(at(a, i))) return 1;
    if (isDigit(at(b, j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/** Negative, zero or positive as `a` sorts before, equal to or after `b`, as dpkg sorts them. */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  const va = splitVersion(a);
  const vb = splitVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  return Math.sign(compareFragment(va.upstream, vb.upstream) || compareFragment(va.revision, vb.revision));
}

/** The usual shape, `[epoch:]upstream[-revision]` without colons or hyphens inside upstream: valid. */
const COMMON_VALID = /^(?:[0-9]{1,9}:)?[0-9][A-Za-z0-9.+~]*(?:-[A-Za-z0-9.+~]+)?$/;

/**
 * What is wrong with a version, in dpkg's words, or undefined when it is valid.
 * Stricter than dpkg's compare (which only warns about bad characters): a
 * version we pin or ask for must be one dpkg accepts without a warning.
 */
export function versionProblem(text: string): string | undefined {
  if (COMMON_VALID.test(text)) return undefined;
  if (text.trim() === "") return "version string is empty";
  if (text !== text.trim()) return "version string has leading or trailing spaces";
  if (/\s/.test(text)) return "version string has embedded spaces";
  const colon = text.indexOf(":");
  let rest = text;
  if (colon >= 0) {
    const epoch = text.slice(0, colon);
    if (epoch === "") return "epoch in version is empty";
    if (!/^\d+$/.test(epoch)) return "epoch in version is not number";
    if (Number(epoch) > 2147483647) return "epoch in version is too big";
    rest = text.slice(colon + 1);
  }
  const hyphen = rest.lastIndexOf("-");
  const upstream = hyphen < 0 ? rest : rest.slice(0, hyphen);
  const revision = hyphen < 0 ? undefined : rest.slice(hyphen + 1);
  if (upstream === "") return "version number is empty";
  if (revision === "") return "revision number is empty";
  if (!isDigit(upstream.charCodeAt(0))) return "version number does not start with digit";
  if (!/^[A-Za-z0-9.+~:-]*$/.test(upstream)) return "invalid character in version number";
  if (revision !== undefined && !/^[A-Za-z0-9.+~]*$/.test(revision))
    return "invalid character in revision number";
  return undefined;
}

export function isValidVersion(text: string): boolean {
  return versionProblem(text) === undefined;
}
