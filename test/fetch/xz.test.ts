// The in-process xz decoder (src/fetch/xz.ts) against hostile and unusual
// input: a declared dictionary over the limit is refused before anything is
// decoded, damage is reported in the xz tool's words, a bomb is decoded only
// as fast as it is read, and every framing the xz tool writes decodes to the
// same bytes. It runs in the .deb reader threads too.
import test from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import { openStore } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { extractMember } from "../../src/fetch/archive.ts";
import { createXzDecoder, XzError } from "../../src/fetch/xz.ts";
import { tempDir } from "./helpers/util.ts";

const run = promisify(execFile);

async function xz(input: Buffer, ...options: string[]): Promise<Buffer> {
  const child = execFile("xz", ["-c", ...options], { encoding: "buffer", maxBuffer: 1 << 28 });
  child.stdin!.end(input);
  const chunks: Buffer[] = [];
  for await (const chunk of child.stdout!) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function decode(input: Buffer | Buffer[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(Array.isArray(input) ? input : [input]).pipe(createXzDecoder())) {
    // Readers (the index parser's latin1 decoding) take Buffers, not plain Uint8Arrays.
    if (!Buffer.isBuffer(chunk)) throw new Error("the decoder gave a chunk that is not a Buffer");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The same xz stream with its first block declaring the dictionary of size property `prop` (40: 4 GiB). */
function withDictionary(stream: Buffer, prop: number): Buffer {
  const out = Buffer.from(stream);
  const size = (out[12]! + 1) * 4;
  if (out[13] !== 0 || out[14] !== 0x21 || out[15] !== 1) throw new Error("not a one-filter LZMA2 block");
  out[16] = prop;
  out.writeUInt32LE(crc32(out.subarray(12, 12 + size - 4)), 12 + size - 4);
  return out;
}

const sample = Buffer.concat([
  Buffer.from(Array.from({ length: 20_000 }, (_, i) => `line ${i} ${(i * 7919) % 1000}\n`).join("")),
  Buffer.alloc(300_000),
  createHash("sha512").update("seed").digest(),
]);

test("a block declaring a 4 GiB dictionary is refused before it is decoded, in a first or a later stream", async (t) => {
  const good = await xz(Buffer.from("hello\n"));
  for (const hostile of [withDictionary(good, 40), Buffer.concat([good, withDictionary(good, 40)])]) {
    const err = await t.throwsAsync(decode(hostile), { instanceOf: XzError });
    t.is(err?.message, "xz: Memory usage limit reached (512 MiB)");
  }
  // A dictionary within the limit (64 MiB, more than the data needs) decodes.
  t.is((await decode(withDictionary(good, 26))).toString(), "hello\n");
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

test("damaged, truncated and foreign input fail in the xz tool's words", async (t) => {
  const good = await xz(sample);
  const corrupt = Buffer.from(good);
  corrupt[Math.floor(corrupt.length / 2)]! ^= 0x55;
  const cases: Array<[Buffer | Buffer[], string]> = [
    [corrupt, "xz: Compressed data is corrupt"],
    [good.subarray(0, good.length - 30), "xz: Unexpected end of input"],
    [good.subarray(0, 40), "xz: Unexpected end of input"],
    [Buffer.from("PK\x03\x04 not xz at all"), "xz: File format not recognized"],
    [Buffer.alloc(0), "xz: File format not recognized"],
  ];
  for (const [input, words] of cases) {
    const err = await t.throwsAsync(decode(input), { instanceOf: XzError });
    t.is(err?.message, words);
  }
});

test("every framing the xz tool writes decodes to the same bytes, concatenated streams and stream padding too", async (t) => {
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
    t.true((await decode(encoded)).equals(sample), options.join(" "));
    t.true(
      (await decode(pieces.slice(0, 400).concat(encoded.subarray(2800)))).equals(sample),
      options.join(" "),
    );
  }
  const one = await xz(Buffer.from("one\n"));
  const two = await xz(Buffer.from("two\n"));
  t.is((await decode(Buffer.concat([one, Buffer.alloc(8), two]))).toString(), "one\ntwo\n");
});

test("an xz bomb is decoded only as fast as it is read: a paused reader holds back the input", async (t) => {
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
  const decoder = source.pipe(createXzDecoder());
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

test("decoding loads the addon's native part alone, not the stream classes of its index.js (readable-stream)", async (t) => {
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
  t.regex(loaded, /lzma-native/, "the hook sees the addon's loading");
  t.notRegex(loaded, /readable-stream/);
});
