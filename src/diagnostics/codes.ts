// Every diagnostic code niftyc raises, as data: one entry per code with its
// severity, the section of docs/diagnostics.md that lists it, and the shape of
// its message as that table words it. DiagnosticCode is the union of its keys,
// so a misspelt or undocumented code at any call site is a type error;
// test/check/codes.test.ts checks the docs against this table both ways and
// fails on a code that nothing raises.

export type Severity = "error" | "warning";

/** The sections of docs/diagnostics.md, in their order: who raises a code, and the heading's anchor. */
export const SECTIONS = {
  syntax: { heading: "Syntax", anchor: "syntax" },
  fetch: { heading: "Fetch and cache", anchor: "fetch-and-cache" },
  checks: { heading: "Checks", anchor: "checks" },
  build: { heading: "Build", anchor: "build" },
  packages: { heading: "Debian packages", anchor: "debian-packages" },
  instances: { heading: "Instances", anchor: "instances" },
  outputs: { heading: "Outputs", anchor: "outputs" },
  registries: { heading: "Registries", anchor: "registries" },
  run: { heading: "Run", anchor: "run" },
  limits: { heading: "Hostile input and limits", anchor: "hostile-input-and-limits" },
  editor: { heading: "Editor", anchor: "editor" },
} as const;

export type Section = keyof typeof SECTIONS;

export interface CodeEntry {
  /** What it is when raised; `--strict` makes a warning an error. */
  readonly severity: Severity;
  readonly section: Section;
  /** The message's shape: the Message column of the docs table. */
  readonly title: string;
  /** The hint every diagnostic of the code carries, where the raiser takes it from here (the parser). */
  readonly hint?: string;
}

export const DIAGNOSTIC_CODES = {
  // Syntax: the parser (grammar/), which takes each hint from here.
  NIFTY001: {
    severity: "error",
    section: "syntax",
    title: "a line does not start with an instruction keyword",
    hint: "an instruction starts with its keyword (letters, digits, '-' and '_'), e.g. FETCH",
  },
  NIFTY002: {
    severity: "error",
    section: "syntax",
    title: "unterminated double-quoted string",
    hint: 'close the string with " on the same line',
  },
  NIFTY003: {
    severity: "error",
    section: "syntax",
    title: "unterminated single-quoted string",
    hint: "close the string with ' on the same line",
  },
  NIFTY004: {
    severity: "error",
    section: "syntax",
    title: "${ without a closing }",
    hint: "write ${NAME} or ${NAME:-default} on one line",
  },
  NIFTY005: {
    severity: "error",
    section: "syntax",
    title: "invalid variable reference",
    hint: "write ${NAME} or ${NAME:-default}; a NAME is letters, digits and _, not starting with a digit, and a default is plain text: for a fallback to another variable, give an earlier ARG that default (ARG A=${B:-c}) and write ${A}",
  },
  NIFTY006: {
    severity: "error",
    section: "syntax",
    title: "heredoc without its closing delimiter line",
    hint: "end the heredoc with a line holding only its delimiter",
  },
  NIFTY007: {
    severity: "warning",
    section: "syntax",
    title: "line continuation at the end of the file",
    hint: "remove the trailing \\",
  },
  NIFTY008: {
    severity: "error",
    section: "syntax",
    title: "unexpected input (a parser fault: please report it)",
    hint: "the syntax layer accepts every input; this diagnostic means a bug in niftyc",
  },
  NIFTY009: {
    severity: "warning",
    section: "syntax",
    title: "line continuation followed by an empty line",
    hint: "the empty line ends the instruction: remove the \\ or the empty line",
  },
  NIFTY016: {
    severity: "warning",
    section: "syntax",
    title: "a typographic character is not a blank or a quote",
    hint: "type a plain space, ' or \" (a word processor or a web page may have put this one here)",
  },
  NIFTY017: {
    severity: "warning",
    section: "syntax",
    title: "this line almost closes a heredoc, but has blanks around its delimiter",
    hint: "a closing line holds only the delimiter: remove the blanks, or the heredoc goes on to the next exact closing line",
  },
  NIFTY028: {
    severity: "error",
    section: "syntax",
    title: "a heredoc marker joined to another word",
    hint: "a marker is a word of its own: put a blank between it and the word before or after it",
  },
  NIFTY019: {
    severity: "error",
    section: "syntax",
    title: "a heredoc marker written with a blank after <<",
    hint: "write the marker as one word, <<EOF (or <<-EOF, <<'EOF'), with no blank after <<",
  },

  // Fetch and cache: src/fetch/ and the content-addressed store.
  NIFTY100: { severity: "error", section: "fetch", title: "malformed digest" },
  NIFTY101: {
    severity: "error",
    section: "fetch",
    title: "digest mismatch for a URL or blob: expected one digest, got another",
  },
  NIFTY102: {
    severity: "error",
    section: "fetch",
    title: "a blob is not in the cache, and offline mode forbids downloading it",
  },
  NIFTY103: {
    severity: "error",
    section: "fetch",
    title: "could not fetch a blob from any source (one line per URL with its reason)",
  },
  NIFTY104: { severity: "error", section: "fetch", title: "a blob has no source to fetch it from" },
  NIFTY105: {
    severity: "warning",
    section: "fetch",
    title: "d is taken from the store, where it came from s, not from this line's sources",
  },
  NIFTY106: {
    severity: "error",
    section: "fetch",
    title: "a source sent too slowly: the download did not end within the timeout plus 1 s per 16 KiB",
  },
  NIFTY110: { severity: "error", section: "fetch", title: "unsupported source (unknown scheme)" },
  NIFTY111: { severity: "error", section: "fetch", title: "no mirror for a `debian:` source" },
  NIFTY112: { severity: "error", section: "fetch", title: "invalid URL or mirror setting" },
  NIFTY113: {
    severity: "error",
    section: "fetch",
    title: "invalid path in a mirror source (empty, absolute, or climbing with `..`)",
  },
  NIFTY114: { severity: "error", section: "fetch", title: "cannot decompress a: the decompressor failed" },
  NIFTY120: { severity: "error", section: "fetch", title: "not an archive format niftyc reads" },
  NIFTY121: { severity: "error", section: "fetch", title: "member not in the archive" },
  NIFTY122: {
    severity: "error",
    section: "fetch",
    title: "refused member name: empty, absolute, or containing `..`",
  },
  NIFTY123: {
    severity: "error",
    section: "fetch",
    title: "a symlink or hard link points outside the archive",
  },
  NIFTY124: {
    severity: "error",
    section: "fetch",
    title: "too many links while resolving a member (a loop)",
  },
  NIFTY125: {
    severity: "error",
    section: "fetch",
    title: "the member is a directory or special file, not a regular file",
  },
  NIFTY126: { severity: "error", section: "fetch", title: "an ar archive without a data.tar member" },
  NIFTY127: { severity: "error", section: "fetch", title: "cannot read an archive (truncated or corrupt)" },
  NIFTY130: { severity: "error", section: "fetch", title: "invalid or reserved store namespace or key" },
  NIFTY131: { severity: "error", section: "fetch", title: "invalid gc age" },
  NIFTY132: { severity: "error", section: "fetch", title: "cannot read a file to import or extract" },

  // Checks: src/check/ and the instructions' checks, before every build.
  NIFTY010: { severity: "error", section: "checks", title: "unknown instruction X" },
  NIFTY011: { severity: "error", section: "checks", title: "X does not take a heredoc" },
  NIFTY012: {
    severity: "warning",
    section: "checks",
    title: "--arg N is given but the recipe declares no ARG N",
  },
  NIFTY013: { severity: "error", section: "checks", title: "KEYGEN at boot needs dropbearkey in the image" },
  NIFTY014: { severity: "warning", section: "checks", title: "root can log in over SSH with a password" },
  NIFTY015: { severity: "error", section: "checks", title: "PACKAGE cannot install n:a: why" },
  NIFTY018: {
    severity: "warning",
    section: "checks",
    title: "MODE m makes the copied directories untraversable, even for their owner",
  },
  NIFTY020: { severity: "error", section: "checks", title: "ARG N has no value" },
  NIFTY021: { severity: "error", section: "checks", title: "undefined variable N" },
  NIFTY022: {
    severity: "error",
    section: "checks",
    title: '"v" holds the control character U+XXXX (from where)',
  },
  NIFTY023: {
    severity: "error",
    section: "checks",
    title: "p cannot hold c, which separates the fields of f",
  },
  NIFTY024: {
    severity: "error",
    section: "checks",
    title: "substitution makes this word / this heredoc / the recipe's values longer than n characters",
  },
  NIFTY025: { severity: "error", section: "checks", title: "binding p gives the container the host's d" },
  NIFTY027: { severity: "error", section: "checks", title: "unknown platform P" },
  NIFTY030: { severity: "error", section: "checks", title: 'unexpected "w" after the options of X' },
  NIFTY031: { severity: "error", section: "checks", title: "OPTION is given twice" },
  NIFTY032: { severity: "error", section: "checks", title: "OPTION needs a value" },
  NIFTY033: { severity: "error", section: "checks", title: 'bad mode "m"' },
  NIFTY034: { severity: "error", section: "checks", title: 'bad UID/GID "n"' },
  NIFTY035: { severity: "error", section: "checks", title: 'bad owner "o"' },
  NIFTY036: { severity: "error", section: "checks", title: "unknown user u" },
  NIFTY037: { severity: "error", section: "checks", title: "unknown group g" },
  NIFTY038: {
    severity: "error",
    section: "checks",
    title: '"p" is not an absolute path inside the image / path "p" contains a control character',
  },
  NIFTY039: { severity: "error", section: "checks", title: '"p" climbs out of the image with ".."' },
  NIFTY040: { severity: "error", section: "checks", title: "X needs …" },
  NIFTY041: { severity: "error", section: "checks", title: 'unexpected "w": X takes n arguments' },
  NIFTY042: { severity: "error", section: "checks", title: 'bad variable name "n"' },
  NIFTY043: { severity: "error", section: "checks", title: 'ENV needs NAME=value, got "w"' },
  NIFTY044: { severity: "error", section: "checks", title: 'bad FETCH name "n"' },
  NIFTY045: {
    severity: "error",
    section: "checks",
    title: "FETCH needs the sha256 digest of what it downloads",
  },
  NIFTY046: { severity: "error", section: "checks", title: 'malformed digest "d"' },
  NIFTY047: { severity: "error", section: "checks", title: "sources go before the digest" },
  NIFTY048: {
    severity: "error",
    section: "checks",
    title: "FETCH needs at least one source before the digest",
  },
  NIFTY049: {
    severity: "error",
    section: "checks",
    title: "unsupported source / invalid URL / invalid path in source",
  },
  NIFTY050: { severity: "error", section: "checks", title: "FETCH needs TO <path> to place the file" },
  NIFTY051: {
    severity: "error",
    section: "checks",
    title: 'archive member "m" is absolute or climbs with ".."',
  },
  NIFTY052: { severity: "error", section: "checks", title: "(what clashes)" },
  NIFTY053: {
    severity: "error",
    section: "checks",
    title: "LINK names p, which no earlier instruction provides",
  },
  NIFTY054: { severity: "error", section: "checks", title: 'bad link name "n"' },
  NIFTY055: { severity: "error", section: "checks", title: "empty or invalid link target" },
  NIFTY056: {
    severity: "error",
    section: "checks",
    title: "FILE needs its content as a heredoc / takes exactly one heredoc",
  },
  NIFTY057: {
    severity: "error",
    section: "checks",
    title: 'COPY source "s" is outside the recipe\'s directory',
  },
  NIFTY058: { severity: "error", section: "checks", title: 'COPY source "s" does not exist' },
  NIFTY059: {
    severity: "error",
    section: "checks",
    title: 'SERVICE takes enable or mask / needs at least one unit / bad unit name "u"',
  },
  NIFTY060: { severity: "error", section: "checks", title: "ARCHIVE needs a name and at least one suite" },
  NIFTY061: { severity: "error", section: "checks", title: 'bad archive name "n"' },
  NIFTY062: { severity: "error", section: "checks", title: 'bad suite or component name "n"' },
  NIFTY063: { severity: "error", section: "checks", title: 'bad archive URL "u"' },
  NIFTY064: { severity: "error", section: "checks", title: "keyring f is not a file" },
  NIFTY065: { severity: "error", section: "checks", title: "archive n is declared twice" },
  NIFTY066: { severity: "error", section: "checks", title: "PACKAGE needs at least one package name" },
  NIFTY067: { severity: "error", section: "checks", title: 'bad package request "r": why' },
  NIFTY068: { severity: "error", section: "checks", title: "PACKAGE needs an ARCHIVE line before it" },
  NIFTY069: {
    severity: "error",
    section: "checks",
    title: "suite S is listed twice / component C is listed twice",
  },
  NIFTY070: { severity: "error", section: "checks", title: 'bad group name "n"' },
  NIFTY071: { severity: "error", section: "checks", title: "group g is declared twice" },
  NIFTY072: { severity: "error", section: "checks", title: "GID n is already group g's" },
  NIFTY073: { severity: "error", section: "checks", title: 'bad user name "n"' },
  NIFTY074: { severity: "error", section: "checks", title: "user u is declared twice" },
  NIFTY075: { severity: "error", section: "checks", title: "UID n is already user u's" },
  NIFTY076: {
    severity: "error",
    section: "checks",
    title: "SHELL p is not provided by any earlier instruction",
  },
  NIFTY077: { severity: "error", section: "checks", title: "no group has GID n" },
  NIFTY078: { severity: "error", section: "checks", title: "group g does not exist" },
  NIFTY079: { severity: "error", section: "checks", title: "PASSWORD and LOCKED exclude each other" },
  NIFTY080: { severity: "error", section: "checks", title: "PASSWORD takes a build secret, secret:<id>" },
  NIFTY081: { severity: "error", section: "checks", title: "a crypt hash cannot contain ':' or a newline" },
  NIFTY082: {
    severity: "error",
    section: "checks",
    title: 'unknown SSH server "s" / KEYGEN needs the server',
  },
  NIFTY083: { severity: "error", section: "checks", title: "DSS host keys are refused" },
  NIFTY084: { severity: "error", section: "checks", title: 'unknown key type "t"' },
  NIFTY085: { severity: "error", section: "checks", title: 'AT takes boot or build, not "w"' },
  NIFTY086: { severity: "error", section: "checks", title: 'unknown inittab action "a"' },
  NIFTY087: {
    severity: "error",
    section: "checks",
    title: "TTY needs a terminal name such as console or tty1",
  },
  NIFTY088: { severity: "error", section: "checks", title: "BusyBox init cuts an inittab line at #" },
  NIFTY089: { severity: "error", section: "checks", title: "p is not provided by any earlier instruction" },
  NIFTY090: {
    severity: "warning",
    section: "checks",
    title: "empty password: anyone can log in as this user without one",
  },
  NIFTY091: { severity: "warning", section: "checks", title: "this does not look like a crypt hash" },
  NIFTY092: {
    severity: "warning",
    section: "checks",
    title: "host keys made at build time are shared by every container made from this image",
  },
  NIFTY093: { severity: "error", section: "checks", title: 'unknown signal "s"' },
  NIFTY094: { severity: "error", section: "checks", title: 'bad host name "h": why' },
  NIFTY095: { severity: "error", section: "checks", title: 'bad port "p"' },
  NIFTY096: { severity: "error", section: "checks", title: 'bad bind "b"' },
  NIFTY097: { severity: "warning", section: "checks", title: "the container can write to the host's p" },
  NIFTY098: { severity: "error", section: "checks", title: 'LABEL needs key=value, got "w"' },
  NIFTY099: { severity: "error", section: "checks", title: "unit u is not in the image" },
  NIFTY303: { severity: "error", section: "checks", title: "SERVICE disable cannot remove links" },
  NIFTY304: { severity: "error", section: "checks", title: "root's UID/GID is always 0, not n" },
  NIFTY305: { severity: "error", section: "checks", title: "COPY source is empty" },
  NIFTY306: {
    severity: "warning",
    section: "checks",
    title: "SYMLINK replaces the file p, which an earlier line put there, with a link to t",
  },
  NIFTY307: { severity: "warning", section: "checks", title: "this K is replaced by the one on line n" },
  NIFTY308: {
    severity: "warning",
    section: "checks",
    title:
      "p is taken for one of BusyBox's applets (LINK … APPLETS), but Debian's BusyBox has none of that name",
  },

  // Build: the pipeline and the instructions' effects, and niftyc install's input.
  NIFTY200: { severity: "error", section: "build", title: "p is not a file in the image" },
  NIFTY201: { severity: "error", section: "build", title: "COPY source s disappeared" },
  NIFTY202: {
    severity: "error",
    section: "build",
    title: "COPY source s leads outside the recipe's directory through a symbolic link",
  },
  NIFTY203: {
    severity: "error",
    section: "build",
    title: "COPY cannot copy p: not a file, directory or symbolic link",
  },
  NIFTY204: { severity: "error", section: "build", title: "(what clashes in the image tree)" },
  NIFTY205: { severity: "error", section: "build", title: "this file is too small to be a multicall binary" },
  NIFTY206: { severity: "error", section: "build", title: "found no applet list in this binary" },
  NIFTY207: { severity: "warning", section: "build", title: "not reproducible: reason" },
  NIFTY208: { severity: "error", section: "build", title: "recipe p does not exist / cannot read recipe p" },
  NIFTY209: {
    severity: "error",
    section: "build",
    title: "d is a directory with no recipe in it / d holds n recipes",
  },
  NIFTY210: { severity: "error", section: "build", title: 'the password secret "id" was not given' },
  NIFTY211: {
    severity: "error",
    section: "build",
    title: 'the secret "id" has n bytes, fewer than it needs',
  },
  NIFTY212: {
    severity: "error",
    section: "build",
    title: "--secret id: cannot read f / environment variable v is not set",
  },
  NIFTY213: { severity: "error", section: "build", title: 'no password was given for the secret "id"' },
  NIFTY214: {
    severity: "error",
    section: "build",
    title: 'the passwords typed for the secret "id" did not match in 3 tries',
  },
  NIFTY215: {
    severity: "error",
    section: "build",
    title: "p is a program for m, not for this image's platform",
  },
  NIFTY216: { severity: "error", section: "build", title: "COPY source s cannot be read: permission denied" },
  NIFTY217: { severity: "error", section: "build", title: "the output directory d cannot be replaced: why" },
  NIFTY220: {
    severity: "error",
    section: "build",
    title: "p needs its program loader l, which is not in the image",
  },
  NIFTY221: { severity: "error", section: "build", title: "p needs lib, which is not in the image" },
  NIFTY222: { severity: "error", section: "build", title: "init cannot start p: it is not in the image" },
  NIFTY223: { severity: "error", section: "build", title: "u's shell p is not in the image" },
  NIFTY224: { severity: "warning", section: "build", title: "the image has no /etc/os-release" },
  NIFTY225: { severity: "warning", section: "build", title: "the image has no /sbin/init" },
  NIFTY226: {
    severity: "warning",
    section: "build",
    title: "systemd is in the image, but /sbin/init leads to p",
  },
  NIFTY227: { severity: "warning", section: "build", title: "/etc/machine-id is not empty" },
  NIFTY228: {
    severity: "warning",
    section: "build",
    title: "p is under /run or /tmp, which a systemd image gets a tmpfs over",
  },
  NIFTY229: { severity: "error", section: "build", title: "cannot enable/mask u: why" },
  NIFTY270: {
    severity: "error",
    section: "build",
    title: "`the recipe F is D, but the provenance names D` / `the lock F is D, but the provenance names D`",
  },
  NIFTY230: { severity: "error", section: "build", title: "doing failed: (the system's message)" },
  NIFTY231: { severity: "error", section: "build", title: "the store's copy of d is damaged: detail" },
  NIFTY232: {
    severity: "warning",
    section: "build",
    title: "the image has n setuid or setgid files, which run with their owner's rights for any user: …",
  },
  NIFTY233: {
    severity: "error",
    section: "build",
    title: "p is setuid and every user may write it (mode m)",
  },
  NIFTY234: {
    severity: "warning",
    section: "build",
    title:
      "SERVICE v does nothing here: the image has no systemd / u is enabled for t, which is not in the image",
  },
  NIFTY255: { severity: "error", section: "build", title: "FETCH n has no source and digest for platform P" },
  NIFTY256: { severity: "error", section: "build", title: "the recipe does not support platform P" },
  NIFTY250: { severity: "error", section: "build", title: "p: too many levels of symbolic links in l" },
  NIFTY300: {
    severity: "error",
    section: "build",
    title:
      "d is not a build directory (no readable build.json, no name, digest or config in it, a name no machine can take, or no rootfs.tar)",
  },
  NIFTY301: { severity: "error", section: "build", title: "d has no name.nspawn" },
  NIFTY302: {
    severity: "error",
    section: "build",
    title: "the root directory … does not exist or is not a directory",
  },

  // Instances: niftyc instances.
  NIFTY600: { severity: "error", section: "packages", title: "no package n in the suites" },
  NIFTY601: { severity: "error", section: "packages", title: "(the relation) cannot be satisfied" },
  NIFTY602: { severity: "error", section: "packages", title: "conflicting constraints on n" },
  NIFTY603: { severity: "error", section: "packages", title: "--locked, but the lock …" },
  NIFTY604: { severity: "error", section: "packages", title: "(what is wrong at a line of the lock)" },
  NIFTY605: { severity: "error", section: "packages", title: "p is in none of packages" },
  NIFTY606: {
    severity: "error",
    section: "packages",
    title: "no lock was resolved for this recipe's PACKAGE lines",
  },
  NIFTY607: { severity: "error", section: "packages", title: "no mirror for the archive a, to download p" },
  NIFTY608: {
    severity: "error",
    section: "packages",
    title: "r has no PACKAGE lines: there is nothing to lock",
  },
  NIFTY609: { severity: "error", section: "packages", title: "p is not in the lock" },
  NIFTY610: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is not a single clear-signed message / has no signature gpgv accepts",
  },
  NIFTY611: {
    severity: "error",
    section: "packages",
    title: "bad signature on the InRelease of S (URL): key K (uid) did not sign this text",
  },
  NIFTY612: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is signed by key K, which is not in the keyring F",
  },
  NIFTY613: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is signed by an expired key: K / has an expired signature",
  },
  NIFTY614: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is signed by a revoked key: K",
  },
  NIFTY615: {
    severity: "error",
    section: "packages",
    title: "cannot check the signature on the InRelease of S (URL) by key K (gpgv error code c)",
  },
  NIFTY616: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is signed with the weak hash SHA-1 by K",
  },
  NIFTY617: {
    severity: "error",
    section: "packages",
    title: "cannot verify the InRelease of S: cannot run gpgv / the keyring F is not readable",
  },
  NIFTY618: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) expired: it was valid until T, and it is now N",
  },
  NIFTY619: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is dated T, in the future (it is now N)",
  },
  NIFTY620: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is not a valid Release file: why",
  },
  NIFTY621: { severity: "error", section: "packages", title: "the InRelease of S (URL) is for C / X, not S" },
  NIFTY622: {
    severity: "error",
    section: "packages",
    title: "S (URL) has no component C / no architecture A / lists no Packages index for C/binary-A",
  },
  NIFTY623: {
    severity: "error",
    section: "packages",
    title:
      "F of S does not match the SHA256 its signed InRelease gives: expected D (one line per URL with what it served)",
  },
  NIFTY624: {
    severity: "error",
    section: "packages",
    title: "F, line n: why / package P has an unsafe pool path",
  },
  NIFTY625: {
    severity: "error",
    section: "packages",
    title:
      "package P V (A, archive suite): the downloaded .deb does not match the SHA256 its index gives: expected D (one line per URL)",
  },
  NIFTY626: { severity: "error", section: "packages", title: "no mirror for the archive X (suite S)" },
  NIFTY627: { severity: "error", section: "packages", title: "cannot install P: why" },
  NIFTY628: { severity: "error", section: "packages", title: "the package P:A is installed twice" },
  NIFTY629: {
    severity: "error",
    section: "packages",
    title: "the .deb this lock stanza pins is P V (A), not what the stanza says",
  },
  NIFTY630: {
    severity: "error",
    section: "packages",
    title: "P V (A) is needed by no PACKAGE line / the locked packages do not meet the requests",
  },
  NIFTY631: {
    severity: "error",
    section: "packages",
    title: "P V (A) is not in the signed index of S the lock was resolved against / its F differs",
  },
  NIFTY632: {
    severity: "error",
    section: "packages",
    title: "the InRelease of S (URL) is dated D, older than the D' the lock was resolved against",
  },
  NIFTY633: {
    severity: "error",
    section: "packages",
    title: "the lock says the InRelease of S is dated D, but the signed InRelease it names is dated D'",
  },
  NIFTY634: {
    severity: "warning",
    section: "packages",
    title: "--mirror N=URL is given but the recipe names no archive N",
  },
  NIFTY650: {
    severity: "error",
    section: "packages",
    title: "the stored parse of a Packages index is damaged (row n)",
  },
  NIFTY640: {
    severity: "error",
    section: "packages",
    title: "P has another version on each platform: V on A; V' on B",
  },
  NIFTY641: {
    severity: "error",
    section: "packages",
    title: "--locked, but the lock has no section for platform P",
  },
  NIFTY642: {
    severity: "error",
    section: "packages",
    title: "PACKAGE n:a cannot go in the P image (arch)",
  },
  NIFTY400: {
    severity: "error",
    section: "instances",
    title: "`--count must be a whole number from 1 to 100000`",
  },
  NIFTY401: { severity: "error", section: "instances", title: "`--first must be a whole number from 0 up`" },
  NIFTY402: { severity: "error", section: "instances", title: '`--set N: cannot read "…": … at column c`' },
  NIFTY403: { severity: "error", section: "instances", title: "`--set N=…: unknown name x at column c`" },
  NIFTY404: { severity: "error", section: "instances", title: "`--set N: the recipe has no ENV N`" },
  NIFTY405: { severity: "error", section: "instances", title: "`--set N is given twice`" },
  NIFTY406: {
    severity: "error",
    section: "instances",
    title: '`--set N (instance i): "…" divides by zero` / `overflows`',
  },
  NIFTY407: {
    severity: "error",
    section: "instances",
    title: "`PORT=65536 for instance i is not a port (1–65535)`",
  },
  NIFTY408: { severity: "error", section: "instances", title: "`instances a and b would both use port p`" },
  NIFTY409: { severity: "error", section: "instances", title: '`machine name "…" is not valid`' },
  NIFTY410: {
    severity: "error",
    section: "instances",
    title: "`the instances directory … has characters unit files would change`",
  },
  NIFTY420: {
    severity: "error",
    section: "instances",
    title:
      "`… is not a build directory` / `build.json has no name, digest or config` / `build.json names the image n, which cannot name a machine` / `has no rootfs.tar` / `does not exist`",
  },
  NIFTY421: { severity: "error", section: "instances", title: "`<dir>/rootfs holds <name> <digest>, not …`" },
  NIFTY422: {
    severity: "error",
    section: "instances",
    title: "`… exists and is not an instances directory` / `instances.json cannot be read`",
  },
  NIFTY423: {
    severity: "error",
    section: "instances",
    title: "`rootfs.tar is <digest>, but the build recorded <digest>`",
  },
  NIFTY424: {
    severity: "error",
    section: "instances",
    title: "`<dir>/rootfs is no longer the image it was unpacked from: … changed`",
  },
  NIFTY430: {
    severity: "error",
    section: "instances",
    title: "`on-demand instances listen on a host port each` / `… need a port to listen on`",
  },
  NIFTY431: {
    severity: "error",
    section: "instances",
    title: "`on-demand instances have one listener each, but --set gives …`",
  },
  NIFTY432: {
    severity: "error",
    section: "instances",
    title: "`the recipe's PORT=… is not a port (1–65535): on-demand instances listen on it inside`",
  },
  NIFTY433: {
    severity: "error",
    section: "instances",
    title: "`--idle-stop takes a systemd time span` / `--idle-stop needs --on-demand`",
  },
  NIFTY434: {
    severity: "error",
    section: "instances",
    title: "`instances status needs systemctl` / `systemctl list-units failed`",
  },
  NIFTY435: {
    severity: "error",
    section: "instances",
    title: "`--set: the values of n instances come to over 64 MiB characters`",
  },
  NIFTY436: {
    severity: "error",
    section: "instances",
    title: "`the instances directory … leaves the root …`",
  },
  NIFTY440: {
    severity: "error",
    section: "instances",
    title: "`N machines still run from <dir>/rootfs after S s`",
  },
  NIFTY441: {
    severity: "error",
    section: "instances",
    title: "`niftyc forward needs one listening socket from systemd`",
  },
  NIFTY442: {
    severity: "error",
    section: "instances",
    title: "`--node … must be an absolute path` / `--node and --niftyc need --on-demand`",
  },

  // Outputs: the writers of run configs and image formats, niftyc install.
  NIFTY500: {
    severity: "error",
    section: "outputs",
    title:
      "`… contains a newline or NUL byte` / `… cannot be written to a Dockerfile` / `docker -v cannot take a path with ':'`",
  },
  NIFTY501: { severity: "error", section: "outputs", title: '`"<name>" is not a valid machine name`' },
  NIFTY502: {
    severity: "error",
    section: "outputs",
    title: "`machines directory must be absolute` / `root directory …` / `environment file …`",
  },
  NIFTY503: {
    severity: "error",
    section: "outputs",
    title: "`ENV name … cannot be passed through a unit file`",
  },
  NIFTY504: {
    severity: "error",
    section: "outputs",
    title: "`invalid repository tag …` / `invalid image reference name …`",
  },
  NIFTY505: {
    severity: "error",
    section: "outputs",
    title: "`layer … is <digest>, but the build recorded <digest>`",
  },
  NIFTY506: { severity: "error", section: "outputs", title: "`the image has no command to run as PID 1`" },
  NIFTY510: { severity: "error", section: "outputs", title: "`refusing tar entry …`" },
  NIFTY511: { severity: "error", section: "outputs", title: "`tar entry … has unsupported type …`" },
  NIFTY520: { severity: "error", section: "outputs", title: "`… is not a valid machine name`" },
  NIFTY521: { severity: "error", section: "outputs", title: "`machine … already exists at …`" },
  NIFTY522: {
    severity: "error",
    section: "outputs",
    title: "`… belongs to uid …` / `… is not a directory`: the tree unpacked below it would not be private",
  },

  // Registries: niftyc push and the OCI distribution client (src/registry/).
  NIFTY700: {
    severity: "error",
    section: "registries",
    title: '`"…" is not an image reference: why` / `… names the digest D, but the image is D`',
  },
  NIFTY701: { severity: "error", section: "registries", title: "`pushing … failed after n attempts: why`" },
  NIFTY702: {
    severity: "error",
    section: "registries",
    title: '`R refused METHOD PATH as "user": HTTP 401 …` / `the token server … refused a token`',
  },
  NIFTY703: { severity: "error", section: "registries", title: "`R answered METHOD PATH with HTTP n: …`" },
  NIFTY704: {
    severity: "error",
    section: "registries",
    title: "`… is not an OCI image layout (no readable index.json)`",
  },
  NIFTY705: {
    severity: "error",
    section: "registries",
    title:
      "`--insecure sends everything in plain http, which niftyc allows only to a registry on this machine, not R`",
  },
  NIFTY706: {
    severity: "error",
    section: "registries",
    title:
      "`cannot read the credentials file F: why` / `the credential helper … gave no credentials` / `--password-stdin …`",
  },
  NIFTY707: {
    severity: "error",
    section: "registries",
    title: "`TLS with R failed: CODE` / `cannot read the CA file F`",
  },
  NIFTY708: { severity: "error", section: "registries", title: "`the OCI layout … is damaged: why`" },
  NIFTY709: {
    severity: "error",
    section: "registries",
    title: "`… is not a niftyc cache (its artifactType is …)`",
  },
  NIFTY720: {
    severity: "warning",
    section: "registries",
    title: "`the cache … cannot be used: why; building without it`",
  },
  NIFTY721: {
    severity: "warning",
    section: "registries",
    title:
      "`the cache … is used in part: n blobs it lists are not in the registry` / `… do not match" +
      " their digest or size`",
  },
  NIFTY722: {
    severity: "warning",
    section: "registries",
    title: "`… holds step records, which are not trusted: every step runs here, from the cache's blobs`",
  },
  NIFTY730: {
    severity: "error",
    section: "registries",
    title: "`the signing key F may be read by other users (mode m)`",
  },
  NIFTY731: {
    severity: "error",
    section: "registries",
    title: "`F is not a usable signing key: why` / `F is not a usable public key: why`",
  },
  NIFTY732: {
    severity: "error",
    section: "registries",
    title:
      "`the passphrase for the signing key F is wrong` / `the signing key F is encrypted and no passphrase" +
      " was given`",
  },
  NIFTY733: {
    severity: "error",
    section: "registries",
    title: "`the signature tag T of R is not a cosign signature: why`",
  },
  NIFTY734: { severity: "error", section: "registries", title: "`R@D has no signature by the key F: why`" },
  NIFTY735: {
    severity: "error",
    section: "registries",
    title: "`the provenance … cannot be read: why` / `… has no provenance`",
  },
  NIFTY710: { severity: "error", section: "registries", title: "`R sent METHOD PATH to U: why`" },
  NIFTY711: {
    severity: "error",
    section: "registries",
    title: "`R's answer to METHOD PATH is too large: …`",
  },
  NIFTY712: {
    severity: "error",
    section: "registries",
    title: "`R's answer to METHOD PATH cannot be read: why`",
  },
  NIFTY713: { severity: "error", section: "registries", title: "`R sent METHOD PATH too slowly: …`" },
  NIFTY714: {
    severity: "error",
    section: "registries",
    title: "`R/REPO:TAG is not in the registry: it has no manifest of that tag` (or digest)",
  },

  // Run: niftyc run (src/run/).
  NIFTY750: {
    severity: "error",
    section: "run",
    title: "`rootfs.tar is <digest>, but the build recorded <digest>`",
  },
  NIFTY751: {
    severity: "error",
    section: "run",
    title: "`unpacking … in a user namespace failed` / `copying … for this run failed`",
  },
  NIFTY752: {
    severity: "error",
    section: "run",
    title: "`a run named N is already running` / `is starting`",
  },
  NIFTY753: { severity: "error", section: "run", title: '`"…" is not a valid run name`' },
  NIFTY754: {
    severity: "error",
    section: "run",
    title: "`the runs directory … belongs to uid U, not to this user`",
  },
  NIFTY755: { severity: "error", section: "run", title: "`no run named N in …`" },
  NIFTY756: {
    severity: "error",
    section: "run",
    title: "`no engine to run with: E needs T, not found on PATH` / `E needs root` / `unknown engine`",
  },
  NIFTY757: {
    severity: "error",
    section: "run",
    title: "`N boots systemd, which cannot run unprivileged here: …`",
  },
  NIFTY758: {
    severity: "error",
    section: "run",
    title:
      "`--publish: E has no network of its own` / `--publish: rootless podman cannot forward ports here: …`",
  },
  NIFTY759: {
    severity: "error",
    section: "run",
    title:
      "`… does not exist` / `… is not a build directory` / `build.json has no name, digest or config` / `build.json names the image n, which cannot name a machine`",
  },
  NIFTY760: {
    severity: "error",
    section: "run",
    title: "`BIND p (r on this host) would give the container the host's d`",
  },
  NIFTY761: {
    severity: "error",
    section: "run",
    title: "`N did not start: E ended with status S before the container was up`",
  },

  // Editor: niftyc lsp (src/lsp/).
  NIFTY790: { severity: "error", section: "editor", title: "niftyc could not check this document: why" },

  // Hostile input and limits.
  NIFTY800: { severity: "error", section: "limits", title: "COPY source s changed while it was read" },
  NIFTY801: { severity: "error", section: "limits", title: "recipe p is not valid UTF-8 (line n, byte b)" },
  NIFTY802: {
    severity: "error",
    section: "limits",
    title: "the recipe has n characters, more than the limit of m",
  },
  NIFTY803: {
    severity: "error",
    section: "limits",
    title: "tar entry e would replace the directory of the same name / is too long to unpack",
  },
  NIFTY804: {
    severity: "error",
    section: "limits",
    title: "archive a has more entries / a longer entry name / a larger entry than the limit",
  },
  NIFTY805: { severity: "error", section: "limits", title: "a is a malformed ar archive: why" },
  NIFTY806: { severity: "error", section: "limits", title: "u sent more than the download limit of n" },
  NIFTY807: {
    severity: "error",
    section: "limits",
    title: 'the secret "id" has n bytes, more than the m it may have',
  },
  NIFTY808: { severity: "error", section: "limits", title: "archive a has two entries named e" },
  NIFTY809: {
    severity: "error",
    section: "limits",
    title: 'the recipe\'s name "n", from its file name, cannot name what',
  },
  NIFTY815: {
    severity: "error",
    section: "limits",
    title: "n more errors (and m more warnings) not shown: at most 100 diagnostics are shown per recipe",
  },
  NIFTY816: {
    severity: "warning",
    section: "limits",
    title: "m more warnings not shown: at most 100 diagnostics are shown per recipe",
  },
  NIFTY810: {
    severity: "error",
    section: "limits",
    title: "the InRelease of S (URL) is larger than the limit of n",
  },
  NIFTY811: {
    severity: "error",
    section: "limits",
    title: "F of S is larger than the limit of n / has a line longer than m",
  },
} as const satisfies Record<`NIFTY${number}`, CodeEntry>;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

type Entries = typeof DIAGNOSTIC_CODES;
type CodesWhere<Shape> = { [C in DiagnosticCode]: Entries[C] extends Shape ? C : never }[DiagnosticCode];

/** Codes raised as errors: what NiftyError, StepError and Reporter.error take. */
export type ErrorCode = CodesWhere<{ severity: "error" }>;
/** Codes raised as warnings: what Reporter.warn and BuildContext.warn take. */
export type WarningCode = CodesWhere<{ severity: "warning" }>;
/** The parser's codes (grammar/codes.ts names them). */
export type SyntaxDiagnosticCode = CodesWhere<{ section: "syntax" }>;

export const ALL_CODES = Object.keys(DIAGNOSTIC_CODES) as DiagnosticCode[];

/** Where a code is documented: docs/diagnostics.md and the anchor of its section. */
export function docAnchor(code: DiagnosticCode): string {
  return `docs/diagnostics.md#${SECTIONS[DIAGNOSTIC_CODES[code].section].anchor}`;
}
