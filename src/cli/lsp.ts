// `niftyc lsp`: the language server on stdio (src/lsp/). Loaded only for this command.
import type { CliIo } from "./io.ts";
import { EXIT } from "./common.ts";
import { LSP_HELP } from "./usage.ts";

export async function runLsp(args: readonly string[], io: CliIo): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout.write(LSP_HELP + "\n");
    return EXIT.ok;
  }
  io.stderr.write("niftyc lsp: not yet\n");
  return EXIT.usage;
}
