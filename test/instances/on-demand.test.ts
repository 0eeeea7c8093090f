// On-demand instances as files: the plan names instances by their listener's
// port and keeps that port out of the container, the listener, forwarder and
// template say what systemd needs, systemd-analyze accepts them, and the
// command line checks its flags. The boot under a real systemd is in
// test/boot/on-demand.test.ts.
import test from "ava";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { planInstances } from "../../src/instances/plan.ts";
import {
  checkIdleStop,
  renderOnDemandUnits,
  renderInstanceUnit,
  renderInstancesEnv,
  renderTarget,
  type Manifest,
} from "../../src/instances/render.ts";
import { classify, instanceStates, parseListUnits } from "../../src/instances/status.ts";
import { writeInstances } from "../../src/instances/write.ts";
import { FALLBACK_SOURCE, sourceAddress, timeSpanMs } from "../../src/instances/forward.ts";
import { runMain } from "../support/cli.ts";
import { buildDir, sshConfig, temp } from "./helpers.ts";

const onDemand = (
  count = 3,
  sets = [
    { name: "PORT", expr: "2200+i" },
    { name: "WORKERS", expr: "i" },
  ],
) => planInstances({ config: sshConfig(), count, first: 7, sets, onDemand: true });

/** This Node and this checkout's niftyc: what `niftyc instances` names by default. */
const NIFTYC = resolve("bin/niftyc");
const FORWARDER = { node: process.execPath, niftyc: NIFTYC };

test("the plan names each instance by its listener's port and keeps that port out of the container", (t) => {
  const plan = onDemand();
  t.deepEqual(plan.onDemand, { variable: "PORT", innerPort: 2200 });
  t.deepEqual(
    plan.instances.map((i) => [i.number, i.id, i.machine, i.port]),
    [
      [7, "2207", "ssh-2207", 2207],
      [8, "2208", "ssh-2208", 2208],
      [9, "2209", "ssh-2209", 2209],
    ],
  );
  t.deepEqual(
    plan.instances[0]!.env,
    [["WORKERS", "7"]],
    "PORT stays the recipe's inside; other --set values still reach the container",
  );
  t.deepEqual(
    renderInstancesEnv(plan)
      .split("\n")
      .filter((l) => l && !l.startsWith("#")),
    [
      "NIFTY_ARGS_2207=--setenv=WORKERS=7",
      "NIFTY_ARGS_2208=--setenv=WORKERS=8",
      "NIFTY_ARGS_2209=--setenv=WORKERS=9",
    ],
  );
  const target = renderTarget(plan);
  t.deepEqual(
    target.split("\n").filter((l) => l.startsWith("Wants=")),
    ["Wants=ssh-listen@2207.socket", "Wants=ssh-listen@2208.socket", "Wants=ssh-listen@2209.socket"],
  );
  t.regex(target, /^WantedBy=sockets\.target$/m);
  t.regex(target, /^Description=3 on-demand instances of ssh \(niftyc\)$/m);
});

test("on-demand plan mistakes: no port per instance, two ports, a recipe port that is none, clashing listeners", (t) => {
  const none = t.throws(
    () =>
      planInstances({
        config: sshConfig(),
        count: 2,
        sets: [{ name: "WORKERS", expr: "i" }],
        onDemand: true,
      }),
    { instanceOf: NiftyError },
  );
  t.is(none.code, "NIFTY430");
  t.regex(none.hint ?? "", /--set PORT=2200\+i/);
  const noPortEnv = t.throws(
    () =>
      planInstances({
        config: sshConfig({ env: [["WORKERS", "4"]], exposedPorts: [] }),
        count: 2,
        onDemand: true,
      }),
    { instanceOf: NiftyError },
  );
  t.is(noPortEnv.code, "NIFTY430");
  t.regex(noPortEnv.message, /has no port ENV/);
  const two = sshConfig({
    env: [
      ["PORT", "2200"],
      ["ADMIN_PORT", "9000"],
    ],
  });
  const both = t.throws(
    () =>
      planInstances({
        config: two,
        count: 2,
        sets: [
          { name: "PORT", expr: "2200+i" },
          { name: "ADMIN_PORT", expr: "9000+i" },
        ],
        onDemand: true,
      }),
    { instanceOf: NiftyError },
  );
  t.is(both.code, "NIFTY431");
  // The other port stays inside each instance's own network: no clash, so it need not be set.
  t.deepEqual(
    planInstances({
      config: two,
      count: 2,
      sets: [{ name: "PORT", expr: "2200+i" }],
      onDemand: true,
    }).instances.map((i) => i.env),
    [[], []],
  );
  const notPort = t.throws(
    () =>
      planInstances({
        config: sshConfig({ env: [["PORT", "0"]] }),
        count: 2,
        sets: [{ name: "PORT", expr: "2200+i" }],
        onDemand: true,
      }),
    { instanceOf: NiftyError },
  );
  t.is(notPort.code, "NIFTY432");
  const clash = t.throws(
    () =>
      planInstances({
        config: sshConfig(),
        count: 2,
        sets: [{ name: "PORT", expr: "2200+i%1" }],
        onDemand: true,
      }),
    { instanceOf: NiftyError },
  );
  t.is(clash.code, "NIFTY408");
  t.regex(clash.hint ?? "", /listener needs a host port of its own/);
});

test("the listener listens on its instance name, the forwarder joins the instance's network and stops it by exiting", (t) => {
  const plan = onDemand();
  const units = new Map(
    renderOnDemandUnits(sshConfig(), plan, "90s", {
      node: "/usr/bin/node",
      niftyc: "/opt/niftyc/bin/niftyc",
    }),
  );
  t.deepEqual([...units.keys()], ["ssh-listen@.socket", "ssh-listen@.service"]);
  const socket = units.get("ssh-listen@.socket")!;
  t.regex(socket, /^\[Socket\]\nListenStream=%i$/m);
  t.regex(socket, /^PartOf=ssh\.target$/m);
  t.regex(socket, /^WantedBy=ssh\.target$/m);
  const forwarder = units.get("ssh-listen@.service")!;
  for (const line of [
    "Requires=ssh@%i.service",
    "After=ssh@%i.service",
    "JoinsNamespaceOf=ssh@%i.service",
    "PartOf=ssh.target",
    "PrivateNetwork=yes",
    "ExecStart=/usr/bin/node /opt/niftyc/bin/niftyc forward --exit-idle-time=90s 127.0.0.1:2200",
  ]) {
    t.true(forwarder.split("\n").includes(line), line);
  }
  // The wait for the image to listen, as bash runs it once systemd has unquoted the line.
  const pre = forwarder.split("\n").find((l) => l.startsWith("ExecStartPre="))!;
  t.regex(
    pre,
    /^ExecStartPre=\/bin\/bash -c "for \(\(t = 0; t < 600; t\+\+\)\); do \(exec 3<>\/dev\/tcp\/127\.0\.0\.1\/2200\)/,
  );
  const template = renderInstanceUnit(sshConfig(), "/srv/fleet", true);
  t.regex(template, /^StopWhenUnneeded=yes$/m);
  t.regex(template, /^\[Service\]\nPrivateNetwork=yes$/m);
  t.notRegex(
    renderInstanceUnit(sshConfig(), "/srv/fleet"),
    /PrivateNetwork|StopWhenUnneeded/,
    "instances that are not on demand keep the host's network",
  );
});

test("--idle-stop takes systemd time spans", (t) => {
  for (const span of ["90s", "10min", "1h30min", "2h", "500ms", "1d", "infinity", "30"])
    t.is(checkIdleStop(span), span);
  for (const bad of ["", "0", "0s", "10 min", "soon", "-5s", "10min;rm"]) {
    t.is(t.throws(() => checkIdleStop(bad), { instanceOf: NiftyError }).code, "NIFTY433", bad);
  }
});

test("writeInstances --on-demand: the five files, a manifest with ports, systemd-analyze accepts the units; back to plain instances drops the listeners", async (t) => {
  const build = await buildDir(t);
  const dir = join(temp(t), "fleet");
  const result = await writeInstances({
    dir,
    config: sshConfig(),
    plan: onDemand(),
    rootfsTar: join(build.dir, "rootfs.tar"),
    digest: build.digest,
    version: "test",
    idleStop: "90s",
    forwarder: FORWARDER,
  });
  t.deepEqual(readdirSync(join(dir, "systemd")).sort(), [
    "instances.env",
    "ssh-listen@.service",
    "ssh-listen@.socket",
    "ssh.target",
    "ssh@.service",
  ]);
  t.is(result.files.listener, join(dir, "systemd", "ssh-listen@.socket"));
  t.is(result.files.forwarder, join(dir, "systemd", "ssh-listen@.service"));
  const manifest = JSON.parse(readFileSync(join(dir, "instances.json"), "utf8")) as Manifest;
  t.deepEqual(manifest.onDemand, {
    variable: "PORT",
    innerPort: 2200,
    idleStop: "90s",
    listener: "systemd/ssh-listen@.socket",
    forwarder: "systemd/ssh-listen@.service",
  });
  t.deepEqual(manifest.instances[1], {
    instance: 8,
    machine: "ssh-2208",
    env: { WORKERS: "8" },
    unit: "ssh@2208.service",
    port: 2208,
  });

  const s = join(dir, "systemd");
  const verify = spawnSync(
    "systemd-analyze",
    [
      "verify",
      "--man=no",
      join(s, "ssh-listen@2207.socket"),
      join(s, "ssh-listen@2207.service"),
      join(s, "ssh@2207.service"),
      join(s, "ssh.target"),
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  t.is(verify.status, 0, verify.stderr);
  // Only the other instances, which verify cannot find as files, may be mentioned.
  t.is(
    verify.stderr
      .split("\n")
      .filter((l) => l && !/ssh(-listen)?@22(08|09)\./.test(l))
      .join("\n"),
    "",
  );

  await writeInstances({
    dir,
    config: sshConfig(),
    plan: planInstances({
      config: sshConfig(),
      count: 3,
      first: 7,
      sets: [{ name: "PORT", expr: "2200+i" }],
    }),
    rootfsTar: join(build.dir, "rootfs.tar"),
    digest: build.digest,
    version: "test",
  });
  t.deepEqual(readdirSync(join(dir, "systemd")).sort(), ["instances.env", "ssh.target", "ssh@.service"]);
  t.is((JSON.parse(readFileSync(join(dir, "instances.json"), "utf8")) as Manifest).onDemand, undefined);
});

test("status: systemctl's list-units lines become running, starting, failed, idle and stopped instances", (t) => {
  const units = parseListUnits(
    [
      "ssh@2207.service        loaded active   running   Container ssh-2207 (niftyc)",
      "● ssh@2209.service      loaded failed   failed    Container ssh-2209 (niftyc)",
      "ssh-listen@2207.socket  loaded active   running   Listener for ssh on port 2207 (niftyc)",
      "ssh-listen@2208.socket  loaded active   listening Listener for ssh on port 2208 (niftyc)",
      "ssh-listen@2209.socket  loaded active   listening Listener for ssh on port 2209 (niftyc)",
      "",
    ].join("\n"),
  );
  const manifest = {
    name: "ssh",
    onDemand: { variable: "PORT", innerPort: 2200, idleStop: "90s", listener: "", forwarder: "" },
    instances: [7, 8, 9, 10].map((n) => ({
      instance: n,
      machine: `ssh-${2200 + n}`,
      env: {},
      unit: `ssh@${2200 + n}.service`,
      port: 2200 + n,
    })),
  } as unknown as Manifest;
  t.deepEqual(
    instanceStates(manifest, units).map((s) => [s.instance, s.state, s.listener]),
    [
      [7, "running", "active/running"],
      [8, "idle", "active/listening"],
      [9, "failed", "active/listening"],
      [10, "stopped", "inactive/dead"],
    ],
  );
  t.is(classify({ active: "activating", sub: "start" }, undefined, false), "starting");
  t.is(
    classify(undefined, { active: "active", sub: "listening" }, false),
    "stopped",
    "a plain instance is stopped whatever its name's socket does",
  );
});

test("the command line: --on-demand writes the listeners and says how to start them; --idle-stop is checked; status needs an instances directory", async (t) => {
  const build = await buildDir(t);
  const cwd = temp(t);
  const ok = await runMain(
    [
      "instances",
      build.dir,
      "--count",
      "3",
      "--set",
      "PORT=3000+i",
      "--on-demand",
      "--idle-stop",
      "5min",
      "--out",
      "fleet",
    ],
    cwd,
  );
  t.is(ok.code, 0, ok.stderr);
  t.regex(
    ok.stdout,
    /^wrote 3 on-demand instances of ssh \(ports 3001 … 3003, stopped after 5min idle\) in fleet; shared tree unpacked\n/,
  );
  t.regex(
    ok.stdout,
    /systemctl link \S+\/ssh@\.service \S+\/ssh-listen@\.service \S+\/ssh-listen@\.socket \S+\/ssh\.target\n/,
  );
  t.regex(ok.stdout, /niftyc instances status fleet\n/);
  t.true(
    readFileSync(join(cwd, "fleet", "systemd", "ssh-listen@.service"), "utf8")
      .split("\n")
      .includes(`ExecStart=${process.execPath} ${NIFTYC} forward --exit-idle-time=5min 127.0.0.1:2200`),
    "this Node and this niftyc forward, by default",
  );
  const json = await runMain(
    [
      "instances",
      build.dir,
      "--count",
      "2",
      "--set",
      "PORT=3000+i",
      "--on-demand",
      "--out",
      "fleet",
      "--json",
    ],
    cwd,
  );
  t.like(JSON.parse(json.stdout), { onDemand: true, reusedRootfs: true });
  t.regex(
    readFileSync(join(cwd, "fleet", "systemd", "ssh-listen@.service"), "utf8"),
    /--exit-idle-time=10min /,
    "the default idle time",
  );

  const idle = await runMain(
    ["instances", build.dir, "--count", "2", "--set", "PORT=3000+i", "--idle-stop", "5min", "--out", "fleet"],
    cwd,
  );
  t.is(idle.code, 1);
  t.regex(idle.stderr, /--idle-stop needs --on-demand \[NIFTY433\]/);
  const span = await runMain(
    [
      "instances",
      build.dir,
      "--count",
      "2",
      "--set",
      "PORT=3000+i",
      "--on-demand",
      "--idle-stop",
      "soon",
      "--out",
      "fleet",
    ],
    cwd,
  );
  t.regex(span.stderr, /\[NIFTY433\]/);
  t.is(
    statSync(join(cwd, "fleet", "systemd", "ssh-listen@.service")).isFile(),
    true,
    "a refused run leaves the directory as it was",
  );
  const named = await runMain(
    [
      "instances",
      build.dir,
      "--count",
      "2",
      "--set",
      "PORT=3000+i",
      "--on-demand",
      "--node",
      "/usr/local/bin/node",
      "--niftyc",
      "/opt/niftyc/bin/niftyc",
      "--out",
      "fleet",
    ],
    cwd,
  );
  t.is(named.code, 0, named.stderr);
  t.regex(
    readFileSync(join(cwd, "fleet", "systemd", "ssh-listen@.service"), "utf8"),
    /^ExecStart=\/usr\/local\/bin\/node \/opt\/niftyc\/bin\/niftyc forward /m,
  );
  const relative = await runMain(
    ["instances", build.dir, "--count", "2", "--set", "PORT=3000+i", "--on-demand", "--node", "node"],
    cwd,
  );
  t.regex(relative.stderr, /--node must be an absolute path, got "node" \[NIFTY442\]/);
  const plain = await runMain(
    ["instances", build.dir, "--count", "2", "--set", "PORT=3000+i", "--niftyc", NIFTYC, "--out", "fleet"],
    cwd,
  );
  t.regex(plain.stderr, /--node and --niftyc need --on-demand \[NIFTY442\]/);
  const noPort = await runMain(
    ["instances", build.dir, "--count", "2", "--on-demand", "--out", "fleet"],
    cwd,
  );
  t.regex(noPort.stderr, /\[NIFTY430\]/);

  t.is((await runMain(["instances", "status"], cwd)).code, 2);
  const notDir = await runMain(["instances", "status", build.dir], cwd);
  t.is(notDir.code, 1);
  t.regex(notDir.stderr, /is not an instances directory .*\[NIFTY422\]/);
});

test("the forwarder connects each client from a loopback address of its own", (t) => {
  t.is(sourceAddress("192.0.2.17"), "127.0.2.17");
  t.is(sourceAddress("::ffff:192.0.2.17"), "127.0.2.17", "IPv4 on a dual-stack socket");
  t.is(sourceAddress("127.0.0.9"), "127.0.0.9", "loopback clients keep their address");
  t.is(sourceAddress("127.0.0.1"), "127.0.0.1");
  t.not(sourceAddress("192.0.2.17"), sourceAddress("192.0.2.18"), "distinct in the last three octets");
  t.is(sourceAddress("10.0.2.17"), sourceAddress("192.0.2.17"), "only the first octet apart: they collide");
  const v6 = sourceAddress("2001:db8::1");
  t.regex(v6, /^127\.\d+\.\d+\.\d+$/);
  t.is(sourceAddress("2001:DB8::1"), v6, "stable, whatever the spelling's case");
  t.not(sourceAddress("2001:db8::2"), v6);
  const many = new Set(Array.from({ length: 1000 }, (_, k) => sourceAddress(`2001:db8::${k.toString(16)}`)));
  t.true(many.size >= 990, `1000 IPv6 clients, ${many.size} addresses`);
  for (const edge of ["10.0.0.0", "10.255.255.255", "not an address"])
    t.is(sourceAddress(edge), FALLBACK_SOURCE);
  t.is(sourceAddress(undefined), FALLBACK_SOURCE);
});

test("the forwarder reads --exit-idle-time as systemd does", (t) => {
  t.is(timeSpanMs("5s"), 5000);
  t.is(timeSpanMs("30"), 30_000, "a bare number is seconds");
  t.is(timeSpanMs("1h30min"), 5_400_000);
  t.is(timeSpanMs("500ms"), 500);
  t.is(timeSpanMs("infinity"), Number.POSITIVE_INFINITY);
  for (const bad of ["", "0s", "soon", "5 s", "5parsecs"])
    t.is(t.throws(() => timeSpanMs(bad), { instanceOf: NiftyError }).code, "NIFTY433", bad);
});
