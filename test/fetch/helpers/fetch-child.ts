// Runs one fetch in its own process, for tests of concurrent and killed
// writers. Argument: JSON { storeDir, name, sources, digest }. Prints the result as JSON.
import { openStore } from "../../../src/cache/store.ts";
import { fetchBlob } from "../../../src/fetch/download.ts";

const args = JSON.parse(process.argv[2] ?? "{}") as {
  storeDir: string;
  name: string;
  sources: string[];
  digest: string;
};
const store = await openStore(args.storeDir);
const result = await fetchBlob(store, {
  name: args.name,
  sources: args.sources,
  digest: args.digest,
  offline: false,
  retryDelayMs: 10,
});
process.stdout.write(JSON.stringify(result) + "\n");
