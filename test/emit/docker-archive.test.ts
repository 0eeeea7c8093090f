// docker-archive as podman loads it, and the Dockerfile as podman builds it.
import test from "ava";
import { copyFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeDockerArchive } from "../../src/emit/docker-archive.ts";
import { renderDockerfile } from "../../src/emit/docker.ts";
import { fixtureConfig, makeFixture, type Fixture } from "./fixture.ts";
import { hashFiles, run, tempDir } from "./helpers.ts";

let work: { path: string; remove: () => Promise<void> };
let fixture: Fixture;
const tag = `niftyc-emit-test-${process.pid}`;

test.before(async () => {
  work = await tempDir("archive");
  fixture = await makeFixture(work.path);
});

test.after.always(async () => {
  await work?.remove();
});

interface Inspected {
  Id: string;
  Config: {
    Env: string[];
    StopSignal: string;
    ExposedPorts: Record<string, object>;
    Cmd: string[];
    Labels: Record<string, string>;
  };
  RootFS: { Layers: string[] };
}

async function inspect(ref: string): Promise<Inspected> {
  const result = await run("podman", ["image", "inspect", ref], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(result.stderr);
  const [image] = JSON.parse(result.stdout) as Inspected[];
  if (image === undefined) throw new Error("no image");
  return image;
}

test.serial("podman load takes the archive and shows the config as given", async (t) => {
  const file = join(work.path, "image.tar");
  const config = fixtureConfig({ stopSignal: { name: "SIGRTMIN+3", number: 37, source: "recipe" } });
  const { configDigest } = await writeDockerArchive(file, {
    config,
    layers: fixture.layers,
    repoTag: `${tag}:load`,
  });
  const ref = `localhost/${tag}:load`;
  try {
    const load = await run("podman", ["load", "-i", file], { timeoutMs: 120_000 });
    t.is(load.code, 0, load.stderr);
    t.regex(load.stdout, new RegExp(`Loaded image: ${ref}`));
    const image = await inspect(ref);
    t.is(`sha256:${image.Id}`, configDigest);
    t.deepEqual(image.Config.Env, ["GREETING=hello world", "PORT=2200"]);
    t.is(image.Config.StopSignal, "SIGRTMIN+3");
    t.deepEqual(image.Config.ExposedPorts, { "22/tcp": {} });
    t.deepEqual(image.Config.Cmd, ["/sbin/init"]);
    t.deepEqual(image.Config.Labels, {
      maintainer: "niftyc tests",
      "org.opencontainers.image.title": "nifty",
    });
    t.deepEqual(
      image.RootFS.Layers,
      fixture.layers.map((l) => l.digest),
    );
  } finally {
    await run("podman", ["rmi", "-f", ref], { timeoutMs: 60_000 });
  }
});

test.serial(
  "the archive is byte-identical for the same input, sorted, owned by 0, dated at created",
  async (t) => {
    const a = join(work.path, "a.tar");
    const b = join(work.path, "b.tar");
    await writeDockerArchive(a, { config: fixtureConfig(), layers: fixture.layers, repoTag: "nifty:latest" });
    await writeDockerArchive(b, { config: fixtureConfig(), layers: fixture.layers, repoTag: "nifty:latest" });
    const hashes = await hashFiles(work.path);
    t.is(hashes["a.tar"], hashes["b.tar"]);
    const list = await run("tar", ["--numeric-owner", "--full-time", "-tvf", a]);
    t.is(list.code, 0);
    const lines = list.stdout.trim().split("\n");
    const names = lines.map((l) => l.split(/\s+/).at(-1) as string);
    t.deepEqual(names, [...names].sort());
    t.true(names.includes("manifest.json") && names.includes("repositories"));
    t.is(names.filter((n) => n.endsWith("/layer.tar")).length, 2);
    for (const line of lines) {
      t.regex(line, /^\S+ 0\/0 +\d+ 2023-11-14 22:13:20 /);
    }
    t.deepEqual(
      (await readdir(work.path)).filter((n) => n.includes("staging")),
      [],
    );
    await t.throwsAsync(
      writeDockerArchive(join(work.path, "c.tar"), {
        config: fixtureConfig(),
        layers: fixture.layers,
        repoTag: "notag",
      }),
      { code: "NIFTY504" },
    );
  },
);

test.serial("podman builds the Dockerfile next to rootfs.tar into the same config", async (t) => {
  const ctx = join(work.path, "context");
  await run("mkdir", ["-p", ctx]);
  const config = fixtureConfig({
    env: [
      ["GREETING", `it's "quoted" \\ 100% $HOME`],
      ["PORT", "2200"],
    ],
  });
  await writeFile(join(ctx, "Dockerfile"), renderDockerfile(config));
  await copyFile(fixture.rootfsTar, join(ctx, "rootfs.tar"));
  const ref = `localhost/${tag}:build`;
  try {
    const build = await run("podman", ["build", "-q", "-t", ref, ctx], { timeoutMs: 180_000 });
    t.is(build.code, 0, build.stderr);
    const image = await inspect(ref);
    // Builders add a default PATH to FROM scratch images; the recipe's values must survive quoting.
    t.deepEqual(
      image.Config.Env.filter((e) => !e.startsWith("PATH=")),
      [`GREETING=it's "quoted" \\ 100% $HOME`, "PORT=2200"],
    );
    t.is(image.Config.StopSignal, "SIGUSR2");
    t.deepEqual(image.Config.ExposedPorts, { "22/tcp": {} });
    t.deepEqual(image.Config.Cmd, ["/sbin/init"]);
    t.like(image.Config.Labels, { maintainer: "niftyc tests", "org.opencontainers.image.title": "nifty" }); // plus buildah's own
  } finally {
    await run("podman", ["rmi", "-f", ref], { timeoutMs: 60_000 });
  }
});

test.serial(
  "--format docker alone writes rootfs.tar too, and the Dockerfile's tag is the one docker-run.sh runs",
  async (t) => {
    const dir = join(work.path, "docker-only");
    await run("mkdir", ["-p", dir]);
    await writeFile(join(dir, "box.nifty"), "FILE /etc/os-release <<EOF\nID=box\nEOF\n");
    const niftyc = join(import.meta.dirname, "../../bin/niftyc");
    const built = await run(process.execPath, [
      niftyc,
      "build",
      join(dir, "box.nifty"),
      "--format",
      "docker",
      "--cache",
      join(dir, "c"),
      "--out",
      join(dir, "out"),
    ]);
    t.is(built.code, 0, built.stderr);
    t.regex(built.stderr, /the docker format's Dockerfile adds rootfs\.tar: it is written too/);
    const out = join(dir, "out");
    t.deepEqual((await readdir(out)).sort(), ["Dockerfile", "build.json", "docker-run.sh", "rootfs.tar"]);
    const { readFile } = await import("node:fs/promises");
    const buildTag = /docker build -t (\S+) \./.exec(await readFile(join(out, "Dockerfile"), "utf8"))?.[1];
    const runRef = /"\$@" (\S+)\s*$/.exec(await readFile(join(out, "docker-run.sh"), "utf8"))?.[1];
    t.truthy(buildTag);
    t.is(buildTag, runRef);
    try {
      const podman = await run("podman", ["build", "-q", "-t", buildTag!, out], { timeoutMs: 180_000 });
      t.is(podman.code, 0, podman.stderr);
      t.is(
        (await run("podman", ["image", "exists", runRef!])).code,
        0,
        "docker-run.sh's image is the one built",
      );
    } finally {
      await run("podman", ["rmi", "-f", buildTag!], { timeoutMs: 60_000 });
    }
  },
);
