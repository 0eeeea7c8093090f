// BusyBox for two platforms, as FETCH … PLATFORM lines: the host's amd64 one and Debian's arm64
// one (cache/test-debs/, from scripts/test-debs.ts), both served from loopback.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { BUSYBOX_ARM64, cachedForeignDeb } from "./foreign-debs.ts";
import { serve, startServer } from "../fetch/helpers/server.ts";

/** The host's amd64 BusyBox and Debian's arm64 one, served from loopback: the FETCH lines of each platform. */
export async function busyboxes(
  t: import("ava").ExecutionContext,
): Promise<{ amd64: string; arm64: string } | undefined> {
  const deb = cachedForeignDeb(BUSYBOX_ARM64);
  if (deb === undefined) {
    if (process.env.CI) t.fail("the arm64 test .deb is not cached: run node scripts/test-debs.ts");
    else t.pass("the arm64 test .deb is not cached (node scripts/test-debs.ts)");
    return undefined;
  }
  const host = readFileSync("/bin/busybox");
  const server = await startServer({ "/arm64.deb": serve(deb), "/busybox": serve(host) });
  t.teardown(() => server.close());
  const digest = execFileSync("sha256sum", ["/bin/busybox"], { encoding: "utf8" }).split(" ")[0];
  return {
    amd64: `FETCH busybox ${server.url}/busybox sha256:${digest} TO /bin/busybox PLATFORM linux/amd64`,
    arm64: `FETCH busybox ${server.url}/arm64.deb sha256:${BUSYBOX_ARM64.sha256} EXTRACT bin/busybox PLATFORM linux/arm64`,
  };
}
