// The command line systemd would run for instance %i of a generated template
// unit: % specifiers, Environment=, EnvironmentFile= and ${VAR} expanded the way
// systemd does for the words niftyc writes. Lets the tests and the benchmark run
// exactly what the generated files say on machines where systemd is not PID 1.
import { readFileSync } from "node:fs";

export interface InstanceCommand {
  argv: string[];
  /** The unit's environment after Environment= and EnvironmentFile=. */
  env: Map<string, string>;
}

/** Split one setting value into words: spaces separate, "…" groups with C escapes. */
function words(value: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < value.length) {
    while (value[at] === " ") at++;
    if (at >= value.length) break;
    let word = "";
    if (value[at] === '"') {
      at++;
      while (at < value.length && value[at] !== '"') {
        if (value[at] === "\\" && at + 1 < value.length) {
          const c = value[at + 1]!;
          word += c === "n" ? "\n" : c === "t" ? "\t" : c;
          at += 2;
        } else word += value[at++];
      }
      if (value[at] !== '"') throw new Error(`unterminated quote in ${value}`);
      at++;
    } else {
      while (at < value.length && value[at] !== " ") word += value[at++];
    }
    out.push(word);
  }
  return out;
}

/** %i → instance, %% → %; other specifiers are not used by niftyc's units. */
function specifiers(word: string, instance: string): string {
  return word.replace(/%(.)/g, (all, c: string) => {
    if (c === "i") return instance;
    if (c === "%") return "%";
    throw new Error(`specifier ${all} is not expanded here`);
  });
}

/** $$ → $, ${NAME} → its value (empty when unset), as in Exec lines. */
function variables(word: string, env: ReadonlyMap<string, string>): string {
  return word.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_all, name: string | undefined) =>
    name === undefined ? "$" : (env.get(name) ?? ""),
  );
}

/** KEY=value lines; # and ; start comments (systemd's EnvironmentFile= format, unquoted values). */
export function parseEnvFile(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

export function instanceCommand(
  unit: string,
  instance: string,
  readEnvFile: (path: string) => string | undefined = readOptional,
): InstanceCommand {
  const env = new Map<string, string>();
  let exec: string | undefined;
  for (const line of unit.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0 || line.startsWith("#")) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "Environment") {
      for (const w of words(value)) {
        const e = w.indexOf("=");
        env.set(w.slice(0, e), specifiers(w.slice(e + 1), instance));
      }
    } else if (key === "EnvironmentFile") {
      const optional = value.startsWith("-");
      const path = specifiers(optional ? value.slice(1) : value, instance);
      const text = readEnvFile(path);
      if (text === undefined) {
        if (!optional) throw new Error(`EnvironmentFile ${path} is missing`);
        continue;
      }
      for (const [k, v] of parseEnvFile(text)) env.set(k, v);
    } else if (key === "ExecStart") exec = value;
  }
  if (exec === undefined) throw new Error("the unit has no ExecStart=");
  // "$NAME" alone is split at whitespace into zero or more words; "${NAME}" stays one word.
  const argv = words(exec).flatMap((w) => {
    const word = specifiers(w, instance);
    const alone = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    return alone ? (env.get(alone[1]!) ?? "").split(/\s+/).filter(Boolean) : [variables(word, env)];
  });
  return { argv, env };
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
