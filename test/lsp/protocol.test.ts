// niftyc lsp over its stdio, as an editor drives it (vscode-jsonrpc): each
// feature answered from the same front end as niftyc check.
import test from "ava";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openStore } from "../../src/cache/store.ts";
import { writeParsedIndex } from "../../src/debian/index.ts";
import { serializeLock } from "../../src/debian/lockfile.ts";
import { indexRecord } from "../debian/helpers.ts";
import { hashText } from "../../src/pipeline/keys.ts";
import { startLsp, type LspChild } from "../support/lsp-client.ts";

const RECIPE = [
  "ARG PORT=2200",
  "FECTH x",
  "DIR /tmp MODE 1777 OWNR root:root",
  "HOSTNAME box${PORT}",
  "ENV A=1",
  "# a comment",
  "USER   root LOCKED",
  "",
].join("\n");

const uri = "file:///nowhere/protocol.nifty";

async function withServer(
  t: { teardown(fn: () => Promise<void>): void },
  args: string[] = [],
): Promise<LspChild> {
  const lsp = await startLsp(args);
  t.teardown(() => lsp.close());
  return lsp;
}

test("diagnostics on open and after a change carry check's codes, hints and severities", async (t) => {
  const lsp = await withServer(t);
  await lsp.open(uri, RECIPE);
  const first = await lsp.diagnostics(uri, 1);
  t.deepEqual(
    first.diagnostics.map((d) => [
      d.code,
      d.severity,
      d.range.start.line,
      d.range.start.character,
      d.message.split("\n")[1],
    ]),
    [
      ["NIFTY010", 1, 1, 0, "hint: did you mean FETCH?"],
      ["NIFTY030", 1, 2, 19, "hint: did you mean OWNER?"],
      ["NIFTY030", 1, 2, 24, "hint: options here: MODE, OWNER"],
    ],
  );
  // A change: the errors go, and an unused ARG default stays quiet; a continuation at the end warns.
  await lsp.connection.sendNotification("textDocument/didChange", {
    textDocument: { uri, version: 2 },
    contentChanges: [{ text: "ARG PORT=2200\nHOSTNAME box${PORT} \\" }],
  });
  const second = await lsp.diagnostics(uri, 2);
  t.deepEqual(
    second.diagnostics.map((d) => [d.code, d.severity]),
    [["NIFTY007", 2]],
  );
});

test("completion: keywords as snippets of their syntax, the spec's options, names after ${", async (t) => {
  const lsp = await withServer(t);
  await lsp.open(uri, `${RECIPE}\n`);
  await lsp.diagnostics(uri, 1);
  type Items = {
    items: Array<{ label: string; insertText?: string; insertTextFormat?: number; kind: number }>;
  };
  const complete = (line: number, character: number) =>
    lsp.connection.sendRequest<Items>("textDocument/completion", {
      textDocument: { uri },
      position: { line, character },
    });
  const keywords = await complete(8, 0);
  const dir = keywords.items.find((i) => i.label === "DIR");
  t.is(dir?.insertText, "DIR ${1:path}");
  t.is(dir?.insertTextFormat, 2);
  t.is(keywords.items.find((i) => i.label === "USER")?.insertText, "USER ${1:name}");
  t.true(keywords.items.some((i) => i.label === "PACKAGE"));
  t.deepEqual(
    (await complete(2, 19)).items.map((i) => i.label),
    ["MODE", "OWNER"],
  );
  t.deepEqual(
    (await complete(6, 19)).items.map((i) => i.label),
    ["UID", "GID", "HOME", "SHELL", "GROUPS", "PASSWORD", "PASSWORD-HASH", "LOCKED"],
  );
  t.deepEqual(
    (await complete(3, 14)).items.map((i) => i.label),
    ["PORT", "A"],
  );
});

test("completion of package names from the store's parsed index of the recipe's archives", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "niftyc-lsp-"));
  const store = await openStore(join(dir, "cache"));
  const from = { archive: "debian", suite: "bookworm", component: "main" };
  const record = (name: string, version: string, description: string) =>
    indexRecord(from, name, version, description);
  const indexDigest = `sha256:${"c".repeat(64)}`;
  await writeParsedIndex(store, indexDigest, [
    record("busybox", "1:1.35.0-4", "Tiny utilities for small and embedded systems"),
    record("busybox-static", "1:1.35.0-4", "Standalone rescue shell with tons of builtin utilities"),
    record("dropbear-bin", "2022.83-1", "lightweight SSH2 server"),
  ]);
  const inRelease = `sha256:${"a".repeat(64)}`;
  await store.writeRecord("debian-release-index", hashText(inRelease, "main", "amd64"), {
    index: indexDigest,
  });
  const recipePath = join(dir, "r.nifty");
  const lock = serializeLock({
    architecture: "amd64",
    suites: [{ ...from, date: "Sat, 11 Jul 2026 10:16:37 UTC", inRelease }],
    requests: [{ name: "dropbear-bin" }],
    packages: [
      {
        name: "dropbear-bin",
        version: "2022.83-1",
        architecture: "amd64",
        from,
        filename: "pool/main/d/dropbear-bin.deb",
        size: 1,
        sha256: `sha256:${"b".repeat(64)}`,
        requestedBy: ["dropbear-bin"],
      },
    ],
  });
  await writeFile(`${recipePath}.lock`, lock);
  const text = "ARCHIVE debian bookworm\nPACKAGE busy\n";
  await writeFile(recipePath, text);
  const lsp = await withServer(t, ["--cache", join(dir, "cache")]);
  const fileUri = pathToFileURL(recipePath).href;
  await lsp.open(fileUri, text);
  type Items = { items: Array<{ label: string; detail?: string; documentation?: string }> };
  const got = await lsp.connection.sendRequest<Items>("textDocument/completion", {
    textDocument: { uri: fileUri },
    position: { line: 1, character: 12 },
  });
  t.deepEqual(
    got.items.map((i) => [i.label, i.detail, i.documentation]),
    [
      ["busybox", "1:1.35.0-4", "Tiny utilities for small and embedded systems"],
      ["busybox-static", "1:1.35.0-4", "Standalone rescue shell with tons of builtin utilities"],
    ],
  );
});

test("hover shows the spec's summary, syntax and example; definition finds the ARG; symbols", async (t) => {
  const lsp = await withServer(t);
  await lsp.open(uri, RECIPE);
  const hover = await lsp.connection.sendRequest<{ contents: { value: string } }>("textDocument/hover", {
    textDocument: { uri },
    position: { line: 2, character: 1 },
  });
  t.regex(hover.contents.value, /^\*\*DIR\*\*: Create directories/);
  t.true(hover.contents.value.includes("DIR <path>... [MODE <octal>] [OWNER <user|uid>:<group|gid>]"));
  t.true(hover.contents.value.includes("DIR /tmp /var/tmp MODE 1777"));
  t.is(
    await lsp.connection.sendRequest("textDocument/hover", {
      textDocument: { uri },
      position: { line: 5, character: 3 },
    }),
    null,
  );
  const definition = await lsp.connection.sendRequest("textDocument/definition", {
    textDocument: { uri },
    position: { line: 3, character: 15 },
  });
  t.deepEqual(definition, {
    uri,
    range: { start: { line: 0, character: 4 }, end: { line: 0, character: 8 } },
  });
  const symbols = await lsp.connection.sendRequest<Array<{ name: string; kind: number }>>(
    "textDocument/documentSymbol",
    { textDocument: { uri } },
  );
  t.deepEqual(
    symbols.map((s) => [s.name, s.kind]),
    [
      ["ARG PORT=2200", 13],
      ["FECTH x", 20],
      ["DIR /tmp", 20],
      ["HOSTNAME box${PORT}", 20],
      ["ENV A=1", 13],
      ["USER root", 20],
    ],
  );
});

test("formatting is niftyc fmt's; a recipe with syntax errors gets no edit", async (t) => {
  const lsp = await withServer(t);
  await lsp.open(uri, "hostname   box  \n\n\n# c\nDIR /a \\\n  /b\n");
  const options = { tabSize: 4, insertSpaces: true };
  const edits = await lsp.connection.sendRequest<Array<{ newText: string }>>("textDocument/formatting", {
    textDocument: { uri },
    options,
  });
  t.deepEqual(
    edits.map((e) => e.newText),
    ["HOSTNAME box\n\n# c\nDIR /a \\\n    /b\n"],
  );
  const bad = "file:///nowhere/bad.nifty";
  await lsp.open(bad, 'LABEL "a=b\n');
  t.deepEqual(
    await lsp.connection.sendRequest("textDocument/formatting", { textDocument: { uri: bad }, options }),
    [],
  );
});

test("code actions turn a did-you-mean hint into its replacement", async (t) => {
  const lsp = await withServer(t);
  await lsp.open(uri, RECIPE);
  const { diagnostics } = await lsp.diagnostics(uri, 1);
  type Action = {
    title: string;
    kind: string;
    edit: { changes: Record<string, Array<{ range: unknown; newText: string }>> };
  };
  const actions = await lsp.connection.sendRequest<Action[]>("textDocument/codeAction", {
    textDocument: { uri },
    range: { start: { line: 0, character: 0 }, end: { line: 7, character: 0 } },
    context: { diagnostics },
  });
  t.deepEqual(
    actions.map((a) => [a.title, a.kind, a.edit.changes[uri]![0]!.newText]),
    [
      ["Change to FETCH", "quickfix", "FETCH"],
      ["Change to OWNER", "quickfix", "OWNER"],
    ],
  );
  t.deepEqual(actions[0]!.edit.changes[uri]![0]!.range, {
    start: { line: 1, character: 0 },
    end: { line: 1, character: 5 },
  });
});

const ACCOUNTS = [
  "GROUP staff",
  "USER alice GROUPS staff",
  "DIR /srv OWNER alice:staff",
  "FILE /srv/a OWNER root:alice <<EOF",
  "x",
  "EOF",
  "ARCHIVE debian bookworm",
  "PACKAGE busybox",
  "",
].join("\n");

test("references and definitions of USER, GROUP and ARCHIVE names, from a use or the declaration", async (t) => {
  const lsp = await withServer(t);
  const u = "file:///nowhere/accounts.nifty";
  await lsp.open(u, ACCOUNTS);
  type Loc = { uri: string; range: { start: { line: number; character: number } } };
  const refs = async (line: number, character: number, includeDeclaration = true) =>
    (
      await lsp.connection.sendRequest<Loc[]>("textDocument/references", {
        textDocument: { uri: u },
        position: { line, character },
        context: { includeDeclaration },
      })
    ).map((l) => [l.range.start.line, l.range.start.character]);
  const definition = async (line: number, character: number) =>
    (
      await lsp.connection.sendRequest<Loc | null>("textDocument/definition", {
        textDocument: { uri: u },
        position: { line, character },
      })
    )?.range.start;
  // The group staff: its GROUP line, USER … GROUPS, OWNER's group, from the declaration or a use.
  t.deepEqual(await refs(0, 7), [
    [0, 6],
    [1, 18],
    [2, 21],
  ]);
  t.deepEqual(await refs(2, 22, false), [
    [1, 18],
    [2, 21],
  ]);
  t.deepEqual(await definition(2, 23), { line: 0, character: 6 });
  // alice: the user, and as a group the private group its USER line made.
  t.deepEqual(await refs(2, 16), [
    [1, 5],
    [2, 15],
    [3, 23],
  ]);
  t.deepEqual(await definition(3, 25), { line: 1, character: 5 });
  // root is declared by no line: no definition.
  t.is(await definition(3, 19), undefined);
  // An archive: PACKAGE lines name none (they use every ARCHIVE line), so its only place is its line.
  t.deepEqual(await refs(6, 9), [[6, 8]]);
  t.deepEqual(await definition(6, 9), { line: 6, character: 8 });
  // ARG/ENV: every ${NAME} and its declaration.
  const v = "file:///nowhere/vars.nifty";
  await lsp.open(v, RECIPE.replace("ENV A=1", "ENV A=${PORT}"));
  const vars = await lsp.connection.sendRequest<Loc[]>("textDocument/references", {
    textDocument: { uri: v },
    position: { line: 0, character: 5 },
    context: { includeDeclaration: true },
  });
  t.deepEqual(
    vars.map((l) => [l.range.start.line, l.range.start.character]),
    [
      [0, 4],
      [3, 12],
      [4, 6],
    ],
  );
});

type Action = {
  title: string;
  kind: string;
  edit: { changes: Record<string, Array<{ range: { start: unknown; end: unknown }; newText: string }>> };
};

test("code actions: the missing ARCHIVE line before the first PACKAGE, and STOPSIGNAL as the build would choose", async (t) => {
  const lsp = await withServer(t);
  const u = "file:///nowhere/actions.nifty";
  const text = "HOSTNAME box\nPACKAGE busybox-static\nINITTAB respawn /bin/sh\n";
  await lsp.open(u, text);
  const { diagnostics } = await lsp.diagnostics(u, 1);
  // NIFTY068 at PACKAGE (and NIFTY089: /bin/sh is not in the image).
  t.deepEqual(
    diagnostics.map((d) => d.code),
    ["NIFTY068", "NIFTY089"],
  );
  const ask = (only?: string[]) =>
    lsp.connection.sendRequest<Action[]>("textDocument/codeAction", {
      textDocument: { uri: u },
      range: { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } },
      context: { diagnostics, ...(only ? { only } : {}) },
    });
  const actions = await ask();
  t.deepEqual(
    actions.map((a) => [a.title, a.kind, a.edit.changes[u]![0]!.range.start, a.edit.changes[u]![0]!.newText]),
    [
      [
        "Add ARCHIVE debian bookworm bookworm-updates before the first PACKAGE",
        "quickfix",
        { line: 1, character: 0 },
        "ARCHIVE debian bookworm bookworm-updates\n",
      ],
      [
        "Add STOPSIGNAL SIGUSR2 (the build's choice for BusyBox init)",
        "source",
        { line: 2, character: 23 },
        "\nSTOPSIGNAL SIGUSR2",
      ],
    ],
  );
  t.deepEqual(
    (await ask(["source"])).map((a) => a.kind),
    ["source"],
  );
  // With a STOPSIGNAL line, or no line that shows the init, nothing is offered for it.
  await lsp.connection.sendNotification("textDocument/didChange", {
    textDocument: { uri: u, version: 2 },
    contentChanges: [{ text: `${text}STOPSIGNAL SIGTERM\n` }],
  });
  t.deepEqual(await ask(["source"]), []);
  await lsp.connection.sendNotification("textDocument/didChange", {
    textDocument: { uri: u, version: 3 },
    contentChanges: [{ text: "HOSTNAME box\n" }],
  });
  t.deepEqual(await ask(["source"]), []);
});
