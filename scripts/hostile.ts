// The long hostile runs, beyond what CI's corpus (test/security/) does in a
// minute: 200 COPY builds against a flipping symlink, 100,000 generated
// recipes through the front end, a zstd bomb against the default limits, and
// draining past a 1 GiB member of an xz tarball (peak memory, in a child).
// Writes its last figures into docs/security.md between its markers.
//   npx node scripts/hostile.ts [--copy N] [--fuzz N]
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { checkSource } from "../src/check/source.ts";
import { build } from "../src/pipeline/build.ts";
import { BuildFailed } from "../src/pipeline/failure.ts";
import { recipeArbitraries } from "../test/support/arbitrary-recipes.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: { copy: { type: "string", default: "200" }, fuzz: { type: "string", default: "100000" }, drain: { type: "string" } } });

// Child mode: extract the member after a large one, then report this process's peak memory.
if (values.drain !== undefined) {
  const { openStore } = await import("../src/cache/store.ts");
  const { extractMember } = await import("../src/fetch/archive.ts");
  await extractMember(await openStore(path.join(path.dirname(values.drain), "cache")), values.drain, "small");
  console.log(process.resourceUsage().maxRSS);
  process.exit(0);
}

async function xzDrain(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-xz-"));
  try {
    await fsp.mkdir(path.join(dir, "t"));
    await fsp.writeFile(path.join(dir, "t/big"), "");
    await fsp.truncate(path.join(dir, "t/big"), 1024 ** 3);
    await fsp.writeFile(path.join(dir, "t/small"), "hi\n");
    const archive = path.join(dir, "bomb.tar.xz");
    await new Promise<void>((resolve, reject) => {
      const p = spawn("bash", ["-c", `tar -C "$D/t" -cf - big small | xz -T2 -1 > "$A"`], { env: { ...process.env, D: dir, A: archive }, stdio: "inherit" });
      p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`tar | xz: ${code}`))));
    });
    await fsp.rm(path.join(dir, "t"), { recursive: true });
    const size = (await fsp.stat(archive)).size;
    const started = performance.now();
    const out = await new Promise<string>((resolve, reject) => {
      let text = "";
      const p = spawn(process.execPath, [import.meta.filename, "--drain", archive], { stdio: ["ignore", "pipe", "inherit"] });
      p.stdout.on("data", (c: Buffer) => (text += c.toString()));
      p.once("exit", (code) => (code === 0 ? resolve(text.trim()) : reject(new Error(`drain: ${code}`))));
    });
    return `| Extract the member after a 1 GiB one from a ${Math.round(size / 1024)} KB xz tarball | ${((performance.now() - started) / 1000).toFixed(1)} s, peak ${Math.round(Number(out) / 1024)} MB RSS |`;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function copyRace(runs: number): Promise<string> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-race-"));
  const secret = path.join(root, "host-secret");
  await fsp.writeFile(secret, "HOST SECRET\n");
  await fsp.mkdir(path.join(root, "r/ctx/dir"), { recursive: true });
  await fsp.writeFile(path.join(root, "r/ctx/dir/f"), "inside\n");
  await fsp.writeFile(path.join(root, "r/race.nifty"), "COPY ctx/dir /srv/dir\n");
  const f = path.join(root, "r/ctx/dir/f");
  const flipper = spawn("bash", ["-c", `while :; do ln -sfn "$S" "$F.l"; mv -Tf "$F.l" "$F"; printf 'inside\\n' > "$F.n"; mv -Tf "$F.n" "$F"; done`], { env: { ...process.env, S: secret, F: f }, stdio: "ignore" });
  const counts = { built: 0, refused: 0, leaked: 0, internal: 0 };
  try {
    for (let i = 0; i < runs; i++) {
      const dir = path.join(root, `b${i}`);
      try {
        const result = await build({ recipePath: path.join(root, "r/race.nifty"), epoch: 0, cacheDir: path.join(dir, "cache"), outDir: () => path.join(dir, "out"), now: new Date(0), mirrors: async () => ({}), formats: ["rootfs"], offline: true });
        counts.built++;
        const tar = await fsp.readFile(result.rootfs);
        if (tar.includes("HOST SECRET")) counts.leaked++;
      } catch (error) {
        if (error instanceof BuildFailed) counts.refused++;
        else counts.internal++;
      }
      await fsp.rm(dir, { recursive: true, force: true });
    }
  } finally {
    flipper.kill("SIGKILL");
    await fsp.rm(root, { recursive: true, force: true });
  }
  return `| COPY while a file flips to a symlink to a host file (${runs} builds) | ${counts.built} built, ${counts.refused} refused (NIFTY800), ${counts.leaked} with the host file, ${counts.internal} internal errors |`;
}

async function fuzz(runs: number): Promise<string> {
  const valid = ["DIR /srv", "FILE /etc/motd <<EOF\nhi\nEOF", "ARG A=x", "ENV B=${A}", "INITTAB once /bin/sh", "USER u HOME /home/u", "LABEL a=b", "BIND RO /x"];
  const fragments = ["${", "}", "\"", "'", "\\", "\n", "\r", "\x1b", "\x00", "<<EOF", "EOF", "#", ":", "$A", "${A:-x}", "é", "\u{1F600}"];
  const { recipe, mutated } = recipeArbitraries(valid, fragments);
  let crashes = 0;
  const started = performance.now();
  const samples = [...fc.sample(recipe, Math.ceil(runs / 2)), ...fc.sample(mutated, Math.floor(runs / 2))];
  for (const text of samples) {
    try {
      await checkSource({ path: "fuzz.nifty", text }, { args: new Map([["A", "a\nb"]]), strict: false });
    } catch {
      crashes++;
    }
  }
  const s = ((performance.now() - started) / 1000).toFixed(1);
  return `| Generated and mutated recipes through parse and check (${runs.toLocaleString("en-US")}) | ${crashes} crashes, ${s} s |`;
}

async function bomb(): Promise<string> {
  // A tar whose one member is 5 GiB of zeros, zstd-compressed to a few hundred KB.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bomb-"));
  try {
    const archive = path.join(dir, "bomb.tar.zst");
    const { default: tarStream } = await import("tar-stream");
    const { createZstdCompress } = await import("node:zlib");
    const { pipeline } = await import("node:stream/promises");
    const { createWriteStream } = await import("node:fs");
    const pack = tarStream.pack();
    const done = pipeline(pack, createZstdCompress(), createWriteStream(archive));
    const { Readable } = await import("node:stream");
    const entry = pack.entry({ name: "big", size: 5 * 1024 ** 3 });
    const zeros = Buffer.alloc(1 << 20);
    await pipeline(Readable.from((function* () {
      for (let i = 0; i < 5 * 1024; i++) yield zeros;
    })()), entry as unknown as NodeJS.WritableStream);
    pack.finalize();
    await done;
    const size = (await fsp.stat(archive)).size;
    const { openStore } = await import("../src/cache/store.ts");
    const { extractMember } = await import("../src/fetch/archive.ts");
    const started = performance.now();
    const code = await extractMember(await openStore(path.join(dir, "cache")), archive, "big").then(() => "extracted", (e: { code?: string }) => e.code ?? "error");
    return `| A ${Math.round(size / 1024)} KB zstd tarball announcing a 5 GiB member, default limits | ${code} in ${(performance.now() - started).toFixed(0)} ms, nothing stored |`;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const rows = [await copyRace(Number(values.copy)), await fuzz(Number(values.fuzz)), await bomb(), await xzDrain()];
const body = ["| Run | Result |", "| --- | --- |", ...rows, "", `Measured with Node ${process.versions.node} on ${os.cpus()[0]?.model.trim() ?? "unknown CPU"}, ${new Date().toISOString().slice(0, 10)}.`].join("\n");
const file = path.join(ROOT, "docs/security.md");
const text = await fsp.readFile(file, "utf8");
const open = "<!-- hostile:figures -->";
const close = "<!-- /hostile:figures -->";
const start = text.indexOf(open);
const end = text.indexOf(close);
if (start < 0 || end < start) throw new Error("docs/security.md has no figures markers");
await fsp.writeFile(file, text.slice(0, start) + `${open}\n${body}\n${close}` + text.slice(end + close.length));
console.log(body);
