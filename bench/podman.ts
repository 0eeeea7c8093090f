// niftyc beside `podman build` on the same image: recipes/ssh.nifty and an
// equivalent Dockerfile (FROM scratch; the same BusyBox, Dropbear and
// libraries, copied from a local directory unpacked from the same .debs; the
// applet links, directories, files, accounts with a crypt-hashed password
// secret and inittab made by RUN steps). Cold: niftyc with only its inputs in
// the store (bench/mirror.ts coldStore), podman with --no-cache; warm: every
// step cached, a fresh --out for niftyc, the same tag for podman. Runs
// alternate between the two; figures are medians. Also the no-op rebuild
// against `node -e 0` and `niftyc check` against `niftyc --version`: the
// goals of the performance table.
// Run: npx node bench/podman.ts [--runs N]   (needs podman and runc)
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { coldStore, DEBS, inputDigests, RECIPE, sshBuildArgs, startMirror } from "./mirror.ts";
import { fmtMb, fmtMs, machine, median, NODE, ROOT, timed, writeSection, type Run, option } from "./util.ts";

const execFileP = promisify(execFile);
const RUNS = Number(option("--runs") ?? 5);
const PODMAN = ["--runtime", "runc"];
const TAG = "localhost/niftyc-bench-ssh:latest";

/** What the recipe takes from the .debs, as paths in the unpacked tree. */
const FROM_DEBS = [
  "bin/busybox",
  "usr/sbin/dropbear",
  "usr/bin/dbclient",
  "usr/bin/dropbearkey",
  "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
  "lib/x86_64-linux-gnu/libc.so.6",
  "lib/x86_64-linux-gnu/libcrypt.so.1",
  "lib/x86_64-linux-gnu/libcrypt.so.1.1.0",
  "lib/x86_64-linux-gnu/libz.so.1",
  "lib/x86_64-linux-gnu/libz.so.1.2.13",
  "usr/lib/x86_64-linux-gnu/libgmp.so.10",
  "usr/lib/x86_64-linux-gnu/libgmp.so.10.4.1",
  "usr/lib/x86_64-linux-gnu/libtomcrypt.so.1",
  "usr/lib/x86_64-linux-gnu/libtomcrypt.so.1.0.1",
  "usr/lib/x86_64-linux-gnu/libtommath.so.1",
  "usr/lib/x86_64-linux-gnu/libtommath.so.1.2.0",
];

/** recipes/ssh.nifty, line for line where Docker has a word for it, RUN steps where it does not. */
const DOCKERFILE = String.raw`FROM scratch
COPY busybox/ /
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && ln -s bin /sbin && /bin/mkdir -p /usr && ln -s ../bin /usr/bin && ln -s ../bin /usr/sbin"]
COPY dropbear/ /
RUN mkdir -p /lib64 && ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
RUN printf 'NAME="Nifty BusyBox"\nID=nifty\nPRETTY_NAME="Nifty BusyBox with Dropbear"\n' > /etc/os-release
RUN echo nifty > /etc/hostname
RUN mkdir -p -m 1777 /tmp /var/tmp
RUN mkdir -p /var/log /var/run /home /proc /sys /dev /run
RUN : > /etc/machine-id
RUN printf 'root:x:0:0:root:/root:/bin/sh\n' > /etc/passwd && printf 'root:x:0:\n' > /etc/group && printf 'root:!:1::::::\n' > /etc/shadow && chmod 600 /etc/shadow && mkdir -p -m 700 /root
RUN --mount=type=secret,id=luser-password printf 'luser:x:1000:1000:luser:/home/luser:/bin/sh\n' >> /etc/passwd && printf 'luser:x:1000:\n' >> /etc/group && printf 'luser:%s:1::::::\n' "$(cryptpw -m sha512 "$(cat /run/secrets/luser-password)")" >> /etc/shadow && printf '/bin/sh\n' > /etc/shells && mkdir -p /home/luser && chown 1000:1000 /home/luser
ENV PORT=2200
RUN mkdir -p -m 700 /etc/dropbear && echo "::sysinit:/bin/sh -c 'mkdir -p /etc/dropbear && [ -s /etc/dropbear/dropbear_ed25519_host_key ] || dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key'" > /etc/inittab
RUN echo '::sysinit:/bin/syslogd' >> /etc/inittab
RUN echo "::respawn:/bin/dropbear -F -w -p $PORT" >> /etc/inittab
RUN echo 'console::respawn:/bin/getty 38400 console' >> /etc/inittab
EXPOSE 2200/tcp
STOPSIGNAL SIGUSR2
`;

async function podmanContext(dir: string): Promise<void> {
  const unpacked = path.join(dir, "debs");
  for (const file of await fsp.readdir(DEBS))
    await execFileP("dpkg-deb", ["-x", path.join(DEBS, file), unpacked]);
  for (const rel of FROM_DEBS) {
    const part = rel === "bin/busybox" ? "busybox" : "dropbear";
    const dest = path.join(dir, "ctx", part, rel);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await execFileP("cp", ["-a", path.join(unpacked, rel), dest]);
  }
  await fsp.writeFile(path.join(dir, "ctx", "Dockerfile"), DOCKERFILE);
}

const status = (ms: number, goal: number, better: "lower" | "higher"): string => {
  const met = better === "higher" ? ms >= goal : ms <= goal;
  return met ? "met" : `missed by ${better === "higher" ? (goal / ms).toFixed(2) : (ms / goal).toFixed(2)}×`;
};

const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-podman-"));
const mirror = await startMirror();
try {
  const pw = path.join(work, "pw");
  await fsp.writeFile(pw, "bench-password\n");
  await podmanContext(work);
  const ctx = path.join(work, "ctx");
  const seed = path.join(work, "seed");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_COMPILE_CACHE: path.join(work, "node-compile-cache"),
  };
  const niftyc = (out: string, cache: string) => [
    ...sshBuildArgs({ out, cache, passwordFile: pw, mirror: mirror.url }),
    "-q",
  ];
  const podman = (cold: boolean) => [
    ...PODMAN,
    "build",
    ...(cold ? ["--no-cache"] : []),
    "-q",
    "--secret",
    `id=luser-password,src=${pw}`,
    "-t",
    TAG,
    ctx,
  ];
  await execFileP(NODE, niftyc(path.join(work, "seed-out"), seed), { env });
  const inputs = await inputDigests(seed);
  // Warm-up of both, so the first timed run pays no one-off cost (podman's storage, Node's compile cache).
  await timed("podman", podman(true));
  const warmCache = path.join(work, "warm-cache");
  // A copy, not hard links: the cold runs store the same blobs again into stores linked to the seed, which
  // refreshes the shared inodes' mtimes and would make every warm run hash what a user's store never saw move.
  await execFileP("cp", ["-a", seed, warmCache]);
  // The warm command built, untimed, into the store it then uses: its stamp restores a fresh --out. Twice, a
  // second apart: a stamp never vouches for a file written within the second it records (the secret stamps).
  await execFileP(NODE, niftyc(path.join(work, "warm-out"), warmCache), { env });
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await fsp.rm(path.join(work, "warm-out"), { recursive: true, force: true });
  await execFileP(NODE, niftyc(path.join(work, "warm-out"), warmCache), { env });
  const fullEnv = { ...env, NIFTY_NO_STAMPS: "1" };

  const runs = {
    niftycCold: [] as Run[],
    podmanCold: [] as Run[],
    niftycWarm: [] as Run[],
    niftycWarmFull: [] as Run[],
    podmanWarm: [] as Run[],
    noop: [] as Run[],
    node: [] as Run[],
    check: [] as Run[],
    version: [] as Run[],
  };
  for (let i = 0; i < RUNS; i++) {
    const cache = path.join(work, "cache");
    await coldStore(seed, cache, inputs);
    await fsp.rm(path.join(work, "out"), { recursive: true, force: true });
    runs.niftycCold.push(await timed(NODE, niftyc(path.join(work, "out"), cache), { env }));
    runs.podmanCold.push(await timed("podman", podman(true)));
    await fsp.rm(path.join(work, "warm-out"), { recursive: true, force: true });
    runs.niftycWarm.push(await timed(NODE, niftyc(path.join(work, "warm-out"), warmCache), { env }));
    runs.podmanWarm.push(await timed("podman", podman(false)));
    await fsp.rm(path.join(work, "warm-out"), { recursive: true, force: true });
    runs.niftycWarmFull.push(
      await timed(NODE, niftyc(path.join(work, "warm-out"), warmCache), { env: fullEnv }),
    );
    runs.noop.push(await timed(NODE, niftyc(path.join(work, "warm-out"), warmCache), { env }));
    runs.node.push(await timed(NODE, ["-e", "0"], { env }));
    runs.check.push(await timed(NODE, [path.join(ROOT, "bin/niftyc"), "check", RECIPE], { env }));
    runs.version.push(await timed(NODE, [path.join(ROOT, "bin/niftyc"), "--version"], { env }));
  }
  await execFileP("podman", ["rmi", "-f", TAG]).catch(() => undefined);
  const m = Object.fromEntries(
    Object.entries(runs).map(([k, v]) => [k, median(v.map((r) => r.ms))]),
  ) as Record<keyof typeof runs, number>;
  const cpu = Object.fromEntries(
    Object.entries(runs).map(([k, v]) => [k, median(v.map((r) => r.cpuMs))]),
  ) as Record<keyof typeof runs, number>;
  const rss = (v: Run[]) => fmtMb(Math.max(...v.map((r) => r.maxRssKb)));
  const row = (what: string, a: number, b: number, peer: string, goal: string, met: string, rssA: string) =>
    `| ${what} | ${fmtMs(a)} | ${fmtMs(b)} (${peer}) | ${b / a >= 1 ? `${(b / a).toFixed(1)}× faster` : `${(a / b).toFixed(2)}× the peer`} | ${goal} | ${met} | ${rssA} |`;
  const body = `## Beside podman build

\`npx node bench/podman.ts\`: \`recipes/ssh.nifty\` (default formats) beside \`podman build\` (${(await execFileP("podman", ["--version"])).stdout.trim()}, \`--runtime runc\`)
of an equivalent Dockerfile: \`FROM scratch\`, the same BusyBox, Dropbear and libraries copied from a local directory
unpacked from the same .debs, and a RUN step for each of the recipe's applet links, directories, files, accounts
(the password a build secret, hashed with BusyBox's \`cryptpw -m sha512\`) and inittab lines. Cold: niftyc with
only its inputs in the store (the .debs and their contents; no step, outputs or assembled records), podman with
\`--no-cache\`; warm: every step cached (niftyc into a fresh \`--out\`, podman the same tag again). Nothing is downloaded.
The warm command was built before the rounds, so its stamp restores the fresh \`--out\` from the store without
loading the compiler; the row below it is the same warm build with \`NIFTY_NO_STAMPS=1\` (the compiler loads, every
step is checked against its record). Runs alternate (niftyc cold, podman cold, niftyc warm, podman warm, niftyc warm
without stamps, no-op, \`node -e 0\`, check, \`--version\`), ${RUNS} rounds, medians; each run a child process timed
from spawn to exit.

| | niftyc | peer | ratio | goal | | niftyc peak RSS |
| --- | --- | --- | --- | --- | --- | --- |
${row("cold build vs `podman build --no-cache`", m.niftycCold, m.podmanCold, "podman", "≥ 10× faster", status(m.podmanCold / m.niftycCold, 10, "higher"), rss(runs.niftycCold))}
${row("warm build vs `podman build` (all cached)", m.niftycWarm, m.podmanWarm, "podman", "≥ 10× faster", status(m.podmanWarm / m.niftycWarm, 10, "higher"), rss(runs.niftycWarm))}
| the same, CPU time (user + system) | ${fmtMs(cpu.niftycWarm)} | — (podman's containers run outside its process) | | | | |
${row("warm build without stamps (`NIFTY_NO_STAMPS=1`)", m.niftycWarmFull, m.podmanWarm, "podman", "", "", rss(runs.niftycWarmFull))}
| no-op rebuild vs \`node -e 0\` | ${fmtMs(m.noop)} | ${fmtMs(m.node)} | ${(m.noop / m.node).toFixed(2)}× | ≤ 1.5× | ${status(m.noop / m.node, 1.5, "lower")} | ${rss(runs.noop)} |
| the same, CPU time (user + system) | ${fmtMs(cpu.noop)} | ${fmtMs(cpu.node)} | ${(cpu.noop / cpu.node).toFixed(2)}× | ≤ 1.5× | ${status(cpu.noop / cpu.node, 1.5, "lower")} | |
| \`niftyc check recipes/ssh.nifty\` vs \`niftyc --version\` | ${fmtMs(m.check)} | ${fmtMs(m.version)} | ${(m.check / m.version).toFixed(2)}× | ≤ 2× | ${status(m.check / m.version, 2, "lower")} | ${rss(runs.check)} |
| the same, CPU time (user + system) | ${fmtMs(cpu.check)} | ${fmtMs(cpu.version)} | ${(cpu.check / cpu.version).toFixed(2)}× | ≤ 2× | ${status(cpu.check / cpu.version, 2, "lower")} | |

Measured with ${machine()}, load average ${os.loadavg()[0]!.toFixed(1)} at the end (other work may share the machine: the
ratios, from alternating runs, move less than the times, and the CPU times of the Node processes least; podman's CPU
time is not comparable, its containers run outside the process /usr/bin/time waits for).`;
  await writeSection("podman", body);
  process.stdout.write(body + "\n");
} finally {
  await mirror.close();
  await fsp.rm(work, { recursive: true, force: true });
}
