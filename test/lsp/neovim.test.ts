// A real editor's client: Neovim's built-in LSP client, headless, opens a
// recipe, waits for niftyc lsp's diagnostics, asks for completion and hover.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { requireParts } from "../support/skip.ts";

const run = promisify(execFile);

async function nvimMissing(): Promise<string | undefined> {
  try {
    const { stdout } = await run("nvim", ["--version"]);
    const m = /NVIM v0\.(\d+)/.exec(stdout);
    return m && Number(m[1]) < 7
      ? `Neovim ${m[0]} has no vim.lsp.start_client that this test uses (0.7 or newer)`
      : undefined;
  } catch {
    return "Neovim (nvim) is not installed (apt-get install neovim)";
  }
}

test("Neovim's built-in client gets diagnostics, completion and hover from niftyc lsp", async (t) => {
  if (!requireParts(t, "the Neovim client test", await nvimMissing())) return;
  const dir = await mkdtemp(join(tmpdir(), "niftyc-nvim-"));
  const recipe = join(dir, "box.nifty");
  await writeFile(recipe, "HOSTNAME box\nFECTH x\n\n");
  const out = join(dir, "out.json");
  const script = fileURLToPath(new URL("neovim/client.lua", import.meta.url));
  await run("nvim", ["--headless", "--clean", "-u", script], {
    env: {
      ...process.env,
      NIFTYC_NODE: process.execPath,
      NIFTYC_BIN: fileURLToPath(new URL("../../bin/niftyc", import.meta.url)),
      NIFTYC_RECIPE: recipe,
      NIFTYC_OUT: out,
    },
    timeout: 60_000,
  });
  const result = JSON.parse(await readFile(out, "utf8")) as {
    waited: boolean;
    diagnostics: Array<{ lnum: number; code: string; message: string; severity: number }>;
    completion: string[];
    hover: string;
  };
  t.true(result.waited);
  t.deepEqual(
    result.diagnostics.map((d) => [d.lnum, d.code, d.severity]),
    [[1, "NIFTY010", 1]],
  );
  t.regex(result.diagnostics[0]!.message, /unknown instruction FECTH\nhint: did you mean FETCH\?/);
  t.true(
    result.completion.includes("FETCH") && result.completion.includes("PACKAGE"),
    result.completion.join(" "),
  );
  t.regex(result.hover, /^\*\*HOSTNAME\*\*/);
});
