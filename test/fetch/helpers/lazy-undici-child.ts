// Fetches a blob that is already in the store and reports whether undici was
// ever resolved: a cached fetch must not load the HTTP client.
import { registerHooks } from "node:module";

let undiciLoaded = false;
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === "undici" || specifier.startsWith("undici/")) undiciLoaded = true;
    return nextResolve(specifier, context);
  },
});

const args = JSON.parse(process.argv[2] ?? "{}") as { storeDir: string; sources: string[]; digest: string };
const { openStore } = await import("../../../src/cache/store.ts");
const { fetchBlob } = await import("../../../src/fetch/download.ts");
const store = await openStore(args.storeDir);
const result = await fetchBlob(store, {
  name: "cached",
  sources: args.sources,
  digest: args.digest,
  offline: false,
});
process.stdout.write(JSON.stringify({ fromCache: result.fromCache, undiciLoaded }) + "\n");
