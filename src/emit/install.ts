// `niftyc install`: a machine under /var/lib/machines and its .nspawn settings.
import { lstat, rm } from "node:fs/promises";
import { join } from "node:path";
import { replaceDir, stagingDir, writeFileAtomic } from "../core/atomic.ts";
import { isCode } from "../core/process.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { privateDir, unpackRootfs } from "./unpack.ts";

export interface InstallInput {
  rootfsTar: string;
  /** The rendered <name>.nspawn text. */
  nspawnText: string;
  name: string;
  machinesDir: string;
  settingsDir?: string;
  /** Replace an installed machine of the same name. */
  replace?: boolean;
}

/** `niftyc install`: unpack to <machinesDir>/<name> and put <name>.nspawn in settingsDir. */
export async function installMachine(input: InstallInput): Promise<{ root: string; settingsFile: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(input.name)) {
    throw new NiftyError("NIFTY520", `${JSON.stringify(input.name)} is not a valid machine name`);
  }
  const root = join(input.machinesDir, input.name);
  const settingsFile = join(input.settingsDir ?? "/etc/systemd/nspawn", `${input.name}.nspawn`);
  if (input.replace !== true) {
    try {
      await lstat(root);
      throw new NiftyError(
        "NIFTY521",
        `machine ${input.name} already exists at ${root}`,
        "remove it first, or run niftyc install --replace",
      );
    } catch (error) {
      if (!isCode(error, "ENOENT")) throw error;
    }
  }
  await privateDir(input.machinesDir);
  const staging = await stagingDir(root);
  try {
    await unpackRootfs(input.rootfsTar, join(staging, "root"));
    await replaceDir(join(staging, "root"), root, input.replace === true);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  await writeFileAtomic(settingsFile, input.nspawnText);
  return { root, settingsFile };
}
