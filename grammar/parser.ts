// The grammar of a Niftyfile, over the tokens of tokens.ts. It accepts every
// token stream the lexer can produce: a line that does not start with a
// keyword is a `strayLine`, and to-syntax.ts reports it. Recovery stays on
// so that anything unforeseen still yields a tree and all the errors.
import { CstParser } from "./chevrotain.ts";
import {
  allTokens,
  Blank,
  Comment,
  Continuation,
  DoubleQuoted,
  Escape,
  HeredocBody,
  HeredocMarker,
  Keyword,
  Newline,
  SingleQuoted,
  Text,
  Variable,
} from "./tokens.ts";

export class NiftyParser extends CstParser {
  /**
   * `validate` runs chevrotain's grammar validations (ambiguities, left
   * recursion): a fixed grammar passes or fails them the same way every time,
   * so test/grammar/validations.test.ts runs them and start-up skips them.
   */
  constructor(options: { validate?: boolean } = {}) {
    super(allTokens, {
      recoveryEnabled: true,
      nodeLocationTracking: "onlyOffset",
      skipValidations: options.validate !== true,
    });
    this.performSelfAnalysis();
  }

  /** A recipe is lines; blanks and comments stand between instructions. */
  recipe = this.RULE("recipe", () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.instruction) },
        { ALT: () => this.SUBRULE(this.commentLine) },
        { ALT: () => this.SUBRULE(this.strayLine) },
        { ALT: () => this.CONSUME(Blank) },
        { ALT: () => this.CONSUME(Newline) },
      ]);
    });
  });

  /** KEYWORD word… with its heredoc bodies after the line. */
  instruction = this.RULE("instruction", () => {
    this.CONSUME(Keyword);
    this.SUBRULE(this.lineRest);
    this.OPTION(() => this.SUBRULE(this.lineEnd));
  });

  commentLine = this.RULE("commentLine", () => {
    this.CONSUME(Comment);
    this.OPTION(() => this.CONSUME(Newline));
  });

  /** A line whose first word is not a keyword: kept whole so it can be reported. */
  strayLine = this.RULE("strayLine", () => {
    this.OR([
      { ALT: () => this.CONSUME(HeredocMarker) },
      { ALT: () => this.CONSUME(DoubleQuoted) },
      { ALT: () => this.CONSUME(SingleQuoted) },
      { ALT: () => this.CONSUME(Escape) },
      { ALT: () => this.CONSUME(Variable) },
      { ALT: () => this.CONSUME(Text) },
      { ALT: () => this.CONSUME(Continuation) },
    ]);
    this.SUBRULE(this.lineRest);
    this.OPTION(() => this.SUBRULE(this.lineEnd));
  });

  /** Words (runs of pieces), the blanks between them and line continuations. */
  lineRest = this.RULE("lineRest", () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(Blank) },
        { ALT: () => this.CONSUME(Continuation) },
        { ALT: () => this.CONSUME(HeredocMarker) },
        { ALT: () => this.CONSUME(DoubleQuoted) },
        { ALT: () => this.CONSUME(SingleQuoted) },
        { ALT: () => this.CONSUME(Escape) },
        { ALT: () => this.CONSUME(Variable) },
        { ALT: () => this.CONSUME(Text) },
      ]);
    });
  });

  /** The end of the line, then the body of each heredoc opened on it. */
  lineEnd = this.RULE("lineEnd", () => {
    this.CONSUME(Newline);
    this.MANY(() => this.CONSUME(HeredocBody));
  });
}

/** One parser for the process: chevrotain parsers are reusable through `input`. */
export const niftyParser = new NiftyParser();
