// The archive fixture itself, checked by the real apt: the good view is a
// valid signed archive (apt-get update takes it and resolves against it),
// and every bad variant is bad in apt's eyes too. Synthetic packages are
// reproducible.
import test from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { Variant } from "../support/debian-archive.ts";
import { buildSyntheticDeb, debianArchive, requireArchive, SYNTHETIC } from "../support/debian-archive.ts";
import { tempDir } from "../fetch/helpers/util.ts";

const run = promisify(execFile);

/** apt-get/apt-cache against one view, in a private state directory; Valid-Until and Date checked even where the host's apt turns that off. */
async function apt(variant: Variant, ...commands: string[][]): Promise<{ code: number; out: string }[]> {
  const a = await debianArchive();
  const view = a.view(variant);
  const d = await tempDir("niftyc-apt-");
  for (const sub of [
    "lists/partial",
    "cache/archives/partial",
    "etc/apt.conf.d",
    "etc/preferences.d",
    "etc/sources.list.d",
  ])
    await fsp.mkdir(path.join(d, sub), { recursive: true });
  await fsp.writeFile(path.join(d, "status"), "");
  const opt = `[signed-by=${a.keyring} check-valid-until=yes check-date=yes]`;
  await fsp.writeFile(
    path.join(d, "etc/sources.list"),
    `deb ${opt} ${view.url}/debian bookworm main\ndeb ${opt} ${view.url}/debian-security bookworm-security main\n`,
  );
  const o = (k: string, v: string) => ["-o", `${k}=${v}`];
  const opts = [
    ...o("Dir::Etc", `${d}/etc`),
    ...o("Dir::State::Lists", `${d}/lists`),
    ...o("Dir::Cache", `${d}/cache`),
    ...o("Dir::State::status", `${d}/status`),
    ...o("APT::Sandbox::User", "root"),
    ...o("Debug::NoLocking", "1"),
    ...o("APT::Architecture", "amd64"),
    ...o("APT::Architectures", "amd64"),
  ];
  const out: { code: number; out: string }[] = [];
  for (const [tool, ...args] of commands) {
    // Asynchronous: the fixture's server runs in this process.
    const r = await run(tool!, [...opts, ...args]).then(
      (x) => ({ code: 0, out: x.stdout + x.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
    out.push(r);
  }
  return out;
}

test("apt-get update takes the good archive without a warning, and resolves against both suites", async (t) => {
  if (!requireArchive(t)) return;
  const [update, policy, install] = await apt(
    "good",
    ["apt-get", "update"],
    ["apt-cache", "policy", "nifty-lib"],
    ["apt-get", "-s", "install", "nifty-app", "nifty-secure", "dropbear-bin"],
  );
  t.is(update!.code, 0, update!.out);
  t.notRegex(update!.out, /^(W|E):/m);
  t.regex(policy!.out, /Candidate: 1\.1-1/);
  t.is(install!.code, 0, install!.out);
  t.regex(install!.out, /^Inst nifty-lib \(1\.1-1 Debian-Security:stable-security \[amd64\]\)/m);
  t.regex(install!.out, /^Inst nifty-pager /m);
  t.regex(install!.out, /^Inst libtomcrypt1 /m);
});

const refusals: [Variant, RegExp][] = [
  ["bad-signature", /BADSIG/],
  ["unknown-key", /NO_PUBKEY/],
  ["expired-key", /EXPKEYSIG/],
  ["weak-digest", /The following signatures were invalid/],
  ["expired", /is expired/],
  ["tampered-packages", /Failed to fetch .*Packages\.xz/],
];

for (const [variant, message] of refusals) {
  test(`apt refuses the ${variant} variant too`, async (t) => {
    if (!requireArchive(t)) return;
    const [update] = await apt(variant, ["apt-get", "update"]);
    t.regex(update!.out, message);
    t.regex(update!.out, /^E:/m);
  });
}

test("synthetic packages are reproducible: built again, the same bytes", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const dir = await tempDir("niftyc-synthetic-");
  for (const spec of SYNTHETIC.filter((s) => s.name === "nifty-base" || s.name === "nifty-app")) {
    const deb = await buildSyntheticDeb(spec, path.join(dir, "work"), path.join(dir, "out"));
    t.is(
      `sha256:${createHash("sha256")
        .update(await fsp.readFile(deb))
        .digest("hex")}`,
      a.pkg(spec.name).sha256,
      spec.name,
    );
  }
});

test("the tampered .deb variant changes every package, one byte each", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const view = a.view("tampered-deb");
  const p = a.pkg("nifty-data");
  const res = await fetch(`${view.url}/${p.from.archive}/${p.filename}`);
  const served = Buffer.from(await res.arrayBuffer());
  const real = await fsp.readFile(p.path);
  t.is(served.length, real.length);
  t.is([...served].filter((b, i) => b !== real[i]).length, 1);
  t.is(
    (await fetch(`${view.url}/gnupg/pubring.kbx`)).status,
    404,
    "the keys beside the archive are never served",
  );
});
