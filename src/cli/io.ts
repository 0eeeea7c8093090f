// What the CLI talks to: injected, so tests drive the CLI without a process.
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** All of standard input, for `niftyc build -`. */
  readStdin?: () => Promise<string>;
  /** Ask for a secret without echoing it; present only when a person is at a terminal. */
  askSecret?: (prompt: string) => Promise<string>;
}

/** A command-line mistake: exit status 2. */
export class UsageError extends Error {
  readonly help?: string;
  constructor(message: string, help?: string) {
    super(message);
    if (help !== undefined) this.help = help;
  }
}

/** The user pressed Ctrl-C at a prompt: not a mistake on the command line (exit 130, as a shell reports SIGINT). */
export class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

let closedReadersIgnored = false;

/**
 * A reader that went away (`niftyc cache ls | head -1`) ends what we print,
 * not the command: the rest of the output is dropped, as other Unix tools do,
 * and the work finishes.
 */
export function ignoreClosedReaders(): void {
  if (closedReadersIgnored) return;
  closedReadersIgnored = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") throw error;
    });
  }
}
