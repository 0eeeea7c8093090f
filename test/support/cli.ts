// The CLI in this process: main(argv, io) with captured streams and an
// injected working directory, as a test drives it.
import { main } from "../../src/cli/main.ts";
import type { CliIo } from "../../src/cli/io.ts";

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runMain(
  argv: string[],
  cwd: string,
  env: Record<string, string> = { SOURCE_DATE_EPOCH: "0" },
): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env,
    cwd,
  };
  return { code: await main(argv, io), stdout, stderr };
}
