// KEYGEN dropbear [ed25519|ecdsa|rsa ...] [AT boot|build]
// Host keys: made by each container at first boot (default), or at build time.
import type { InstructionSpec, Typed } from "./spec.ts";
import { readOptions } from "./args.ts";
import { editText, writeFile } from "./files.ts";
import type { HostKeyType } from "../image/dropbear-key.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import { programPaths } from "./inittab.ts";
import { provides, warnAppletGuess } from "./user.ts";

export interface KeygenInstruction extends Typed {
  kind: "KEYGEN";
  server: "dropbear";
  types: HostKeyType[];
  at: "boot" | "build";
}

export const KEY_DIR = "/etc/dropbear";
export const KEYSEED_SECRET = "keyseed";
const TYPES: readonly string[] = ["ed25519", "ecdsa", "rsa"];

export function keyPath(type: HostKeyType): string {
  return `${KEY_DIR}/dropbear_${type}_host_key`;
}

/** The inittab line that makes missing host keys before any server starts. */
export function bootKeygenLine(types: readonly HostKeyType[]): string {
  const make = types
    .map((t) => `[ -s ${keyPath(t)} ] || dropbearkey -t ${t} -f ${keyPath(t)} >/dev/null 2>&1`)
    .join("; ");
  return `::sysinit:/bin/sh -c 'mkdir -p ${KEY_DIR} && ${make}'`;
}

export const keygen: InstructionSpec<KeygenInstruction> = {
  keyword: "KEYGEN",
  summary:
    "Give Dropbear host keys. AT boot (the default) puts no private key in the image: a sysinit entry runs dropbearkey at first boot, so every container, and every clone, has its own keys. AT build writes keys into the image — shared by every copy — deterministic only with --secret keyseed=FILE.",
  syntax: ["KEYGEN dropbear [ed25519|ecdsa|rsa ...] [AT boot|build]"],
  example: "KEYGEN dropbear ed25519 ecdsa",
  check(ins, report, model) {
    const opts = readOptions(ins, report, { AT: "value" });
    const [server, ...typeWords] = opts.positional;
    // Every bad word of the line is said, not only the first.
    let ok = true;
    if (server === undefined || server.text.toLowerCase() !== "dropbear") {
      const aType = server !== undefined && [...TYPES, "dss", "dsa"].includes(server.text.toLowerCase());
      report.error(
        server?.span ?? ins.keywordSpan,
        "NIFTY082",
        server
          ? `unknown SSH server ${JSON.stringify(server.text)}`
          : "KEYGEN needs the server it makes keys for",
        aType
          ? `${server!.text} is a key type: the server comes first, KEYGEN dropbear ${server!.text}`
          : "KEYGEN dropbear [ed25519|ecdsa|rsa ...]",
      );
      ok = false;
    }
    const types: HostKeyType[] = [];
    for (const word of typeWords) {
      const type = word.text.toLowerCase();
      if (type === "dss" || type === "dsa") {
        report.error(
          word.span,
          "NIFTY083",
          "DSS host keys are refused",
          "Dropbear disables DSS since 2024.84 and it is weak; use ed25519 (or ecdsa, rsa)",
        );
        ok = false;
      } else if (!TYPES.includes(type)) {
        report.error(
          word.span,
          "NIFTY084",
          `unknown key type ${JSON.stringify(word.text)}`,
          "choose from ed25519, ecdsa, rsa",
        );
        ok = false;
      } else if (!types.includes(type as HostKeyType)) types.push(type as HostKeyType);
    }
    const atWord = opts.values.get("AT");
    const at = (atWord?.text.toLowerCase() ?? "boot") as "boot" | "build";
    if (at !== "boot" && at !== "build") {
      report.error(atWord!.span, "NIFTY085", `AT takes boot or build, not ${JSON.stringify(atWord!.text)}`);
      ok = false;
    }
    if (!ok) return undefined;
    if (at === "build") {
      report.warn(
        atWord!.span,
        "NIFTY092",
        "host keys made at build time are shared by every container made from this image",
        "leave out AT build so each container makes its own keys at first boot",
      );
    }
    model.tree.mkdirp(KEY_DIR);
    return {
      kind: "KEYGEN",
      span: ins.span,
      server: "dropbear",
      types: types.length ? types : ["ed25519"],
      at,
    };
  },
  secrets(t) {
    return t.at === "build"
      ? [
          {
            id: KEYSEED_SECRET,
            span: t.span,
            optional: true,
            minBytes: 16,
            hint: "a key seed is at least 16 random bytes: head -c 32 /dev/urandom > keyseed",
          },
        ]
      : [];
  },
  checkWhole(t, report, model) {
    // Its sysinit line finds dropbearkey on init's PATH, as any inittab command.
    if (t.at === "boot" && !programPaths("dropbearkey").some((p) => provides(model, p)))
      noDropbearkey(t, report);
    else if (t.at === "boot") warnAppletGuess(model, programPaths("dropbearkey"), t.span, report);
  },
  verify(t, tree, report) {
    if (t.at === "boot" && !programPaths("dropbearkey").some((p) => tree.lookup(p)?.node.type === "file"))
      noDropbearkey(t, report);
  },
  cacheable(t, context) {
    return t.at === "boot" || context.optionalSecret(KEYSEED_SECRET) !== undefined;
  },
  async keyInputs(t, context) {
    const seed = context.optionalSecret(KEYSEED_SECRET);
    // A one-way tag of the seed: a new seed rebuilds, the seed itself never joins a key.
    return t.at === "build" && seed
      ? [
          process
            .getBuiltinModule("node:crypto")
            .createHmac("sha256", seed)
            .update("niftyc keyseed tag")
            .digest("hex"),
        ]
      : [];
  },
  async apply(t, context) {
    const dir = context.tree.mkdirp(KEY_DIR);
    context.tree.set(dir, { type: "dir", mode: 0o700, uid: 0, gid: 0 });
    if (t.at === "boot") {
      // First in inittab: sysinit entries run in order, and servers must find their keys.
      await editText(context, "/etc/inittab", (text) => bootKeygenLine(t.types) + "\n" + text, 0o644);
      return;
    }
    const seed = context.optionalSecret(KEYSEED_SECRET);
    if (seed === undefined)
      context.notReproducible(t.span, "KEYGEN AT build without --secret keyseed=FILE makes random host keys");
    const { makeDropbearHostKey } = await import("../image/dropbear-key.ts");
    for (const type of t.types) {
      const key = makeDropbearHostKey(type, seed ? { seed } : {});
      await writeFile(context, keyPath(type), key.privateKey, 0o600);
      await writeFile(context, `${keyPath(type)}.pub`, key.publicKey + "\n", 0o644);
    }
  },
};

function noDropbearkey(t: KeygenInstruction, report: Reporter): void {
  report.error(
    t.span,
    "NIFTY013",
    "KEYGEN at boot needs dropbearkey in the image",
    `FETCH dropbearkey into /bin or /usr/bin, or use KEYGEN … AT build (keys in ${KEY_DIR} shared by every copy)`,
  );
}
