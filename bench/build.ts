// Build benchmark: recipes/ssh.nifty built cold (empty cache) and warm
// (everything cached, fresh --out) against the seed's shell procedure on the
// same binaries, and a no-op rebuild against `node -e 0`. The .debs pinned
// in the recipe are fetched once with `apt-get download` and served from a
// loopback mirror, so the runs need no internet.
// Run: npx node bench/build.ts [--runs N]
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { DEBS, RECIPE, startMirror } from "./mirror.ts";
import { fmtMb, fmtMs, machine, median, NODE, ROOT, timed, writeSection, type Run, option } from "./util.ts";

const execFileP = promisify(execFile);
const RUNS = Number(option("--runs") ?? 7);

/** The seed's procedure on the same binaries: cp, one `ln -s` per applet, the file writes, `tar cf`. */
const SHELL_PROCEDURE = String.raw`set -e
B=$1; W=$2; R=$W/root
rm -rf "$R" "$W/rootfs.tar"
mkdir -p "$R/bin" "$R/lib/x86_64-linux-gnu" "$R/lib64" "$R/etc/dropbear" "$R/usr" "$R/tmp" "$R/var/tmp" \
  "$R/var/log" "$R/var/run" "$R/home/luser" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/root"
cp "$B/bin/busybox" "$R/bin/busybox"
cd "$R/bin"
for applet in $(./busybox --list); do
  [ -e "$applet" ] || ln -s busybox "$applet"
done
cd - >/dev/null
ln -s bin "$R/sbin"; ln -s ../bin "$R/usr/bin"; ln -s ../bin "$R/usr/sbin"
cp "$B/usr/sbin/dropbear" "$B/usr/bin/dbclient" "$B/usr/bin/dropbearkey" "$R/bin/"
for lib in ld-linux-x86-64.so.2 libc.so.6 libcrypt.so.1 libz.so.1 libtomcrypt.so.1 libtommath.so.1 libgmp.so.10; do
  cp "$B/lib/$lib" "$R/lib/x86_64-linux-gnu/$lib"
done
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
printf 'NAME="Nifty BusyBox"\nID=nifty\nPRETTY_NAME="Nifty BusyBox with Dropbear"\n' > "$R/etc/os-release"
echo nifty > "$R/etc/hostname"
: > "$R/etc/machine-id"
printf 'root:x:0:0:root:/root:/bin/sh\nluser:x:1000:1000:luser:/home/luser:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\nluser:x:1000:\n' > "$R/etc/group"
printf 'root:!:1::::::\nluser:%s:1::::::\n' "$3" > "$R/etc/shadow"
chmod 600 "$R/etc/shadow"
printf '/bin/sh\n' > "$R/etc/shells"
cat > "$R/etc/inittab" <<'EOF'
::sysinit:/bin/sh -c 'mkdir -p /etc/dropbear && [ -s /etc/dropbear/dropbear_ed25519_host_key ] || dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key'
::sysinit:/bin/syslogd
::respawn:/bin/dropbear -F -w -p 2200
console::respawn:/bin/getty 38400 console
EOF
chmod 1777 "$R/tmp" "$R/var/tmp"
chown 1000:1000 "$R/home/luser"
tar cf "$W/rootfs.tar" -C "$R" .
`;

async function series(
  n: number,
  before: (i: number) => Promise<void>,
  run: (i: number) => Promise<Run>,
): Promise<Run[]> {
  const out: Run[] = [];
  for (let i = 0; i < n; i++) {
    await before(i);
    out.push(await run(i));
  }
  return out;
}

const summary = (runs: Run[]): { ms: number; rss: number } => ({
  ms: median(runs.map((r) => r.ms)),
  rss: Math.max(...runs.map((r) => r.maxRssKb)),
});

const work = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-bench-build-"));
const mirror = await startMirror();
try {
  await fsp.writeFile(path.join(work, "pw"), "bench-password\n");
  const cache = path.join(work, "cache");
  const out = path.join(work, "out");
  const compileCache = path.join(work, "node-compile-cache");
  // bin/niftyc turns on Node's compile cache; keep it inside the bench's work dir.
  const env = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_COMPILE_CACHE: compileCache,
  });
  const args = (o: string, c: string) => [
    path.join(ROOT, "bin/niftyc"),
    "build",
    RECIPE,
    "--cache",
    c,
    "--out",
    o,
    "--secret",
    `luser-password=${path.join(work, "pw")}`,
    "--mirror",
    `debian=${mirror.url}`,
    "--mirror",
    `debian-security=${mirror.url}`,
    "-q",
  ];

  const cold = await series(
    Math.min(RUNS, 3),
    async (i) => void (await fsp.rm(path.join(work, `cold-${i}`), { recursive: true, force: true })),
    (i) => {
      const dir = path.join(work, `cold-${i}`);
      return timed(NODE, args(path.join(dir, "out"), path.join(dir, "cache")), { env: env() });
    },
  );
  // The cache every warm run starts from.
  await timed(NODE, args(out, cache), { env: env() });
  const warm = await series(
    RUNS,
    async () => void (await fsp.rm(path.join(work, "warm"), { recursive: true, force: true })),
    () => timed(NODE, args(path.join(work, "warm"), cache), { env: env() }),
  );
  const noop = await series(
    RUNS,
    async () => {},
    () => timed(NODE, args(out, cache), { env: env() }),
  );
  const nodeZero = await series(
    RUNS,
    async () => {},
    () => timed(NODE, ["-e", "0"]),
  );

  // The shell procedure, on the same binaries unpacked from the same .debs.
  const binaries = path.join(work, "binaries");
  for (const file of await fsp.readdir(DEBS))
    await execFileP("dpkg-deb", ["-x", path.join(DEBS, file), binaries]);
  await fsp.mkdir(path.join(binaries, "lib"), { recursive: true });
  for (const lib of ["libtomcrypt.so.1", "libtommath.so.1", "libgmp.so.10"])
    await fsp.copyFile(
      path.join(binaries, "usr/lib/x86_64-linux-gnu", lib),
      path.join(binaries, "lib/x86_64-linux-gnu", lib),
    );
  for (const lib of [
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libcrypt.so.1",
    "libz.so.1",
    "libtomcrypt.so.1",
    "libtommath.so.1",
    "libgmp.so.10",
  ])
    await fsp.copyFile(path.join(binaries, "lib/x86_64-linux-gnu", lib), path.join(binaries, "lib", lib));
  const script = path.join(work, "seed.sh");
  await fsp.writeFile(script, SHELL_PROCEDURE);
  const hash = "$6$benchsalt$" + "x".repeat(86);
  const shell = await series(
    RUNS,
    async () => {},
    () => timed("/bin/sh", [script, binaries, path.join(work, "shell"), hash]),
  );

  const c = summary(cold);
  const s = summary(shell);
  const z = summary(nodeZero);
  const w = summary(warm);
  const n = summary(noop);
  const rows = [
    `| warm build, fresh \`--out\` | ${fmtMs(w.ms)} | ${fmtMb(w.rss)} | ${(s.ms / w.ms).toFixed(2)}× faster than the shell procedure (target ≥ 3×) |`,
    `| no-op rebuild | ${fmtMs(n.ms)} | ${fmtMb(n.rss)} | ${(n.ms / z.ms).toFixed(2)}× \`node -e 0\` (target ≤ 1.5×) |`,
  ];
  const body = `## Build

\`npx node bench/build.ts\`: \`recipes/ssh.nifty\` (BusyBox with ${"269"} applet links, Dropbear and its
libraries, accounts, inittab; default formats: rootfs, nspawn, systemd, Docker, OCI layout,
docker-archive), its .debs served from a loopback mirror. Median of ${RUNS} runs (cold: ${cold.length});
each run is a child process, timed from spawn to exit; peak RSS from \`/usr/bin/time\`.

| Measure | Time | Peak RSS | Ratio |
| --- | --- | --- | --- |
| cold build (empty cache, downloads from loopback) | ${fmtMs(c.ms)} | ${fmtMb(c.rss)} | |
${rows.join("\n")}
| seed's shell procedure (\`cp\`, one \`ln -s\` per applet, file writes, \`tar cf\`) | ${fmtMs(s.ms)} | ${fmtMb(s.rss)} | |
| \`node -e 0\` | ${fmtMs(z.ms)} | ${fmtMb(z.rss)} | |

Measured with ${machine()}. A warm build computes the step keys and, every step recorded,
copies the outputs kept in the store by fingerprint without replaying a step into a tree; it
loads neither chevrotain nor undici, and the password's crypt is not made again while its file is
unchanged (the secret stamps beside out/). A no-op rebuild is answered from the stamp the previous
build left in the store (docs/cache.md, "Up-to-date stamps"): Node's start-up, ten small modules,
and a stat of each file the build read and wrote.`;
  await writeSection("build", body);
  process.stdout.write(body + "\n");
} finally {
  await mirror.close();
  await fsp.rm(work, { recursive: true, force: true });
}
