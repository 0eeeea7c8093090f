import test from "ava";
import {
  SIGNALS,
  defaultStopSignal,
  parseSignal,
  signalByNumber,
  spellSignal,
} from "../../src/emit/signals.ts";

test("the table covers 1-31 and SIGRTMIN..SIGRTMAX with x86-64 numbers, no gaps besides glibc's 32 and 33", (t) => {
  const numbers = SIGNALS.map((s) => s.number);
  t.deepEqual(numbers, [
    ...Array.from({ length: 31 }, (_, i) => i + 1),
    ...Array.from({ length: 31 }, (_, i) => 34 + i),
  ]);
  t.deepEqual(signalByNumber(10), { name: "SIGUSR1", number: 10 });
  t.deepEqual(signalByNumber(12), { name: "SIGUSR2", number: 12 });
  t.deepEqual(signalByNumber(15), { name: "SIGTERM", number: 15 });
  t.deepEqual(signalByNumber(30), { name: "SIGPWR", number: 30 });
  t.deepEqual(signalByNumber(34), { name: "SIGRTMIN", number: 34 });
  t.deepEqual(signalByNumber(37), { name: "SIGRTMIN+3", number: 37 });
  t.deepEqual(signalByNumber(64), { name: "SIGRTMAX", number: 64 });
  t.is(signalByNumber(32), undefined);
});

test("parseSignal accepts names with or without SIG, numbers and RTMIN+N, any case", (t) => {
  const usr2 = { name: "SIGUSR2", number: 12 };
  for (const text of ["SIGUSR2", "USR2", "usr2", "SigUsr2", "12", " 12 "])
    t.deepEqual(parseSignal(text), usr2, text);
  const rt3 = { name: "SIGRTMIN+3", number: 37 };
  for (const text of ["RTMIN+3", "SIGRTMIN+3", "sigrtmin+3", "37", "RTMAX-27"])
    t.deepEqual(parseSignal(text), rt3, text);
  t.deepEqual(parseSignal("RTMIN"), { name: "SIGRTMIN", number: 34 });
  t.deepEqual(parseSignal("SIGRTMAX"), { name: "SIGRTMAX", number: 64 });
  t.deepEqual(parseSignal("RTMIN+30"), { name: "SIGRTMAX", number: 64 });
  t.deepEqual(parseSignal("IOT"), { name: "SIGABRT", number: 6 });
  t.deepEqual(parseSignal("SIGPOLL"), { name: "SIGIO", number: 29 });
  for (const bad of [
    "",
    "SIG",
    "USR3",
    "0",
    "32",
    "33",
    "65",
    "RTMIN+31",
    "RTMIN-1",
    "RTMAX+1",
    "RTMIN+",
    "-9",
    "9x",
    "SIGRTMIN+3x",
  ]) {
    t.is(parseSignal(bad), undefined, bad);
  }
});

test("default stop signals: BusyBox powers off on USR2, systemd halts on RTMIN+3, others get TERM", (t) => {
  t.deepEqual(defaultStopSignal("busybox"), { name: "SIGUSR2", number: 12 });
  t.deepEqual(defaultStopSignal("systemd"), { name: "SIGRTMIN+3", number: 37 });
  t.deepEqual(defaultStopSignal("other"), { name: "SIGTERM", number: 15 });
});

test("each dialect spells the signal the way its consumer parses it", (t) => {
  const rt3 = { name: "SIGRTMIN+3", number: 37 };
  const usr2 = { name: "SIGUSR2", number: 12 };
  for (const d of ["nspawn", "unit", "oci", "dockerfile", "docker-run"] as const) {
    t.is(spellSignal(rt3, d), "SIGRTMIN+3", d);
    t.is(spellSignal(usr2, d), "SIGUSR2", d);
  }
  // runc 1.1 refuses "SIGRTMIN+3"/"RTMIN+3" ("unknown signal"): numbers for real-time signals.
  t.is(spellSignal(rt3, "runc-kill"), "37");
  t.is(spellSignal(usr2, "runc-kill"), "SIGUSR2");
});
