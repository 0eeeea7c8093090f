// The LSP byte stream as vscode-jsonrpc's StreamMessageReader should see it:
// only messages whose header it can use. Given a header without a usable
// Content-Length (none, "abc", "-5"), a line without ":", or one announcing
// more than MAX_MESSAGE_BYTES, the reader stops for good: it fires an error
// nobody hears and either glues the rest of the message onto the next
// header (so every later header is unreadable too), reads a negative length
// as a slice from the end, or waits for gigabytes. Here such a header is
// reported, and the stream is skipped to the next "Content-Length:", where
// the reader reads on. Bodies pass through as they arrive, never held here.
import { Transform, type TransformCallback } from "node:stream";

/**
 * The most bytes one message may announce. The largest document checked is a recipe of 1 MiB
 * characters, at most 6 MiB as JSON (`\u0000` for each); 64 MiB is ten times that.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The most bytes a header may take before its blank line: real headers take a hundred. */
const MAX_HEADER_BYTES = 64 * 1024;

const HEADER_END = Buffer.from("\r\n\r\n");
/** Where a header starts again; the reader takes header names in any case, and so does the search. */
const NAME = "content-length:";

/** The Content-Length of a header block, or what is wrong with it. */
function contentLength(header: string): number | string {
  let value: string | undefined;
  for (const line of header.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon === -1) return "has a line without a colon";
    if (line.slice(0, colon).toLowerCase() === "content-length") value = line.slice(colon + 1).trim();
  }
  if (value === undefined) return "has no Content-Length";
  if (!/^\d{1,12}$/.test(value)) return "has a Content-Length that is not a number of bytes";
  const length = Number(value);
  if (length > MAX_MESSAGE_BYTES) return `announces ${length} bytes, more than the 64 MiB a message may have`;
  return length;
}

export class Framing extends Transform {
  /** Bytes of the current message's body still to pass through. */
  #body = 0;
  /** Bytes of a header not yet complete, or (when skipping) the tail that may begin a header name. */
  #held: Buffer = Buffer.alloc(0);
  #skipping = false;
  /** A skip was reported and no message has been read since: a flood of junk is reported once. */
  #reported = false;
  readonly #report: (message: string) => void;

  constructor(report: (message: string) => void) {
    super();
    this.#report = report;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let data: Buffer = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    this.#held = Buffer.alloc(0);
    while (data.length > 0) {
      if (this.#body > 0) {
        const n = Math.min(this.#body, data.length);
        this.push(data.subarray(0, n));
        this.#body -= n;
        data = data.subarray(n);
        continue;
      }
      if (this.#skipping) {
        const at = data.toString("latin1").toLowerCase().indexOf(NAME);
        if (at === -1) {
          this.#held = data.subarray(Math.max(0, data.length - (NAME.length - 1)));
          break;
        }
        data = data.subarray(at);
        this.#skipping = false;
      }
      const end = data.indexOf(HEADER_END);
      if (end === -1) {
        if (data.length <= MAX_HEADER_BYTES) {
          this.#held = data;
          break;
        }
        data = this.#skip(data, "runs past 64 KiB without the blank line that ends it", MAX_HEADER_BYTES);
        continue;
      }
      const length = contentLength(data.toString("latin1", 0, end));
      if (typeof length === "string") {
        data = this.#skip(data, length, end);
        continue;
      }
      this.push(data.subarray(0, end + HEADER_END.length));
      this.#body = length;
      this.#reported = false;
      data = data.subarray(end + HEADER_END.length);
    }
    done();
  }

  /** Reports a header the reader cannot use and skips from just past its start to the next header. */
  #skip(data: Buffer, why: string, headerBytes: number): Buffer {
    if (!this.#reported) {
      const shown = JSON.stringify(data.toString("latin1", 0, Math.min(headerBytes, 200)));
      this.#report(
        `niftyc lsp: a message's header ${why}: ${shown}; it was skipped, up to the next Content-Length header`,
      );
      this.#reported = true;
    }
    this.#skipping = true;
    return data.subarray(1);
  }
}
