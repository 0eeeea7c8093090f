// Who runs the container and what the host offers: root or an ordinary user,
// the tools found on PATH (read once by the CLI and passed down).
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

export interface Privilege {
  /** Real root: systemd-nspawn, mounts, owners as they are. */
  root: boolean;
  uid: number;
}

/** argv run as root of a user namespace mapping the user's /etc/subuid range (unchanged for root). */
export function inUserNamespace(privilege: Privilege, argv: readonly string[]): string[] {
  return privilege.root ? [...argv] : ["unshare", "--map-auto", "--map-root-user", ...argv];
}

/** The first executable `name` on PATH, or undefined. */
export function findTool(name: string, path: string): string | undefined {
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // Not here.
    }
  }
  return undefined;
}
