// The small arithmetic of `--set NAME=EXPR`: whole numbers, names, + - * / %,
// unary minus and parentheses. Parsed here by recursive descent into a tree and
// evaluated with plain numbers; nothing is handed to eval or a shell.
import { NiftyError } from "../diagnostics/errors.ts";

export type Expr =
  | { kind: "number"; value: number; at: number }
  | { kind: "name"; name: string; at: number }
  | { kind: "negate"; operand: Expr; at: number }
  | { kind: "binary"; op: "+" | "-" | "*" | "/" | "%"; left: Expr; right: Expr; at: number };

interface Token {
  kind: "number" | "name" | "op" | "end";
  text: string;
  /** 0-based offset in the expression. */
  at: number;
}

export const EXPR_HINT =
  "EXPR is whole numbers, i (the instance number), n (the count), names of the recipe's ENV with whole-number values, + - * / % and parentheses, e.g. 2200+i; for text, quote it and put expressions in braces: '\"web-{i}\"'";

/** Longest expression accepted: plenty for arithmetic, and it bounds the recursion. */
const MAX_LENGTH = 200;

function syntaxError(source: string, at: number, what: string): NiftyError {
  return new NiftyError(
    "NIFTY402",
    `cannot read ${JSON.stringify(source)}: ${what} at column ${at + 1}`,
    EXPR_HINT,
  );
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < source.length) {
    const rest = source.slice(at);
    const space = /^\s+/.exec(rest);
    if (space) {
      at += space[0].length;
      continue;
    }
    const number = /^[0-9]+/.exec(rest);
    if (number) {
      if (/^[A-Za-z_]/.test(rest.slice(number[0].length)))
        throw syntaxError(source, at, "a number runs into a name");
      tokens.push({ kind: "number", text: number[0], at });
      at += number[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (name) {
      tokens.push({ kind: "name", text: name[0], at });
      at += name[0].length;
      continue;
    }
    if ("+-*/%()".includes(rest[0]!)) {
      tokens.push({ kind: "op", text: rest[0]!, at });
      at += 1;
      continue;
    }
    throw syntaxError(source, at, `unexpected ${JSON.stringify(rest[0])}`);
  }
  tokens.push({ kind: "end", text: "", at: source.length });
  return tokens;
}

/** Parse EXPR; throws NIFTY402 pointing at the column where it goes wrong. */
export function parseExpr(source: string): Expr {
  if (source.length > MAX_LENGTH)
    throw new NiftyError("NIFTY402", `expression is longer than ${MAX_LENGTH} characters`, EXPR_HINT);
  const tokens = tokenize(source);
  let pos = 0;
  const peek = (): Token => tokens[pos]!;
  const next = (): Token => tokens[pos++]!;
  const describe = (t: Token): string =>
    t.kind === "end" ? "the expression ends" : `unexpected ${JSON.stringify(t.text)}`;

  // sum := product (("+" | "-") product)*
  const sum = (): Expr => {
    let left = product();
    while (peek().kind === "op" && (peek().text === "+" || peek().text === "-")) {
      const op = next();
      left = { kind: "binary", op: op.text as "+" | "-", left, right: product(), at: op.at };
    }
    return left;
  };
  // product := unary (("*" | "/" | "%") unary)*
  const product = (): Expr => {
    let left = unary();
    while (peek().kind === "op" && "*/%".includes(peek().text)) {
      const op = next();
      left = { kind: "binary", op: op.text as "*" | "/" | "%", left, right: unary(), at: op.at };
    }
    return left;
  };
  // unary := "-" unary | "+" unary | atom
  const unary = (): Expr => {
    const t = peek();
    if (t.kind === "op" && (t.text === "-" || t.text === "+")) {
      next();
      const operand = unary();
      return t.text === "-" ? { kind: "negate", operand, at: t.at } : operand;
    }
    return atom();
  };
  // atom := number | name | "(" sum ")"
  const atom = (): Expr => {
    const t = next();
    if (t.kind === "number") {
      const value = Number(t.text);
      if (!Number.isSafeInteger(value)) throw syntaxError(source, t.at, "number too large");
      return { kind: "number", value, at: t.at };
    }
    if (t.kind === "name") return { kind: "name", name: t.text, at: t.at };
    if (t.kind === "op" && t.text === "(") {
      const inner = sum();
      const close = next();
      if (close.kind !== "op" || close.text !== ")")
        throw syntaxError(source, close.at, `${describe(close)} where ")" was expected`);
      return inner;
    }
    throw syntaxError(source, t.at, `${describe(t)} where a number, a name or "(" was expected`);
  };

  if (peek().kind === "end") throw syntaxError(source, 0, "the expression is empty");
  const tree = sum();
  if (peek().kind !== "end")
    throw syntaxError(source, peek().at, `${describe(peek())} after a complete expression`);
  return tree;
}

/** Every name the expression reads, in order of first use. */
export function exprNames(expr: Expr): Array<{ name: string; at: number }> {
  const seen = new Map<string, number>();
  const walk = (e: Expr): void => {
    if (e.kind === "name" && !seen.has(e.name)) seen.set(e.name, e.at);
    else if (e.kind === "negate") walk(e.operand);
    else if (e.kind === "binary") {
      walk(e.left);
      walk(e.right);
    }
  };
  walk(expr);
  return [...seen].map(([name, at]) => ({ name, at }));
}

/**
 * Evaluate with whole numbers only. "/" truncates toward zero and "%" takes the
 * sign of the left side, as in POSIX shell arithmetic. Names must be bound
 * (check with exprNames first); a result outside the safe integers is refused.
 */
export function evalExpr(expr: Expr, vars: ReadonlyMap<string, number>, source: string): number {
  const check = (value: number, at: number): number => {
    if (!Number.isSafeInteger(value))
      throw new NiftyError(
        "NIFTY406",
        `${JSON.stringify(source)} overflows at column ${at + 1}`,
        "keep values within ±9007199254740991",
      );
    return value;
  };
  const walk = (e: Expr): number => {
    switch (e.kind) {
      case "number":
        return e.value;
      case "name": {
        const value = vars.get(e.name);
        if (value === undefined)
          throw new NiftyError(
            "NIFTY403",
            `${JSON.stringify(source)} reads ${e.name}, which has no value`,
            EXPR_HINT,
          );
        return value;
      }
      case "negate":
        return check(-walk(e.operand), e.at) || 0;
      case "binary": {
        const left = walk(e.left);
        const right = walk(e.right);
        switch (e.op) {
          case "+":
            return check(left + right, e.at);
          case "-":
            return check(left - right, e.at);
          case "*":
            return check(left * right, e.at) || 0;
          case "/":
          case "%":
            if (right === 0)
              throw new NiftyError(
                "NIFTY406",
                `${JSON.stringify(source)} divides by zero at column ${e.at + 1}`,
                "check the right side of / and %",
              );
            return (e.op === "/" ? Math.trunc(left / right) : left % right) || 0;
        }
      }
    }
  };
  return walk(expr);
}
