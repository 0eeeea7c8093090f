// The language server: LSP over a pair of streams (stdio from `niftyc lsp`).
// Every answer comes from checkSource, the front end of `niftyc check`, and
// the instruction table; package names come from the store, read only. A
// request that fails is answered with an empty result and a log line: the
// server never goes down with a document.
import { fileURLToPath } from "node:url";
import {
  createConnection,
  StreamMessageReader,
  StreamMessageWriter,
  TextDocuments,
  TextDocumentSyncKind,
  type Connection,
  type Diagnostic as LspDiagnostic,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { SyntaxTree } from "../../grammar/syntax.ts";
import { checkSource, MAX_RECIPE_CHARS } from "../check/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import {
  codeActions,
  complete,
  declaredArchives,
  definition,
  hover,
  symbols,
  toLspDiagnostic,
  type PackageHint,
} from "./features.ts";

export interface ServerOptions {
  /** The content store, for package names (read only); absent: no package completion beyond the lock. */
  storeDir?: string;
  /** How long a burst of changes waits before it is checked again. */
  debounceMs?: number;
}

interface Analysis {
  version: number;
  tree: SyntaxTree;
  diagnostics: LspDiagnostic[];
}

function recipePathOf(uri: string): string | undefined {
  try {
    return uri.startsWith("file:") ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}

/** A fault of niftyc itself, reported on the document rather than taking the server down. */
function faultDiagnostic(error: unknown): LspDiagnostic {
  const d: Diagnostic = {
    severity: "error",
    code: "NIFTY790",
    message: `niftyc could not check this document: ${error instanceof Error ? error.message : error}`,
    hint: "a bug in niftyc lsp: please report it with the recipe",
  };
  return toLspDiagnostic(d);
}

async function analyze(doc: TextDocument): Promise<Analysis> {
  const text = doc.getText();
  const recipePath = recipePathOf(doc.uri);
  const source = { path: recipePath ?? doc.uri, text };
  try {
    const result = await checkSource(source, {
      args: new Map(),
      strict: false,
      ...(recipePath ? { recipePath } : {}),
    });
    const tree = result.tree ?? { source, instructions: [], comments: [] };
    return { version: doc.version, tree, diagnostics: result.diagnostics.map(toLspDiagnostic) };
  } catch (error) {
    return {
      version: doc.version,
      tree: { source, instructions: [], comments: [] },
      diagnostics: [faultDiagnostic(error)],
    };
  }
}

/** Answers a request, or logs its failure and answers `fallback`. */
function guarded<P, R>(
  connection: Connection,
  what: string,
  fallback: R,
  run: (params: P) => Promise<R> | R,
) {
  return async (params: P): Promise<R> => {
    try {
      return await run(params);
    } catch (error) {
      connection.console.error(
        `niftyc lsp: ${what} failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`,
      );
      return fallback;
    }
  };
}

export function startServer(
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  options: ServerOptions = {},
): Connection {
  const connection = createConnection(new StreamMessageReader(input), new StreamMessageWriter(output));
  const documents = new TextDocuments(TextDocument);
  const analyses = new Map<string, Promise<Analysis>>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const packageCache = new Map<string, Promise<PackageHint[]>>();

  /** The analysis of the document as it is now: reused while its version holds. */
  const current = async (uri: string): Promise<Analysis | undefined> => {
    const doc = documents.get(uri);
    if (doc === undefined) return undefined;
    const known = analyses.get(uri);
    if (known !== undefined && (await known).version === doc.version) return known;
    const fresh = analyze(doc);
    analyses.set(uri, fresh);
    return fresh;
  };

  const publish = async (uri: string): Promise<void> => {
    const analysis = await current(uri);
    const doc = documents.get(uri);
    if (analysis === undefined || doc === undefined || analysis.version !== doc.version) return;
    await connection.sendDiagnostics({ uri, version: analysis.version, diagnostics: analysis.diagnostics });
  };

  const schedule = (uri: string, delay: number): void => {
    clearTimeout(timers.get(uri));
    timers.set(
      uri,
      setTimeout(() => {
        timers.delete(uri);
        publish(uri).catch((error: unknown) =>
          connection.console.error(`niftyc lsp: diagnostics failed: ${String(error)}`),
        );
      }, delay),
    );
  };

  const packagesFor = (uri: string, tree: SyntaxTree) => (): Promise<PackageHint[]> => {
    const recipePath = recipePathOf(uri);
    if (recipePath === undefined) return Promise.resolve([]);
    const archives = declaredArchives(tree);
    const key = JSON.stringify([recipePath, archives]);
    let hints = packageCache.get(key);
    if (hints === undefined) {
      hints = import("./packages.ts")
        .then((m) => m.packageHints(options.storeDir, recipePath, archives))
        .catch(() => []);
      packageCache.set(key, hints);
    }
    return hints;
  };

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      completionProvider: { triggerCharacters: ["{", "$"] },
      hoverProvider: true,
      definitionProvider: true,
      documentSymbolProvider: true,
      documentFormattingProvider: true,
      codeActionProvider: { codeActionKinds: ["quickfix"] },
    },
    serverInfo: { name: "niftyc" },
  }));

  documents.onDidOpen((e) => schedule(e.document.uri, 0));
  documents.onDidChangeContent((e) => schedule(e.document.uri, options.debounceMs ?? 150));
  documents.onDidClose((e) => {
    clearTimeout(timers.get(e.document.uri));
    timers.delete(e.document.uri);
    analyses.delete(e.document.uri);
    connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] }).catch(() => undefined);
  });

  registerRequests(connection, documents, current, packagesFor);
  documents.listen(connection);
  connection.listen();
  return connection;
}

function registerRequests(
  connection: Connection,
  documents: TextDocuments<TextDocument>,
  current: (uri: string) => Promise<Analysis | undefined>,
  packagesFor: (uri: string, tree: SyntaxTree) => () => Promise<PackageHint[]>,
): void {
  const at = async (uri: string, position: { line: number; character: number }) => {
    const doc = documents.get(uri);
    const analysis = await current(uri);
    if (doc === undefined || analysis === undefined) return undefined;
    return { doc, analysis, offset: doc.offsetAt(position) };
  };
  connection.onCompletion(
    guarded(connection, "completion", { items: [], isIncomplete: false }, async (p) => {
      const found = await at(p.textDocument.uri, p.position);
      if (found === undefined) return { items: [], isIncomplete: false };
      const { doc, analysis, offset } = found;
      return complete({
        tree: analysis.tree,
        text: doc.getText(),
        offset,
        packages: packagesFor(doc.uri, analysis.tree),
      });
    }),
  );
  connection.onHover(
    guarded(connection, "hover", null, async (p) => {
      const found = await at(p.textDocument.uri, p.position);
      return found ? hover(found.analysis.tree, found.offset) : null;
    }),
  );
  connection.onDefinition(
    guarded(connection, "definition", null, async (p) => {
      const found = await at(p.textDocument.uri, p.position);
      return found ? definition(found.analysis.tree, p.textDocument.uri, found.offset) : null;
    }),
  );
  connection.onDocumentSymbol(
    guarded(connection, "symbols", [], async (p) => {
      const analysis = await current(p.textDocument.uri);
      return analysis ? symbols(analysis.tree) : [];
    }),
  );
  connection.onDocumentFormatting(
    guarded(connection, "formatting", null, async (p) => {
      const doc = documents.get(p.textDocument.uri);
      if (doc === undefined) return null;
      const { formatNiftyfile } = await import("../../grammar/format.ts");
      const text = doc.getText();
      if (text.length > MAX_RECIPE_CHARS) return [];
      const formatted = formatNiftyfile({ path: doc.uri, text });
      if (formatted.errors || formatted.text === text) return [];
      return [
        {
          range: { start: { line: 0, character: 0 }, end: doc.positionAt(text.length) },
          newText: formatted.text,
        },
      ];
    }),
  );
  connection.onCodeAction(
    guarded(connection, "code actions", [], (p) => codeActions(p.textDocument.uri, p.context.diagnostics)),
  );
}
