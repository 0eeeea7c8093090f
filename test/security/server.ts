// A misbehaving HTTP server on loopback, written on raw sockets so it can do
// what a well-behaved one would not: announce one length and send another,
// send no length and stream without end, or close mid-body.
import { createServer, type Socket } from "node:net";
import { freePort } from "../support/net.ts";

export type Behaviour = (socket: Socket) => void;

export interface HostileServer {
  url: string;
  close(): Promise<void>;
}

export async function hostileServer(behaviour: Behaviour): Promise<HostileServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    // Answer once the request's headers are in.
    let head = "";
    socket.on("data", (chunk) => {
      if (head.includes("\r\n\r\n")) return;
      head += chunk.toString("latin1");
      if (head.includes("\r\n\r\n")) behaviour(socket);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A 200 with no Content-Length: `body`, then close. */
export function noLength(body: Buffer): Behaviour {
  return (socket) => {
    socket.write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
    socket.end(body);
  };
}

/** A 200 with no Content-Length that sends zeros until the client goes away. */
export function endless(): Behaviour {
  const chunk = Buffer.alloc(64 * 1024);
  return (socket) => {
    socket.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    const pump = () => {
      while (!socket.destroyed && socket.write(chunk));
      if (!socket.destroyed) socket.once("drain", pump);
    };
    pump();
  };
}

/** A 200 announcing `length` bytes (and sending none). */
export function announces(length: number): Behaviour {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`);
  };
}

/** A 200 announcing `length` bytes, then `chunk` bytes every `everyMs` until done or the client goes away. */
export function dribble(length: number, everyMs: number, chunk = 1): Behaviour {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`);
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || sent >= length) return void clearInterval(timer);
      const n = Math.min(chunk, length - sent);
      sent += n;
      socket.write(Buffer.alloc(n, 0x61));
    }, everyMs);
    socket.on("close", () => clearInterval(timer));
  };
}
