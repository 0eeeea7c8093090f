// What a request's params must hold before its handler reads them. The
// handlers are registered with connection.onRequest, not onHover and the
// like: those wrap the handler in a reader of params.workDoneToken, so a
// request whose params are null was answered -32603 (internal error) before
// niftyc saw it. A request whose params are null, or lack what its handler
// reads, is answered -32602 (InvalidParams), saying what it takes.
import { ErrorCodes, ResponseError } from "vscode-languageserver/node";
import { isRecord } from "../core/json-shape.ts";

type Fields = Record<string, unknown>;

/** What a request's params must be: a test, and the shape in the words of the answer. */
export interface Shape {
  test: (params: Fields) => boolean;
  says: string;
}

const hasDocument = (p: Fields): boolean =>
  isRecord(p.textDocument) && typeof p.textDocument.uri === "string";

const hasPosition = (p: Fields): boolean =>
  hasDocument(p) &&
  isRecord(p.position) &&
  Number.isInteger(p.position.line) &&
  Number.isInteger(p.position.character);

/** documentSymbol, formatting. */
export const DOCUMENT: Shape = { test: hasDocument, says: "{ textDocument: { uri } }" };

/** hover, completion, definition. */
export const POSITION: Shape = {
  test: hasPosition,
  says: "{ textDocument: { uri }, position: { line, character } }",
};

export const REFERENCES: Shape = {
  test: (p) => hasPosition(p) && isRecord(p.context) && typeof p.context.includeDeclaration === "boolean",
  says: "{ textDocument: { uri }, position: { line, character }, context: { includeDeclaration } }",
};

export const CODE_ACTION: Shape = {
  test: (p) => hasDocument(p) && isRecord(p.context) && Array.isArray(p.context.diagnostics),
  says: "{ textDocument: { uri }, range, context: { diagnostics } }",
};

/** The -32602 answer for params of `method` that are not of `shape`, or undefined when they are. */
export function invalidParams(
  method: string,
  shape: Shape,
  params: unknown,
): ResponseError<void> | undefined {
  if (isRecord(params) && shape.test(params)) return undefined;
  return new ResponseError(ErrorCodes.InvalidParams, `${method} takes params ${shape.says}`);
}
