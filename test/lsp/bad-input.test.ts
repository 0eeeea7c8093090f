// Whatever an editor sends, niftyc lsp answers and goes on answering: binary
// garbage, a 5 MB line, an unterminated heredoc, bytes that are not UTF-8, a
// header the JSON-RPC reader cannot use, a request whose params are null.
import test, { type ExecutionContext } from "ava";
import { Framing } from "../../src/lsp/framing.ts";
import { startLsp, type LspChild } from "../support/lsp-client.ts";

test("the server never crashes on hostile documents and answers the next request", async (t) => {
  const lsp = await startLsp();
  t.teardown(() => lsp.close());
  let garbage = "";
  for (let i = 0; i < 4096; i++) garbage += String.fromCharCode((i * 7919) % 65536);
  const documents: Array<[string, string]> = [
    ["file:///nowhere/garbage.nifty", garbage],
    ["file:///nowhere/long.nifty", `LABEL a=${"x".repeat(5 << 20)}\n`],
    ["file:///nowhere/heredoc.nifty", "FILE /etc/motd <<EOF\nhello ${\n"],
    ["file:///nowhere/nul.nifty", "\u0000\uFFFF\uD800 ARG\r\r\n\\"],
  ];
  for (const [uri, text] of documents) {
    await lsp.open(uri, text);
    const published = await lsp.diagnostics(uri, 1);
    t.true(published.diagnostics.length > 0, uri);
    t.false(
      published.diagnostics.some((d) => d.code === "NIFTY790"),
      uri,
    );
    for (const method of ["textDocument/hover", "textDocument/completion", "textDocument/definition"]) {
      await lsp.connection.sendRequest(method, {
        textDocument: { uri },
        position: { line: 0, character: 3 },
      });
    }
    await lsp.connection.sendRequest("textDocument/documentSymbol", { textDocument: { uri } });
    await lsp.connection.sendRequest("textDocument/formatting", {
      textDocument: { uri },
      options: { tabSize: 4, insertSpaces: true },
    });
  }
  t.is((await lsp.diagnostics("file:///nowhere/long.nifty", 1)).diagnostics[0]!.code, "NIFTY802");
  t.is(
    (await lsp.diagnostics("file:///nowhere/heredoc.nifty", 1)).diagnostics.find((d) => d.code === "NIFTY006")
      ?.range.start.line,
    0,
  );
  // Bytes that are not UTF-8, written raw into the stream as a whole message.
  const uri = "file:///nowhere/latin1.nifty";
  const head = Buffer.from(
    `{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":` +
      `{"uri":"${uri}","languageId":"niftyfile","version":1,"text":"LABEL a=`,
  );
  const body = Buffer.concat([head, Buffer.from([0xe9, 0xff, 0xc3, 0x28]), Buffer.from('\\n"}}}')]);
  lsp.child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]));
  const latin1 = await lsp.diagnostics(uri, 1);
  t.deepEqual(latin1.diagnostics, []);
  const symbols = await lsp.connection.sendRequest<Array<{ name: string }>>("textDocument/documentSymbol", {
    textDocument: { uri },
  });
  t.is(symbols.length, 1);
  t.is(lsp.child.exitCode, null);
});

test("a request before initialize is ServerNotInitialized (-32002); a position before the start is no position", async (t) => {
  const lsp = await startLsp([], { initialize: false });
  t.teardown(() => lsp.close());
  const uri = "file:///nowhere/early.nifty";
  const hover = (position: { line: number; character: number }) =>
    lsp.connection.sendRequest("textDocument/hover", { textDocument: { uri }, position });
  const early = await t.throwsAsync(hover({ line: 0, character: 1 }));
  t.is((early as Error & { code?: number }).code, -32002);
  await lsp.connection.sendRequest("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
  await lsp.connection.sendNotification("initialized", {});
  await lsp.open(uri, "ENV PORT=2200\n");
  await lsp.diagnostics(uri, 1);
  t.truthy(await hover({ line: 0, character: 1 }), "ENV's hover once initialized");
  t.is(await hover({ line: -1, character: -5 }), null);
});

interface Answer {
  id?: unknown;
  error?: { code: number };
}

/** Every message the server wrote to its stdout, parsed as they arrive (the client's reader sees them too). */
function rawAnswers(lsp: LspChild): Answer[] {
  const messages: Answer[] = [];
  let held = Buffer.alloc(0);
  lsp.child.stdout.on("data", (chunk: Buffer) => {
    held = Buffer.concat([held, chunk]);
    for (;;) {
      const end = held.indexOf("\r\n\r\n");
      const length = Number(/Content-Length: (\d+)/i.exec(held.toString("latin1", 0, Math.max(end, 0)))?.[1]);
      if (end === -1 || held.length < end + 4 + length) return;
      messages.push(JSON.parse(held.toString("utf8", end + 4, end + 4 + length)));
      held = held.subarray(end + 4 + length);
    }
  });
  return messages;
}

const frame = (message: object): string => {
  const body = JSON.stringify({ jsonrpc: "2.0", ...message });
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
};

/** `promise`, or a failure after `ms`: a server that stopped reading never answers. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, fail) =>
      setTimeout(() => fail(new Error(`no answer to ${what} within ${ms} ms`)), ms),
    ),
  ]);
}

/** A server killed when the test ends: one that stopped reading would never answer shutdown. */
async function disposable(t: ExecutionContext): Promise<LspChild> {
  const lsp = await startLsp();
  t.teardown(() => {
    lsp.child.kill("SIGKILL");
    lsp.connection.dispose();
  });
  return lsp;
}

test("a header the reader cannot use is reported and skipped to the next Content-Length; later requests are answered, and 1 GB announced is not waited for", async (t) => {
  const lsp = await disposable(t);
  const answers = rawAnswers(lsp);
  const logged: string[] = [];
  lsp.connection.onNotification("window/logMessage", (p: { message: string }) => {
    logged.push(p.message);
  });
  const uri = "file:///nowhere/framing.nifty";
  await lsp.open(uri, "ENV PORT=2200\n");
  const headers: Array<[string, string, RegExp]> = [
    [
      "Content-Length abc",
      // A skipped body is never read as a message: this shutdown gets no answer.
      'Content-Length: abc\r\n\r\n{"jsonrpc":"2.0","id":90,"method":"shutdown"}',
      /not a number/,
    ],
    ["a negative Content-Length", "Content-Length: -5\r\n\r\n{}", /not a number/],
    ["1 GB announced", `Content-Length: 1000000000\r\n\r\n${"x".repeat(3 << 20)}`, /more than the 64 MiB/],
    [
      "no Content-Length",
      "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}",
      /no Content-Length/,
    ],
    ["a line without a colon", "hello world\r\n\r\n", /a line without a colon/],
    ["70 KiB of junk and no blank line", "y".repeat(70 << 10), /runs past 64 KiB/],
  ];
  for (const [what, bytes, said] of headers) {
    lsp.child.stdin.write(bytes);
    const symbols = await within(
      lsp.connection.sendRequest<Array<{ name: string }>>("textDocument/documentSymbol", {
        textDocument: { uri },
      }),
      5000,
      `the request after ${what}`,
    );
    t.is(symbols.length, 1, what);
    t.regex(logged.at(-1) ?? "", said, what);
    t.regex(logged.at(-1) ?? "", /skipped, up to the next Content-Length header/, what);
  }
  t.is(logged.length, headers.length, "one report for each");
  t.false(
    answers.some((a) => a.id === 90),
    "the skipped shutdown",
  );
  t.is(lsp.child.exitCode, null);
});

test("the framing is the same whatever the chunks: a bad header and the next message split byte by byte", (t) => {
  const good = frame({ id: 1, method: "textDocument/hover", params: { textDocument: { uri: "file:///x" } } });
  const input = Buffer.from(`Content-Length: abc\r\n\r\n{}${good}junk\r\n\r\n${good}`);
  const run = (size: number): { out: string; reports: number } => {
    const reports: string[] = [];
    const framing = new Framing((m) => reports.push(m));
    let out = "";
    framing.on("data", (b: Buffer) => (out += b.toString("latin1")));
    for (let i = 0; i < input.length; i += size) framing.write(input.subarray(i, i + size));
    framing.end();
    return { out, reports: reports.length };
  };
  for (const size of [1, 2, 7, input.length])
    t.deepEqual(run(size), { out: good + good, reports: 2 }, `${size}`);
});

test("a request whose params are null or of the wrong shape is InvalidParams (-32602), and the next request is answered", async (t) => {
  const lsp = await disposable(t);
  const answers = rawAnswers(lsp);
  const uri = "file:///nowhere/params.nifty";
  await lsp.open(uri, "ENV PORT=2200\n");
  const methods = [
    "textDocument/hover",
    "textDocument/completion",
    "textDocument/definition",
    "textDocument/references",
    "textDocument/documentSymbol",
    "textDocument/formatting",
    "textDocument/codeAction",
  ];
  const wrong = [null, {}, { textDocument: { uri }, position: "0:3" }, { textDocument: uri }];
  for (const method of methods)
    for (const [i, params] of wrong.entries())
      lsp.child.stdin.write(frame({ id: `${method}#${i}`, method, params }));
  const hover = await within(
    lsp.connection.sendRequest<{ contents: unknown } | null>("textDocument/hover", {
      textDocument: { uri },
      position: { line: 0, character: 1 },
    }),
    5000,
    "the hover after them",
  );
  t.truthy(hover, "ENV's hover");
  for (const method of methods)
    for (const [i] of wrong.entries()) {
      if (method === "textDocument/documentSymbol" || method === "textDocument/formatting")
        if (i === 2) continue; // a position is not theirs to read: the params hold what they need
      const answer = answers.find((a) => a.id === `${method}#${i}`);
      t.is(answer?.error?.code, -32602, `${method} with ${JSON.stringify(wrong[i])}`);
    }
  t.is(lsp.child.exitCode, null);
});

test("standard input ending inside a message: the server exits 1, saying why on stderr, instead of waiting for the rest", async (t) => {
  const lsp = await disposable(t);
  const exited = new Promise<number | null>((resolve) => lsp.child.on("exit", (code) => resolve(code)));
  lsp.child.stdin.end('Content-Length: 100\r\n\r\n{"jsonrpc":');
  t.is(await within(exited, 5000, "the end of standard input"), 1);
  t.regex(lsp.stderr(), /niftyc lsp: standard input ended without an exit notification/);
});
