// Fetches a blob that is already in the store (or, with `latest`, what a URL serves now, as the
// InRelease files are fetched) and reports whether undici was ever resolved: neither loads it.
import { registerHooks } from "node:module";

let undiciLoaded = false;
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === "undici" || specifier.startsWith("undici/")) undiciLoaded = true;
    return nextResolve(specifier, context);
  },
});

const args = JSON.parse(process.argv[2] ?? "{}") as {
  storeDir: string;
  sources: string[];
  digest: string;
  latest?: boolean;
};
const { openStore } = await import("../../../src/cache/store.ts");
const { fetchBlob, fetchLatest } = await import("../../../src/fetch/download.ts");
const store = await openStore(args.storeDir);
const result = args.latest
  ? await fetchLatest(store, { name: "latest", sources: args.sources })
  : await fetchBlob(store, { name: "cached", sources: args.sources, digest: args.digest, offline: false });
const out = { fromCache: result.fromCache, undiciLoaded, ...(args.latest ? { digest: result.digest } : {}) };
process.stdout.write(JSON.stringify(out) + "\n");
