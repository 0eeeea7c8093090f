// The forwarder of on-demand instances (`niftyc forward`): systemd passes it the
// listening socket of <name>-listen@PORT.socket; it runs in the instance's own
// network namespace and connects every client to the image from a loopback
// address of that client's own (sourceAddress), so the image's server sees one
// address per client and its per-address limits (Dropbear's MAX_UNAUTH_PER_IP)
// apply per client. It exits after an idle time without a connection, as
// systemd-socket-proxyd --exit-idle-time= does.
import { createHash } from "node:crypto";
import { connect, createServer, isIPv4, isIPv6, type Socket } from "node:net";
import { NiftyError } from "../diagnostics/errors.ts";

/** Where a client came from when the address is unknown or would map to no usable address. */
export const FALLBACK_SOURCE = "127.0.0.1";

/**
 * The loopback address the forwarder connects from for a client. IPv4 a.b.c.d (also as
 * ::ffff:a.b.c.d) becomes 127.b.c.d: clients that differ in their last three octets stay
 * apart, so a whole /8 maps one to one (loopback clients keep their own address); clients
 * that differ only in the first octet collide. An IPv6 address becomes 127 and 24 bits of
 * its SHA-256: distinct addresses collide by chance (about n²/2²⁵ pairs among n clients).
 * 127.0.0.0 and 127.255.255.255 (the network and broadcast of lo) become 127.0.0.1.
 */
export function sourceAddress(client: string | undefined): string {
  if (client === undefined) return FALLBACK_SOURCE;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(client);
  const v4 = mapped?.[1] ?? client;
  let low: number[];
  if (isIPv4(v4)) low = v4.split(".").slice(1).map(Number);
  else if (isIPv6(client))
    low = [...createHash("sha256").update(client.toLowerCase()).digest().subarray(0, 3)];
  else return FALLBACK_SOURCE;
  const address = `127.${low.join(".")}`;
  return address === "127.0.0.0" || address === "127.255.255.255" ? FALLBACK_SOURCE : address;
}

const UNITS_MS: Record<string, number> = {
  us: 0.001,
  usec: 0.001,
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  "": 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/** A systemd time span (90s, 10min, 1h30min; a bare number is seconds) in ms; infinity is Infinity. */
export function timeSpanMs(span: string): number {
  if (span === "infinity") return Number.POSITIVE_INFINITY;
  const parts = [...span.matchAll(/(\d+(?:\.\d+)?)([a-z]*)/g)];
  const total = parts.reduce((sum, [, n, unit]) => sum + Number(n) * (UNITS_MS[unit!] ?? Number.NaN), 0);
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== span || !(total > 0))
    throw new NiftyError(
      "NIFTY433",
      `--exit-idle-time takes a systemd time span, got ${JSON.stringify(span)}`,
    );
  return total;
}

export interface ForwardOptions {
  /** The listening socket's descriptor (3, from systemd). */
  fd: number;
  /** Where the image listens inside the namespace. */
  host: string;
  port: number;
  /** Exit after this long without a connection. */
  idleMs: number;
  /** Each connection, once its outgoing side is connected: for logs. */
  onConnect?: (client: string, source: string) => void;
}

/** Forward until idle; resolves when the forwarder has stopped listening. */
export function forward(opts: ForwardOptions): Promise<void> {
  return new Promise((done, fail) => {
    let open = 0;
    let timer: NodeJS.Timeout | undefined;
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
      clearTimeout(timer);
      open += 1;
      pipe(client, opts, () => {
        open -= 1;
        if (open === 0) arm();
      });
    });
    const arm = (): void => {
      // setTimeout takes at most 2³¹-1 ms; longer spans, and infinity, never stop.
      if (opts.idleMs <= 2 ** 31 - 1) timer = setTimeout(() => server.close(() => done()), opts.idleMs);
    };
    server.once("error", fail);
    server.listen({ fd: opts.fd }, arm);
  });
}

/** One client: connect from its own loopback address, pipe both ways, `closed` once both sides are. */
function pipe(client: Socket, opts: ForwardOptions, closed: () => void): void {
  const source = sourceAddress(client.remoteAddress);
  // Half-open both ways: a client's EOF reaches the image as EOF, not as a close of both directions.
  const image = connect({ host: opts.host, port: opts.port, localAddress: source, allowHalfOpen: true });
  let ends = 2;
  const end = (): void => {
    ends -= 1;
    if (ends === 0) closed();
  };
  client.once("close", end);
  image.once("close", end);
  client.once("close", () => {
    if (image.connecting) image.destroy();
  });
  client.on("error", () => image.destroy());
  image.on("error", () => client.destroy());
  image.once("connect", () => {
    opts.onConnect?.(client.remoteAddress ?? "?", source);
    client.pipe(image);
    image.pipe(client);
    client.resume();
  });
}
