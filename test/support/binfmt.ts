// qemu-user through binfmt_misc, so the kernel runs another architecture's programs (an arm64
// tree booted under systemd-nspawn). Debian's qemu-user-static ships the handlers in
// /usr/lib/binfmt.d/ but, without systemd as PID 1, nothing registers them: this does, the
// way systemd-binfmt would, once per handler (idempotent), with the F flag the files carry
// (the interpreter is opened now, so it works inside a tree that has no qemu).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";

const MISC = "/proc/sys/fs/binfmt_misc";

/** Register qemu-<cpu> (aarch64, arm, riscv64 …); the reason when it cannot be, else undefined. */
export function registerQemu(cpu: string): string | undefined {
  if (process.getuid?.() !== 0) return "registering a binfmt_misc handler needs root";
  const conf = `/usr/lib/binfmt.d/qemu-${cpu}.conf`;
  if (!existsSync(conf)) return `${conf} is missing: install qemu-user-static`;
  if (!existsSync(`${MISC}/register`)) {
    const mounted = spawnSync("mount", ["-t", "binfmt_misc", "binfmt_misc", MISC], { encoding: "utf8" });
    if (mounted.status !== 0) return `cannot mount binfmt_misc: ${mounted.stderr.trim()}`;
  }
  if (existsSync(`${MISC}/qemu-${cpu}`)) return undefined;
  const line = readFileSync(conf, "utf8")
    .split("\n")
    .find((l) => l.startsWith(":"));
  if (line === undefined) return `${conf} has no handler line`;
  try {
    writeFileSync(`${MISC}/register`, line);
  } catch (error) {
    // Registered meanwhile by another process: as good.
    if (!existsSync(`${MISC}/qemu-${cpu}`)) return `cannot register qemu-${cpu}: ${(error as Error).message}`;
  }
  return undefined;
}
