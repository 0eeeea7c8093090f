// Editing /etc/passwd, /etc/group, /etc/shadow and /etc/shells as text, so
// the tree stays the only state and each USER/GROUP step can be replayed.
import type { BuildContext } from "./context.ts";
import { appendLine, editText } from "./files.ts";

/** Replace the line for `name` (first field) or append it. */
export function upsert(text: string, name: string, line: string): string {
  const lines = text.split("\n").filter((l, i, all) => !(l === "" && i === all.length - 1));
  const index = lines.findIndex((l) => l.split(":")[0] === name);
  if (index >= 0) lines[index] = line;
  else lines.push(line);
  return lines.join("\n") + "\n";
}

/** Add `member` to the fourth field of group `group`'s line. */
export function addMember(text: string, group: string, member: string): string {
  return text
    .split("\n")
    .map((line) => {
      const fields = line.split(":");
      if (fields[0] !== group || fields.length < 4) return line;
      const members = fields[3] === "" ? [] : fields[3]!.split(",");
      if (!members.includes(member)) members.push(member);
      fields[3] = members.join(",");
      return fields.join(":");
    })
    .join("\n");
}

export function hasEntry(text: string | undefined, name: string): boolean {
  return (text ?? "").split("\n").some((l) => l.split(":")[0] === name);
}

/** /etc/shadow is 0640 root:shadow when a shadow group exists, else 0600 root. */
export async function shadowOwner(context: BuildContext): Promise<{ mode: number; gid: number }> {
  const group = (await context.readText("/etc/group")) ?? "";
  const line = group.split("\n").find((l) => l.startsWith("shadow:"));
  const gid = line ? Number(line.split(":")[2]) : NaN;
  return Number.isInteger(gid) ? { mode: 0o640, gid } : { mode: 0o600, gid: 0 };
}

export async function writeGroup(context: BuildContext, name: string, gid: number): Promise<void> {
  await ensureRoot(context);
  await editText(
    context,
    "/etc/group",
    (t) => (hasEntry(t, name) ? t : upsert(t, name, `${name}:x:${gid}:`)),
    0o644,
  );
}

/**
 * The first account written also gets a root entry (locked) when the recipe
 * declares none before: init, su and dropbear expect uid 0 to have a name.
 */
export async function ensureRoot(context: BuildContext): Promise<void> {
  if (context.tree.lookup("/etc/passwd") !== undefined) return;
  await editText(context, "/etc/passwd", (t) => upsert(t, "root", "root:x:0:0:root:/root:/bin/sh"), 0o644);
  await editText(
    context,
    "/etc/group",
    (t) => (hasEntry(t, "root") ? t : upsert(t, "root", "root:x:0:")),
    0o644,
  );
  const shadow = await shadowOwner(context);
  await editText(context, "/etc/shadow", (t) => upsert(t, "root", shadowLine("root", "!")), shadow.mode, {
    uid: 0,
    gid: shadow.gid,
  });
}

export function shadowLine(name: string, hash: string): string {
  // Empty "last change" disables password ageing; 0 would force a change at first login.
  return `${name}:${hash}::0:99999:7:::`;
}

export async function addShell(context: BuildContext, shell: string): Promise<void> {
  await editText(
    context,
    "/etc/shells",
    (t) => (t.split("\n").includes(shell) ? t : appendLine(t, shell)),
    0o644,
  );
}
