// USER <name> [UID <n>] [GID <n>] [HOME <path>] [SHELL <path>] [GROUPS <g>,...]
//      [PASSWORD secret:<id> | PASSWORD-HASH <crypt> | LOCKED]
import type { InstructionSpec, Typed, CheckModel } from "./spec.ts";
import { expectCount, readId, readImagePath, readOptions, refuseRootId } from "./args.ts";
import { ACCOUNT_NAME, nextFreeId } from "./group.ts";
import { addMember, addShell, ensureRoot, hasEntry, shadowLine, shadowOwner, upsert } from "./accounts.ts";
import { editText } from "./files.ts";
import type { BuildContext } from "./context.ts";
import { bytesDigest } from "../core/hash.ts";
import { suggest } from "../diagnostics/suggest.ts";
import type { Value } from "./scope.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import type { Span } from "../core/source.ts";
import { DEBIAN_BUSYBOX_APPLETS } from "../image/busybox-applets.ts";

/** A secret's `span` is its word (`PASSWORD secret:<id>`): a missing secret is shown there; out of cache keys as every span. */
export type Password =
  | { kind: "secret"; id: string; span?: Span }
  | { kind: "hash"; hash: string }
  | { kind: "locked" };

export interface UserInstruction extends Typed {
  kind: "USER";
  name: string;
  uid: number;
  gid: number;
  /** A private group named like the user, created with it. */
  privateGroup: boolean;
  home: string;
  shell: string;
  groups: string[];
  password: Password;
}

const SECRET_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** SHA-512 crypt hashes the password once per byte of it: 4 KiB keeps that to milliseconds. */
const MAX_PASSWORD_BYTES = 4096;

const USER_OPTIONS = {
  UID: "value",
  GID: "value",
  HOME: "value",
  SHELL: "value",
  GROUPS: "value",
  PASSWORD: "value",
  "PASSWORD-HASH": "value",
  LOCKED: "flag",
} as const;

export const user: InstructionSpec<UserInstruction> = {
  keyword: "USER",
  summary:
    "Add a user to /etc/passwd and /etc/shadow, with a home directory it owns and its shell in /etc/shells. Without GID the user gets a private group of its own name. PASSWORD secret:<id> takes the password from --secret <id>=FILE and stores only a SHA-512 crypt hash; without a password option the account is locked.",
  names: { declares: "user", uses: { GROUPS: "groups" } },
  syntax: [
    "USER <name> [UID <n>] [GID <n>] [HOME <path>] [SHELL <path>] [GROUPS <group>,...] [PASSWORD secret:<id> | PASSWORD-HASH <crypt> | LOCKED]",
  ],
  example: "USER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password",
  check(ins, report, model) {
    const opts = readOptions(ins, report, USER_OPTIONS);
    if (!expectCount(ins, opts.positional, report, 1, 1, this.syntax[0]!)) return undefined;
    const nameWord = opts.positional[0]!;
    const name = nameWord.text;
    if (!checkUserName(nameWord, report, model)) return undefined;
    const uid = readUserId(opts.values.get("UID"), nameWord, report, model);
    if (uid === undefined) return undefined;
    const gid = readGroupId(opts.values.get("GID"), name, uid, report, model);
    if (gid === undefined) return undefined;
    const groups = readGroups(opts.values.get("GROUPS"), report, model);
    const home = readHome(opts.values.get("HOME"), name, report);
    const shellWord = opts.values.get("SHELL");
    const shell = shellWord ? readImagePath(shellWord, report) : "/bin/sh";
    const password = readPassword(opts, report);
    if (groups === undefined || home === undefined || shell === undefined || password === undefined)
      return undefined;
    if (!checkPasswdFields(opts, home, shell, report)) return undefined;
    if (shellWord && !provides(model, shell)) {
      report.error(
        shellWord.span,
        "NIFTY076",
        `SHELL ${shell} is not provided by any earlier instruction`,
        "FETCH, COPY or LINK the shell before the USER line",
      );
    } else if (shellWord) warnAppletGuess(model, [shell], shellWord.span, report);
    const privateGroup = gid.private;
    declareUser(model, nameWord, uid, gid, password);
    return {
      kind: "USER",
      span: ins.span,
      name,
      uid,
      gid: gid.id,
      privateGroup,
      home,
      shell,
      groups,
      password,
    };
  },
  secrets(t) {
    return t.password.kind === "secret"
      ? [
          {
            id: t.password.id,
            span: t.password.span ?? t.span,
            minBytes: 1,
            maxBytes: MAX_PASSWORD_BYTES,
            hint: "an empty password would let anyone log in; put the password in the file, or use LOCKED or PASSWORD-HASH",
          },
        ]
      : [];
  },
  verify(t, tree, report) {
    if (tree.lookup(t.shell)?.node.type !== "file") {
      report.error(
        t.span,
        "NIFTY223",
        `${t.name}'s shell ${t.shell} is not in the image`,
        "LINK or FETCH the shell, or give SHELL another path",
      );
    }
  },
  async keyInputs(t, context) {
    // The crypt hash is what lands in the image anyway; the secret itself never joins a key.
    // An unchanged secret file gives back the digest recorded beside the output, without the crypt.
    const password = t.password;
    return password.kind === "secret"
      ? [
          await context.secretInput(`password-key:${t.name}`, password.id, async () =>
            bytesDigest(await passwordHash(t, context)),
          ),
        ]
      : [];
  },
  async apply(t, context) {
    await ensureRoot(context);
    const hash = await passwordHash(t, context);
    if (t.privateGroup) {
      await editText(
        context,
        "/etc/group",
        (text) => (hasEntry(text, t.name) ? text : upsert(text, t.name, `${t.name}:x:${t.gid}:`)),
        0o644,
      );
    }
    for (const g of t.groups)
      await editText(context, "/etc/group", (text) => addMember(text, g, t.name), 0o644);
    await editText(
      context,
      "/etc/passwd",
      (text) => upsert(text, t.name, `${t.name}:x:${t.uid}:${t.gid}:${t.name}:${t.home}:${t.shell}`),
      0o644,
    );
    const shadow = await shadowOwner(context);
    await editText(
      context,
      "/etc/shadow",
      (text) => upsert(text, t.name, shadowLine(t.name, hash)),
      shadow.mode,
      { uid: 0, gid: shadow.gid },
    );
    await addShell(context, t.shell);
    const home = context.tree.mkdirp(t.home);
    if (home !== "/")
      context.tree.set(home, { type: "dir", mode: t.uid === 0 ? 0o700 : 0o755, uid: t.uid, gid: t.gid });
  },
};

/** The crypt hash of the password: made once per build (5000 rounds), shared by the step's key and its effect. */
async function passwordHash(t: UserInstruction, context: BuildContext): Promise<string> {
  const password = t.password;
  if (password.kind === "locked") return "!";
  if (password.kind === "hash") return password.hash;
  return context.memo(`password-hash:${t.name}:${password.id}`, async () => {
    const secret = context.secret(password.id, t.span);
    // Loaded only when a crypt is made: a rebuild with an unchanged secret file needs none.
    const { deriveSalt, sha512Crypt } = await import("../image/sha512-crypt.ts");
    return sha512Crypt(secret, deriveSalt(t.name, secret));
  });
}

/** A valid account name, not declared before (root's implicit account may be declared once). */
function checkUserName(nameWord: Value, report: Reporter, model: CheckModel): boolean {
  const name = nameWord.text;
  if (!ACCOUNT_NAME.test(name)) {
    report.error(
      nameWord.span,
      "NIFTY073",
      `bad user name ${JSON.stringify(name)}`,
      "lower-case letters, digits, _ and -, starting with a letter or _, at most 32",
    );
    return false;
  }
  const previous = model.users.get(name);
  if (previous !== undefined && !previous.implicit) {
    report.error(
      nameWord.span,
      "NIFTY074",
      `user ${name} is declared twice`,
      `first declared on line ${previous.span.start.line}`,
    );
    return false;
  }
  return true;
}

/** UID as given, else root's 0 or the next free one; no other user's. */
function readUserId(
  uidWord: Value | undefined,
  nameWord: Value,
  report: Reporter,
  model: CheckModel,
): number | undefined {
  const name = nameWord.text;
  const others = [...model.users].filter(([n]) => n !== name);
  const uid = uidWord
    ? readId(uidWord, report, "UID")
    : name === "root"
      ? 0
      : nextFreeId(others.map(([, u]) => u.id));
  if (uid === undefined) return undefined;
  if (name === "root" && refuseRootId(uidWord!, uid, "UID", report)) return undefined;
  const clash = others.find(([, u]) => u.id === uid);
  if (clash) {
    report.error(
      uidWord?.span ?? nameWord.span,
      "NIFTY075",
      `UID ${uid} is already user ${clash[0]}'s`,
      clash[1].implicit ? "root always has UID 0" : `declared on line ${clash[1].span.start.line}`,
    );
    return undefined;
  }
  return uid;
}

function readHome(word: Value | undefined, name: string, report: Reporter): string | undefined {
  return word ? readImagePath(word, report) : name === "root" ? "/root" : `/home/${name}`;
}

/** HOME and SHELL go in /etc/passwd, whose fields a colon separates. */
function checkPasswdFields(
  opts: ReturnType<typeof readOptions>,
  home: string,
  shell: string,
  report: Reporter,
): boolean {
  for (const [option, path] of [
    ["HOME", home],
    ["SHELL", shell],
  ] as const) {
    if (!path.includes(":")) continue;
    report.error(
      opts.values.get(option)!.span,
      "NIFTY023",
      `${option} ${JSON.stringify(path)} cannot hold ":", which separates the fields of /etc/passwd`,
      "give a path without a colon",
    );
    return false;
  }
  return true;
}

/** The user (and its private group) as later lines see them; whether root can log in with a password. */
function declareUser(
  model: CheckModel,
  nameWord: Value,
  uid: number,
  gid: { id: number; private: boolean },
  password: Password,
): void {
  const name = nameWord.text;
  if (name === "root")
    model.rootPasswordLogin =
      password.kind === "secret" || (password.kind === "hash" && !/^[!*]/.test(password.hash));
  model.users.set(name, { id: uid, gid: gid.id, span: nameWord.span });
  if (gid.private) model.groups.set(name, { id: gid.id, span: nameWord.span });
}

function readGroupId(
  word: Value | undefined,
  name: string,
  uid: number,
  report: Reporter,
  model: CheckModel,
): { id: number; private: boolean } | undefined {
  if (word !== undefined) {
    const gid = readId(word, report, "GID");
    if (gid === undefined) return undefined;
    if (![...model.groups.values()].some((g) => g.id === gid)) {
      report.error(
        word.span,
        "NIFTY077",
        `no group has GID ${gid}`,
        `declare it first: GROUP <name> GID ${gid}`,
      );
      return undefined;
    }
    return { id: gid, private: false };
  }
  const own = model.groups.get(name);
  if (own !== undefined) return { id: own.id, private: false };
  const used = [...model.groups.values()].map((g) => g.id);
  return { id: used.includes(uid) ? nextFreeId(used) : uid, private: true };
}

function readGroups(word: Value | undefined, report: Reporter, model: CheckModel): string[] | undefined {
  if (word === undefined) return [];
  const names = word.text.split(",").filter(Boolean);
  for (const g of names) {
    if (!model.groups.has(g)) {
      const hint = () => {
        const near = suggest(g, [...model.groups.keys()]);
        return near ? `did you mean ${near}?` : `declare it first: GROUP ${g}`;
      };
      report.error(word.span, "NIFTY078", `group ${g} does not exist`, hint);
      return undefined;
    }
  }
  return names;
}

function readPassword(opts: ReturnType<typeof readOptions>, report: Reporter): Password | undefined {
  const given = ["PASSWORD", "PASSWORD-HASH", "LOCKED"].filter(
    (o) => opts.values.has(o) || opts.flags.has(o),
  );
  if (given.length > 1) {
    const word = opts.values.get("PASSWORD-HASH") ?? opts.values.get("PASSWORD");
    report.error(
      word!.span,
      "NIFTY079",
      `${given.join(" and ")} exclude each other`,
      "give one of PASSWORD secret:<id>, PASSWORD-HASH <crypt> or LOCKED",
    );
    return undefined;
  }
  const secret = opts.values.get("PASSWORD");
  if (secret !== undefined) {
    const id = secret.text.startsWith("secret:") ? secret.text.slice(7) : undefined;
    if (id === undefined || !SECRET_ID.test(id)) {
      report.error(
        secret.span,
        "NIFTY080",
        "PASSWORD takes a build secret, secret:<id>",
        "passwords never appear in a recipe: write PASSWORD secret:<id> and build with --secret <id>=FILE, or use PASSWORD-HASH <crypt>",
      );
      return undefined;
    }
    return { kind: "secret", id, span: secret.span };
  }
  const hash = opts.values.get("PASSWORD-HASH");
  if (hash !== undefined) {
    if (hash.text.includes(":") || hash.text.includes("\n")) {
      report.error(hash.span, "NIFTY081", "a crypt hash cannot contain ':' or a newline");
      return undefined;
    }
    if (hash.text === "")
      report.warn(
        hash.span,
        "NIFTY090",
        "empty password: anyone can log in as this user without one",
        "use PASSWORD secret:<id>, or LOCKED",
      );
    else if (!/^(\$[0-9a-z]+\$|[!*])/.test(hash.text))
      report.warn(
        hash.span,
        "NIFTY091",
        "this does not look like a crypt hash ($6$…, $5$…, $y$…, ! or *)",
        "make one with `openssl passwd -6`",
      );
    return { kind: "hash", hash: hash.text };
  }
  return { kind: "locked" };
}

/** Whether an earlier instruction provides `path` (exactly, or as one of a multicall binary's applets). */
export function provides(model: CheckModel, path: string): boolean {
  if (model.tree.lookup(path) !== undefined || model.opaquePackages) return true;
  return appletOnly(model, path) !== undefined;
}

/** The name `path` would have as an applet, when only a LINK … APPLETS directory provides it. */
function appletOnly(model: CheckModel, path: string): string | undefined {
  if (model.tree.lookup(path) !== undefined || model.opaquePackages) return undefined;
  const resolved = model.tree.resolve(path);
  if (resolved === undefined) return undefined;
  const slash = resolved.lastIndexOf("/");
  return model.appletDirs.has(resolved.slice(0, slash) || "/") ? resolved.slice(slash + 1) : undefined;
}

/**
 * NIFTY308: a program the recipe counts on that only an APPLETS directory provides, under a name
 * Debian's BusyBox has no applet for (dropbearkey, bash): the check cannot know the binary's own
 * list, so it warns, and the build, which reads it, decides.
 */
export function warnAppletGuess(
  model: CheckModel,
  paths: readonly string[],
  span: Span,
  report: Reporter,
): void {
  if (paths.some((p) => model.tree.lookup(p) !== undefined || model.opaquePackages)) return;
  const name = paths.map((p) => appletOnly(model, p)).find((n) => n !== undefined);
  if (name === undefined || DEBIAN_BUSYBOX_APPLETS.has(name)) return;
  report.warn(
    span,
    "NIFTY308",
    `${name} is taken for one of BusyBox's applets (LINK … APPLETS), but Debian's BusyBox has none of that name`,
    `FETCH or COPY ${name} before this line (the build refuses an image without it), unless your BusyBox build has such an applet`,
  );
}
