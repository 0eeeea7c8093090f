// docs/cache.md names the cache commands and flags the CLI has.
import test from "ava";
import { readFileSync } from "node:fs";
import { CACHE_HELP } from "../../src/cli/usage.ts";

const doc = readFileSync(new URL("../../docs/cache.md", import.meta.url), "utf8");

test("every `niftyc cache …` command and flag in docs/cache.md is in the CLI's help", (t) => {
  const uses = [...doc.matchAll(/niftyc cache (\w+)((?: --[\w-]+)*)/g)];
  t.true(uses.length >= 3);
  for (const [, command, flags] of uses) {
    t.true(new RegExp(`^  ${command}\\b`, "m").test(CACHE_HELP), `cache ${command}`);
    for (const flag of flags!.trim().split(/\s+/).filter(Boolean))
      t.true(CACHE_HELP.includes(flag), `cache ${command} ${flag}`);
  }
});
