// Preloaded with --import: records every module URL the process loads, and
// writes the list to $NIFTY_TEST_LOADS at exit, so a test can prove which
// dependencies a command did not load.
import { registerHooks } from "node:module";
import { writeFileSync } from "node:fs";

const loaded: string[] = [];
registerHooks({
  load(url, context, nextLoad) {
    loaded.push(url);
    return nextLoad(url, context);
  },
});
process.on("exit", () => {
  if (process.env.NIFTY_TEST_LOADS) writeFileSync(process.env.NIFTY_TEST_LOADS, loaded.join("\n") + "\n");
});
