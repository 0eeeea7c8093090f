// The seed's other containers: a console login, telnetd and httpd, each
// booted with systemd-nspawn and spoken to with a real client.
import test from "ava";
import { spawnSync } from "node:child_process";
import { boot, buildRecipe, debianMirror, freePort, requireBoot, unpack, waitForPort } from "./harness.ts";

// Each on Debian 12 and on Debian 13 (merged /usr: the -trixie variants).
for (const variant of ["", "-trixie"]) {
  test.serial(
    `console${variant}.nifty: the console shows a login prompt, and root logs in there`,
    async (t) => {
      if (!requireBoot(t)) return;
      const mirror = await debianMirror(t);
      const built = await buildRecipe(t, `recipes/console${variant}.nifty`, mirror.url, {
        "root-password": "toor-secret",
      });
      const root = unpack(t, built.rootfs);
      const console = boot(t, {
        root,
        machine: `console${variant}`,
        settings: built.outputs.nspawn!,
        pty: true,
      });
      await console.waitFor(/console login: /, 30_000);
      console.type("root\n");
      await console.waitFor(/Password: /, 10_000);
      console.type("toor-secret\n");
      await console.waitFor(/~ # /, 10_000);
      console.type("echo LOGGED-IN-AS-$(id -u)\n");
      await console.waitFor(/LOGGED-IN-AS-0/, 10_000);
      console.type("poweroff\n");
      await console.waitFor(/Container console has been shut down|Requesting system poweroff/, 10_000);
      t.pass();
    },
  );

  test.serial(`telnet${variant}.nifty: telnetd answers with a login prompt`, async (t) => {
    if (!requireBoot(t)) return;
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, `recipes/telnet${variant}.nifty`, mirror.url, {
      "luser-password": "x",
    });
    const root = unpack(t, built.rootfs);
    const port = await freePort();
    const container = boot(t, {
      root,
      machine: `telnet${variant}`,
      settings: built.outputs.nspawn!,
      args: [`--setenv=PORT=${port}`],
    });
    await waitForPort(port, 30_000);
    // BusyBox nc as the client: it prints what the server sends before closing.
    const talk = spawnSync("sh", ["-c", `(sleep 2) | busybox nc 127.0.0.1 ${port}`], {
      encoding: "latin1",
      timeout: 15_000,
    });
    t.regex(talk.stdout, /telnet login: /);
    await container.stop("SIGTERM", 5_000);
  });

  test.serial(`httpd${variant}.nifty: httpd serves the page from the image`, async (t) => {
    if (!requireBoot(t)) return;
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, `recipes/httpd${variant}.nifty`, mirror.url, {});
    const root = unpack(t, built.rootfs);
    const port = await freePort();
    const container = boot(t, {
      root,
      machine: `httpd${variant}`,
      settings: built.outputs.nspawn!,
      args: [`--setenv=PORT=${port}`],
    });
    await waitForPort(port, 30_000);
    const page = spawnSync("curl", ["-sS", "--max-time", "10", `http://127.0.0.1:${port}/`], {
      encoding: "utf8",
    });
    t.is(page.status, 0, page.stderr);
    t.regex(page.stdout, /Served by BusyBox httpd from a niftyc image/);
    const stopped = await container.stop("SIGTERM", 5_000);
    t.is(stopped.code, 0);
  });
}

test.serial(
  "awk.nifty: gawk, taken from its package with only the libraries it loads, computes 2^100 with GMP at boot",
  async (t) => {
    if (!requireBoot(t)) return;
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, "recipes/awk.nifty", mirror.url, {});
    const listing = spawnSync("tar", ["-tf", built.rootfs], { encoding: "utf8" }).stdout.split("\n");
    t.true(listing.includes("usr/lib/x86_64-linux-gnu/libmpfr.so.6.2.0"), "gawk's MPFR came along");
    t.false(
      listing.some((p) => p.startsWith("usr/share/doc/") || p === "lib/x86_64-linux-gnu/libpthread.so.0"),
      "nothing gawk does not load",
    );
    const root = unpack(t, built.rootfs);
    const console = boot(t, { root, machine: "awk", settings: built.outputs.nspawn!, pty: true });
    await console.waitFor(/gawk 5\.[\d.]+: 2\^100 = 1267650600228229401496703205376/, 30_000);
    await console.waitFor(/awk login: /, 30_000);
    await console.stop("SIGTERM", 15_000);
    t.pass();
  },
);

test.serial(
  "awk-trixie.nifty: on Debian 13 (merged /usr), FILES finds gawk's loader and libraries through the image's links, and gawk computes 2^100 at boot",
  async (t) => {
    if (!requireBoot(t)) return;
    const mirror = await debianMirror(t);
    const built = await buildRecipe(t, "recipes/awk-trixie.nifty", mirror.url, {});
    t.true(
      mirror.requests.some((p) => p.includes("/gawk_") && p.includes("+b1_amd64.deb")),
      "trixie's gawk came from the loopback mirror",
    );
    const verbose = spawnSync("tar", ["-tvf", built.rootfs], { encoding: "utf8" }).stdout;
    // The loader gawk names, /lib64/ld-linux-x86-64.so.2, is there through /lib64 → usr/lib64 and libc6's link.
    t.regex(verbose, /^l.* lib64 -> usr\/lib64$/m);
    t.regex(
      verbose,
      /^l.* usr\/lib64\/ld-linux-x86-64\.so\.2 -> \.\.\/lib\/x86_64-linux-gnu\/ld-linux-x86-64\.so\.2$/m,
    );
    const listing = verbose.split("\n").map((l) => l.split(" ").find((w) => /^(usr|lib|bin)/.test(w)) ?? "");
    for (const lib of [
      "ld-linux-x86-64.so.2",
      "libc.so.6",
      "libmpfr.so.6",
      "libgmp.so.10",
      "libreadline.so.8",
    ]) {
      t.true(listing.includes(`usr/lib/x86_64-linux-gnu/${lib}`), lib);
    }
    t.false(
      listing.some((p) => p.startsWith("usr/share/doc/") || p === "usr/lib/x86_64-linux-gnu/libpthread.so.0"),
      "nothing gawk does not load",
    );
    const root = unpack(t, built.rootfs);
    const console = boot(t, { root, machine: "awk-trixie", settings: built.outputs.nspawn!, pty: true });
    await console.waitFor(/gawk 5\.[\d.]+: 2\^100 = 1267650600228229401496703205376/, 30_000);
    await console.waitFor(/awk login: /, 30_000);
    await console.stop("SIGTERM", 15_000);
    t.pass();
  },
);
