// niftyc push and build --push: where credentials come from (the environment
// is read here, once), which flags mean what, and the progress lines.
import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { NiftyError } from "../diagnostics/errors.ts";
import { UsageError, type CliIo } from "./io.ts";
import { EXIT, cacheDir, parse, relativeOrAbsolute, type ParsedValues } from "./common.ts";
import { printDiagnostics } from "./print-diagnostics.ts";
import { BUILD_COMMAND_FLAGS } from "./build-flags.ts";
import { PUSH_HELP } from "./usage.ts";

/** containers-auth.json(5)'s order, then Docker's file. */
export function authFiles(env: CliIo["env"]): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, "containers", "auth.json"));
  const config = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : undefined);
  if (config) files.push(join(config, "containers", "auth.json"));
  const docker = env.DOCKER_CONFIG || (env.HOME ? join(env.HOME, ".docker") : undefined);
  if (docker) files.push(join(docker, "config.json"));
  return files;
}

type BuildRunner = (args: readonly string[], io: CliIo) => Promise<number>;

export async function runPush(args: readonly string[], io: CliIo, runBuild: BuildRunner): Promise<number> {
  // build's flags but --push: push takes its target as a positional.
  const { push: _, ...options } = BUILD_COMMAND_FLAGS;
  const { values, positionals } = parse(args, options, PUSH_HELP);
  if (values.help) {
    io.stdout.write(PUSH_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 2)
    throw new UsageError(
      "push takes a build directory (or a recipe) and a REGISTRY/REPOSITORY:TAG",
      PUSH_HELP,
    );
  const [source, target] = positionals as [string, string];
  const dir = resolve(io.cwd, source);
  const isFile = (p: string) =>
    stat(join(dir, p)).then(
      (s) => s.isFile(),
      () => false,
    );
  // A multi-platform build's directory has no build.json of its own, but the index at oci/.
  const isBuildDir = (await isFile("build.json")) || (await isFile("oci/index.json"));
  if (!isBuildDir) {
    // A recipe: build it (with its flags), then push, as build --push does.
    const { tokens } = parseArgs({
      args: [...args],
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    const rest = args.filter(
      (_, i) => !tokens.some((t) => t.kind === "positional" && t.index === i && t.value === target),
    );
    return runBuild([...rest, "--push", target], io);
  }
  if (values["cache-to"] !== undefined || values["cache-from"] !== undefined)
    throw new UsageError(
      "--cache-to and --cache-from go with a build: give the recipe, not its output directory",
      PUSH_HELP,
    );
  const result = await pushBuildDir(dir, relativeOrAbsolute(io.cwd, source), target, values, io);
  printPushed(result, values, io);
  return EXIT.ok;
}

export function printPushed(
  result: import("../registry/push.ts").PushResult,
  values: ParsedValues,
  io: CliIo,
): void {
  if (values.json) io.stdout.write(JSON.stringify(result) + "\n");
  else io.stdout.write(`${result.pushed}\n`);
}

/** How to reach registries, from the flags: one stdin read for --password-stdin, whatever the number of registries. */
export function registrySettings(values: ParsedValues, io: CliIo) {
  let password: Promise<string> | undefined;
  return async (registry: string) => {
    const { findCredentials } = await import("../registry/credentials.ts");
    const username = values.username as string | undefined;
    let credentials: { username: string; password: string } | undefined;
    if (values["password-stdin"] === true || username !== undefined) {
      if (username === undefined || values["password-stdin"] !== true) {
        throw new NiftyError(
          "NIFTY706",
          "--password-stdin and --username go together",
          'echo "$PASSWORD" | niftyc push --username USER --password-stdin …',
        );
      }
      if (io.readStdin === undefined)
        throw new UsageError(
          "--password-stdin reads standard input, which this caller does not give",
          PUSH_HELP,
        );
      // One final newline is dropped, as docker login does.
      password ??= io.readStdin().then((text) => text.replace(/\r?\n$/, ""));
      const typed = await password;
      if (typed === "")
        throw new NiftyError(
          "NIFTY706",
          "--password-stdin read an empty password",
          'pipe the password into niftyc: echo "$PASSWORD" | niftyc push …',
        );
      credentials = { username, password: typed };
    } else {
      credentials = await findCredentials(registry, authFiles(io.env));
    }
    const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
    if (timeout !== undefined && !(timeout > 0)) {
      throw new UsageError(
        `--timeout takes a number of seconds, got ${JSON.stringify(values.timeout)}`,
        PUSH_HELP,
      );
    }
    return {
      ...(credentials ? { credentials } : {}),
      ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      insecure: values.insecure === true,
      ...(values["ca-file"] !== undefined ? { caFile: resolve(io.cwd, values["ca-file"] as string) } : {}),
    };
  };
}

type Settings = ReturnType<typeof registrySettings>;

/** Push the OCI layout of a build directory; flags as push parses them. */
export async function pushBuildDir(
  dir: string,
  shown: string,
  target: string,
  values: ParsedValues,
  io: CliIo,
  settings: Settings = registrySettings(values, io),
) {
  const { parseReference } = await import("../registry/reference.ts");
  const { pushImage } = await import("../registry/push.ts");
  const ref = parseReference(target);
  const layout = join(dir, "oci");
  if (
    !(await stat(join(layout, "index.json")).then(
      () => true,
      () => false,
    ))
  ) {
    throw new NiftyError(
      "NIFTY704",
      `${shown}/oci is not an OCI image layout (no readable index.json)`,
      "build with the oci format (the default, or --format oci,...), or give the recipe to push",
    );
  }
  const quiet = values.quiet === true;
  let lastProgress = 0;
  const cache = cacheDir(values.cache as string | undefined, io);
  // The key (and its passphrase) before anything is pushed: a wrong one leaves the registry as it was.
  const { signingKey, signPushed } = await import("./sign.ts");
  const key = await signingKey(values, io, PUSH_HELP);
  // provenance.json and sbom.cdx.json beside the build go with the image (the index), as referrers;
  // for several platforms, each platform's own go with its image.
  const { attach, attachEach } = await buildAttachments(dir);
  const pushed = await pushImage({
    layout,
    target: ref,
    attach,
    attachEach,
    ...(await settings(ref.registry)),
    knownBlobsFile: join(cache, "registries", `${ref.registry.replace(/[^A-Za-z0-9.-]/g, "_")}.json`),
    onEvent: (event) => {
      if (quiet) return;
      const short = (d: string) => d.slice(7, 19);
      switch (event.type) {
        case "blob":
          io.stderr.write(
            `${short(event.digest)}  ${event.action === "exists" ? "already there" : event.action === "mounted" ? `mounted from ${event.from}` : "uploaded"} (${event.size} bytes)\n`,
          );
          break;
        case "upload-progress":
          if (event.sent === event.total || event.sent - lastProgress >= 16 * 1024 * 1024) {
            lastProgress = event.sent;
            io.stderr.write(
              `${short(event.digest)}  ${Math.floor((event.sent / event.total) * 100)}% of ${event.total} bytes\n`,
            );
          }
          break;
        case "retry":
          io.stderr.write(`retrying (${event.attempt}): ${event.what}: ${event.reason}\n`);
          break;
        case "manifest":
          io.stderr.write(
            `manifest ${short(event.digest)}  ${event.action === "exists" ? "already tagged" : "pushed"}\n`,
          );
          break;
        case "referrer":
          io.stderr.write(
            `${event.artifactType} ${short(event.digest)}  ${event.action === "exists" ? "already there" : "pushed"} (as a referrer, ${event.via === "tag-schema" ? "listed in the sha256-… tag" : "through the referrers API"})\n`,
          );
          break;
      }
    },
  });
  if (key === undefined) return pushed;
  const signature = await signPushed(key, target, pushed.digest, values, io, settings);
  return { ...pushed, signature };
}

/**
 * --cache-from: what the store lacks of a shared cache, before the build. What cannot be used is a
 * warning; true when --strict makes it an error, and the build should stop.
 */
export async function pullSharedCache(
  target: string,
  values: ParsedValues,
  io: CliIo,
  settings: Settings,
  maxBlobBytes: number,
): Promise<boolean> {
  const { parseReference } = await import("../registry/reference.ts");
  const { pullCache } = await import("../registry/cache-share.ts");
  const { openStore } = await import("../cache/store.ts");
  const ref = parseReference(target);
  const store = await openStore(cacheDir(values.cache as string | undefined, io));
  const pulled = await pullCache({ store, target: ref, maxBlobBytes, ...(await settings(ref.registry)) });
  // --strict: as any warning of a build, one about its cache fails it.
  const strict = values.strict === true;
  const said = (pulled?.warnings ?? []).map((w) => (strict ? { ...w, severity: "error" as const } : w));
  await printDiagnostics(said, io);
  if (strict && said.length > 0) {
    if (values.json === true) {
      const { diagnosticsToJson } = await import("../diagnostics/format.ts");
      const failed = { error: `the cache ${target} cannot be used`, diagnostics: diagnosticsToJson(said) };
      io.stdout.write(JSON.stringify(failed) + "\n");
    }
    return true;
  }
  if (values.quiet === true) return false;
  if (pulled === undefined)
    io.stderr.write(`note: --cache-from ${target}: no such cache yet; building without it\n`);
  else if (pulled.unread !== true)
    io.stderr.write(
      `cache from ${target}: ${pulled.downloaded} blobs downloaded, ${pulled.present} already here\n`,
    );
  return false;
}

/** --cache-to: the blobs a finished build's steps need, as one artifact. */
export async function pushSharedCache(
  target: string,
  result: { used: string[] },
  values: ParsedValues,
  io: CliIo,
  settings: Settings,
): Promise<void> {
  const { parseReference } = await import("../registry/reference.ts");
  const { pushCache } = await import("../registry/cache-share.ts");
  const { openStore } = await import("../cache/store.ts");
  const ref = parseReference(target);
  const store = await openStore(cacheDir(values.cache as string | undefined, io));
  const pushed = await pushCache({
    store,
    target: ref,
    blobs: result.used,
    ...(await settings(ref.registry)),
  });
  if (values.quiet === true) return;
  io.stderr.write(`cache to ${ref.registry}/${ref.repository}@${pushed.digest}: ${pushed.blobs} blobs\n`);
}

/**
 * What goes with the image as referrers beside the layout's SPDX SBOM: provenance.json, and
 * sbom.cdx.json (the CycloneDX SBOM, when the build wrote it). For several platforms, the build's
 * provenance.json goes with the index, and each platform's files with its image (by its digest).
 */
async function buildAttachments(dir: string) {
  const { PROVENANCE_MEDIA_TYPE } = await import("../emit/provenance.ts");
  const { CYCLONEDX_MEDIA_TYPE } = await import("../emit/sbom.ts");
  const file = async (path: string, artifactType: string) =>
    (await stat(path).then(
      (st) => st.isFile(),
      () => false,
    ))
      ? [{ artifactType, path }]
      : [];
  const files = async (from: string) => [
    ...(await file(join(from, "provenance.json"), PROVENANCE_MEDIA_TYPE)),
    ...(await file(join(from, "sbom.cdx.json"), CYCLONEDX_MEDIA_TYPE)),
  ];
  const attach = await files(dir);
  const attachEach: Record<string, Array<{ artifactType: string; path: string }>> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === "oci" || entry.name.startsWith(".")) continue;
    const own = await files(join(dir, entry.name));
    type Index = { manifests?: Array<{ digest: string; artifactType?: string }> };
    const index = await readFile(join(dir, entry.name, "oci", "index.json"), "utf8").then(
      (t) => JSON.parse(t) as Index,
      () => undefined,
    );
    const image = index?.manifests?.find((m) => m.artifactType === undefined);
    if (own.length > 0 && image !== undefined) attachEach[image.digest] = own;
  }
  return { attach, attachEach };
}
