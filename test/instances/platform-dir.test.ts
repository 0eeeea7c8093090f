// instances and run given a build directory and --platform: the directory must be that platform's
// build (its --platform cannot be chosen after the fact), and a several-platform build's top
// directory is answered with its platforms' directories.
import test from "ava";
import { join } from "node:path";
import { buildBox, niftyc } from "./helpers.ts";

test("a build directory of another platform than --platform is refused, and a several-platform one names its platforms", (t) => {
  const { dir, built } = buildBox(
    t,
    "FILE /etc/os-release <<EOF\nID=box\nEOF\n",
    "multi",
    "--platform",
    "linux/amd64,linux/arm64",
  );
  t.is(built.status, 0, built.stderr);
  const wrong = niftyc(
    dir,
    "instances",
    "multi/linux-arm64",
    "--count",
    "1",
    "--out",
    join(dir, "i"),
    "--platform",
    "linux/amd64",
  );
  t.is(wrong.status, 1, wrong.stderr);
  t.regex(wrong.stderr, /multi\/linux-arm64 is a build for linux\/arm64, not for linux\/amd64 \[NIFTY420\]/);
  const runWrong = niftyc(dir, "run", "multi/linux-arm64", "--platform", "linux/amd64", "--", "/bin/true");
  t.is(runWrong.status, 1, runWrong.stderr);
  t.regex(runWrong.stderr, /is a build for linux\/arm64, not for linux\/amd64 \[NIFTY759\]/);
  const top = niftyc(dir, "instances", "multi", "--count", "1", "--out", join(dir, "i"));
  t.is(top.status, 1, top.stderr);
  t.regex(
    top.stderr,
    /hint: it holds a build for each of several platforms: give one of them, multi\/linux-amd64, multi\/linux-arm64/,
  );
  const right = niftyc(
    dir,
    "instances",
    "multi/linux-arm64",
    "--count",
    "1",
    "--out",
    join(dir, "i"),
    "--platform",
    "linux/arm64",
  );
  t.is(right.status, 0, right.stderr);
});
