import test from "ava";
import { PassThrough } from "node:stream";
import { createProgress, formatBytes } from "../../src/fetch/progress.ts";

function capture(tty: boolean) {
  const stream = Object.assign(new PassThrough(), tty ? { isTTY: true, columns: 100 } : {});
  let text = "";
  stream.on("data", (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

const digest = `sha256:${"ab".repeat(32)}`;

test("without a terminal: one quiet line per finished fetch, nothing while downloading", (t) => {
  const out = capture(false);
  const p = createProgress(out.stream);
  p.onProgress({ name: "busybox", url: "http://127.0.0.1/bb", received: 10, total: 2048 });
  p.finished("busybox", { digest, size: 2048, path: "/x", fromCache: false, url: "http://127.0.0.1/bb" });
  p.finished("dropbear", { digest, size: 5, path: "/y", fromCache: true });
  p.stop();
  t.is(
    out.text(),
    `busybox: 2.0 KiB sha256:abababababab fetched from http://127.0.0.1/bb\ndropbear: 5 B sha256:abababababab cached\n`,
  );
});

test("on a terminal: a live line per download with bytes, total and ETA", (t) => {
  const out = capture(true);
  const p = createProgress(out.stream);
  p.onProgress({ name: "busybox", url: "http://127.0.0.1/bb", received: 0, total: 4 << 20 });
  p.onProgress({ name: "busybox", url: "http://127.0.0.1/bb", received: 1 << 20, total: 4 << 20 });
  p.onProgress({ name: "dropbear", url: "http://127.0.0.1/db", received: 100 });
  p.finished("busybox", { digest, size: 4 << 20, path: "/x", fromCache: false, url: "http://127.0.0.1/bb" });
  p.stop();
  const text = out.text();
  t.regex(text, /busybox/);
  t.regex(text, /4\.0 MiB/);
  t.regex(text, /dropbear/);
  t.regex(text, /ETA/);
});

test("formatBytes", (t) => {
  t.is(formatBytes(0), "0 B");
  t.is(formatBytes(1023), "1023 B");
  t.is(formatBytes(1536), "1.5 KiB");
  t.is(formatBytes(3 * 1024 * 1024), "3.0 MiB");
});
