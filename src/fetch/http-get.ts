// A plain GET over Node's own http/https modules, answering in the shape download.ts reads from
// undici's request(): for the few small files a warm `niftyc lock` asks for (the InRelease
// files), where loading undici (some 100 modules, ~60 ms more than node:http) was a fifth of the
// whole run. Redirects are followed; the connect and idle timeouts are the caller's.
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";

export interface GetResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Readable & { dump(): Promise<void> };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** A timeout said with undici's codes, which download.ts describes and retries. */
function timeoutError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export async function httpGet(
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal; timeoutMs: number },
  redirects = 10,
): Promise<GetResponse> {
  const target = new URL(url);
  const { request } = target.protocol === "https:" ? await import("node:https") : await import("node:http");
  const res = await new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
    const req = request(target, { method: "GET", headers: init.headers, signal: init.signal, agent: false });
    let answered = false;
    req.setTimeout(init.timeoutMs, () =>
      req.destroy(
        answered
          ? timeoutError("UND_ERR_BODY_TIMEOUT", "body timeout")
          : timeoutError("UND_ERR_HEADERS_TIMEOUT", "headers timeout"),
      ),
    );
    req.once("response", (r) => {
      answered = true;
      resolve(r);
    });
    req.once("error", reject);
    req.end();
  });
  const location = res.headers.location;
  if (REDIRECTS.has(res.statusCode ?? 0) && location !== undefined && redirects > 0) {
    res.resume();
    return httpGet(new URL(location, target).href, init, redirects - 1);
  }
  // A body cut short (the connection closed before its Content-Length) is an error, as in undici.
  res.once("aborted", () => res.destroy(Object.assign(new Error("aborted"), { code: "ECONNRESET" })));
  const body = Object.assign(res, {
    dump: async () => {
      res.resume();
      res.destroy();
    },
  });
  return { statusCode: res.statusCode ?? 0, headers: res.headers, body };
}
