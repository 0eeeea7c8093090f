// A whole request's deadline. undici's timeouts bound idle time only (and
// the wait for response headers as a whole), so a server that sends a body
// byte a second holds a request for ever. With this, a request that moves
// bytes (a body sent or received) must end within its timeout plus one second
// per MIN_RATE bytes it moved so far: a large file on a slow but honest link
// finishes as long as it averages MIN_RATE, and a server that dribbles is cut
// after about the timeout. While nothing has moved, silence is undici's to
// report (connect, headers and idle timeouts, which callers retry), so the
// check waits another timeout. Timers only: no clock is read.

/** Bytes per second a request must average once its timeout has passed. */
export const MIN_RATE = 16 * 1024;

/** The rule in words, for messages. */
export function deadlineRule(timeoutMs: number): string {
  return `${timeoutMs / 1000} s plus 1 s per ${MIN_RATE / 1024} KiB moved`;
}

export class Deadline {
  /** Aborts the request when the deadline passes; give it to undici. */
  readonly signal: AbortSignal;
  /** True once the deadline cut the request. */
  expired = false;
  private moved = 0;
  /** Milliseconds granted beyond the timeout for the bytes moved. */
  private granted = 0;
  private timer: ReturnType<typeof setTimeout>;

  constructor(timeoutMs: number) {
    const controller = new AbortController();
    this.signal = controller.signal;
    const check = () => {
      if (this.moved === 0) {
        this.timer = setTimeout(check, timeoutMs);
        return;
      }
      const earned = (this.moved / MIN_RATE) * 1000 - this.granted;
      if (earned >= 1) {
        this.granted += earned;
        this.timer = setTimeout(check, earned);
        return;
      }
      this.expired = true;
      controller.abort(new Error(`no end within ${deadlineRule(timeoutMs)}`));
    };
    this.timer = setTimeout(check, timeoutMs);
  }

  /** Bytes sent or received. */
  count(bytes: number): void {
    this.moved += bytes;
  }

  /** The request ended: no more checks. */
  done(): void {
    clearTimeout(this.timer);
  }

  /** Yields `source`'s chunks, counting them. */
  async *counted(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      this.count(chunk.length);
      yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    }
  }
}
