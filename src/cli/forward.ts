// `niftyc forward`: the forwarder of on-demand instances, started by systemd with
// the listening socket of <name>-listen@PORT.socket (socket activation, fd 3).
// The work is in src/instances/forward.ts.
import { NiftyError } from "../diagnostics/errors.ts";
import { UsageError, type CliIo } from "./io.ts";
import { EXIT, parse } from "./common.ts";

export const FORWARD_HELP = `Usage: niftyc forward [--exit-idle-time SPAN] HOST:PORT

The forwarder of on-demand instances (niftyc instances --on-demand writes it into
<name>-listen@.service): systemd passes it the listening socket (LISTEN_FDS=1, fd 3).
It connects every client to HOST:PORT from a loopback address of that client's own,
so the server there sees one address per client: IPv4 a.b.c.d comes from 127.b.c.d,
IPv6 from 127.x.y.z, 24 bits of a hash of the address (docs/instances.md). It binds
those addresses, so HOST is a loopback address in a network where all of 127.0.0.0/8
is local, as in an instance's own network namespace.

Options:
  --exit-idle-time SPAN  exit after SPAN without a connection (a systemd time span:
                         90s, 10min; default infinity), as systemd-socket-proxyd does`;

/** The socket systemd passed: exactly one, to this process. */
function listeningFd(env: NodeJS.ProcessEnv): number {
  if (env.LISTEN_PID !== String(process.pid) || env.LISTEN_FDS !== "1")
    throw new NiftyError(
      "NIFTY441",
      `niftyc forward needs one listening socket from systemd (LISTEN_FDS=${env.LISTEN_FDS ?? "unset"}, LISTEN_PID=${env.LISTEN_PID ?? "unset"})`,
      "it is started by <name>-listen@PORT.socket; run niftyc instances --on-demand to write the units",
    );
  return 3;
}

export async function runForward(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { "exit-idle-time": { type: "string" } }, FORWARD_HELP);
  if (values.help) {
    io.stdout.write(FORWARD_HELP + "\n");
    return EXIT.ok;
  }
  const target = /^(.+):(\d+)$/.exec(positionals[0] ?? "");
  const port = Number(target?.[2]);
  if (positionals.length !== 1 || target === null || !(port >= 1 && port <= 65535))
    throw new UsageError("forward takes one HOST:PORT to forward to", FORWARD_HELP);
  const { forward, timeSpanMs } = await import("../instances/forward.ts");
  const idleMs = timeSpanMs((values["exit-idle-time"] as string | undefined) ?? "infinity");
  await forward({ fd: listeningFd(process.env), host: target[1]!, port, idleMs });
  return EXIT.ok;
}
