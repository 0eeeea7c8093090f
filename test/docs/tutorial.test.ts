// docs/tutorial.md, run as a reader would: every ```sh block, in order, in one
// bash (`-e`) working in a temporary directory, as root, with real niftyc,
// tar, chroot, systemd-nspawn, ssh and a real Debian mirror on loopback. The
// plain block after a command lists lines its output must contain (`…` is a
// wildcard); a ```console block after a command is typed into that command's
// terminal (a pseudo-terminal from script(1)) prompt by prompt.
//
// The text of the commands is never changed. What adapts them to this machine:
//
// - The whole session runs in a private mount namespace (`unshare -m`, private
//   propagation) with a tmpfs on /run and on /var/lib/machines, and /etc
//   overlaid (overlayfs, the upper layer in the test's temp dir). So
//   `niftyc install`, `install … /etc/systemd/system/`, /etc/systemd/nspawn and
//   /etc/niftyc are the real paths for the commands and leave nothing behind
//   on the host.
// - NIFTY_MIRROR_DEBIAN points at the harness's loopback mirror of the pinned
//   Debian files (the reader's machine uses its apt sources); NO_COLOR=1.
// - A directory first on PATH holds wrappers:
//   - `npx`: `npx niftyc …` runs this checkout's bin/niftyc with Node 24 (the
//     tutorial's directory is outside the checkout here); other npx uses fail.
//   - `systemd-nspawn`: the real one, plus `--register=no --keep-unit`: there is
//     no systemd or machined to register with (/run is already private).
//   - `ssh`: the real OpenSSH client through `sshpass -e`, with the password
//     read from `<user>.pw` in the current directory (the reader types it; the
//     tutorial writes root.pw and luser.pw), `-o StrictHostKeyChecking=accept-new`
//     (the reader answers "yes"), and a known_hosts file of the test's own,
//     unhashed so the test can compare the keys it holds. It first waits (up to 60 s)
//     until something listens on the `-p` port: the reader waits the second it
//     takes a container to boot.
//   - `systemctl` and `machinectl` (test/docs/fake-systemd.ts): no systemd is
//     PID 1 here (the real one runs the same units in test/boot/machine-host.test.ts),
//     so they do the nearest honest thing with the real unit files:
//     `systemctl start U` reads U from /etc/systemd/system or /lib/systemd/system
//     (a template for `name@inst`), substitutes %i and the unit's Environment= and
//     EnvironmentFile= into ExecStart= and runs it in the background with only
//     that environment, recording its PID; `systemctl stop U` sends the unit's
//     KillSignal= (default SIGTERM) to that PID only, as KillMode=mixed does, and
//     waits for it to exit (SIGKILL after TimeoutStopSec=, default 90 s);
//     `systemctl daemon-reload` does nothing (units are read at each start);
//     `machinectl start NAME` starts systemd's own systemd-nspawn@NAME.service
//     the same way. Not emulated: Type=notify readiness (start returns once the
//     process runs; ssh waits for the port), Restart=, cgroups, the journal.
// - The console block's command runs under script(1), entered into the same
//   namespace with nsenter; at `Password:` the test types `<user>.pw`.
//
// Beyond the printed lines the test checks: `systemd-analyze verify` is silent
// on the units the tutorial installs; every service stopped with status 0;
// the two template instances presented different host keys.
//
// Every process is killed in teardown: the session's bash and all its
// descendants (nspawn and the container's init with it), the console session,
// and each fake service's supervisor and main process with its children.
import test, { type ExecutionContext } from "ava";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { debianMirror, requireBoot, ROOT, shellQuote, sleep, tempDir } from "../boot/harness.ts";
import { cleanOutput, fencedBlocks, missingLines, steps, type Step } from "./markdown.ts";

const TUTORIAL = join(ROOT, "docs", "tutorial.md");
const PORTS = [2200, 2201, 2202];
const BLOCK_DEADLINE_MS = 240_000;

test("docs/tutorial.md: the blocks are commands, each output or console block follows one", (t) => {
  const all = steps(fencedBlocks(readFileSync(TUTORIAL, "utf8")));
  t.true(all.length > 10);
  t.true(
    all.some((s) => s.console !== undefined),
    "the console login is shown",
  );
  for (const step of all)
    t.notRegex(
      step.command.text,
      /^\s*\$ /m,
      `line ${step.command.line}: commands are written without a prompt`,
    );
});

test.serial("docs/tutorial.md: every command runs, and prints what the tutorial shows", async (t) => {
  if (!requireBoot(t)) return;
  for (const tool of ["nsenter", "systemd-analyze", "chroot"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return t.fail(`${tool} is not installed`);
  }
  const busy = [];
  for (const port of PORTS) if (!(await portFree(port))) busy.push(port);
  if (busy.length > 0)
    return t.fail(
      `port ${busy.join(", ")} is in use on this machine; the tutorial's containers listen on ${PORTS.join(", ")}. Free them and run again.`,
    );

  const mirror = await debianMirror(t);
  const dir = tempDir(t, "tutorial");
  const work = join(dir, "work");
  const state = join(dir, "state");
  const bin = join(dir, "bin");
  for (const d of [work, state, bin, join(dir, "etc-upper"), join(dir, "etc-work")]) mkdirSync(d);
  writeWrappers(bin, state);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    NIFTY_MIRROR_DEBIAN: mirror.url,
    NIFTY_MIRROR_DEBIAN_SECURITY: mirror.url,
    NIFTY_FAKE_SYSTEMD_STATE: state,
    NO_COLOR: "1",
  };
  delete env.NIFTY_CACHE;

  const shell = startSession(t, dir, work, env, state);
  for (const step of steps(fencedBlocks(readFileSync(TUTORIAL, "utf8")))) {
    const where = `docs/tutorial.md:${step.command.line}`;
    const output = step.console
      ? await runConsole(t, step, shell.pid, env)
      : await shell.run(step.command.text, where);
    if (step.expect) {
      const missing = missingLines(step.expect.text, output);
      t.deepEqual(
        missing,
        [],
        `${where}: lines the tutorial shows but the command did not print:\n${missing.join("\n")}\n--- output ---\n${output}`,
      );
    }
    const installed = /install\b.*?((?:\S+\.service\s+)+)\/etc\/systemd\/system\/?/.exec(step.command.text);
    if (installed) {
      const units = installed[1]!
        .trim()
        .split(/\s+/)
        .map((u) => u.split("/").at(-1)!);
      const names = units.flatMap((u) =>
        u.endsWith("@.service") ? [u, u.replace("@.service", "@1.service")] : [u],
      );
      const verify = await shell.run(
        `(cd /etc/systemd/system && systemd-analyze verify ${names.join(" ")}) 2>&1`,
        `${where} (systemd-analyze verify)`,
      );
      t.is(verify.trim(), "", `systemd-analyze verify ${names.join(" ")} complained`);
    }
  }
  await shell.close();

  // Every service the tutorial started was stopped, and powered off cleanly.
  const ended = readdirSync(state).filter((f) => f.endsWith(".exit"));
  t.true(ended.length >= 4, `services run: ${ended.join(", ")}`);
  for (const f of ended)
    t.is(
      readFileSync(join(state, f), "utf8"),
      "status 0",
      `${f.replace(/\.exit$/, "")}:\n${readFileSync(join(state, f.replace(/\.exit$/, ".log")), "utf8")}`,
    );
  // Each template instance made its own host key at its first boot.
  const known = readFileSync(join(state, "known_hosts"), "utf8");
  const key = (port: number): string | undefined =>
    known
      .split("\n")
      .find((l) => l.startsWith(`[127.0.0.1]:${port} `))
      ?.split(" ")
      .slice(1)
      .join(" ");
  t.truthy(key(2201));
  t.truthy(key(2202));
  t.not(key(2201), key(2202));
});

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "0.0.0.0", () => server.close(() => done(true)));
  });
}

function writeWrappers(bin: string, state: string): void {
  const node = process.execPath;
  const wrappers: Record<string, string> = {
    npx: `[ "$1" = niftyc ] || { echo "npx: only 'npx niftyc' is adapted for the tutorial test" >&2; exit 2; }
shift
exec ${shellQuote(node)} ${shellQuote(join(ROOT, "bin", "niftyc"))} "$@"`,
    "systemd-nspawn": `exec /usr/bin/systemd-nspawn --register=no --keep-unit "$@"`,
    ssh: `user= port=22 prev=
for a in "$@"; do
  case "$prev" in -p) port=$a ;; -l) user=$a ;; esac
  case "$a" in -*) ;; *@*) [ -n "$user" ] || user=\${a%%@*} ;; esac
  prev=$a
done
[ -f "$user.pw" ] || { echo "ssh wrapper: no $user.pw in $PWD to type as $user's password" >&2; exit 2; }
deadline=$((SECONDS + 60))
until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "ssh wrapper: nothing listens on port $port after 60 s" >&2; exit 2; }
  sleep 0.2
done
SSHPASS=$(cat "$user.pw") exec sshpass -e /usr/bin/ssh -o StrictHostKeyChecking=accept-new -o HashKnownHosts=no -o UserKnownHostsFile=${shellQuote(join(state, "known_hosts"))} \\
  -o PreferredAuthentications=password -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -o ConnectTimeout=10 "$@"`,
    systemctl: `exec ${shellQuote(node)} ${shellQuote(join(import.meta.dirname, "fake-systemd.ts"))} systemctl "$@"`,
    machinectl: `exec ${shellQuote(node)} ${shellQuote(join(import.meta.dirname, "fake-systemd.ts"))} machinectl "$@"`,
  };
  for (const [name, body] of Object.entries(wrappers)) {
    writeFileSync(
      join(bin, name),
      `#!/bin/bash\n# Tutorial test wrapper: see test/docs/tutorial.test.ts.\n${body}\n`,
    );
    chmodSync(join(bin, name), 0o755);
  }
}

interface Session {
  pid: number;
  run: (block: string, where: string) => Promise<string>;
  close: () => Promise<void>;
}

/** One bash in a private mount namespace; blocks are fed to it one at a time. */
function startSession(
  t: ExecutionContext,
  dir: string,
  work: string,
  env: NodeJS.ProcessEnv,
  state: string,
): Session {
  const setup = [
    "set -e",
    "mount -t tmpfs tmpfs /run",
    "mount -t tmpfs tmpfs /var/lib/machines",
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${shellQuote(join(dir, "etc-upper"))},workdir=${shellQuote(join(dir, "etc-work"))} /etc`,
    "exec 2>&1",
    "exec bash --noprofile --norc -e",
  ].join("\n");
  const child: ChildProcess = spawn("unshare", ["-m", "--propagation", "private", "bash", "-c", setup], {
    cwd: work,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let exit: string | undefined;
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<void>((done) =>
    child.once("exit", (code, signal) => ((exit = signal ?? String(code)), done())),
  );
  t.teardown(async () => {
    for (const f of readdirSync(state).filter((n) => n.endsWith(".pid") || n.endsWith(".supervisor"))) {
      const pid = Number(readFileSync(join(state, f), "utf8"));
      if (pid > 0) killTree(pid);
    }
    if (exit === undefined && child.pid) killTree(child.pid);
    await Promise.race([exited, sleep(5000)]);
  });
  let count = 0;
  return {
    pid: child.pid!,
    async run(block, where) {
      const marker = `@@tutorial-block-${++count}-done@@`;
      const from = output.length;
      child.stdin!.write(`{\n${block}\n} </dev/null\necho ${marker}\n`);
      const until = Date.now() + BLOCK_DEADLINE_MS;
      while (!output.includes(marker, from)) {
        if (exit !== undefined)
          throw new Error(`${where}: the block failed (bash exited: ${exit}):\n${output.slice(from)}`);
        if (Date.now() > until)
          throw new Error(
            `${where}: the block did not finish within ${BLOCK_DEADLINE_MS / 1000} s:\n${output.slice(from)}`,
          );
        await sleep(50);
      }
      return cleanOutput(output.slice(from, output.indexOf(marker, from)));
    },
    async close() {
      child.stdin!.end();
      await Promise.race([exited, sleep(30_000)]);
      if (exit !== "0") throw new Error(`the tutorial's shell ended with ${exit}:\n${output.slice(-2000)}`);
    },
  };
}

/** Run a command under a pseudo-terminal and type the console block into it. */
async function runConsole(
  t: ExecutionContext,
  step: Step,
  sessionPid: number,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const where = `docs/tutorial.md:${step.console!.line}`;
  const cwd = readlinkSync(`/proc/${sessionPid}/cwd`);
  const inner = `cd ${shellQuote(cwd)} && ${step.command.text}`;
  const command = `nsenter -t ${sessionPid} -m -- bash -e -c ${shellQuote(inner)}`;
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let code: number | null | undefined;
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<void>((done) => child.once("exit", (c) => ((code = c), done())));
  t.teardown(async () => {
    if (code !== undefined) return;
    killTree(child.pid!);
    await Promise.race([exited, sleep(5000)]);
  });
  let cursor = 0;
  let user = "";
  const waitFor = async (text: string): Promise<void> => {
    const until = Date.now() + 60_000;
    while (!cleanOutput(output).includes(text, cursor)) {
      if (code !== undefined)
        throw new Error(
          `${where}: the console ended (${code}) before ${JSON.stringify(text)}:\n${cleanOutput(output)}`,
        );
      if (Date.now() > until)
        throw new Error(
          `${where}: no ${JSON.stringify(text)} on the console within 60 s:\n${cleanOutput(output)}`,
        );
      await sleep(50);
    }
  };
  const type = (text: string): void => {
    cursor = cleanOutput(output).length;
    child.stdin.write(`${text}\n`);
  };
  const expected: string[] = [];
  for (const line of step.console!.text.split("\n")) {
    const login = /^(\S+ login: )(.+)$/.exec(line);
    const prompt = /^([~/]\S* [#$] )(.+)$/.exec(line);
    if (login) {
      await waitFor(login[1]!);
      user = login[2]!;
      type(user);
    } else if (/^Password:\s*$/.test(line)) {
      await waitFor("Password: ");
      type(readFileSync(join(cwd, `${user}.pw`), "utf8").replace(/\n$/, ""));
    } else if (prompt) {
      await waitFor(prompt[1]!);
      type(prompt[2]!);
    } else expected.push(line);
  }
  const until = Date.now() + 60_000;
  while (code === undefined) {
    if (Date.now() > until)
      throw new Error(
        `${where}: the console's command did not end within 60 s of the last line typed:\n${cleanOutput(output)}`,
      );
    await sleep(50);
  }
  const text = cleanOutput(output);
  if (code !== 0) throw new Error(`${where}: the console's command ended with status ${code}:\n${text}`);
  const missing = missingLines(expected.join("\n"), text);
  t.deepEqual(
    missing,
    [],
    `${where}: console lines the tutorial shows but the container did not print:\n${missing.join("\n")}\n--- console ---\n${text}`,
  );
  return text;
}

/** SIGKILL a process and every descendant (a container's init takes its whole PID namespace with it). */
function killTree(pid: number): void {
  const all: number[] = [];
  const walk = (p: number): void => {
    all.push(p);
    for (const c of spawnSync("pgrep", ["-P", String(p)], { encoding: "utf8" })
      .stdout.split("\n")
      .filter(Boolean))
      walk(Number(c));
  };
  walk(pid);
  for (const p of all.reverse()) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}
