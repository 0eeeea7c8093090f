// COPY of a directory: its entries exist for the lines after it.
import test from "ava";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSource } from "../../src/check/source.ts";

test("a copied directory's files and subdirectories are known to later checks", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-copydir-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "site/bin"), { recursive: true });
  writeFileSync(join(dir, "site/index.html"), "<h1>hi</h1>\n");
  writeFileSync(join(dir, "site/bin/serve"), "#!/bin/sh\n", { mode: 0o755 });
  symlinkSync("serve", join(dir, "site/bin/start"));
  const text = [
    "COPY site /srv/www",
    "DIR /srv/www/uploads MODE 0750",
    "INITTAB respawn /srv/www/bin/start",
    "INITTAB once /srv/www/bin/missing",
    "",
  ].join("\n");
  const result = await checkSource(
    { path: join(dir, "web.nifty"), text },
    { args: new Map(), strict: false },
  );
  t.deepEqual(
    result.diagnostics.map((d) => `${d.span?.start.line}: ${d.code} ${d.message}`),
    ["4: NIFTY089 /srv/www/bin/missing is not provided by any earlier instruction"],
  );
});
