// The tests' own port reservations (freePorts): a run another live test process holds is not
// handed out again; one whose process is gone is taken over.
import test from "ava";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { RESERVED, reserve } from "./net.ts";

// Ports far above every band freePorts uses, so no other test's run is touched.
const FIRST = 60_100;

function holdBy(pid: number, ports: number[]): void {
  mkdirSync(RESERVED, { recursive: true });
  for (const port of ports) writeFileSync(join(RESERVED, String(port)), String(pid));
}

test.serial(
  "a run that a live process holds a port of is refused, and nothing of it is left reserved",
  (t) => {
    t.teardown(() => {
      for (let p = FIRST; p < FIRST + 3; p++) rmSync(join(RESERVED, String(p)), { force: true });
    });
    holdBy(process.ppid, [FIRST + 2]);
    t.false(reserve(FIRST, 3));
    t.is(readFileSync(join(RESERVED, String(FIRST + 2)), "utf8"), String(process.ppid));
    t.throws(
      () => readFileSync(join(RESERVED, String(FIRST))),
      { code: "ENOENT" },
      "the ports before it let go",
    );
  },
);

test.serial("a run whose holder has exited is taken over", (t) => {
  t.teardown(() => {
    for (let p = FIRST; p < FIRST + 3; p++) rmSync(join(RESERVED, String(p)), { force: true });
  });
  const gone = spawnSync("true").pid!;
  holdBy(gone, [FIRST, FIRST + 1]);
  t.true(reserve(FIRST, 3));
  for (let p = FIRST; p < FIRST + 3; p++)
    t.is(readFileSync(join(RESERVED, String(p)), "utf8"), String(process.pid));
});
