// The parts of undici the downloads use: its Agent (keep-alive connections), the redirect
// interceptor and the request API, each loaded from its own file. The package's entry loads
// every part it has (fetch, WebSocket, the mock, cache and proxy agents): about 90 ms of a cold
// build's start-up here, against 35 ms for these. test/fetch/http.test.ts checks that they are the
// package's own, and the download tests run every request through them.
import { createRequire } from "node:module";
import type { Dispatcher } from "undici";

type Undici = typeof import("undici");

export interface Http {
  Agent: Undici["Agent"];
  redirect: Undici["interceptors"]["redirect"];
  /** undici's `request(url, options)`, on the dispatcher the options name. */
  request(
    url: string,
    options: Omit<Dispatcher.RequestOptions, "origin" | "path"> & { dispatcher: Dispatcher },
  ): Promise<Dispatcher.ResponseData>;
}

let loaded: Http | undefined;

export function loadHttp(): Http {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  const request = require("undici/lib/api/api-request.js") as (
    this: Dispatcher,
    options: Dispatcher.RequestOptions,
  ) => Promise<Dispatcher.ResponseData>;
  loaded = {
    Agent: require("undici/lib/dispatcher/agent.js") as Undici["Agent"],
    redirect: require("undici/lib/interceptor/redirect.js") as Undici["interceptors"]["redirect"],
    // What the package's request() does with a URL: its origin, and its path with the query.
    request(url, { dispatcher, ...options }) {
      const u = new URL(url);
      const path = u.search ? `${u.pathname}${u.search}` : u.pathname;
      return request.call(dispatcher, { ...options, origin: u.origin, path });
    },
  };
  return loaded;
}
