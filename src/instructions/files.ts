// Small helpers the instructions share to write and edit files in the tree.
import type { BuildContext } from "./context.ts";
import type { Owner } from "./args.ts";

export const ROOT: Owner = { uid: 0, gid: 0 };

export async function writeFile(
  context: BuildContext,
  path: string,
  bytes: Buffer | string,
  mode: number,
  owner: Owner = ROOT,
): Promise<void> {
  const content = await context.content(typeof bytes === "string" ? Buffer.from(bytes) : bytes);
  context.tree.set(context.tree.placement(path), { type: "file", mode, ...owner, content });
}

/** Rewrite a text file of the tree (created empty when missing), keeping its mode and owner. */
export async function editText(
  context: BuildContext,
  path: string,
  edit: (text: string) => string,
  mode: number,
  owner: Owner = ROOT,
): Promise<void> {
  const existing = context.tree.lookup(path);
  const before = (await context.readText(path)) ?? "";
  const keep =
    existing?.node.type === "file"
      ? { mode: existing.node.mode, uid: existing.node.uid, gid: existing.node.gid }
      : { mode, ...owner };
  await writeFile(context, path, edit(before), keep.mode, { uid: keep.uid, gid: keep.gid });
}

/** Append a line, making sure the file ends with a newline first. */
export function appendLine(text: string, line: string): string {
  return (text === "" || text.endsWith("\n") ? text : text + "\n") + line + "\n";
}
