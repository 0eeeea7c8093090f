// editors/vscode, the VS Code extension: its manifest names the language, the
// `.nifty` files and niftyc's own TextMate grammar; extension.js parses; and,
// where its own install has vsce (.ci/run: npm ci --prefix editors/vscode),
// it packages into a .vsix that holds the grammar.
import test from "ava";
import { execFile } from "node:child_process";
import { access, copyFile, mkdir, mkdtemp, readFile, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { requireParts } from "../support/skip.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const EXTENSION = join(ROOT, "editors/vscode");
const GRAMMAR = join(ROOT, "grammar/niftyfile.tmLanguage.json");

interface Manifest {
  name: string;
  publisher: string;
  version: string;
  engines: { vscode: string };
  main: string;
  scripts: Record<string, string>;
  contributes: {
    languages: Array<{ id: string; extensions: string[]; filenames?: string[]; configuration: string }>;
    grammars: Array<{ language: string; scopeName: string; path: string }>;
  };
}

const manifest = async (): Promise<Manifest> =>
  JSON.parse(await readFile(join(EXTENSION, "package.json"), "utf8")) as Manifest;

test("the extension's manifest names the niftyfile language, .nifty files and niftyc's TextMate grammar", async (t) => {
  const m = await manifest();
  t.regex(m.name, /^[a-z0-9][a-z0-9-]*$/);
  t.regex(m.publisher, /^[a-z0-9][a-z0-9-]*$/);
  t.regex(m.version, /^\d+\.\d+\.\d+$/);
  t.regex(m.engines.vscode, /^\^\d+\.\d+\.\d+$/);
  await access(join(EXTENSION, m.main));
  const language = m.contributes.languages.find((l) => l.id === "niftyfile");
  t.truthy(language);
  t.true(language!.extensions.includes(".nifty"));
  t.deepEqual(language!.filenames, ["Niftyfile"]);
  JSON.parse(await readFile(join(EXTENSION, language!.configuration), "utf8"));
  // The grammar is grammar/niftyfile.tmLanguage.json, copied beside the manifest by `npm run grammar`.
  const grammar = JSON.parse(await readFile(GRAMMAR, "utf8")) as { scopeName: string };
  const [entry] = m.contributes.grammars;
  t.is(entry?.language, "niftyfile");
  t.is(entry?.scopeName, grammar.scopeName);
  t.is(posix.basename(entry!.path), "niftyfile.tmLanguage.json");
  t.true(m.scripts.grammar?.includes("../../grammar/niftyfile.tmLanguage.json"));
  t.true(m.scripts.grammar?.includes(posix.normalize(entry!.path)));
});

test("extension.js parses (node --check)", async (t) => {
  const m = await manifest();
  await run(process.execPath, ["--check", join(EXTENSION, m.main)]);
  t.pass();
});

async function vsceMissing(): Promise<string | undefined> {
  try {
    await access(join(EXTENSION, "node_modules/.bin/vsce"));
    return undefined;
  } catch {
    return "vsce is not installed for the extension (npm ci --prefix editors/vscode)";
  }
}

test("vsce packages the extension into a .vsix holding the grammar", async (t) => {
  if (!requireParts(t, "the .vsix test", await vsceMissing())) return;
  const m = await manifest();
  // A copy: packaging writes syntaxes/ and the .vsix, never into the checkout.
  const dir = await mkdtemp(join(tmpdir(), "niftyc-vsix-"));
  const ext = join(dir, "vscode");
  await mkdir(join(ext, "syntaxes"), { recursive: true });
  for (const f of ["package.json", "package-lock.json", "language-configuration.json", m.main])
    await copyFile(join(EXTENSION, f), join(ext, f));
  await copyFile(GRAMMAR, join(ext, m.contributes.grammars[0]!.path));
  await symlink(join(EXTENSION, "node_modules"), join(ext, "node_modules"));
  const vsix = join(dir, "niftyfile.vsix");
  await run(
    join(EXTENSION, "node_modules/.bin/vsce"),
    ["package", "--out", vsix, "--allow-missing-repository", "--skip-license"],
    { cwd: ext, env: { ...process.env, npm_config_update_notifier: "false" } },
  );
  const { stdout } = await run("unzip", ["-Z1", vsix]);
  const files = stdout.split("\n");
  t.true(files.includes(`extension/${posix.normalize(m.contributes.grammars[0]!.path)}`), stdout);
  t.true(files.includes("extension/extension.js"));
  t.true(files.includes("extension/package.json"));
  t.true(files.some((f) => f.startsWith("extension/node_modules/vscode-languageclient/")));
  const { stdout: packed } = await run("unzip", [
    "-p",
    vsix,
    `extension/${posix.normalize(m.contributes.grammars[0]!.path)}`,
  ]);
  t.is(packed, await readFile(GRAMMAR, "utf8"));
});
