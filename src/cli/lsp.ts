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
  return new Promise<number>((resolve) => {
    connection.onExit(() => resolve(EXIT.ok));
    // The client is gone. Nothing more can be read, and a message cut short would have the reader
    // wait for its end (and the client's watchdog wait for a process) forever: stop, saying why.
    process.stdin.once("end", () => {
      io.stderr.write("niftyc lsp: standard input ended without an exit notification; stopping\n");
      resolve(EXIT.input);
      // Answers already due are written first; timers of the reader or the watchdog end no sooner.
      setTimeout(() => process.exit(EXIT.input), 1000).unref();
    });
  });
}
