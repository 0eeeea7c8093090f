// docs/distribution.md names only flags that push and build have, and every push flag is documented.
import test from "ava";
import { readFileSync } from "node:fs";
import { BUILD_HELP, PUSH_HELP } from "../../src/cli/usage.ts";

const doc = readFileSync(new URL("../../docs/distribution.md", import.meta.url), "utf8");

test("every flag docs/distribution.md gives niftyc push or build is in that command's help", (t) => {
  const commands = [...doc.matchAll(/niftyc (push|build) ([^\n]*(?:\\\n[^\n]*)*)/g)];
  t.true(commands.length >= 5);
  for (const [, command, rest] of commands) {
    for (const [flag] of rest!.matchAll(/--[a-z][\w-]*/g)) {
      t.true(
        (command === "push" ? PUSH_HELP : `${BUILD_HELP}\n${PUSH_HELP}`).includes(`  ${flag}`),
        `niftyc ${command} ${flag}`,
      );
    }
  }
});

test("every flag of niftyc push --help is in docs/distribution.md", (t) => {
  for (const [, flag] of PUSH_HELP.matchAll(/^ {2}(--[\w-]+)/gm)) {
    if (flag === "--cache" || flag === "--json") continue;
    t.true(doc.includes(flag!), flag!);
  }
});
