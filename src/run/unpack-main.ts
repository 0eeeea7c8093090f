// Run inside the user namespace by trees.ts: unpack a rootfs tar with its
// owners (as the namespace maps them) and rename it into place.
import { unpackInto } from "./trees.ts";

const [tar, target] = process.argv.slice(2);
if (tar === undefined || target === undefined) {
  process.stderr.write("usage: unpack-main.ts ROOTFS.TAR TARGET\n");
  process.exit(2);
}
try {
  await unpackInto(tar, target);
} catch (error) {
  const e = error as { message?: string; code?: string };
  process.stderr.write(
    `${e.message ?? String(error)}${typeof e.code === "string" && e.code.startsWith("NIFTY") ? ` [${e.code}]` : ""}\n`,
  );
  process.exit(1);
}
