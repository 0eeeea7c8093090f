// `niftyc check` through main(argv, io) with fake streams: exit codes, text
// and JSON output, colour rules, help, usage mistakes; and once through the
// real binary.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";
import { main } from "../../src/cli/main.ts";
import { CHECK_HELP, MAIN_HELP } from "../../src/cli/usage.ts";
import type { CliIo } from "../../src/cli/io.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  argv: string[],
  options: { cwd?: string; tty?: boolean; env?: Record<string, string>; stdin?: string } = {},
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: options.tty ?? false },
    stderr: { write: (s: string) => (stderr += s), isTTY: options.tty ?? false },
    env: options.env ?? {},
    cwd: options.cwd ?? repo,
    ...(options.stdin !== undefined ? { readStdin: async () => options.stdin! } : {}),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const made: string[] = [];
process.once("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A directory holding the given recipes (removed when the tests are done). */
function recipes(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-check-"));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const BAD = "FECTH busybox\nDIR /tmp MODE 999\n";
const WARNS = "BIND RW /srv\n";
const ANSI = /\x1b\[/;
const STACK = /\n\s+at .+:\d+:\d+/;

test("a good recipe: exit 0 and one ok line", async (t) => {
  const r = await run(["check", "recipes/ssh.nifty"]);
  t.is(r.code, 0);
  t.is(r.stdout, "recipes/ssh.nifty: ok\n");
  t.is(r.stderr, "");
});

test("a bad recipe: exit 1, every error with its line, a summary, no stack trace", async (t) => {
  const cwd = recipes({ "bad.nifty": BAD });
  const r = await run(["check", "bad.nifty"], { cwd });
  t.is(r.code, 1);
  t.is(r.stdout, "");
  t.is(
    r.stderr,
    [
      "bad.nifty:1:1: error: unknown instruction FECTH [NIFTY010]",
      "    1 | FECTH busybox",
      "      | ^~~~~",
      "  hint: did you mean FETCH?",
      'bad.nifty:2:15: error: bad mode "999" [NIFTY033]',
      "    2 | DIR /tmp MODE 999",
      "      |               ^~~",
      "  hint: write an octal mode such as 0755, 0644 or 1777",
      "2 errors",
      "",
    ].join("\n"),
  );
  t.notRegex(r.stderr, STACK);
});

test("several recipes: all problems in one run, files named", async (t) => {
  const cwd = recipes({ "a.nifty": BAD, "b.nifty": "HOSTNAME -x\n", "ok.nifty": "HOSTNAME ok\n" });
  const r = await run(["check", "a.nifty", "b.nifty", "ok.nifty"], { cwd });
  t.is(r.code, 1);
  t.regex(r.stderr, /^a\.nifty:1:1: error/m);
  t.regex(
    r.stderr,
    /^b\.nifty:1:10: error: bad host name "-x": its label "-x" starts or ends with - \[NIFTY094\]/m,
  );
  t.regex(r.stderr, /^3 errors$/m);
  t.is(r.stdout, "ok.nifty: ok\n");
  const good = await run(["check", "ok.nifty", "ok.nifty"], { cwd });
  t.is(good.code, 0);
  t.is(good.stdout, "ok.nifty: ok\nok.nifty: ok\n");
});

test("several recipes: each clean file says ok in the single-file words, whatever the others hold", async (t) => {
  const cwd = recipes({ "bad.nifty": BAD, "ok.nifty": "HOSTNAME ok\n", "w.nifty": WARNS });
  const alone = await run(["check", "ok.nifty"], { cwd });
  t.is(alone.stdout, "ok.nifty: ok\n");
  const mixed = await run(["check", "ok.nifty", "bad.nifty", "missing.nifty", "w.nifty"], { cwd });
  t.is(mixed.code, 1);
  t.is(mixed.stdout, "ok.nifty: ok\nw.nifty: ok\n");
  t.regex(mixed.stderr, /^bad\.nifty:1:1: error/m);
  t.regex(mixed.stderr, /^missing\.nifty: error: /m);
  // --strict: the file whose warning became an error is no longer clean.
  const strict = await run(["check", "--strict", "w.nifty", "ok.nifty"], { cwd });
  t.is(strict.code, 1);
  t.is(strict.stdout, "ok.nifty: ok\n");
  // --json keeps its one object.
  const json = await run(["check", "--json", "ok.nifty", "bad.nifty"], { cwd });
  t.is(json.code, 1);
  t.false((JSON.parse(json.stdout) as { ok: boolean }).ok);
});

test("warnings: exit 0 and printed; --strict makes them errors, exit 1", async (t) => {
  const cwd = recipes({ "w.nifty": WARNS });
  const r = await run(["check", "w.nifty"], { cwd });
  t.is(r.code, 0);
  t.regex(r.stderr, /^w\.nifty:1:6: warning: the container can write to the host's \/srv \[NIFTY097\]$/m);
  t.regex(r.stderr, /^1 warning$/m);
  t.is(r.stdout, "w.nifty: ok\n");
  const strict = await run(["check", "--strict", "w.nifty"], { cwd });
  t.is(strict.code, 1);
  t.regex(strict.stderr, /^w\.nifty:1:6: error: the container can write/m);
  t.is(strict.stdout, "");
});

test("BIND of the host's / or a system directory: an error at the host path's line and column; --allow-system-binds lets it through", async (t) => {
  const system = [
    "BIND RW /",
    "BIND RO /etc/",
    "BIND RW /usr/./lib//:/mnt/lib",
    "BIND RO /var",
    "BIND RO /root/.ssh:/keys",
    "BIND RO /run/docker.sock:/run/docker.sock",
    "BIND /proc/sys/kernel",
    "BIND RW /var/lib/machines",
  ];
  const fine = [
    "BIND RO /usr/share/zoneinfo",
    "BIND RW /srv/data",
    "BIND RO /etc/ssl/certs",
    "BIND RW /variable",
  ];
  const cwd = recipes({ "sys.nifty": [...system, ...fine].join("\n") + "\n" });
  const r = await run(["check", "sys.nifty"], { cwd });
  t.is(r.code, 1);
  const errors = [...r.stderr.matchAll(/^sys\.nifty:(\d+):(\d+): error: (.*) \[NIFTY025\]$/gm)].map((m) => [
    Number(m[1]),
    Number(m[2]),
    m[3],
  ]);
  t.deepEqual(
    errors.map(([line]) => line),
    [1, 2, 3, 4, 5, 6, 7, 8],
    r.stderr,
  );
  t.deepEqual(errors[0], [1, 9, "binding / gives the container the host's whole file system"]);
  t.deepEqual(
    errors[1],
    [2, 9, "binding /etc gives the container the host's /etc"],
    "the trailing slash is resolved",
  );
  t.deepEqual(errors[2], [3, 9, "binding /usr/lib gives the container part of the host's /usr, writable"]);
  t.deepEqual(errors[3], [4, 9, "binding /var gives the container the host's /var/run, which is under it"]);
  t.deepEqual(
    errors[6],
    [7, 6, "binding /proc/sys/kernel gives the container part of the host's /proc"],
    "BIND without RO or RW",
  );
  t.regex(r.stderr, /hint: bind a directory of its own, or pass --allow-system-binds/);
  t.regex(r.stderr, /^8 errors/m, "the fine binds raise nothing");
  const allowed = await run(["check", "--allow-system-binds", "sys.nifty"], { cwd });
  t.is(allowed.code, 0, allowed.stderr);
  t.notRegex(allowed.stderr, /NIFTY025/);
});

test("--arg values reach the recipe; a malformed --arg is a usage error", async (t) => {
  const cwd = recipes({ "a.nifty": "ARG PORT\nEXPOSE ${PORT}\n" });
  t.is((await run(["check", "a.nifty"], { cwd })).code, 1);
  t.is((await run(["check", "a.nifty", "--arg", "PORT=2200"], { cwd })).code, 0);
  const bad = await run(["check", "a.nifty", "--arg", "PORT"], { cwd });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^niftyc: --arg takes NAME=VALUE, got "PORT"$/m);
});

test("--json: one object on stdout with every key of every diagnostic", async (t) => {
  const cwd = recipes({ "bad.nifty": BAD, "w.nifty": WARNS });
  const r = await run(["check", "--json", "bad.nifty"], { cwd });
  t.is(r.code, 1);
  t.is(r.stderr, "");
  t.true(r.stdout.endsWith("\n"));
  t.deepEqual(JSON.parse(r.stdout), {
    ok: false,
    diagnostics: [
      {
        severity: "error",
        code: "NIFTY010",
        message: "unknown instruction FECTH",
        file: "bad.nifty",
        line: 1,
        column: 1,
        endLine: 1,
        endColumn: 6,
        hint: "did you mean FETCH?",
      },
      {
        severity: "error",
        code: "NIFTY033",
        message: 'bad mode "999"',
        file: "bad.nifty",
        line: 2,
        column: 15,
        endLine: 2,
        endColumn: 18,
        hint: "write an octal mode such as 0755, 0644 or 1777",
      },
    ],
  });
  const ok = await run(["check", "--json", "w.nifty"], { cwd });
  t.is(ok.code, 0);
  const parsed = JSON.parse(ok.stdout) as {
    ok: boolean;
    diagnostics: Array<{ severity: string; code: string }>;
  };
  t.true(parsed.ok);
  t.deepEqual(
    parsed.diagnostics.map((d) => [d.severity, d.code]),
    [["warning", "NIFTY097"]],
  );
  const unused = await run(["check", "--json", "w.nifty", "--arg", "X=1"], { cwd });
  const spanless = (
    JSON.parse(unused.stdout) as { diagnostics: Array<Record<string, unknown>> }
  ).diagnostics.find((d) => d["code"] === "NIFTY012");
  t.like(spanless, { file: "w.nifty", line: null, column: null, endLine: null, endColumn: null, hint: null });
});

test("platforms at check time: NIFTY255 for a platform the PLATFORM line lists without its FETCH; --platform checks those asked, NIFTY256 for one the line does not list", async (t) => {
  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  const fetches = [
    `FETCH tool https://example.org/tool-amd64 ${digest("a")} TO /bin/tool MODE 0755 PLATFORM linux/amd64`,
    `FETCH tool https://example.org/tool-arm64 ${digest("b")} TO /bin/tool MODE 0755 PLATFORM linux/arm64`,
  ].join("\n");
  const cwd = recipes({
    "listed.nifty": `PLATFORM linux/amd64 linux/arm64 linux/arm/v7\n${fetches}\n`,
    "free.nifty": `${fetches}\n`,
    "both.nifty": `PLATFORM linux/amd64 linux/arm64\n${fetches}\n`,
  });
  const listed = await run(["check", "listed.nifty"], { cwd });
  t.is(listed.code, 1);
  t.true(
    listed.stderr.includes(
      "listed.nifty:2:1: error: FETCH tool has no source and digest for platform linux/arm/v7 (it has linux/amd64, linux/arm64) [NIFTY255]",
    ),
    listed.stderr,
  );
  t.regex(listed.stderr, /^1 error$/m);

  // No PLATFORM line: any platform may be built, so only --platform says which to check.
  t.is((await run(["check", "free.nifty"], { cwd })).code, 0);
  const riscv = await run(["check", "free.nifty", "--platform", "linux/amd64,linux/riscv64"], { cwd });
  t.is(riscv.code, 1);
  t.true(
    riscv.stderr.includes("platform linux/riscv64 (it has linux/amd64, linux/arm64) [NIFTY255]"),
    riscv.stderr,
  );
  t.false(riscv.stderr.includes("linux/amd64 ("), "linux/amd64 has its FETCH");

  t.is((await run(["check", "both.nifty"], { cwd })).code, 0);
  const unsupported = await run(["check", "both.nifty", "--platform", "arm64,armhf", "--json"], { cwd });
  t.is(unsupported.code, 1);
  const json = JSON.parse(unsupported.stdout) as {
    ok: boolean;
    diagnostics: Array<{ code: string; line?: number }>;
  };
  t.false(json.ok);
  t.deepEqual(
    json.diagnostics.map((d) => d.code),
    ["NIFTY256", "NIFTY255"],
  );
  const unknown = await run(["check", "both.nifty", "--platform", "linux/arm65"], { cwd });
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown platform "linux\/arm65" \(did you mean linux\/arm64\?/);
});

test("colour only on a terminal, never with NO_COLOR or TERM=dumb", async (t) => {
  const cwd = recipes({ "bad.nifty": BAD });
  const tty = await run(["check", "bad.nifty"], { cwd, tty: true });
  t.regex(tty.stderr, ANSI);
  t.true(tty.stderr.includes("\x1b[1;31merror:\x1b[0m"));
  t.notRegex((await run(["check", "bad.nifty"], { cwd, tty: false })).stderr, ANSI);
  t.notRegex((await run(["check", "bad.nifty"], { cwd, tty: true, env: { NO_COLOR: "1" } })).stderr, ANSI);
  t.notRegex((await run(["check", "bad.nifty"], { cwd, tty: true, env: { TERM: "dumb" } })).stderr, ANSI);
  // JSON is data: never coloured.
  t.notRegex((await run(["check", "--json", "bad.nifty"], { cwd, tty: true })).stdout, ANSI);
});

test("--help and help: exit 0 with the usage on stdout", async (t) => {
  const check = await run(["check", "--help"]);
  t.is(check.code, 0);
  t.is(check.stdout, CHECK_HELP + "\n");
  t.is((await run(["check", "-h"])).stdout, CHECK_HELP + "\n");
  const top = await run(["--help"]);
  t.is(top.code, 0);
  t.is(top.stdout, MAIN_HELP + "\n");
  t.is((await run(["help"])).code, 0);
});

test("usage mistakes exit 2: no command, no recipe, unknown option, unknown command with a suggestion", async (t) => {
  const none = await run([]);
  t.is(none.code, 2);
  t.is(none.stdout, MAIN_HELP + "\n");
  const noRecipe = await run(["check"]);
  t.is(noRecipe.code, 2);
  t.true(noRecipe.stderr.startsWith("niftyc: check needs at least one recipe\n"));
  // The usage line and where the rest is: the mistake stays on screen, not under the whole help.
  t.true(
    noRecipe.stderr.includes(`\n${CHECK_HELP.split("\n")[0]}\nRun niftyc check --help for every option.\n`),
  );
  t.false(noRecipe.stderr.includes(CHECK_HELP));
  const option = await run(["check", "--bogus", "recipes/ssh.nifty"]);
  t.is(option.code, 2);
  t.regex(option.stderr, /^niftyc: Unknown option '--bogus'/);
  const misspelt = await run(["check", "--stirct", "recipes/ssh.nifty"]);
  t.is(misspelt.code, 2);
  t.regex(misspelt.stderr, /^niftyc: Unknown option '--stirct' — did you mean --strict\?\n/);
  const typo = await run(["chek", "recipes/ssh.nifty"]);
  t.is(typo.code, 2);
  t.true(typo.stderr.startsWith('niftyc: unknown command "chek" — did you mean check?\n'));
  const far = await run(["frobnicate"]);
  t.is(far.code, 2);
  t.true(far.stderr.startsWith('niftyc: unknown command "frobnicate"\n'));
});

test("a missing recipe: exit 1, a diagnostic of that file, no stack trace", async (t) => {
  const cwd = recipes({});
  const r = await run(["check", "nothere.nifty"], { cwd });
  t.is(r.code, 1);
  t.is(
    r.stderr,
    "nothere.nifty: error: recipe nothere.nifty does not exist [NIFTY208]\n  hint: recipes are files such as recipes/ssh.nifty\n1 error\n",
  );
  mkdirSync(join(cwd, "sub"));
  const dir = await run(["check", "sub"], { cwd });
  t.is(dir.code, 1);
  t.is(
    dir.stderr,
    "sub: error: sub is a directory with no recipe in it [NIFTY209]\n  hint: give a recipe file, or put a Niftyfile (or one .nifty file) in the directory\n1 error\n",
  );
  // A directory with one recipe stands for it; with several, the error names them.
  writeFileSync(join(cwd, "sub", "web.nifty"), "HOSTNAME web\n");
  t.is((await run(["check", "sub"], { cwd })).stdout, "sub/web.nifty: ok\n");
  writeFileSync(join(cwd, "sub", "db.nifty"), "HOSTNAME db\n");
  const two = await run(["check", "sub"], { cwd });
  t.is(two.code, 1);
  t.regex(two.stderr, /sub holds 2 recipes: db\.nifty, web\.nifty \[NIFTY209\]/);
});

test("no input mistake produces a stack trace or an internal error", async (t) => {
  const hostile = [
    "\u0000\uFEFF\r\n\\",
    "FILE /x <<EOF\n",
    'LABEL "a\nUSER root PASSWORD-HASH ""\nINITTAB respawn /bin/dropbear',
    "SYMLINK /a /b\nSYMLINK /b /a\nLINK /a/x y\nUSER u SHELL /a/sh\nKEYGEN dropbear\nINITTAB once /a/x",
    "DIR ${\nENV =\nARG =\nCOPY / /\nCOPY . /\nBIND :\nEXPOSE /\nFETCH x x x x x",
  ];
  const cwd = recipes(Object.fromEntries(hostile.map((text, i) => [`h${i}.nifty`, text])));
  for (const i of hostile.keys()) {
    const r = await run(["check", `h${i}.nifty`], { cwd });
    t.true(r.code === 0 || r.code === 1, `h${i}: exit ${r.code}`);
    t.notRegex(r.stderr, STACK);
    t.false(r.stderr.includes("internal error"));
  }
});

test("the real binary: npx niftyc check", async (t) => {
  const cwd = recipes({ "bad.nifty": BAD });
  const exec = promisify(execFile);
  const good = await exec("npx", ["niftyc", "check", "recipes/ssh.nifty"], {
    cwd: repo,
    env: { ...process.env, NO_COLOR: "1" },
  });
  t.is(good.stdout, "recipes/ssh.nifty: ok\n");
  const bad = await exec("npx", ["--prefix", repo, "niftyc", "check", "bad.nifty"], {
    cwd,
    env: { ...process.env, NO_COLOR: "1" },
  }).then(
    () => undefined,
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
  t.not(bad, undefined, "a bad recipe must fail");
  t.is(bad?.code, 1);
  t.regex(bad?.stderr ?? "", /^bad\.nifty:1:1: error: unknown instruction FECTH \[NIFTY010\]$/m);
  t.notRegex(bad?.stderr ?? "", ANSI);
});

test("niftyc check loads neither node:crypto, the store nor the lock code", async (t) => {
  const loads = join(mkdtempSync(join(tmpdir(), "niftyc-check-loads-")), "loads.txt");
  made.push(dirname(loads));
  const hook = join(repo, "test/pipeline/record-loads.ts");
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", hook, join(repo, "bin/niftyc"), "check", "recipes/ssh.nifty"],
    { cwd: repo, env: { ...process.env, NIFTY_TEST_LOADS: loads } },
  );
  t.is(stdout, "recipes/ssh.nifty: ok\n");
  const loaded = readFileSync(loads, "utf8");
  // The hook sees the front end, so its silence below means something.
  t.regex(loaded, /grammar\/tokens\.ts/);
  t.regex(loaded, /src\/instructions\/copy\.ts/);
  t.notRegex(loaded, /^node:crypto$/m);
  t.notRegex(loaded, /src\/cache\/store\.ts|src\/debian\/lockfile\.ts/);
});

test("several recipes, one missing and one not UTF-8: every file's problems, as text and as JSON", async (t) => {
  const cwd = recipes({ "a.nifty": "DIR relative\n" });
  writeFileSync(join(cwd, "latin1.nifty"), Buffer.from("DIR /caf\xe9\n", "latin1"));
  const files = ["a.nifty", "missing.nifty", "latin1.nifty"];
  const json = await run(["check", "--json", ...files], { cwd });
  t.is(json.code, 1);
  const parsed = JSON.parse(json.stdout) as {
    ok: boolean;
    diagnostics: Array<{ code: string; file: string }>;
  };
  t.false(parsed.ok);
  t.deepEqual(
    parsed.diagnostics.map((d) => [d.file, d.code]),
    [
      ["a.nifty", "NIFTY038"],
      ["missing.nifty", "NIFTY208"],
      ["latin1.nifty", "NIFTY801"],
    ],
  );
  const text = await run(["check", ...files], { cwd });
  t.is(text.code, 1);
  t.regex(text.stderr, /^a\.nifty:1:5: error: .* \[NIFTY038\]$/m);
  t.regex(text.stderr, /^missing\.nifty: error: recipe missing\.nifty does not exist \[NIFTY208\]$/m);
  t.regex(text.stderr, /^latin1\.nifty: error: recipe latin1\.nifty is not valid UTF-8 .*\[NIFTY801\]$/m);
  t.regex(text.stderr, /^3 errors$/m);
});

test("a recipe file name no output can take is NIFTY809 in check too, with a name that works", async (t) => {
  const long = "x".repeat(70);
  const cwd = recipes({
    "My Recipe.nifty": "HOSTNAME a\n",
    "ünï.nifty": "HOSTNAME a\n",
    [`${long}.nifty`]: "",
  });
  const r = await run(["check", "My Recipe.nifty", "ünï.nifty", `${long}.nifty`], { cwd });
  t.is(r.code, 1);
  const hints = [...r.stderr.matchAll(/rename the recipe file \(e\.g\. (\S+)\.nifty\)/g)].map((m) => m[1]);
  t.deepEqual(hints, ["my-recipe", "uni", "x".repeat(64)]);
  t.is([...r.stderr.matchAll(/\[NIFTY809\]/g)].length, 3);
  t.regex(r.stderr, /^My Recipe\.nifty: error: the recipe's name "My Recipe"/m);
});

test("check - reads the recipe from standard input, named stdin, as build - does", async (t) => {
  const bad = await run(["check", "-"], { stdin: "DIR rel\n" });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^stdin:1:5: error: "rel" is not an absolute path inside the image \[NIFTY038\]/);
  const good = await run(["check", "-", "--json"], { stdin: "DIR /ok\n" });
  t.is(good.code, 0, good.stderr);
  t.deepEqual(JSON.parse(good.stdout), { ok: true, diagnostics: [] });
  const twice = await run(["check", "-", "-"], { stdin: "DIR /ok\n" });
  t.is(twice.code, 2);
});
