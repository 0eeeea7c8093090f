// SERVICE against the real systemctl: the same unit files in a niftyc tree and
// in a scratch root, `SERVICE enable|mask` on one and `systemctl --root=DIR
// enable|mask` on the other, and the links must be the same.
import test from "ava";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  lstatSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Tree } from "../../src/image/tree.ts";
import { service, parseInstall, type ServiceInstruction } from "../../src/instructions/service.ts";
import type { BuildContext } from "../../src/instructions/context.ts";
import type { Diagnostic } from "../../src/diagnostics/diagnostic.ts";
import { StepError } from "../../src/instructions/context.ts";

const span = {
  start: { line: 1, column: 1, offset: 0 },
  end: { line: 1, column: 2, offset: 1 },
} as unknown as ServiceInstruction["span"];

const UNITS: Record<string, string> = {
  "/usr/lib/systemd/system/a.service":
    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nRequiredBy=b.target\nAlias=web.service\nAlso=helper.socket\n",
  "/usr/lib/systemd/system/helper.socket": "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\n",
  "/usr/lib/systemd/system/t@.service":
    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target getty.target\nDefaultInstance=one\n",
  "/usr/lib/systemd/system/static.service": "[Service]\nExecStart=/bin/true\n",
  "/usr/lib/systemd/system/reset.service":
    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=graphical.target\nWantedBy=\nWantedBy=multi-user.target \\\n  %p-extra.target\n",
  "/etc/systemd/system/local.service":
    "[Unit]\nDescription=local\n[Install]\n# a comment\nWantedBy=multi-user.target\n",
  "/usr/local/lib/systemd/system/site.service":
    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
};

/** A merged-/usr tree holding UNITS. */
function imageTree(): Tree {
  const tree = new Tree();
  for (const [link, target] of [
    ["/bin", "usr/bin"],
    ["/lib", "usr/lib"],
    ["/sbin", "usr/sbin"],
  ])
    tree.set(link!, { type: "symlink", mode: 0o777, uid: 0, gid: 0, target: target! });
  for (const [path, text] of Object.entries(UNITS)) {
    const bytes = Buffer.from(text);
    tree.set(tree.placement(path), {
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      content: {
        digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
        size: bytes.length,
        inline: bytes.toString("base64"),
      },
    });
  }
  return tree;
}

function context(tree: Tree): BuildContext {
  return {
    tree,
    async readText(path: string) {
      const found = tree.lookup(path);
      return found?.node.type === "file"
        ? Buffer.from(found.node.content.inline!, "base64").toString("utf8")
        : undefined;
    },
  } as unknown as BuildContext;
}

async function run(tree: Tree, verb: "enable" | "mask", units: string[]): Promise<void> {
  await service.apply!(
    { kind: "SERVICE", span, verb, units: units.map((name) => ({ name, span })) },
    context(tree),
  );
}

/** The symlinks under /etc/systemd/system, "path -> target". */
function treeLinks(tree: Tree): string[] {
  return tree.sortedPaths().flatMap((p) => {
    const node = tree.get(p)!;
    return p.startsWith("/etc/systemd/system/") && node.type === "symlink" ? [`${p} -> ${node.target}`] : [];
  });
}

function scratchRoot(t: { teardown: (f: () => void) => void }): string {
  const root = mkdtempSync(join(tmpdir(), "niftyc-systemctl-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "usr/lib"), { recursive: true });
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  symlinkSync("usr/lib", join(root, "lib"));
  symlinkSync("usr/bin", join(root, "bin"));
  for (const [path, text] of Object.entries(UNITS)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function rootLinks(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(root, dir))) {
      const path = `${dir}/${name}`;
      const stat = lstatSync(join(root, path));
      if (stat.isSymbolicLink()) out.push(`${path} -> ${readlinkSync(join(root, path))}`);
      else if (stat.isDirectory()) walk(path);
    }
  };
  walk("/etc/systemd/system");
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const haveSystemctl = spawnSync("systemctl", ["--version"]).status === 0;

/** The errors `niftyc check` gives for a recipe of these lines, each shown by `show`. */
async function checkErrors(
  lines: readonly string[],
  show: (d: Diagnostic) => string,
  path = "/tmp/units.nifty",
): Promise<string[]> {
  const { checkSource } = await import("../../src/check/source.ts");
  const text = `${lines.join("\n")}\n`;
  const result = await checkSource({ path, text }, { args: new Map(), strict: false });
  return result.diagnostics.filter((d) => d.severity === "error").map(show);
}

/** An error as line:column, code and message. */
const at = (d: Diagnostic) => `${d.span?.start.line}:${d.span?.start.column} ${d.code} ${d.message}`;

test("enable makes the links systemctl --root makes: WantedBy, RequiredBy, Alias, Also, templates, instances, resets and continuations", async (t) => {
  const units = [
    "a.service",
    "t@.service",
    "t@two.service",
    "local.service",
    "reset.service",
    "site.service",
  ];
  const tree = imageTree();
  await run(tree, "enable", units);
  const ours = treeLinks(tree);
  t.true(
    ours.includes("/etc/systemd/system/multi-user.target.wants/a.service -> /lib/systemd/system/a.service"),
  );
  t.true(
    ours.includes("/etc/systemd/system/getty.target.wants/t@one.service -> /lib/systemd/system/t@.service"),
  );
  t.true(
    ours.includes(
      "/etc/systemd/system/reset-extra.target.wants/reset.service -> /lib/systemd/system/reset.service",
    ),
  );
  t.true(
    ours.includes(
      "/etc/systemd/system/multi-user.target.wants/site.service -> /usr/local/lib/systemd/system/site.service",
    ),
    "/usr/local/lib/systemd/system is in systemctl's search path",
  );
  t.false(
    ours.some((l) => l.includes("graphical.target.wants/reset")),
    "an empty WantedBy= resets the list",
  );
  if (!haveSystemctl) {
    if (process.env.CI) t.fail("systemctl is not installed");
    else t.log("SKIPPED the comparison outside CI: systemctl is not installed");
    return;
  }
  const root = scratchRoot(t);
  const real = spawnSync("systemctl", [`--root=${root}`, "enable", ...units], { encoding: "utf8" });
  t.is(real.status, 0, real.stderr);
  t.deepEqual(ours, rootLinks(root));
});

test("enable follows an alias or a linked unit to its file, as systemctl --root does: that unit's name, instance kept, links to its path", async (t) => {
  const install =
    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=%p-al.service\n";
  const files: Record<string, string> = {
    "/opt/app/linked.service": install,
    "/usr/lib/systemd/system/real.service": install,
    "/usr/lib/systemd/system/tp@.service":
      "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
  };
  const links: Record<string, string> = {
    "/etc/systemd/system/linked.service": "/opt/app/linked.service",
    "/usr/lib/systemd/system/nick.service": "real.service",
    "/usr/lib/systemd/system/tq@.service": "tp@.service",
    "/usr/lib/systemd/system/gone.service": "/dev/null",
  };
  const units = ["linked.service", "nick.service", "tq@x.service"];
  const tree = new Tree();
  tree.set("/lib", { type: "symlink", mode: 0o777, uid: 0, gid: 0, target: "usr/lib" });
  for (const [path, text] of Object.entries(files))
    tree.set(tree.placement(path), {
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      content: { digest: "sha256:0", size: text.length, inline: Buffer.from(text).toString("base64") },
    });
  for (const [path, target] of Object.entries(links))
    tree.set(tree.placement(path), { type: "symlink", mode: 0o777, uid: 0, gid: 0, target });
  await run(tree, "enable", units);
  const ours = treeLinks(tree).filter((l) => !Object.keys(links).some((p) => l.startsWith(`${p} `)));
  t.deepEqual(ours, [
    "/etc/systemd/system/linked-al.service -> /opt/app/linked.service",
    "/etc/systemd/system/multi-user.target.wants/linked.service -> /opt/app/linked.service",
    "/etc/systemd/system/multi-user.target.wants/real.service -> /lib/systemd/system/real.service",
    "/etc/systemd/system/multi-user.target.wants/tp@x.service -> /lib/systemd/system/tp@.service",
    "/etc/systemd/system/real-al.service -> /lib/systemd/system/real.service",
  ]);
  const masked = await t.throwsAsync(run(tree, "enable", ["gone.service"]), { instanceOf: StepError });
  t.regex(masked?.message ?? "", /cannot enable gone\.service: it is masked/);
  if (!haveSystemctl) {
    if (process.env.CI) t.fail("systemctl is not installed");
    else t.log("SKIPPED the comparison outside CI: systemctl is not installed");
    return;
  }
  const root = mkdtempSync(join(tmpdir(), "niftyc-systemctl-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "usr/lib"), { recursive: true });
  symlinkSync("usr/lib", join(root, "lib"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  for (const [path, target] of Object.entries(links)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    symlinkSync(target, join(root, path));
  }
  const real = spawnSync("systemctl", [`--root=${root}`, "enable", ...units], { encoding: "utf8" });
  t.is(real.status, 0, real.stderr);
  t.deepEqual(
    ours,
    rootLinks(root).filter((l) => l !== "/etc/systemd/system/linked.service -> /opt/app/linked.service"),
  );
  t.not(spawnSync("systemctl", [`--root=${root}`, "enable", "gone.service"]).status, 0);
});

test("mask links to /dev/null as systemctl --root does", async (t) => {
  const tree = imageTree();
  await run(tree, "mask", ["helper.socket", "static.service"]);
  const ours = treeLinks(tree);
  t.deepEqual(ours, [
    "/etc/systemd/system/helper.socket -> /dev/null",
    "/etc/systemd/system/static.service -> /dev/null",
  ]);
  if (!haveSystemctl) return t.log("SKIPPED the comparison: no systemctl");
  const root = scratchRoot(t);
  const real = spawnSync("systemctl", [`--root=${root}`, "mask", "helper.socket", "static.service"], {
    encoding: "utf8",
  });
  t.is(real.status, 0, real.stderr);
  t.deepEqual(ours, rootLinks(root));
});

test("what systemctl would refuse or do nothing with is an error at the line: missing (with did-you-mean), masked, no [Install], a template without an instance, a unit file in the way of a mask", async (t) => {
  const fails = async (
    verb: "enable" | "mask",
    units: string[],
    message: RegExp,
    prepare?: (tree: Tree) => Promise<void>,
  ) => {
    const tree = imageTree();
    await prepare?.(tree);
    const error = await t.throwsAsync(run(tree, verb, units), { instanceOf: StepError });
    t.is(error?.code, "NIFTY229");
    t.regex(`${error?.message} / ${error?.hint ?? ""}`, message);
  };
  await fails(
    "enable",
    ["a.servce"],
    /cannot enable a\.servce: it is not in the image \/ did you mean a\.service\?/,
  );
  await fails("enable", ["static.service"], /static\.service has no \[Install\] section/);
  await fails("enable", ["a.service"], /it is masked/, (tree) => run(tree, "mask", ["a.service"]));
  await fails("mask", ["local.service"], /is a unit file, which the mask would replace/);
  const tree = imageTree();
  tree.set("/usr/lib/systemd/system/n@.service", {
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    content: {
      digest: "sha256:0",
      size: 0,
      inline: Buffer.from("[Install]\nWantedBy=multi-user.target\n").toString("base64"),
    },
  });
  const error = await t.throwsAsync(run(tree, "enable", ["n@.service"]));
  t.regex(error?.message ?? "", /a template without DefaultInstance=/);
  await run(tree, "enable", ["n@x.service"]);
  t.true(
    treeLinks(tree).includes(
      "/etc/systemd/system/multi-user.target.wants/n@x.service -> /lib/systemd/system/n@.service",
    ),
  );
});

test("parseInstall reads only [Install], with comments, continuations and resets", (t) => {
  t.deepEqual(
    parseInstall(
      "[Unit]\nWantedBy=no.target\n[Install]\n; c\nWantedBy=a.target b.target\nAlias=x.service\nAlias=\nAlso=y.socket \\\n z.socket\nDefaultInstance=i\n",
    ),
    {
      wantedBy: ["a.target", "b.target"],
      requiredBy: [],
      alias: [],
      also: ["y.socket", "z.socket"],
      defaultInstance: "i",
      sections: ["Unit", "Install"],
    },
  );
});

test("check refuses what enable would, where the recipe's FILE wrote the unit, and trusts what a whole PACKAGE may ship", async (t) => {
  const unit = (path: string, install: string) =>
    [`FILE ${path} <<'EOF'`, "[Service]", "ExecStart=/bin/true", install, "EOF"].join("\n");
  const packages = "ARCHIVE debian bookworm\nPACKAGE debian systemd";
  const problems = (...lines: string[]) => checkErrors(lines, at);
  const bare = "/etc/systemd/system/bare.service";
  t.deepEqual(await problems(unit(bare, ""), "SERVICE enable bare.service"), [
    `6:16 NIFTY229 cannot enable bare.service: ${bare} has no [Install] section with WantedBy=, RequiredBy=, Alias= or Also=: nothing would enable it`,
  ]);
  t.deepEqual(
    await problems(
      unit("/etc/systemd/system/t@.service", "[Install]\nWantedBy=multi-user.target"),
      "SERVICE enable t@.service t@one.service",
    ),
    ["7:16 NIFTY229 cannot enable t@.service: it is a template without DefaultInstance="],
  );
  t.deepEqual(
    await problems(
      unit("/etc/systemd/system/a.service", "[Install]\nAlso=b.service"),
      "SERVICE enable a.service",
    ),
    ["7:16 NIFTY229 cannot enable a.service: b.service (its Also=): it is not in the image"],
  );
  // A later FILE gives the unit its [Install]: the last writer is judged.
  t.deepEqual(
    await problems(
      unit(bare, ""),
      unit(bare, "[Install]\nWantedBy=multi-user.target"),
      "SERVICE enable bare.service",
    ),
    [],
  );
  // After a whole PACKAGE: a unit FILE wrote in /etc/systemd/system is still judged...
  t.deepEqual((await problems(packages, unit(bare, ""), "SERVICE enable bare.service")).length, 1);
  // ...but not one a package may replace (written before it) or shadow (in /lib, behind /etc).
  t.deepEqual(await problems(unit(bare, ""), packages, "SERVICE enable bare.service"), []);
  t.deepEqual(
    await problems(packages, unit("/lib/systemd/system/lib.service", ""), "SERVICE enable lib.service"),
    [],
  );
});

test("check refuses what mask would and what enable refuses after a mask, as the build does", async (t) => {
  const unit = (path: string) =>
    [
      `FILE ${path} <<'EOF'`,
      "[Service]",
      "ExecStart=/bin/true",
      "[Install]",
      "WantedBy=multi-user.target",
      "EOF",
    ].join("\n");
  const problems = (...lines: string[]) => checkErrors(lines, at);
  t.deepEqual(await problems(unit("/etc/systemd/system/a.service"), "SERVICE mask a.service"), [
    "7:14 NIFTY229 cannot mask a.service: /etc/systemd/system/a.service is a unit file, which the mask would replace",
  ]);
  t.deepEqual(
    await problems(
      unit("/lib/systemd/system/a.service"),
      "SERVICE mask a.service",
      "SERVICE enable a.service",
    ),
    ["8:16 NIFTY229 cannot enable a.service: it is masked (a link to /dev/null)"],
  );
  t.deepEqual(
    await problems(
      unit("/lib/systemd/system/t@.service"),
      "SERVICE mask t@.service",
      "SERVICE enable t@x.service",
    ),
    ["8:16 NIFTY229 cannot enable t@x.service: it is masked (a link to /dev/null)"],
  );
  t.deepEqual(await problems(unit("/lib/systemd/system/a.service"), "SERVICE mask a.service"), []);
});

test("parseInstall reads a unit with CRLF line ends as systemctl does, continuations included", (t) => {
  t.deepEqual(
    parseInstall(
      "[Service]\r\nExecStart=/bin/true\r\n[Install]\r\nWantedBy=a.target \\\r\n  b.target\r\nAlias=c.service\r\n",
    ),
    {
      wantedBy: ["a.target", "b.target"],
      requiredBy: [],
      alias: ["c.service"],
      also: [],
      sections: ["Service", "Install"],
    },
  );
});

test("check reads a COPY'd unit's [Install] from beside the recipe, a file or a directory's", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-units-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "units"));
  writeFileSync(join(dir, "units/bare.service"), "[Service]\nExecStart=/bin/true\n");
  writeFileSync(
    join(dir, "units/web.service"),
    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
  );
  const problems = (...lines: string[]) =>
    checkErrors(lines, (d) => `${d.span?.start.line} ${d.code}`, join(dir, "units.nifty"));
  t.deepEqual(await problems("COPY units/bare.service /etc/systemd/system/", "SERVICE enable bare.service"), [
    "2 NIFTY229",
  ]);
  t.deepEqual(await problems("COPY units /etc/systemd/system", "SERVICE enable web.service bare.service"), [
    "2 NIFTY229",
  ]);
  t.deepEqual(
    await problems("COPY units/web.service /etc/systemd/system/", "SERVICE enable web.service"),
    [],
  );
});

test("check never waits on a FIFO a copied directory holds where a unit would be: it refuses it, as the build does", async (t) => {
  const { checkSource } = await import("../../src/check/source.ts");
  const dir = mkdtempSync(join(tmpdir(), "niftyc-units-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "units"));
  t.is(spawnSync("mkfifo", [join(dir, "units/fifo.service"), join(dir, "fifo")]).status, 0);
  const errors = async (text: string) => {
    const result = await checkSource(
      { path: join(dir, "units.nifty"), text },
      { args: new Map(), strict: false },
    );
    return result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`);
  };
  t.deepEqual(await errors("COPY units /etc/systemd/system\nSERVICE enable fifo.service\n"), [
    "NIFTY203 COPY cannot copy units: fifo.service: not a file, directory or symbolic link",
    "NIFTY099 unit fifo.service is not in the image",
  ]);
  t.deepEqual(await errors("COPY fifo /etc/fifo\n"), [
    "NIFTY203 COPY cannot copy fifo: not a file, directory or symbolic link",
  ]);
  // Read only when it is a regular file: a FIFO behind a unit's name is never opened.
  const { hostText } = await import("../../src/check/check.ts");
  t.is(hostText(join(dir, "fifo")), undefined);
});

test("a unit named without its type, and an [Install] section misspelt: the hints say the name meant", async (t) => {
  const unit = (section: string) =>
    [
      "FILE /etc/systemd/system/web.service <<'EOF'",
      "[Service]",
      "ExecStart=/bin/true",
      section,
      "WantedBy=multi-user.target",
      "EOF",
    ].join("\n");
  const hints = (...lines: string[]) => checkErrors(lines, (d) => `${d.code} ${d.hint}`);
  t.deepEqual(await hints(unit("[Install]"), "SERVICE enable web"), [
    "NIFTY059 did you mean web.service? a unit name ends in its type: .service, .socket, .target, .timer, .path, .mount, .automount, .swap, .slice",
  ]);
  for (const misspelt of ["[Instal]", "[install]", "[Installl]"])
    t.deepEqual(await hints(unit(misspelt), "SERVICE enable web.service"), [
      `NIFTY229 its section ${misspelt} is not [Install], which systemd reads only spelt so: rename it [Install]`,
    ]);
  // No section near it: the usual hint.
  t.deepEqual(await hints(unit("[Unit]"), "SERVICE enable web.service"), [
    "NIFTY229 give it an [Install] section, or SYMLINK it into a target's .wants directory",
  ]);
});
