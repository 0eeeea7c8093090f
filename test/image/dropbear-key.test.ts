import test from "ava";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, waitForPort } from "../support/net.ts";
import {
  makeDropbearHostKey,
  refuseDss,
  type HostKeyOptions,
  type HostKeyType,
} from "../../src/image/dropbear-key.ts";

const run = promisify(execFile);

interface Case {
  name: string;
  type: HostKeyType;
  opts: HostKeyOptions;
  /** What the OpenSSH client is told to accept. */
  hostKeyAlgorithm: string;
  /** Expected size of the key file (ECDSA: ±1 for k's mpint; RSA: ±2, for the mpints of d, p and q, whose leading 0x00 comes and goes with their top bit). */
  size: number;
}

const SEED = Buffer.from("a build secret for host keys");

const CASES: Case[] = [];
for (const seed of [undefined, SEED]) {
  const tag = seed ? "seeded" : "random";
  CASES.push(
    { name: `ed25519 ${tag}`, type: "ed25519", opts: { seed }, hostKeyAlgorithm: "ssh-ed25519", size: 83 },
    {
      name: `ecdsa-256 ${tag}`,
      type: "ecdsa",
      opts: { seed, ecdsaBits: 256 },
      hostKeyAlgorithm: "ecdsa-sha2-nistp256",
      size: 140,
    },
    {
      name: `ecdsa-384 ${tag}`,
      type: "ecdsa",
      opts: { seed, ecdsaBits: 384 },
      hostKeyAlgorithm: "ecdsa-sha2-nistp384",
      size: 188,
    },
    {
      name: `ecdsa-521 ${tag}`,
      type: "ecdsa",
      opts: { seed, ecdsaBits: 521 },
      hostKeyAlgorithm: "ecdsa-sha2-nistp521",
      size: 242,
    },
    // OpenSSH 9 no longer accepts SHA-1 "ssh-rsa" signatures; the key type is still ssh-rsa.
    { name: `rsa-2048 ${tag}`, type: "rsa", opts: { seed }, hostKeyAlgorithm: "rsa-sha2-256", size: 805 },
  );
}

for (const c of CASES) {
  test.serial(
    `${c.name}: dropbearkey reads it, dropbear serves it, ssh verifies its signature`,
    async (t) => {
      // Every wait below is bounded; this bounds the test, so a stall fails it by name.
      t.timeout(120_000);
      const key = makeDropbearHostKey(c.type, c.opts);
      t.true(
        Math.abs(key.privateKey.length - c.size) <= (c.type === "ecdsa" ? 1 : c.type === "rsa" ? 2 : 0),
        `size ${key.privateKey.length}`,
      );
      t.regex(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);

      const dir = await mkdtemp(join(tmpdir(), "niftyc-hostkey-"));
      const keyFile = join(dir, "host_key");
      const knownHosts = join(dir, "known_hosts");
      await writeFile(keyFile, key.privateKey, { mode: 0o600 });
      let server: ReturnType<typeof spawn> | undefined;
      try {
        const { stdout } = await run("dropbearkey", ["-y", "-f", keyFile], {
          timeout: 30_000,
          killSignal: "SIGKILL",
        });
        const lines = stdout.split("\n");
        const pubLine = lines.find((l) => l.startsWith("ssh-") || l.startsWith("ecdsa-"));
        t.is(pubLine?.split(" ").slice(0, 2).join(" "), key.publicKey);
        t.true(lines.includes(`Fingerprint: ${key.fingerprint}`), stdout);

        const port = await freePort();
        server = spawn("dropbear", ["-F", "-E", "-s", "-p", `127.0.0.1:${port}`, "-r", keyFile], {
          stdio: ["ignore", "ignore", "pipe"],
        });
        let serverLog = "";
        server.stderr?.on("data", (d: Buffer) => (serverLog += d.toString()));
        const exited = new Promise<void>((resolve) => server?.once("exit", () => resolve()));
        await Promise.race([
          waitForPort(port, 10_000),
          exited.then(() => Promise.reject(new Error(`dropbear exited before listening: ${serverLog}`))),
        ]);

        const ssh = await run(
          "ssh",
          [
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            `HostKeyAlgorithms=${c.hostKeyAlgorithm}`,
            "-o",
            "PreferredAuthentications=none",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            `UserKnownHostsFile=${knownHosts}`,
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "HashKnownHosts=no",
            "-o",
            "ConnectTimeout=20",
            "-p",
            String(port),
            "nobody@127.0.0.1",
            "true",
          ],
          { timeout: 60_000, killSignal: "SIGKILL" },
        ).then(
          () => ({ ok: true, stderr: "" }),
          (e: { stderr?: string }) => ({ ok: false, stderr: String(e.stderr ?? e) }),
        );
        t.false(ssh.ok);
        t.regex(ssh.stderr, /Permission denied/, `${ssh.stderr}\n--- dropbear:\n${serverLog}`);
        const known = await readFile(knownHosts, "utf8");
        t.is(known.trim(), `[127.0.0.1]:${port} ${key.publicKey}`);

        server.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      } finally {
        if (server && server.exitCode === null && server.signalCode === null && server.pid !== undefined) {
          process.kill(server.pid, "SIGKILL");
        }
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
}

test("same seed gives the same key, a different seed or size another", (t) => {
  for (const [type, opts] of [
    ["ed25519", {}],
    ["ecdsa", { ecdsaBits: 256 }],
    ["ecdsa", { ecdsaBits: 521 }],
    ["rsa", {}],
  ] as Array<[HostKeyType, HostKeyOptions]>) {
    const a = makeDropbearHostKey(type, { ...opts, seed: Buffer.from("seed one") });
    const b = makeDropbearHostKey(type, { ...opts, seed: Buffer.from("seed one") });
    const c = makeDropbearHostKey(type, { ...opts, seed: Buffer.from("seed two") });
    t.deepEqual(a.privateKey, b.privateKey, type);
    t.is(a.publicKey, b.publicKey);
    t.is(a.fingerprint, b.fingerprint);
    t.notDeepEqual(a.privateKey, c.privateKey, type);
    t.not(a.fingerprint, c.fingerprint);
  }
  const r1 = makeDropbearHostKey("ed25519");
  const r2 = makeDropbearHostKey("ed25519");
  t.not(r1.fingerprint, r2.fingerprint);
  const e256 = makeDropbearHostKey("ecdsa", { seed: SEED, ecdsaBits: 256 });
  const e384 = makeDropbearHostKey("ecdsa", { seed: SEED, ecdsaBits: 384 });
  t.not(e256.fingerprint, e384.fingerprint);
  t.false(makeDropbearHostKey("ed25519", { seed: SEED }).privateKey.includes(SEED));
});

test("DSS and bad sizes are refused with a reason", (t) => {
  t.regex(refuseDss(), /DSS.*2024\.84.*ed25519/);
  t.throws(() => makeDropbearHostKey("dss" as HostKeyType), { message: /DSS/ });
  t.throws(() => makeDropbearHostKey("ecdsa", { ecdsaBits: 512 as 521 }), { message: /256, 384 or 521/ });
  t.throws(() => makeDropbearHostKey("rsa", { rsaBits: 512 }), { message: /1024/ });
  t.throws(() => makeDropbearHostKey("ed25519", { seed: Buffer.alloc(0) }), { message: /empty/ });
});
