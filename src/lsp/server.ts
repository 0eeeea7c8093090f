// The language server: LSP over a pair of streams (stdio from `niftyc lsp`).
// Every answer comes from checkSource, the front end of `niftyc check`, and
// the instruction table; package names come from the store, read only. A
// request that fails is answered with an empty result and a log line: the
// server never goes down with a document. Params a request cannot use are
// InvalidParams (src/lsp/params.ts); a header the JSON-RPC reader cannot use
// is reported and skipped before the reader sees it (src/lsp/framing.ts).
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  CodeActionRequest,
  CompletionRequest,
  createConnection,
  DefinitionRequest,
  DocumentFormattingRequest,
  DocumentSymbolRequest,
  HoverRequest,
  type ProtocolRequestType,
  type RequestHandler,
  ReferencesRequest,
  ErrorCodes,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  TextDocuments,
  TextDocumentSyncKind,
  type Connection,
  type Diagnostic as LspDiagnostic,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { SyntaxTree } from "../../grammar/syntax.ts";
import type { SourceFile } from "../core/source.ts";
import { loadFrontEnd, MAX_RECIPE_CHARS, type FrontEnd, type Parsed } from "../check/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import {
  codeActions,
  complete,
  declaredArchives,
  hover,
  symbols,
  toLspDiagnostic,
  NO_PACKAGES,
  type PackageCatalog,
} from "./features.ts";
import { definition, references } from "./names.ts";
import { Framing } from "./framing.ts";
import { CODE_ACTION, DOCUMENT, invalidParams, POSITION, REFERENCES, type Shape } from "./params.ts";

export interface ServerOptions {
  /** The content store, for package names (read only); absent: no package completion beyond the lock. */
  storeDir?: string;
  /** How long a burst of changes waits before it is checked again (default DEBOUNCE_MS). */
  debounceMs?: number;
}

/**
 * The wait after a change before it is checked: long enough to take in the
 * rest of a burst already on its way (a paste, a multi-cursor edit, key
 * repeat sends one change per keystroke), short beside the check itself. The
 * client debounces typing itself where it wants to (Neovim's
 * debounce_text_changes, 150 ms); a longer wait here would only add to it.
 */
export const DEBOUNCE_MS = 10;

/** A version of a document: its parse at once, its diagnostics once they are asked for. */
interface Analysis {
  version: number;
  source: SourceFile;
  parsed: Parsed | undefined;
  tree: SyntaxTree;
  diagnostics?: LspDiagnostic[];
}

function recipePathOf(uri: string): string | undefined {
  try {
    return uri.startsWith("file:") ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The recipe's lock as it is now, or none. Synchronous, a few microseconds:
 * awaiting the thread pool would let a check that is due run first.
 */
function lockStat(recipePath: string): { mtimeMs: number; size: number } | undefined {
  try {
    return statSync(`${recipePath}.lock`, { throwIfNoEntry: false });
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

/** The document's parse (the tree completion and the other requests need); checked later, if at all. */
function parseDocument(front: FrontEnd, doc: TextDocument): Analysis {
  const recipePath = recipePathOf(doc.uri);
  const source = { path: recipePath ?? doc.uri, text: doc.getText() };
  const empty = { source, instructions: [], comments: [] };
  try {
    const parsed = front.parse(source);
    return { version: doc.version, source, parsed, tree: parsed?.tree ?? empty };
  } catch (error) {
    return {
      version: doc.version,
      source,
      parsed: undefined,
      tree: empty,
      diagnostics: [faultDiagnostic(error)],
    };
  }
}

/** checkSource's diagnostics for the analysed text, from the parse already made. */
function diagnose(front: FrontEnd, uri: string, analysis: Analysis): LspDiagnostic[] {
  if (analysis.diagnostics !== undefined) return analysis.diagnostics;
  const recipePath = recipePathOf(uri);
  try {
    const result = front.checkParsed(analysis.source, analysis.parsed, {
      args: new Map(),
      strict: false,
      // A document that is no file has no file name to name the outputs (NIFTY809).
      ...(recipePath ? { recipePath } : { nameUses: { machine: false, repository: false } }),
    });
    analysis.diagnostics = result.diagnostics.map(toLspDiagnostic);
  } catch (error) {
    analysis.diagnostics = [faultDiagnostic(error)];
  }
  return analysis.diagnostics;
}

/** The answer to a request that comes before `initialize`, as the protocol asks. */
const NOT_INITIALIZED = new ResponseError(ErrorCodes.ServerNotInitialized, "the server is not initialized");

/**
 * Answers a request, or logs its failure and answers `fallback`; before `initialize`, an error, and
 * for params `invalid` finds wrong (null, or without what `run` reads), that error (-32602).
 */
function guarded<P, R>(
  connection: Connection,
  what: string,
  fallback: R,
  run: (params: P) => Promise<R> | R,
  ready: () => boolean = () => true,
  invalid: (params: unknown) => ResponseError<void> | undefined = () => undefined,
) {
  return async (params: P): Promise<R | ResponseError<void>> => {
    if (!ready()) return NOT_INITIALIZED;
    const refused = invalid(params);
    if (refused !== undefined) return refused;
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

/**
 * The connection over the streams, `input` read through Framing: a header the reader cannot use is
 * reported to the client (window/logMessage) and skipped, not the end of the conversation.
 */
function connect(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Connection {
  const framing = new Framing((message) => connection.console.warn(message));
  const connection = createConnection(
    new StreamMessageReader(input.pipe(framing)),
    new StreamMessageWriter(output),
  );
  return connection;
}

export function startServer(
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  options: ServerOptions = {},
): Connection {
  const connection = connect(input, output);
  const documents = new TextDocuments(TextDocument);
  const analyses = new Map<string, Analysis>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const packageCache = new Map<string, { key: string; hints: Promise<PackageCatalog> }>();

  /** The analysis of the document as it is now: reused while its version holds. */
  const current = async (uri: string): Promise<Analysis | undefined> => {
    const front = await loadFrontEnd();
    const doc = documents.get(uri);
    if (doc === undefined) return undefined;
    const known = analyses.get(uri);
    if (known !== undefined && known.version === doc.version) return known;
    const fresh = parseDocument(front, doc);
    analyses.set(uri, fresh);
    return fresh;
  };

  const publish = async (uri: string): Promise<void> => {
    const analysis = await current(uri);
    if (analysis === undefined) return;
    const diagnostics = diagnose(await loadFrontEnd(), uri, analysis);
    await connection.sendDiagnostics({ uri, version: analysis.version, diagnostics });
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

  /** The packages of the recipe's archives, read from the store once per document, its archives and its lock. */
  const packagesFor = (uri: string, tree: SyntaxTree) => async (): Promise<PackageCatalog> => {
    const recipePath = recipePathOf(uri);
    if (recipePath === undefined) return NO_PACKAGES;
    const archives = declaredArchives(tree);
    const lock = lockStat(recipePath);
    const key = JSON.stringify([archives, lock?.mtimeMs, lock?.size]);
    const known = packageCache.get(uri);
    if (known?.key === key) return known.hints;
    const hints = import("./packages.ts")
      .then((m) => m.packageCatalog(options.storeDir, recipePath, archives))
      .catch(() => NO_PACKAGES);
    // One entry per open document: an edit of its ARCHIVE lines or a new lock replaces it (and lets go of its indices).
    void known?.hints.then((old) => old.close());
    packageCache.set(uri, { key, hints });
    return hints;
  };

  let initialized = false;
  connection.onInitialize(() => {
    initialized = true;
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        completionProvider: { triggerCharacters: ["{", "$"] },
        hoverProvider: true,
        definitionProvider: true,
        referencesProvider: true,
        documentSymbolProvider: true,
        documentFormattingProvider: true,
        codeActionProvider: { codeActionKinds: ["quickfix", "source"] },
      },
      serverInfo: { name: "niftyc" },
    };
  });

  documents.onDidOpen((e) => schedule(e.document.uri, 0));
  documents.onDidChangeContent((e) => schedule(e.document.uri, options.debounceMs ?? DEBOUNCE_MS));
  documents.onDidClose((e) => {
    clearTimeout(timers.get(e.document.uri));
    timers.delete(e.document.uri);
    analyses.delete(e.document.uri);
    packageCache.delete(e.document.uri);
    connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] }).catch(() => undefined);
  });

  registerRequests(connection, documents, current, packagesFor, () => initialized);
  documents.listen(connection);
  connection.listen();
  return connection;
}

function registerRequests(
  connection: Connection,
  documents: TextDocuments<TextDocument>,
  current: (uri: string) => Promise<Analysis | undefined>,
  packagesFor: (uri: string, tree: SyntaxTree) => () => Promise<PackageCatalog>,
  ready: () => boolean,
): void {
  /** A request's handler: answered only once the client has initialized the server, and only params of `shape`. */
  const on = <P, R>(
    type: ProtocolRequestType<P, R, unknown, void, unknown>,
    shape: Shape,
    what: string,
    fallback: R,
    run: (params: P) => Promise<R> | R,
  ) =>
    connection.onRequest(
      type,
      // HandlerResult's conditional type stays unresolved for a generic R: the handler is what it says.
      guarded(connection, what, fallback, run, ready, (p) =>
        invalidParams(type.method, shape, p),
      ) as RequestHandler<P, R, void>,
    );
  const at = async (uri: string, position: { line: number; character: number }) => {
    // A position before the document's start is no position in it.
    if (position.line < 0 || position.character < 0) return undefined;
    const doc = documents.get(uri);
    const analysis = await current(uri);
    if (doc === undefined || analysis === undefined) return undefined;
    return { doc, analysis, offset: doc.offsetAt(position) };
  };
  on(CompletionRequest.type, POSITION, "completion", { items: [], isIncomplete: false }, async (p) => {
    const found = await at(p.textDocument.uri, p.position);
    if (found === undefined) return { items: [], isIncomplete: false };
    const { doc, analysis, offset } = found;
    return complete({
      tree: analysis.tree,
      text: doc.getText(),
      offset,
      packages: packagesFor(doc.uri, analysis.tree),
    });
  });
  on(HoverRequest.type, POSITION, "hover", null, async (p) => {
    const found = await at(p.textDocument.uri, p.position);
    return found ? hover(found.analysis.tree, found.offset) : null;
  });
  on(DefinitionRequest.type, POSITION, "definition", null, async (p) => {
    const found = await at(p.textDocument.uri, p.position);
    return found ? definition(found.analysis.tree, p.textDocument.uri, found.offset) : null;
  });
  on(ReferencesRequest.type, REFERENCES, "references", [], async (p) => {
    const found = await at(p.textDocument.uri, p.position);
    if (found === undefined) return [];
    return references(found.analysis.tree, p.textDocument.uri, found.offset, p.context.includeDeclaration);
  });
  on(DocumentSymbolRequest.type, DOCUMENT, "symbols", [], async (p) => {
    const analysis = await current(p.textDocument.uri);
    return analysis ? symbols(analysis.tree) : [];
  });
  on(DocumentFormattingRequest.type, DOCUMENT, "formatting", null, async (p) => {
    const doc = documents.get(p.textDocument.uri);
    if (doc === undefined) return null;
    const { formatRecipe } = await import("../check/format.ts");
    const text = doc.getText();
    if (text.length > MAX_RECIPE_CHARS) return [];
    const formatted = await formatRecipe({ path: doc.uri, text });
    if (formatted.errors || formatted.text === text) return [];
    return [
      {
        range: { start: { line: 0, character: 0 }, end: doc.positionAt(text.length) },
        newText: formatted.text,
      },
    ];
  });
  on(CodeActionRequest.type, CODE_ACTION, "code actions", [], async (p) => {
    const analysis = await current(p.textDocument.uri);
    if (analysis === undefined) return [];
    return codeActions(p.textDocument.uri, p.context.diagnostics, analysis.tree, p.context.only);
  });
}
