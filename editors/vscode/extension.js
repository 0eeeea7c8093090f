// The Niftyfile extension: starts `niftyc lsp` (the command is a setting) and
// hands it every Niftyfile the editor opens. Everything else is the server's.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("niftyfile")
    .get("server.command", ["npx", "niftyc", "lsp"]);
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const server = { command, args, options: cwd ? { cwd } : {} };
  client = new LanguageClient("niftyfile", "Niftyfile (niftyc lsp)", server, {
    documentSelector: [{ scheme: "file", language: "niftyfile" }],
  });
  context.subscriptions.push({ dispose: () => client?.stop() });
  return client.start();
}

function deactivate() {
  return client?.stop();
}

module.exports = { activate, deactivate };
