// Whatever an editor sends, niftyc lsp answers and goes on answering: binary
// garbage, a 5 MB line, an unterminated heredoc, bytes that are not UTF-8.
import test from "ava";
import { startLsp } from "../support/lsp-client.ts";

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
