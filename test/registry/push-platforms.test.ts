// A multi-platform build pushed to a real registry on loopback: an image index whose manifests
// name their platforms, each platform's image readable by skopeo, pushed again with nothing new.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { NODE, NIFTYC, baseEnv, tempDir } from "../pipeline/helpers.ts";
import { busyboxes } from "../support/platform-busybox.ts";
import { registerQemu } from "../support/binfmt.ts";
import { requireParts } from "../support/skip.ts";
import { spawnSync } from "node:child_process";
import { registryUnavailable, requireTools, run, startRegistry, type Registry } from "./helpers.ts";

const unavailable = registryUnavailable(["docker-registry", "skopeo"]);
let registry: Registry | undefined;
let work: string | undefined;

// Absolute paths throughout: the working directory does not matter.
const niftyc = (args: string[]) =>
  run(NODE, [NIFTYC, ...args], { env: baseEnv({ SOURCE_DATE_EPOCH: "1700000000" }), timeoutMs: 180_000 });

test.after.always(async () => {
  await registry?.stop();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

test("niftyc push of a linux/amd64,linux/arm64 build: skopeo inspect --raw shows the index with both platforms; podman run --platform runs each", async (t) => {
  if (!requireTools(t, unavailable)) return;
  const lines = await busyboxes(t);
  if (lines === undefined) return;
  work = await tempDir("niftyc-push-platforms-");
  registry = await startRegistry(work);
  const recipe = path.join(work, "bb.nifty");
  await fsp.writeFile(
    recipe,
    `FILE /etc/os-release <<EOF\nID=t\nEOF\n${lines.amd64}\n${lines.arm64}\nLINK /bin/busybox APPLETS\n`,
  );
  const out = path.join(work, "out");
  const built = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(work, "cache"),
    "--out",
    out,
    "-q",
    "--format",
    "oci,sbom",
    "--platform",
    "linux/amd64,linux/arm64",
  ]);
  t.is(built.code, 0, built.stderr);
  const ref = `${registry.host}/bb:multi`;
  const pushed = await niftyc([
    "push",
    out,
    ref,
    "--insecure",
    "--json",
    "--cache",
    path.join(work, "cache"),
  ]);
  t.is(pushed.code, 0, pushed.stderr);
  const result = JSON.parse(pushed.stdout) as {
    digest: string;
    pushed: string;
    referrers: Array<{ artifactType: string }>;
  };
  // Each platform's SBOM, a referrer of that platform's image.
  t.deepEqual(
    result.referrers.map((r) => r.artifactType),
    ["application/spdx+json", "application/spdx+json"],
  );
  const raw = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`]);
  t.is(raw.code, 0, raw.stderr);
  const index = JSON.parse(raw.stdout) as {
    mediaType: string;
    manifests: Array<{ digest: string; platform: { architecture: string; os: string; variant?: string } }>;
  };
  t.is(index.mediaType, "application/vnd.oci.image.index.v1+json");
  t.deepEqual(
    index.manifests.map((m) => m.platform),
    [
      { architecture: "amd64", os: "linux" },
      { architecture: "arm64", os: "linux", variant: "v8" },
    ],
  );
  const digest = await run("skopeo", [
    "inspect",
    "--format",
    "{{.Digest}}",
    "--tls-verify=false",
    `docker://${ref}`,
  ]);
  t.is(digest.stdout.trim(), result.digest, "the tag names the index niftyc pushed");
  const arm = await run("skopeo", [
    "inspect",
    "--override-arch",
    "arm64",
    "--tls-verify=false",
    `docker://${ref}`,
  ]);
  t.is(arm.code, 0, arm.stderr);
  t.is((JSON.parse(arm.stdout) as { Architecture: string }).Architecture, "arm64");
  const again = await niftyc(["push", out, ref, "--insecure", "--json", "--cache", path.join(work, "cache")]);
  t.is(again.code, 0, again.stderr);
  t.like(JSON.parse(again.stdout), { digest: result.digest, uploaded: 0 });

  // podman picks the platform's image from the index; arm64's runs through qemu-user (binfmt_misc).
  if (!requireParts(t, "podman run --platform", podmanUnavailable() ?? registerQemu("aarch64"))) return;
  const image = `${registry.host}/bb:multi`;
  t.teardown(() => run("podman", ["rmi", "--force", image]).then(() => undefined));
  const podman = [
    "--runtime",
    "runc",
    "run",
    "--rm",
    "--tls-verify=false",
    "--network",
    "host",
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=4096:4096",
  ];
  for (const [platform, machine] of [
    ["linux/arm64", "aarch64"],
    ["linux/amd64", "x86_64"],
  ] as const) {
    const ran = await run(
      "podman",
      [...podman, "--platform", platform, image, "/bin/busybox", "uname", "-m"],
      { timeoutMs: 180_000 },
    );
    t.is(ran.code, 0, ran.stderr);
    t.is(ran.stdout.trim(), machine);
  }
});

function podmanUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "podman run here needs root (runc)";
  return spawnSync("sh", ["-c", "command -v podman && command -v runc"]).status === 0
    ? undefined
    : "podman or runc is not installed";
}
