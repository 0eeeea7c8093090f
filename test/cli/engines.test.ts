// package.json's engines say what installing needs, which is what npm checks:
// npm ci on the Node these machines ship (20) brings Node 24 along (the
// node@24 devDependency), and the launcher refuses an older Node itself. So
// npm ci there prints no EBADENGINE warnings.
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const SYSTEM_NODE = "/usr/bin/node";

test("npm ci --dry-run under the system's Node prints no EBADENGINE warning", (t) => {
  const version = spawnSync(SYSTEM_NODE, ["--version"], { encoding: "utf8" }).stdout.trim();
  if (!existsSync(SYSTEM_NODE) || version === "") {
    if (process.env.CI) t.fail("no system Node at /usr/bin/node");
    else t.log(`SKIPPED outside CI: no system Node at ${SYSTEM_NODE}`);
    t.pass();
    return;
  }
  const npm = spawnSync("npm", ["ci", "--dry-run", "--ignore-scripts", "--no-audit", "--no-fund"], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, PATH: `/usr/local/bin:/usr/bin:/bin` },
  });
  t.log(`system Node ${version}`);
  t.notRegex(npm.stderr + npm.stdout, /EBADENGINE/);
  t.regex(
    JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).devDependencies.node,
    /^\^24\./,
    "Node 24 comes with the package",
  );
});
