// A real HTTP server on loopback for fetch tests: routes by path, counts hits.
import http from "node:http";
import type { AddressInfo } from "node:net";

export type Route = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  routes: Map<string, Route>;
  hits(path?: string): number;
  close(): Promise<void>;
}

export async function startServer(routes: Record<string, Route> = {}): Promise<TestServer> {
  const map = new Map(Object.entries(routes));
  const counts = new Map<string, number>();
  let total = 0;
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const hit = (counts.get(path) ?? 0) + 1;
    counts.set(path, hit);
    total++;
    const route = map.get(path);
    if (!route) {
      res.writeHead(404).end("not found");
      return;
    }
    route(req, res, hit);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routes: map,
    hits: (path?: string) => (path === undefined ? total : (counts.get(path) ?? 0)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serve `body` whole, with its length. */
export function serve(body: Buffer): Route {
  return (_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    res.end(body);
  };
}

/** The first request: the full length announced, 1,000 bytes sent, the connection dropped; later ones served whole. */
export function dropFirstThenServe(body: Buffer): Route {
  return (req, res, hit) => {
    if (hit > 1) return serve(body)(req, res, hit);
    res.writeHead(200, { "content-length": body.length });
    res.write(body.subarray(0, 1000), () => res.socket?.destroy());
  };
}

/** Announce the full length, send the first half, then stall (never finish). */
export function halfThenStall(body: Buffer, onHalfSent?: () => void): Route {
  return (_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    res.write(body.subarray(0, body.length >> 1), () => onHalfSent?.());
  };
}
