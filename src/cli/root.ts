// `--root DIR` of niftyc install and niftyc instances: write into another
// machine's tree (an image booted as a host, a chroot) the way systemctl --root
// does. Paths written into files are the ones that machine sees; files land
// under DIR on this one.
import { stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import { UsageError } from "./io.ts";

/** The root directory, absolute and existing, or undefined without --root (or with --root /). */
export async function rootOption(cwd: string, value: string | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  const root = resolve(cwd, value);
  let isDir = false;
  try {
    isDir = (await stat(root)).isDirectory();
  } catch {
    // Reported below.
  }
  if (!isDir)
    throw new NiftyError(
      "NIFTY302",
      `the root directory ${value} does not exist or is not a directory`,
      "--root names the tree of the machine the files are for, e.g. --root /var/lib/machines/host",
    );
  return root === "/" ? undefined : root;
}

/** A path as the machine under the root sees it: absolute, required when a root is given. */
export function insideRoot(root: string | undefined, value: string, flag: string, help: string): string {
  if (root !== undefined && !isAbsolute(value))
    throw new UsageError(
      `with --root, ${flag} takes a path as that machine sees it, starting with /; got ${JSON.stringify(value)}`,
      help,
    );
  // Joined to the root on this machine, a '..' would climb out of it (/var/lib/../../../x is /x).
  if (root !== undefined && value.split("/").some((part) => part === ".." || part === ".")) {
    throw new UsageError(
      `with --root, ${flag} takes a plain path of that machine, without '..' or '.': ` +
        `${JSON.stringify(value)} would be written outside ${root}`,
      help,
    );
  }
  return value;
}

/** Where a path inside the root is on this machine. */
export function onThisMachine(root: string | undefined, path: string): string {
  return root === undefined ? path : join(root, path);
}
