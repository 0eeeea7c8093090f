// docs/run.md and `niftyc run --help` name the same options, and the main
// help and the README mention the command.
import test from "ava";
import { readFileSync } from "node:fs";
import { RUN_HELP } from "../../src/cli/run.ts";
import { MAIN_HELP } from "../../src/cli/usage.ts";

const root = new URL("../../", import.meta.url);
const doc = readFileSync(new URL("docs/run.md", root), "utf8");

/** The long options of the help's Options section. */
const helpFlags = [
  ...RUN_HELP.slice(RUN_HELP.indexOf("Options:")).matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm),
].map((m) => m[1]!);

test("every option of niftyc run --help is in docs/run.md", (t) => {
  t.true(helpFlags.length >= 10);
  for (const flag of helpFlags) t.true(doc.includes(`\`${flag}`), flag);
});

test("every niftyc run option docs/run.md shows in bold, or in its examples, is in the help", (t) => {
  const bold = [...doc.matchAll(/\*\*`(--[\w-]+)/g)].map((m) => m[1]!);
  const examples = [...doc.matchAll(/niftyc run [^\n`]*/g)].flatMap((m) =>
    [...m[0].matchAll(/ (--[\w-]+)/g)].map((f) => f[1]!),
  );
  t.true(bold.length >= 4 && examples.length >= 3);
  for (const flag of [...bold, ...examples].filter((f) => f !== "--help"))
    t.true(RUN_HELP.includes(flag), flag);
});

test("the main help and the README mention niftyc run and docs/run.md", (t) => {
  t.regex(MAIN_HELP, /niftyc run <recipe\|build>/);
  t.regex(MAIN_HELP, /docs\/run\.md/);
  const readme = readFileSync(new URL("README.md", root), "utf8");
  t.regex(readme, /niftyc run <recipe\|build-dir>/);
  t.regex(readme, /docs\/run\.md/);
  t.regex(readme, /bubblewrap, uidmap/);
  t.regex(readFileSync(new URL(".ci/run", root), "utf8"), /podman bubblewrap uidmap/);
});

test("the help says what Ctrl-] three times does under nspawn, as docs/run.md does: it kills the container", (t) => {
  t.regex(doc, /Ctrl-\] three times within a second \*\*kills\*\* the container \(SIGKILL/);
  const help = RUN_HELP.replace(/\s+/g, " ");
  t.regex(
    help,
    /Ctrl-\] three times within a second KILLS the container \(SIGKILL to everything in it, no clean shutdown/,
  );
  t.notRegex(help, /leaves nspawn/, "it does not leave a container running");
  t.regex(help, /--stop NAME/, "and says how to stop it cleanly instead");
});
