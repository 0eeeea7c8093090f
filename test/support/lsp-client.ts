// `niftyc lsp` as a child process, driven over its stdio with vscode-jsonrpc
// as an editor drives it: requests, notifications, and the diagnostics it
// publishes, waited for by document version.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from "vscode-jsonrpc/node";

const BIN = fileURLToPath(new URL("../../bin/niftyc", import.meta.url));

export interface Published {
  uri: string;
  version?: number;
  diagnostics: Array<{
    range: { start: { line: number; character: number }; end: { line: number; character: number } };
    severity: number;
    code: string;
    message: string;
    data?: unknown;
  }>;
}

export interface LspChild {
  child: ChildProcessWithoutNullStreams;
  connection: MessageConnection;
  stderr: () => string;
  /** The next diagnostics published for the uri whose version is at least `version`. */
  diagnostics(uri: string, version?: number): Promise<Published>;
  open(uri: string, text: string, version?: number): Promise<void>;
  close(): Promise<void>;
}

/** `initialize: false`: the handshake is left to the test. */
export async function startLsp(
  args: string[] = [],
  options: { initialize?: boolean } = {},
): Promise<LspChild> {
  const child = spawn(process.execPath, [BIN, "lsp", ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout),
    new StreamMessageWriter(child.stdin),
  );
  const published: Published[] = [];
  const waiters: Array<() => void> = [];
  connection.onNotification("textDocument/publishDiagnostics", (p: Published) => {
    published.push(p);
    for (const w of waiters.splice(0)) w();
  });
  connection.listen();
  if (options.initialize !== false) {
    await connection.sendRequest("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
    await connection.sendNotification("initialized", {});
  }
  const lsp: LspChild = {
    child,
    connection,
    stderr: () => stderr,
    async diagnostics(uri, version = 0) {
      for (;;) {
        const found = published.find((p) => p.uri === uri && (p.version ?? 0) >= version);
        if (found) return found;
        if (child.exitCode !== null) throw new Error(`niftyc lsp exited ${child.exitCode}: ${stderr}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    async open(uri, text, version = 1) {
      await connection.sendNotification("textDocument/didOpen", {
        textDocument: { uri, languageId: "niftyfile", version, text },
      });
    },
    async close() {
      await connection.sendRequest("shutdown").catch(() => undefined);
      await connection.sendNotification("exit").catch(() => undefined);
      const exited =
        child.exitCode !== null
          ? Promise.resolve()
          : new Promise<void>((resolve) => child.on("exit", () => resolve()));
      await exited;
      connection.dispose();
    },
  };
  return lsp;
}
