// A setuid or setgid file every user may write is a program anyone could replace, which then
// runs with its owner's or group's rights: the one rule (NIFTY233) that `niftyc check` applies to
// a line's MODE word and the build to every file of the finished image.

/** Why a file of this mode and owner is refused, or undefined when it is not. */
export function writableSetuid(
  path: string,
  file: { mode: number; uid: number; gid: number },
): { message: string; hint: string } | undefined {
  const { mode: bits, uid, gid } = file;
  if ((bits & 0o6000) === 0 || (bits & 0o002) === 0) return undefined;
  const mode = (bits & 0o7777).toString(8).padStart(4, "0");
  const setuid = (bits & 0o4000) !== 0;
  const safe = (bits & 0o7775).toString(8).padStart(4, "0");
  return {
    message:
      `${path} is ${setuid ? "setuid" : "setgid"} and every user may write it (mode ${mode}): ` +
      `anyone could replace a program that runs as ${setuid ? `uid ${uid}` : `gid ${gid}`}`,
    hint:
      `drop the write bit for others (e.g. MODE ${safe}), ` +
      "or build with --allow-writable-setuid if that is what you mean",
  };
}
