// `niftyc lsp`: the language server on standard input and output
// (src/lsp/server.ts, loaded only for this command). The CLI gives it the
// store's directory; the server reads nothing else of the environment.
import type { CliIo } from "./io.ts";
import { EXIT, cacheDir, parse } from "./common.ts";
import { LSP_HELP } from "./usage.ts";

export async function runLsp(args: readonly string[], io: CliIo): Promise<number> {
  // Editors start servers with --stdio; it is the only transport, so it is accepted and changes nothing.
  const { values } = parse(args, { cache: { type: "string" }, stdio: { type: "boolean" } }, LSP_HELP);
  if (values.help) {
    io.stdout.write(LSP_HELP + "\n");
    return EXIT.ok;
  }
  const { startServer } = await import("../lsp/server.ts");
  const connection = startServer(process.stdin, process.stdout, {
    storeDir: cacheDir(values.cache as string | undefined, io),
  });
  await new Promise<void>((resolve) => connection.onExit(() => resolve()));
  return EXIT.ok;
}
