// How soon an editor sees niftyc lsp's diagnostics on a 1,000-line recipe:
// from didOpen (the first check, loading the front end) and from each
// didChange (the server waits out its 150 ms debounce, then checks).
// Run: npx node bench/lsp.ts. Writes the "Language server" section of docs/performance.md.
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import path from "node:path";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from "vscode-jsonrpc/node";
import { median, ROOT, writeSection } from "./util.ts";

const LINES = 1_000;
const CHANGES = 20;
const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

function recipe(lines: number, edit: number): string {
  const out = [
    "# Generated for bench/lsp.ts",
    "ARG PORT=2200",
    "ARCHIVE debian bookworm",
    "PACKAGE busybox-static FILES /bin/busybox",
  ];
  for (let i = 0; out.length < lines; i++) {
    out.push(
      `FETCH tool${i} https://mirror.example.test/tool-${i}.tar.gz \\`,
      `    ${DIGEST} EXTRACT bin/tool TO /opt/tools/tool${i} MODE 0755`,
      `USER user${i} UID ${10000 + i} HOME /home/user${i} SHELL /bin/sh`,
      `DIR /var/lib/app${i} MODE 0750 OWNER user${i}:user${i}`,
      `FILE /etc/motd.d/${i} MODE 0644 <<EOF`,
      `Welcome to \${HOSTNAME:-nifty} on port \${PORT}, edit ${edit}`,
      "EOF",
      `ENV APP${i}=/var/lib/app${i}`,
      `INITTAB respawn /bin/dropbear -F -p \${PORT}`,
      "",
    );
  }
  return `${out.slice(0, lines).join("\n")}\n`;
}

const child = spawn(path.join(ROOT, "node_modules/.bin/node"), [path.join(ROOT, "bin/niftyc"), "lsp"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const connection = createMessageConnection(
  new StreamMessageReader(child.stdout),
  new StreamMessageWriter(child.stdin),
);
const arrived = new Map<number, number>();
connection.onNotification("textDocument/publishDiagnostics", (p: { version?: number }) => {
  arrived.set(p.version ?? 0, performance.now());
});
connection.listen();
await connection.sendRequest("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
await connection.sendNotification("initialized", {});

async function until(version: number): Promise<number> {
  while (!arrived.has(version)) await new Promise((resolve) => setTimeout(resolve, 1));
  return arrived.get(version)!;
}

const uri = `file://${path.join(ROOT, "bench/lsp-bench.nifty")}`;
let start = performance.now();
await connection.sendNotification("textDocument/didOpen", {
  textDocument: { uri, languageId: "niftyfile", version: 1, text: recipe(LINES, 0) },
});
const open = (await until(1)) - start;
const changes: number[] = [];
for (let v = 2; v < 2 + CHANGES; v++) {
  start = performance.now();
  await connection.sendNotification("textDocument/didChange", {
    textDocument: { uri, version: v },
    contentChanges: [{ text: recipe(LINES, v) }],
  });
  changes.push((await until(v)) - start);
}
await connection.sendRequest("shutdown");
await connection.sendNotification("exit");
connection.dispose();

const ms = (x: number) => `${x.toFixed(1)} ms`;
const section = `## Language server

\`npx node bench/lsp.ts\`: \`niftyc lsp\` as a child process driven over stdio, a generated
${LINES.toLocaleString("en")}-line recipe (fetches with continued lines, users, heredocs, variables).

| Measure | Time |
| --- | --- |
| didOpen → diagnostics (first check: loads the parser and checker) | ${ms(open)} |
| didChange → diagnostics, median of ${CHANGES} (150 ms debounce included) | ${ms(median(changes))} |
| didChange → diagnostics, fastest | ${ms(Math.min(...changes))} |

Measured with Node ${process.versions.node} on ${cpus()[0]?.model.trim() ?? "an unknown CPU"}.`;
await writeSection("lsp", section);
console.log(section);
