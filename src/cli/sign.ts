// Signing on the command line: where the key's passphrase comes from (a file,
// an environment variable or the terminal; never argv), signing what a push
// left in a registry, `niftyc sign` and `niftyc keygen-signing`.
import { readFile, writeFile, lstat } from "node:fs/promises";
import { resolve } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import { UsageError, type CliIo } from "./io.ts";
import { EXIT, parse, relativeOrAbsolute, type ParsedValues } from "./common.ts";
import type { SigningKey } from "../trust/keys.ts";
import { KEYGEN_SIGNING_HELP, SIGN_HELP } from "./usage.ts";

/** --key-passphrase file:PATH or env:VARIABLE, else the terminal; one final newline dropped. */
export function passphraseSource(
  values: ParsedValues,
  io: CliIo,
  help: string,
): () => Promise<Buffer | undefined> {
  const where = values["key-passphrase"] as string | undefined;
  return async () => {
    if (where === undefined) {
      if (io.askSecret === undefined) return undefined;
      return Buffer.from(await io.askSecret("Passphrase for the signing key: "));
    }
    if (where.startsWith("env:")) {
      const value = io.env[where.slice(4)];
      if (value === undefined) {
        throw new NiftyError(
          "NIFTY732",
          `--key-passphrase: the environment variable ${where.slice(4)} is not set`,
          `export ${where.slice(4)}=… first, or give --key-passphrase file:PATH`,
        );
      }
      return Buffer.from(value);
    }
    if (!where.startsWith("file:"))
      throw new UsageError(
        "--key-passphrase takes file:PATH or env:VARIABLE (never the passphrase itself)",
        help,
      );
    const path = resolve(io.cwd, where.slice(5));
    try {
      return Buffer.from((await readFile(path, "utf8")).replace(/\r?\n$/, ""));
    } catch (error) {
      throw new NiftyError(
        "NIFTY732",
        `--key-passphrase: cannot read ${where.slice(5)}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`,
        "give a readable file whose content is the passphrase",
      );
    }
  };
}

const loaded = new WeakMap<ParsedValues, Promise<SigningKey | undefined>>();

/**
 * The key of --sign, loaded (and its passphrase asked) before anything is pushed: once per
 * command line, so build --push loads it before the build and the push takes it from there.
 */
export function signingKey(
  values: ParsedValues,
  io: CliIo,
  help: string,
  flag = "sign",
): Promise<SigningKey | undefined> {
  let key = loaded.get(values);
  if (key === undefined) {
    key = loadKey(values, io, help, flag);
    loaded.set(values, key);
  }
  return key;
}

async function loadKey(
  values: ParsedValues,
  io: CliIo,
  help: string,
  flag = "sign",
): Promise<SigningKey | undefined> {
  const file = values[flag] as string | undefined;
  if (file === undefined) {
    if (values["key-passphrase"] !== undefined)
      throw new UsageError(`--key-passphrase goes with --${flag}`, help);
    return undefined;
  }
  const { loadSigningKey } = await import("../trust/keys.ts");
  return loadSigningKey(
    resolve(io.cwd, file),
    relativeOrAbsolute(io.cwd, file),
    passphraseSource(values, io, help),
  );
}

type Settings = (registry: string) => Promise<Record<string, unknown>>;

/** Sign `digest` in the repository of `target`; prints where the signature went (stderr). */
export async function signPushed(
  key: SigningKey,
  target: string,
  digest: string,
  values: ParsedValues,
  io: CliIo,
  settings: Settings,
): Promise<string> {
  const { parseReference } = await import("../registry/reference.ts");
  const { pushSignature } = await import("../registry/signature.ts");
  const { checkSignature, signPayload, signaturePayload } = await import("../trust/signature.ts");
  const { createPublicKey } = await import("node:crypto");
  const ref = parseReference(target);
  const payload = signaturePayload(`${ref.registry}/${ref.repository}`, digest);
  const repository = `${ref.registry}/${ref.repository}`;
  const publicKey = createPublicKey(key.publicPem);
  const isOurs = (signature: string) =>
    checkSignature(payload, signature, publicKey, repository, digest) === undefined;
  const signature = { payload, signature: signPayload(payload, key.privateKey) };
  const signed = await pushSignature(
    { target: ref, ...(await settings(ref.registry)) },
    digest,
    signature,
    isOurs,
  );
  if (values.quiet !== true)
    io.stderr.write(
      `signature ${signed.manifest.slice(7, 19)}  ${signed.action === "exists" ? "already there" : "pushed"} (tag ${signed.tag})\n`,
    );
  return `${ref.registry}/${ref.repository}:${signed.tag}`;
}

/** niftyc sign REF --key KEY: sign what a tag (or digest) names now. */
export async function runSign(
  args: readonly string[],
  io: CliIo,
  registrySettings: (values: ParsedValues, io: CliIo) => Settings,
): Promise<number> {
  const { PUSH_FLAGS } = await import("./build-flags.ts");
  const { "cache-to": _a, "cache-from": _b, sign: _c, ...registryFlags } = PUSH_FLAGS;
  const flags = {
    ...registryFlags,
    key: { type: "string" },
    timeout: { type: "string" },
    quiet: { type: "boolean", short: "q" },
  } as const;
  const { values, positionals } = parse(args, flags, SIGN_HELP);
  if (values.help) {
    io.stdout.write(SIGN_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 1)
    throw new UsageError("sign takes one REGISTRY/REPOSITORY:TAG (or @sha256:…)", SIGN_HELP);
  if (values.key === undefined) throw new UsageError("sign needs --key KEY", SIGN_HELP);
  const key = (await signingKey(values, io, SIGN_HELP, "key"))!;
  const settings = registrySettings(values, io);
  const { parseReference } = await import("../registry/reference.ts");
  const { resolveDigest } = await import("../registry/signature.ts");
  const ref = parseReference(positionals[0]!);
  const digest = await resolveDigest({ target: ref, ...(await settings(ref.registry)) });
  const where = await signPushed(key, positionals[0]!, digest, values, io, settings);
  io.stdout.write(`${where}\n`);
  return EXIT.ok;
}

/**
 * niftyc keygen-signing [PREFIX]: PREFIX.key (0600; cosign's encrypted format, which both cosign
 * and niftyc read, or PKCS#8 with --key-format pkcs8 or --no-passphrase) and PREFIX.pub; never
 * replaces a file.
 */
export async function runKeygenSigning(args: readonly string[], io: CliIo): Promise<number> {
  const flags = {
    "key-passphrase": { type: "string" },
    "no-passphrase": { type: "boolean" },
    "key-format": { type: "string" },
  } as const;
  const { values, positionals } = parse(args, flags, KEYGEN_SIGNING_HELP);
  if (values.help) {
    io.stdout.write(KEYGEN_SIGNING_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length > 1)
    throw new UsageError("keygen-signing takes at most one PREFIX", KEYGEN_SIGNING_HELP);
  const prefix = positionals[0] ?? "cosign";
  const format = values["key-format"] ?? "cosign";
  if (format !== "cosign" && format !== "pkcs8")
    throw new UsageError("--key-format takes cosign or pkcs8", KEYGEN_SIGNING_HELP);
  if (values["key-passphrase"] !== undefined && values["no-passphrase"] === true)
    throw new UsageError(
      "--no-passphrase writes the key unencrypted: not with --key-passphrase (give one of them)",
      KEYGEN_SIGNING_HELP,
    );
  if (values["key-format"] !== undefined && values["no-passphrase"] === true)
    throw new UsageError(
      "--key-format is how the key is encrypted: not with --no-passphrase",
      KEYGEN_SIGNING_HELP,
    );
  let passphrase: Buffer | undefined;
  if (values["no-passphrase"] !== true) {
    passphrase = await passphraseSource(values, io, KEYGEN_SIGNING_HELP)();
    if (passphrase === undefined || passphrase.length === 0) {
      throw new UsageError(
        "keygen-signing encrypts the key: give --key-passphrase file:PATH or env:VARIABLE, run it at a terminal, or say --no-passphrase",
        KEYGEN_SIGNING_HELP,
      );
    }
  }
  const { generateSigningKey } = await import("../trust/keys.ts");
  const { privatePem, publicPem } = await generateSigningKey(passphrase, format);
  const keyFile = resolve(io.cwd, `${prefix}.key`);
  const pubFile = resolve(io.cwd, `${prefix}.pub`);
  for (const file of [keyFile, pubFile]) {
    if (
      await lstat(file).then(
        () => true,
        () => false,
      )
    ) {
      throw new NiftyError(
        "NIFTY731",
        `${relativeOrAbsolute(io.cwd, file)} exists; niftyc never replaces a key`,
        "remove it first, or give another PREFIX",
      );
    }
  }
  const write = (file: string, text: string, mode: number) =>
    writeFile(file, text, { mode, flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
      throw new NiftyError(
        "NIFTY731",
        `cannot write ${relativeOrAbsolute(io.cwd, file)}: ${error.code ?? error.message}`,
        "give a PREFIX in a directory that exists and that you may write to",
      );
    });
  await write(keyFile, privatePem, 0o600);
  await write(pubFile, publicPem, 0o644);
  io.stdout.write(`${relativeOrAbsolute(io.cwd, keyFile)}\n${relativeOrAbsolute(io.cwd, pubFile)}\n`);
  return EXIT.ok;
}
