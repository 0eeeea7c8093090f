// Linux x86-64 signal names and numbers, parsing of what a recipe may write,
// the default stop signal per init, and how each output format spells one.
import type { InitKind } from "../image/config.ts";

export interface Signal {
  /** Canonical name: "SIGUSR2", "SIGRTMIN+3". */
  name: string;
  number: number;
}

/** Standard signals, numbers from the kernel's x86-64 uapi signal.h. */
const STANDARD: ReadonlyArray<readonly [string, number]> = [
  ["SIGHUP", 1],
  ["SIGINT", 2],
  ["SIGQUIT", 3],
  ["SIGILL", 4],
  ["SIGTRAP", 5],
  ["SIGABRT", 6],
  ["SIGBUS", 7],
  ["SIGFPE", 8],
  ["SIGKILL", 9],
  ["SIGUSR1", 10],
  ["SIGSEGV", 11],
  ["SIGUSR2", 12],
  ["SIGPIPE", 13],
  ["SIGALRM", 14],
  ["SIGTERM", 15],
  ["SIGSTKFLT", 16],
  ["SIGCHLD", 17],
  ["SIGCONT", 18],
  ["SIGSTOP", 19],
  ["SIGTSTP", 20],
  ["SIGTTIN", 21],
  ["SIGTTOU", 22],
  ["SIGURG", 23],
  ["SIGXCPU", 24],
  ["SIGXFSZ", 25],
  ["SIGVTALRM", 26],
  ["SIGPROF", 27],
  ["SIGWINCH", 28],
  ["SIGIO", 29],
  ["SIGPWR", 30],
  ["SIGSYS", 31],
];

/** Other spellings of the same numbers (accepted, never written). */
const ALIASES: ReadonlyArray<readonly [string, number]> = [
  ["SIGIOT", 6],
  ["SIGPOLL", 29],
  ["SIGCLD", 17],
];

/** glibc's SIGRTMIN: the kernel's 32 and 33 are reserved by the C library (and systemd counts from 34). */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

function rtName(number: number): string {
  if (number === SIGRTMIN) return "SIGRTMIN";
  if (number === SIGRTMAX) return "SIGRTMAX";
  return `SIGRTMIN+${number - SIGRTMIN}`;
}

/** Every signal a stop signal may be, in number order. */
export const SIGNALS: readonly Signal[] = [
  ...STANDARD.map(([name, number]) => ({ name, number })),
  ...Array.from({ length: SIGRTMAX - SIGRTMIN + 1 }, (_, i) => ({
    name: rtName(SIGRTMIN + i),
    number: SIGRTMIN + i,
  })),
];

const BY_NAME = new Map<string, number>([...STANDARD, ...ALIASES]);

export function signalByNumber(number: number): Signal | undefined {
  return SIGNALS.find((s) => s.number === number);
}

/**
 * Parse "SIGUSR2", "usr2", "12", "RTMIN+3", "SIGRTMIN+3", "RTMAX-2", case-insensitive.
 * Returns the canonical {name, number}, or undefined when it is no Linux x86-64 signal.
 */
export function parseSignal(text: string): Signal | undefined {
  const t = text.trim().toUpperCase();
  if (/^[0-9]+$/.test(t)) return signalByNumber(Number(t));
  const name = t.startsWith("SIG") ? t : `SIG${t}`;
  const fixed = BY_NAME.get(name);
  if (fixed !== undefined) return signalByNumber(fixed);
  const rt = /^SIGRT(MIN|MAX)(?:([+-])([0-9]{1,2}))?$/.exec(name);
  if (rt === null) return undefined;
  const base = rt[1] === "MIN" ? SIGRTMIN : SIGRTMAX;
  const offset = rt[3] === undefined ? 0 : Number(rt[3]);
  // Only RTMIN+N and RTMAX-N are meaningful; RTMIN-1 would be a reserved number.
  if (rt[2] !== undefined && (rt[2] === "+") !== (base === SIGRTMIN)) return undefined;
  const number = base === SIGRTMIN ? base + offset : base - offset;
  if (number < SIGRTMIN || number > SIGRTMAX) return undefined;
  return signalByNumber(number);
}

/**
 * The signal that shuts an init down cleanly:
 * BusyBox init powers off on SIGUSR2, reboots on SIGTERM and ignores SIGRTMIN+3;
 * systemd halts on SIGRTMIN+3 (and re-executes itself on SIGTERM).
 */
export function defaultStopSignal(initKind: InitKind): Signal {
  const name = initKind === "busybox" ? "SIGUSR2" : initKind === "systemd" ? "SIGRTMIN+3" : "SIGTERM";
  const signal = parseSignal(name);
  if (signal === undefined) throw new Error(`signal table lacks ${name}`);
  return signal;
}

/**
 * Where a signal is written. Checked against the consumers here:
 * - nspawn: .nspawn KillSignal= and --kill-signal= (systemd's signal_from_string: "SIGRTMIN+3")
 * - unit: systemd unit KillSignal= (same parser)
 * - oci: image config StopSignal (podman/docker parse "SIGRTMIN+3"; umoci copies it as text)
 * - dockerfile: STOPSIGNAL
 * - docker-run: docker/podman run --stop-signal
 * - runc-kill: `runc kill ID SIG` (runc 1.1 only knows Go's fixed names: give the number for real-time signals)
 */
export type SignalDialect = "nspawn" | "unit" | "oci" | "dockerfile" | "docker-run" | "runc-kill";

export function spellSignal(signal: Pick<Signal, "name" | "number">, dialect: SignalDialect): string {
  if (dialect === "runc-kill") return signal.number >= SIGRTMIN ? String(signal.number) : signal.name;
  return signal.name;
}
