// The language server parses a version of a document once, answers
// completion from that parse, and checks it later (loadFrontEnd's parse and
// checkParsed): its diagnostics must be checkSource's for the same text, so
// an editor shows what `niftyc check` prints, however often the parse is used.
import { readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { checkSource, loadFrontEnd } from "../../src/check/source.ts";

const negative = new URL("fixtures-negative/", import.meta.url);

test("a parse checked later, and twice, gives checkSource's diagnostics", async (t) => {
  const front = await loadFrontEnd();
  const names = readdirSync(negative).filter((n) => !n.includes("."));
  t.true(names.length > 10);
  for (const name of names) {
    const source = {
      path: `test/check/fixtures-negative/${name}/recipe.nifty`,
      text: readFileSync(new URL(`${name}/recipe.nifty`, negative), "utf8"),
    };
    const options = { args: new Map<string, string>(), strict: false };
    const parsed = front.parse(source);
    const first = front.checkParsed(source, parsed, options);
    const second = front.checkParsed(source, parsed, options);
    const whole = await checkSource(source, options);
    t.deepEqual(first.diagnostics, whole.diagnostics, name);
    t.deepEqual(second.diagnostics, whole.diagnostics, name);
  }
});

test("a recipe over the limit is not parsed and gets checkSource's NIFTY802", async (t) => {
  const front = await loadFrontEnd();
  const source = { path: "big.nifty", text: "#".repeat((1 << 20) + 1) };
  const options = { args: new Map<string, string>(), strict: false };
  const parsed = front.parse(source);
  t.is(parsed, undefined);
  t.deepEqual(
    front.checkParsed(source, parsed, options).diagnostics,
    (await checkSource(source, options)).diagnostics,
  );
});
