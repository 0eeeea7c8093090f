// Registry credentials where users already keep them: containers-auth.json
// files (podman, skopeo, buildah) and Docker's config.json, by their `auths`
// entries or a credential helper (`credHelpers`, `credsStore`). The CLI
// decides which files (from the environment); this module only reads them.
// Credentials are held in memory and sent only in Authorization headers.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { NiftyError } from "../diagnostics/errors.ts";

export interface Credentials {
  username: string;
  password: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** "https://index.docker.io/v1/" and "host:port/path" both name the registry "host:port". */
function registryKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
}

/**
 * The first file (in the order given) that has credentials for `registry`.
 * Missing files are skipped; a file that cannot be parsed is an error, since
 * silently pushing without the credentials it holds would fail later and
 * more obscurely.
 */
export async function findCredentials(
  registry: string,
  files: readonly string[],
  helperTimeoutMs = 20_000,
): Promise<Credentials | undefined> {
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      continue;
    }
    let parsed: AuthFile;
    try {
      parsed = JSON.parse(text) as AuthFile;
      if (parsed === null || typeof parsed !== "object") throw new Error("not an object");
    } catch (error) {
      throw new NiftyError(
        "NIFTY706",
        `cannot read the credentials file ${file}: ${(error as Error).message}`,
        "fix the JSON, or point REGISTRY_AUTH_FILE at another file, or give --username and --password-stdin",
      );
    }
    const helper = Object.entries(parsed.credHelpers ?? {}).find(([k]) => registryKey(k) === registry)?.[1];
    if (helper) return runHelper(helper, registry, helperTimeoutMs);
    for (const [key, entry] of Object.entries(parsed.auths ?? {})) {
      if (registryKey(key) !== registry || entry === null || typeof entry !== "object") continue;
      if (typeof entry.auth === "string" && entry.auth !== "") {
        const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        if (colon < 0) {
          throw new NiftyError(
            "NIFTY706",
            `the credentials file ${file} has an "auth" for ${registry} that is not base64 of USER:PASSWORD`,
            `log in again (podman login ${registry}), or give --username and --password-stdin`,
          );
        }
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
      if (typeof entry.username === "string" && typeof entry.password === "string")
        return { username: entry.username, password: entry.password };
    }
    if (parsed.credsStore) {
      const found = await runHelper(parsed.credsStore, registry, helperTimeoutMs, true);
      if (found) return found;
    }
  }
  return undefined;
}

/** docker-credential-NAME get: the server on stdin, {Username, Secret} on stdout. */
function runHelper(
  name: string,
  registry: string,
  timeoutMs: number,
  optional = false,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ["get"], {
      stdio: ["pipe", "pipe", "pipe"],
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
    const out: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.resume();
    const fail = (why: string) =>
      optional
        ? resolve(undefined)
        : reject(
            new NiftyError(
              "NIFTY706",
              `the credential helper ${program} gave no credentials for ${registry}: ${why}`,
              `check that ${program} is installed and logged in, or give --username and --password-stdin`,
            ),
          );
    child.on("error", (e) => fail((e as NodeJS.ErrnoException).code ?? e.message));
    child.on("close", (code) => {
      if (code !== 0) return fail(`exit status ${code}`);
      try {
        const r = JSON.parse(Buffer.concat(out).toString("utf8")) as { Username?: string; Secret?: string };
        if (typeof r.Username !== "string" || typeof r.Secret !== "string")
          return fail("its answer has no Username and Secret");
        resolve({ username: r.Username, password: r.Secret });
      } catch {
        fail("its answer is not JSON");
      }
    });
    child.stdin.on("error", () => {});
    child.stdin.end(registry);
  });
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** WWW-Authenticate: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}
