// Download progress for people: a live line per download on a terminal,
// one quiet line per finished fetch otherwise (CI logs). The caller passes
// the stream (the CLI gives process.stderr); nothing here picks one itself.
import { createRequire } from "node:module";
import type cliProgress from "cli-progress";
import type { FetchProgress, FetchResult } from "./download.ts";
import { forTerminal } from "../diagnostics/escape.ts";

export interface ProgressStream extends NodeJS.WritableStream {
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressReporter {
  /** Pass as FetchRequest.onProgress. */
  onProgress(p: FetchProgress): void;
  /** A fetch finished (downloaded or found in the cache). */
  finished(name: string, result: FetchResult): void;
  /** Stop drawing; call once, when all fetches are done or failed. */
  stop(): void;
}

export function createProgress(stream: ProgressStream): ProgressReporter {
  return stream.isTTY === true ? new LiveProgress(stream) : new QuietProgress(stream);
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}

class QuietProgress implements ProgressReporter {
  #stream: ProgressStream;

  constructor(stream: ProgressStream) {
    this.#stream = stream;
  }

  onProgress(): void {}

  finished(name: string, r: FetchResult): void {
    const where = r.fromCache ? "cached" : `fetched from ${forTerminal(r.url ?? "?")}`;
    this.#stream.write(`${name}: ${formatBytes(r.size)} ${shortDigest(r.digest)} ${where}\n`);
  }

  stop(): void {}
}

interface LiveBar {
  bar: cliProgress.SingleBar;
  started: number;
}

class LiveProgress implements ProgressReporter {
  #multi: cliProgress.MultiBar;
  #bars = new Map<string, LiveBar>();

  constructor(stream: ProgressStream) {
    // Required here, when the first live bar is drawn: cli-progress is some twenty
    // CommonJS modules that a build downloading nothing, or writing to a log, never needs.
    const { MultiBar, Presets } = createRequire(import.meta.url)("cli-progress") as typeof cliProgress;
    this.#multi = new MultiBar(
      {
        stream,
        format: "{name} |{bar}| {done} / {size}  {rate}  ETA {eta_formatted}",
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        etaBuffer: 50,
      },
      Presets.shades_classic,
    );
  }

  onProgress(p: FetchProgress): void {
    let live = this.#bars.get(p.name);
    const total = p.total ?? Math.max(p.received, 1);
    const payload = (started: number) => ({
      name: p.name,
      done: formatBytes(p.received),
      size: p.total === undefined ? "?" : formatBytes(p.total),
      rate: rate(p.received, started),
    });
    if (!live) {
      const started = Date.now();
      live = { bar: this.#multi.create(total, p.received, payload(started)), started };
      this.#bars.set(p.name, live);
      return;
    }
    live.bar.setTotal(total);
    live.bar.update(p.received, payload(live.started));
  }

  finished(name: string, r: FetchResult): void {
    const live = this.#bars.get(name);
    const payload = {
      name,
      done: formatBytes(r.size),
      size: r.fromCache ? "cached" : formatBytes(r.size),
      rate: live ? rate(r.size, live.started) : "",
    };
    if (live) {
      live.bar.setTotal(Math.max(r.size, 1));
      live.bar.update(Math.max(r.size, 1), payload);
    } else {
      this.#bars.set(name, {
        bar: this.#multi.create(Math.max(r.size, 1), Math.max(r.size, 1), payload),
        started: Date.now(),
      });
    }
  }

  stop(): void {
    this.#multi.stop();
  }
}

function rate(bytes: number, started: number): string {
  const secs = (Date.now() - started) / 1000;
  return secs > 0 ? `${formatBytes(Math.round(bytes / secs))}/s` : "";
}
