// The nearest honest stand-in for `systemctl` and `machinectl` on a machine
// whose PID 1 is not systemd (see the comment at the top of tutorial.test.ts).
// What the generated units do under the real systemd (start, stop, instances,
// machinectl, a systemd guest) is proved in test/boot/machine-host.test.ts; this
// stays only so that docs/tutorial.md's own commands run as a reader types them,
// in one session on this machine, and does no more than those commands need.
// It reads the real unit files, runs their ExecStart= as systemd would spell
// it out, and stops them with their KillSignal=. State lives in
// $NIFTY_FAKE_SYSTEMD_STATE: <unit>.pid (the main process), <unit>.supervisor,
// <unit>.log (what the service printed) and <unit>.exit (how it ended).
//
//   node fake-systemd.ts systemctl daemon-reload|start|stop UNIT...
//   node fake-systemd.ts machinectl start NAME...
//   node fake-systemd.ts supervise UNIT          (internal: runs one service)
import { spawn } from "node:child_process";
import { existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const STATE = process.env.NIFTY_FAKE_SYSTEMD_STATE;
const UNIT_DIRS = [
  "/etc/systemd/system",
  "/run/systemd/system",
  "/lib/systemd/system",
  "/usr/lib/systemd/system",
];

interface Unit {
  name: string;
  instance: string;
  execStart: string[];
  environment: Record<string, string>;
  killSignal: NodeJS.Signals;
  timeoutStopSec: number;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function unitName(word: string): string {
  return /\.(service|socket|target|timer)$/.test(word) ? word : `${word}.service`;
}

/** Read and resolve a unit the way systemd would for starting it. */
export function loadUnit(name: string): Unit {
  const match = /^([^@]+)@([^.]*)\.service$/.exec(name);
  const instance = match?.[2] ?? "";
  const fileName = match ? `${match[1]}@.service` : name;
  const dir =
    UNIT_DIRS.find((d) => existsSync(join(d, name))) ?? UNIT_DIRS.find((d) => existsSync(join(d, fileName)));
  if (dir === undefined) fail(`Failed to start ${name}: Unit ${name} not found.`);
  const path = existsSync(join(dir, name)) ? join(dir, name) : join(dir, fileName);
  const prefix = match?.[1] ?? name.replace(/\.service$/, "");
  const specifier = (text: string): string =>
    text.replace(
      /%([%inNpI])/g,
      (_, c: string) =>
        ({ "%": "%", i: instance, I: instance, n: name, N: name.replace(/\.service$/, ""), p: prefix })[c]!,
    );
  const environment: Record<string, string> = {};
  let execStart: string | undefined;
  let killSignal = "SIGTERM";
  let timeoutStopSec = 90;
  let section = "";
  for (const raw of readFileSync(path, "utf8").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      section = line;
      continue;
    }
    if (section !== "[Service]") continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    const value = specifier(line.slice(eq + 1));
    if (key === "ExecStart") execStart = value.replace(/^[-@:+!]+/, "");
    if (key === "KillSignal") killSignal = value;
    if (key === "TimeoutStopSec") timeoutStopSec = Number.parseInt(value, 10);
    if (key === "Environment") for (const word of splitWords(value)) assign(environment, word);
    if (key === "EnvironmentFile") {
      const optional = value.startsWith("-");
      const file = value.replace(/^-/, "");
      if (!existsSync(file)) {
        if (optional) continue;
        fail(`Failed to start ${name}: EnvironmentFile ${file} is missing`);
      }
      for (const envLine of readFileSync(file, "utf8").split("\n")) {
        const t = envLine.trim();
        if (t && !t.startsWith("#")) assign(environment, t.replace(/^export\s+/, ""));
      }
    }
  }
  if (execStart === undefined) fail(`Failed to start ${name}: no ExecStart= in ${path}`);
  // systemd replaces ${VAR} by the value as one word and $VAR by its words.
  const words = splitWords(execStart).flatMap((word) => {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) return (environment[whole[1]!] ?? "").split(/\s+/).filter(Boolean);
    return [word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, v: string) => environment[v] ?? "")];
  });
  if (!killSignal.startsWith("SIG")) killSignal = `SIG${killSignal}`;
  return {
    name,
    instance,
    execStart: words,
    environment,
    killSignal: killSignal as NodeJS.Signals,
    timeoutStopSec,
  };
}

function assign(env: Record<string, string>, word: string): void {
  const eq = word.indexOf("=");
  if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1).replace(/^"(.*)"$/, "$1");
}

/** Split a unit-file value into words: blanks separate, double and single quotes group. */
function splitWords(text: string): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

const file = (unit: string, ext: string): string => join(STATE!, `${unit}.${ext}`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

async function start(name: string): Promise<void> {
  const pidFile = file(name, "pid");
  if (existsSync(pidFile) && alive(Number(readFileSync(pidFile, "utf8")))) return; // already active
  loadUnit(name); // fail here, in the caller's terminal, if the unit is broken
  rmSync(file(name, "exit"), { force: true });
  const supervisor = spawn(process.execPath, [import.meta.filename, "supervise", name], {
    detached: true,
    stdio: "ignore",
    env: process.env,
  });
  writeFileSync(file(name, "supervisor"), String(supervisor.pid));
  supervisor.unref();
  // Like systemctl start returning once the service is started (not ready: see the test's comment).
  const until = Date.now() + 30_000;
  while (!existsSync(pidFile) && !existsSync(file(name, "exit"))) {
    if (Date.now() > until) fail(`Job for ${name} did not start within 30 s`);
    await sleep(20);
  }
  if (existsSync(file(name, "exit")))
    fail(
      `Job for ${name} failed: ${readFileSync(file(name, "exit"), "utf8")}\n${readFileSync(file(name, "log"), "utf8")}`,
    );
}

async function stop(name: string): Promise<void> {
  const pidFile = file(name, "pid");
  if (!existsSync(pidFile)) return; // not active: systemctl stop succeeds
  const unit = loadUnit(name);
  const pid = Number(readFileSync(pidFile, "utf8"));
  try {
    process.kill(pid, unit.killSignal); // KillMode=mixed: the signal goes to the main process only
  } catch {
    // Already gone.
  }
  const until = Date.now() + unit.timeoutStopSec * 1000;
  while (!existsSync(file(name, "exit"))) {
    if (Date.now() > until) {
      // What systemd does after TimeoutStopSec=: SIGKILL for the rest.
      for (const p of [...children(pid), pid]) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    await sleep(50);
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Run one service's ExecStart in the foreground, recording its PID and how it ended. */
async function supervise(name: string): Promise<void> {
  const unit = loadUnit(name);
  const log = openSync(file(name, "log"), "a");
  // systemd gives services a clean environment: PATH plus the unit's own settings.
  const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...unit.environment };
  const child = spawn(unit.execStart[0]!, unit.execStart.slice(1), { stdio: ["ignore", log, log], env });
  child.once("spawn", () => writeFileSync(file(name, "pid"), String(child.pid)));
  const ended = await new Promise<string>((done) => {
    child.once("error", (error) => done(`error ${error.message}`));
    child.once("exit", (code, signal) => done(signal ? `signal ${signal}` : `status ${code}`));
  });
  rmSync(file(name, "pid"), { force: true });
  writeFileSync(file(name, "exit"), ended);
}

async function main(argv: string[]): Promise<void> {
  if (!STATE) fail("NIFTY_FAKE_SYSTEMD_STATE is not set");
  const [tool, verb, ...rest] = argv;
  if (tool === "supervise") return supervise(verb!);
  if (tool === "systemctl") {
    if (verb === "daemon-reload") return; // units are read afresh at every start
    if (verb === "start") for (const u of rest) await start(unitName(u));
    else if (verb === "stop") for (const u of rest) await stop(unitName(u));
    else fail(`systemctl ${verb}: not adapted to this machine (start, stop, daemon-reload are)`);
    return;
  }
  if (tool === "machinectl") {
    // machinectl start NAME asks systemd to start systemd-nspawn@NAME.service.
    if (verb === "start") for (const m of rest) await start(`systemd-nspawn@${m}.service`);
    else fail(`machinectl ${verb}: not adapted to this machine (start is)`);
    return;
  }
  fail(`unknown tool ${tool}`);
}

await main(process.argv.slice(2));
