// The in-process xz decoder (src/fetch/xz.ts) against hostile and unusual
// input, with both addons it may use: a declared dictionary over the limit is
// refused before anything is decoded, damage is reported in the xz tool's
// words, a bomb is decoded only as fast as it is read, and every framing the
// xz tool writes decodes to the same bytes. It runs in the .deb reader
// threads too.
import test from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import fc from "fast-check";
import { crc32 } from "node:zlib";
import { openStore } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { extractMember } from "../../src/fetch/archive.ts";
import { createXzDecoder, xzEngine, XzError } from "../../src/fetch/xz.ts";
import type { XzEngine } from "../../src/fetch/xz.ts";
import { tempDir } from "./helpers/util.ts";

const run = promisify(execFile);

async function xz(input: Buffer, ...options: string[]): Promise<Buffer> {
  const child = execFile("xz", ["-c", ...options], { encoding: "buffer", maxBuffer: 1 << 28 });
  child.stdin!.end(input);
  const chunks: Buffer[] = [];
  for await (const chunk of child.stdout!) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const ENGINES: XzEngine[] = ["node-liblzma", "lzma-native"];

async function decode(input: Buffer | Buffer[], engine: XzEngine = xzEngine()): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(Array.isArray(input) ? input : [input]).pipe(
    createXzDecoder(engine),
  )) {
    // Readers (the index parser's latin1 decoding) take Buffers, not plain Uint8Arrays.
    if (!Buffer.isBuffer(chunk)) throw new Error("the decoder gave a chunk that is not a Buffer");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The same xz with the block header at `offset` (12: a stream's first) declaring the dictionary of size property `prop` (40: 4 GiB). */
function withDictionary(stream: Buffer, prop: number, offset = 12): Buffer {
  const out = Buffer.from(stream);
  const size = (out[offset]! + 1) * 4;
  const header = out.subarray(offset, offset + size);
  const at = header.indexOf(Buffer.of(0x21, 0x01), 2); // the LZMA2 filter and its one properties byte
  if (at === -1 || header[at + 2]! > 40) throw new Error("no LZMA2 filter in the block header");
  header[at + 2] = prop;
  header.writeUInt32LE(crc32(header.subarray(0, size - 4)), size - 4);
  return out;
}

/** Where each block header starts, as the xz tool lists them. */
async function blockOffsets(file: string): Promise<number[]> {
  const { stdout } = await run("xz", ["--robot", "--list", "-vv", file]);
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("block\t"))
    .map((l) => Number(l.split("\t")[4]));
}

const sample = Buffer.concat([
  Buffer.from(Array.from({ length: 20_000 }, (_, i) => `line ${i} ${(i * 7919) % 1000}\n`).join("")),
  Buffer.alloc(300_000),
  createHash("sha512").update("seed").digest(),
]);

for (const engine of ENGINES)
  test(`${engine}: a block declaring a 4 GiB dictionary is refused before it is decoded, in a first or a later stream`, async (t) => {
    const good = await xz(Buffer.from("hello\n"));
    for (const hostile of [withDictionary(good, 40), Buffer.concat([good, withDictionary(good, 40)])]) {
      const err = await t.throwsAsync(decode(hostile, engine), { instanceOf: XzError });
      t.is(err?.message, "xz: Memory usage limit reached (512 MiB)");
    }
    // A dictionary within the limit (64 MiB, more than the data needs) decodes.
    t.is((await decode(withDictionary(good, 26), engine)).toString(), "hello\n");
  });

for (const engine of ENGINES)
  test(`${engine}: a later block of a many-block stream declaring a 4 GiB dictionary is refused`, async (t) => {
    const dir = await tempDir("niftyc-xz-blocks-");
    const file = path.join(dir, "many.xz");
    await fsp.writeFile(file, await xz(sample, "-T2", "--block-size=65536"));
    const offsets = await blockOffsets(file);
    t.true(offsets.length >= 4, `${offsets.length} blocks`);
    const good = await fsp.readFile(file);
    const hostile = withDictionary(good, 40, offsets[3]!);
    const err = await t.throwsAsync(decode(hostile, engine), { instanceOf: XzError });
    t.is(err?.message, "xz: Memory usage limit reached (512 MiB)");
    t.true((await decode(withDictionary(good, 26, offsets[3]!), engine)).equals(sample));
  });

test("node-liblzma: damaged input is refused exactly where the xz tool refuses it, in lzma-native's words, and decodes as it does otherwise", async (t) => {
  // The header walk must never refuse what liblzma accepts, nor lose its place in what it accepts,
  // nor word a refusal otherwise than liblzma does.
  const dir = await tempDir("niftyc-xz-damage-");
  const variants = await Promise.all(
    [["-0"], ["-T2", "--block-size=20000"], ["-C", "sha256"], ["--x86", "--lzma2=preset=1"]].map((o) =>
      xz(sample.subarray(0, 60_000), ...o),
    ),
  );
  const two = Buffer.concat([variants[0]!, Buffer.alloc(4), variants[1]!]);
  variants.push(two);
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: variants.length - 1 }),
      fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      fc.integer({ min: 1, max: 255 }),
      async (which, where, xor) => {
        const damaged = Buffer.from(variants[which]!);
        const at = Math.floor(where * damaged.length);
        damaged[at]! ^= xor;
        const file = path.join(dir, "damaged.xz");
        await fsp.writeFile(file, damaged);
        const theirs = await run("xz", ["-dc", file], { encoding: "buffer", maxBuffer: 1 << 26 }).then(
          (r) => r.stdout as Buffer,
          () => undefined,
        );
        const ours = await decode(damaged, "node-liblzma").catch((e: unknown) => {
          if (!(e instanceof XzError)) throw e;
          return undefined;
        });
        const label = `variant ${which}, byte ${at} ^ ${xor}: xz ${theirs ? "decodes" : "refuses"}, niftyc ${ours ? "decodes" : "refuses"}`;
        const words = (engine: XzEngine) =>
          decode(damaged, engine).then(
            () => "decodes",
            (e: unknown) => (e as Error).message,
          );
        const [fast, portable] = [await words("node-liblzma"), await words("lzma-native")];
        if (fast !== portable) t.fail(`${label}: node-liblzma says ${fast}, lzma-native ${portable}`);
        if (theirs === undefined || ours === undefined) return theirs === ours || t.fail(label);
        return ours.equals(theirs) || t.fail(label);
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test("without node-liblzma (an optional dependency) lzma-native decodes, and nothing else changes", async (t) => {
  const dir = await tempDir("niftyc-xz-without-");
  const xzModule = JSON.stringify(new URL("../../src/fetch/xz.ts", import.meta.url).href);
  await fsp.writeFile(path.join(dir, "in.xz"), await xz(sample, "-T2", "--block-size=65536"));
  // As if npm had left it out: resolving it fails, as for a package that is not installed.
  await fsp.writeFile(
    path.join(dir, "hide.mjs"),
    `import { registerHooks } from "node:module";
    registerHooks({ resolve(specifier, context, next) {
      if (specifier === "node-liblzma") throw Object.assign(new Error("Cannot find module 'node-liblzma'"), { code: "MODULE_NOT_FOUND" });
      return next(specifier, context);
    } });`,
  );
  await fsp.writeFile(
    path.join(dir, "decode.mjs"),
    `import { readFileSync } from "node:fs";
    import { createHash } from "node:crypto";
    import { Readable } from "node:stream";
    const { createXzDecoder, xzEngine } = await import(${xzModule});
    const hash = createHash("sha256");
    for await (const c of Readable.from([readFileSync(${JSON.stringify(path.join(dir, "in.xz"))})]).pipe(createXzDecoder())) hash.update(c);
    console.log(xzEngine(), hash.digest("hex"));`,
  );
  const { stdout } = await run(process.execPath, [
    "--import",
    path.join(dir, "hide.mjs"),
    path.join(dir, "decode.mjs"),
  ]);
  t.is(stdout.trim(), `lzma-native ${createHash("sha256").update(sample).digest("hex")}`);
});

test("on linux-x64 the faster addon decodes: node-liblzma's binary is installed and loads", (t) => {
  if (process.platform !== "linux" || process.arch !== "x64") {
    t.log(
      `skipped: node-liblzma ships no binary for ${process.platform}-${process.arch}; lzma-native decodes here`,
    );
    t.pass();
    return;
  }
  t.is(xzEngine(), "node-liblzma");
});

test("FETCH … EXTRACT from an xz tarball declaring a 4 GiB dictionary is NIFTY114, not gigabytes", async (t) => {
  const dir = await tempDir("niftyc-xz-dict-");
  await fsp.writeFile(path.join(dir, "hello"), "hello\n");
  await run("tar", ["-C", dir, "-cf", path.join(dir, "a.tar"), "hello"]);
  const hostile = withDictionary(await xz(await fsp.readFile(path.join(dir, "a.tar"))), 40);
  await fsp.writeFile(path.join(dir, "big-dict.tar.xz"), hostile);
  const store = await openStore(path.join(dir, "c"));
  const err = await t.throwsAsync(extractMember(store, path.join(dir, "big-dict.tar.xz"), "hello"), {
    instanceOf: NiftyError,
  });
  t.is(err?.code, "NIFTY114", err?.message);
  t.regex(err!.message, /: xz: Memory usage limit reached \(512 MiB\)$/);
});

for (const engine of ENGINES)
  test(`${engine}: damaged, truncated and foreign input fail in the xz tool's words`, async (t) => {
    const good = await xz(sample);
    const corrupt = Buffer.from(good);
    corrupt[Math.floor(corrupt.length / 2)]! ^= 0x55;
    const cases: Array<[Buffer | Buffer[], string]> = [
      [corrupt, "xz: Compressed data is corrupt"],
      [good.subarray(0, good.length - 30), "xz: Unexpected end of input"],
      [good.subarray(0, 40), "xz: Unexpected end of input"],
      [Buffer.from("PK\x03\x04 not xz at all"), "xz: File format not recognized"],
      [Buffer.concat([good, Buffer.from("garbage after the stream")]), "xz: Compressed data is corrupt"],
      [Buffer.alloc(0), "xz: File format not recognized"],
    ];
    for (const [input, words] of cases) {
      const err = await t.throwsAsync(decode(input, engine), { instanceOf: XzError });
      t.is(err?.message, words);
    }
  });

for (const engine of ENGINES)
  test(`${engine}: every framing the xz tool writes decodes to the same bytes, concatenated streams and stream padding too`, async (t) => {
    const variants = [
      ["-0"],
      ["-9e"],
      ["-T2", "--block-size=65536"],
      ["-C", "none"],
      ["-C", "sha256", "--block-size=100000"],
      ["--x86", "--lzma2=preset=6"],
      ["--delta=dist=4", "--lzma2"],
    ];
    for (const options of variants) {
      const encoded = await xz(sample, ...options);
      // Fed a few bytes at a time too, so every header is split across chunks.
      const pieces = Array.from({ length: Math.ceil(encoded.length / 7) }, (_, i) =>
        encoded.subarray(i * 7, i * 7 + 7),
      );
      t.true((await decode(encoded, engine)).equals(sample), options.join(" "));
      t.true(
        (await decode(pieces.slice(0, 400).concat(encoded.subarray(2800)), engine)).equals(sample),
        options.join(" "),
      );
    }
    // A stream of no bytes has no block: its index follows the stream header at once.
    t.is((await decode(await xz(Buffer.alloc(0)), engine)).length, 0);
    const one = await xz(Buffer.from("one\n"));
    const two = await xz(Buffer.from("two\n"));
    t.is((await decode(Buffer.concat([one, Buffer.alloc(8), two]), engine)).toString(), "one\ntwo\n");
  });

for (const engine of ENGINES)
  test(`${engine}: an xz bomb is decoded only as fast as it is read: a paused reader holds back the input`, async (t) => {
    const stream = await xz(Buffer.alloc(4 << 20), "-0"); // 4 MiB of zeros in a few hundred bytes
    const copies = 1024; // 4 GiB once decoded
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < copies; i++) {
          pulled += stream.length;
          yield stream;
        }
      })(),
    );
    const decoder = source.pipe(createXzDecoder(engine));
    const output = decoder[Symbol.asyncIterator]();
    let got = 0;
    while (got < 8 << 20) got += ((await output.next()).value as Buffer).length;
    await new Promise((resolve) => setTimeout(resolve, 300)); // the reader pauses
    decoder.destroy();
    // Without back-pressure the decoder would have read all 1,024 streams and decoded gigabytes.
    t.true(pulled < (stream.length * copies) / 4, `read ${pulled} of ${stream.length * copies} bytes`);
  });

test("the decoder works in a worker thread beside the main thread, and the process exits by itself", async (t) => {
  const dir = await tempDir("niftyc-xz-threads-");
  const small = sample.subarray(0, 50_000);
  await fsp.writeFile(path.join(dir, "in.xz"), await xz(small, "-0"));
  const xzModule = JSON.stringify(new URL("../../src/fetch/xz.ts", import.meta.url).href);
  const decodeAll = `
    import { readFileSync } from "node:fs";
    import { Readable } from "node:stream";
    const { createXzDecoder } = await import(${xzModule});
    const input = readFileSync(${JSON.stringify(path.join(dir, "in.xz"))});
    export async function decodeAll() {
      let n = 0;
      for await (const c of Readable.from([input]).pipe(createXzDecoder())) n += c.length;
      // A second decoder left half read: it must not keep the thread or the process alive.
      await Readable.from([input]).pipe(createXzDecoder())[Symbol.asyncIterator]().next();
      return n;
    }`;
  await fsp.writeFile(path.join(dir, "decode.mjs"), decodeAll);
  await fsp.writeFile(
    path.join(dir, "worker.mjs"),
    `import { parentPort } from "node:worker_threads";
    import { decodeAll } from "./decode.mjs";
    parentPort.postMessage(await decodeAll());`,
  );
  await fsp.writeFile(
    path.join(dir, "main.mjs"),
    `import { Worker } from "node:worker_threads";
    import { decodeAll } from "./decode.mjs";
    const worker = new Worker(new URL("./worker.mjs", import.meta.url));
    worker.on("message", (n) => { console.log("worker " + n); worker.unref(); });
    console.log("main " + (await decodeAll()));`,
  );
  const { stdout } = await run(process.execPath, [path.join(dir, "main.mjs")], {
    timeout: 120_000, // a hang detector, not a speed limit
    killSignal: "SIGKILL",
  });
  t.regex(stdout, new RegExp(`main ${small.length}`));
  t.regex(stdout, new RegExp(`worker ${small.length}`));
});

test("decoding loads the addon's native part alone, not the stream classes of its entry (node-liblzma's lib/, lzma-native's readable-stream)", async (t) => {
  const dir = await tempDir("niftyc-xz-loads-");
  const xzModule = JSON.stringify(new URL("../../src/fetch/xz.ts", import.meta.url).href);
  await fsp.writeFile(path.join(dir, "in.xz"), await xz(sample.subarray(0, 10_000), "-0"));
  await fsp.writeFile(
    path.join(dir, "decode.mjs"),
    `import { readFileSync } from "node:fs";
    import { Readable } from "node:stream";
    const { createXzDecoder } = await import(${xzModule});
    let n = 0;
    for await (const c of Readable.from([readFileSync(${JSON.stringify(path.join(dir, "in.xz"))})]).pipe(createXzDecoder())) n += c.length;
    console.log(n);`,
  );
  const loads = path.join(dir, "loads.txt");
  const hook = new URL("../pipeline/record-loads.ts", import.meta.url).pathname;
  const { stdout } = await run(process.execPath, ["--import", hook, path.join(dir, "decode.mjs")], {
    env: { ...process.env, NIFTY_TEST_LOADS: loads },
  });
  t.is(stdout.trim(), "10000");
  const loaded = await fsp.readFile(loads, "utf8");
  const [used, other] =
    xzEngine() === "node-liblzma" ? ["node-liblzma", "lzma-native"] : ["lzma-native", "node-liblzma"];
  t.regex(loaded, new RegExp(`node_modules/${used}/`), "the hook sees the addon's loading");
  t.notRegex(loaded, new RegExp(`node_modules/${other}/`));
  t.notRegex(loaded, /node_modules\/node-liblzma\/lib\//);
  t.notRegex(loaded, /readable-stream/);
});
