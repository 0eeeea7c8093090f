// recipes/ssh.nifty, proven by booting it with the real systemd-nspawn and
// logging in with the real OpenSSH client.
import test, { type ExecutionContext } from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  boot,
  buildRecipe,
  debianMirror,
  dropbearPublicKey,
  freePort,
  requireBoot,
  requireRunc,
  runcRun,
  sleep,
  ssh,
  unpack,
  waitForPort,
} from "./harness.ts";

const PASSWORD = "correct horse battery";

/** Build `recipe`, boot it, log in as luser over SSH; root and wrong passwords are refused; SIGTERM powers it off. */
async function bootsAndLetsLuserIn(t: ExecutionContext, recipe: string): Promise<void> {
  const mirror = await debianMirror(t);
  const built = await buildRecipe(t, recipe, mirror.url, { "luser-password": PASSWORD });
  t.is(built.stopSignal.name, "SIGUSR2");
  const root = unpack(t, built.rootfs);
  const port = await freePort();
  // The recipe says ENV PORT=2200; the container's environment decides at boot.
  const container = boot(t, {
    root,
    machine: "nifty-ssh",
    settings: built.outputs.nspawn!,
    args: [`--setenv=PORT=${port}`],
  });
  await waitForPort(port, 30_000);

  const session = ssh(
    t,
    port,
    "luser",
    PASSWORD,
    "id; ps; touch /tmp/probe && ls -ld /tmp /tmp/probe; hostname; cat /etc/os-release",
  );
  t.is(session.status, 0, session.stderr);
  t.regex(session.stdout, /uid=1000\(luser\) gid=1000\(luser\)/);
  for (const process of [/\binit\b/, /syslogd/, new RegExp(`dropbear -F -w -p ${port}`)])
    t.regex(session.stdout, process);
  t.regex(session.stdout, /^drwxrwxrwt .* \/tmp$/m, "/tmp is writable by all and sticky");
  t.regex(session.stdout, /^-rw-r--r-- +1 luser +luser .* \/tmp\/probe$/m);
  t.regex(session.stdout, /^nifty$/m);
  t.regex(session.stdout, /Nifty BusyBox with Dropbear/);

  // The key the client saw is the one the container made at its first boot.
  t.truthy(session.hostKey);
  t.is(session.hostKey, dropbearPublicKey(join(root, "etc/dropbear/dropbear_ed25519_host_key")));

  const asRoot = ssh(t, port, "root", PASSWORD, "id");
  t.not(asRoot.status, 0);
  t.regex(asRoot.stderr, /Permission denied/);
  const wrong = ssh(t, port, "luser", "not the password", "id");
  t.not(wrong.status, 0);
  t.regex(wrong.stderr, /Permission denied/);

  const stopped = await container.stop("SIGTERM", 5_000);
  t.log(`stopped ${stopped.ms} ms after SIGTERM (KillSignal=SIGUSR2), exit ${stopped.code}`);
  t.regex(container.output(), /Requesting system poweroff/, "BusyBox init powered off (not a reboot)");
  t.is(stopped.code, 0);
}

test.serial(
  "ssh.nifty boots; luser logs in; root and wrong passwords are refused; SIGTERM powers it off",
  async (t) => {
    if (!requireBoot(t)) return;
    await bootsAndLetsLuserIn(t, "recipes/ssh.nifty");
  },
);

test.serial(
  "ssh-trixie.nifty (Debian 13, merged /usr) boots the same way: Dropbear finds its loader and libraries through /lib64 → usr/lib64",
  async (t) => {
    if (!requireBoot(t)) return;
    await bootsAndLetsLuserIn(t, "recipes/ssh-trixie.nifty");
  },
);

test.serial("two instances of ssh.nifty make two different host keys at first boot", async (t) => {
  if (!requireBoot(t)) return;
  const mirror = await debianMirror(t);
  const built = await buildRecipe(t, "recipes/ssh.nifty", mirror.url, { "luser-password": PASSWORD });
  const keys: string[] = [];
  for (const name of ["nifty-a", "nifty-b"]) {
    const root = unpack(t, built.rootfs);
    const port = await freePort();
    const container = boot(t, {
      root,
      machine: name,
      settings: built.outputs.nspawn!,
      args: [`--setenv=PORT=${port}`],
    });
    await waitForPort(port, 30_000);
    const session = ssh(t, port, "luser", PASSWORD, "true");
    t.is(session.status, 0, session.stderr);
    keys.push(session.hostKey!);
    await container.stop("SIGTERM", 5_000);
  }
  t.is(keys.length, 2);
  t.not(keys[0], keys[1]);
});

test.serial(
  "ssh.nifty's runtime bundle under runc: Dropbear makes its host key at boot and luser logs in; the zoneinfo bind is there; SIGUSR2 powers it off",
  async (t) => {
    if (!requireRunc(t)) return;
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, "recipes/ssh.nifty", mirror.url, { "luser-password": PASSWORD }, [
      "--format",
      "bundle",
    ]);
    const bundle = built.outputs.bundle!;
    const configPath = join(bundle, "config.json");
    const config = JSON.parse(readFileSync(configPath, "utf8")) as {
      root: { readonly: boolean };
      process: { env: string[] };
      mounts: Array<{ destination: string; type: string; source: string; options?: string[] }>;
    };
    t.false(config.root.readonly, "the boot writes /etc/dropbear and /var/log, as under nspawn");
    t.deepEqual(
      config.mounts.find((m) => m.destination === "/usr/share/zoneinfo"),
      {
        destination: "/usr/share/zoneinfo",
        type: "bind",
        source: "/usr/share/zoneinfo",
        options: ["rbind", "ro", "rro", "nosuid", "nodev"],
      },
      "BIND RO /usr/share/zoneinfo",
    );
    // runc shares the host's network: the container's environment decides the port at boot.
    const port = await freePort();
    config.process.env = config.process.env.map((e) => (e.startsWith("PORT=") ? `PORT=${port}` : e));
    writeFileSync(configPath, JSON.stringify(config));

    const container = runcRun(t, bundle, `niftyc-ssh-${process.pid}`);
    await container.init(15_000);
    await waitForPort(port, 30_000).catch((error: unknown) => {
      const seen = container.exec(["/bin/sh", "-c", "ps; ls -la /etc/dropbear; cat /var/log/messages"]);
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n${seen.stdout}${seen.stderr}\n${container.output()}`,
      );
    });
    const session = ssh(
      t,
      port,
      "luser",
      PASSWORD,
      "id; ps; ls /var/log/messages; echo probe > ~/probe && cat ~/probe; ls /usr/share/zoneinfo/UTC; hostname",
    );
    t.is(session.status, 0, session.stderr);
    t.regex(session.stdout, /uid=1000\(luser\) gid=1000\(luser\)/);
    for (const process of [/\binit\b/, /syslogd/, new RegExp(`dropbear -F -w -p ${port}`)])
      t.regex(session.stdout, process);
    t.regex(session.stdout, /^\/var\/log\/messages$/m, "syslogd logs");
    t.regex(session.stdout, /^probe$/m, "luser writes their home");
    t.regex(session.stdout, /^\/usr\/share\/zoneinfo\/UTC$/m, "the host's time zones are bound in");
    t.regex(session.stdout, /^nifty$/m);
    // The key the client saw is the one the container made at its boot, in the bundle's own rootfs.
    t.truthy(session.hostKey);
    t.is(session.hostKey, dropbearPublicKey(join(bundle, "rootfs/etc/dropbear/dropbear_ed25519_host_key")));

    t.is(container.kill("SIGUSR2"), 0);
    const code = await Promise.race([container.exited, sleep(10_000).then(() => "timeout" as const)]);
    t.not(code, "timeout", `BusyBox init did not power off within 10 s:\n${container.output()}`);
    // Poweroff inside a PID namespace ends init as if by SIGINT: 128 + 2.
    t.is(code, 130, container.output());
  },
);
