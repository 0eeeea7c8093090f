// How fast the front end parses a large recipe. Run: npx node bench/parse.ts
// Writes its figures into the "Front end" section of docs/performance.md.
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { median, writeSection } from "./util.ts";

const LINES = 10_000;
const RUNS = 15;

/** A realistic mix: fetches, files with heredocs, users, continued lines, comments. */
function recipe(lines: number): string {
  const out: string[] = [];
  let i = 0;
  while (out.length < lines) {
    i++;
    switch (i % 8) {
      case 0:
        out.push(`# step ${i}: fetch a static binary`);
        out.push(
          `FETCH tool${i} https://mirror.example.test/pool/tool-${i}.tar.gz sha256:${"0123456789abcdef".repeat(4)} EXTRACT bin/tool TO /bin/tool${i}`,
        );
        break;
      case 1:
        out.push(
          `FILE /etc/motd.d/${i} MODE 0644 <<EOF`,
          `Welcome to \${HOSTNAME:-nifty} number ${i}`,
          "served by $USER",
          "EOF",
        );
        break;
      case 2:
        out.push(
          `USER user${i} UID ${1000 + i} GID ${1000 + i} \\`,
          `    HOME /home/user${i} SHELL /bin/sh GROUPS wheel,users`,
        );
        break;
      case 3:
        out.push(`DIR /var/lib/app${i} MODE 0750 OWNER user${i}:user${i}`);
        break;
      case 4:
        out.push(`ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG="C.UTF-8" GREETING='hello $world'`);
        break;
      case 5:
        out.push(`SYMLINK /bin/busybox /bin/applet${i}`, "");
        break;
      case 6:
        out.push(`LABEL org.example.step="${i}" org.example.note="quoted \\"text\\" with \${VERSION}"`);
        break;
      default:
        out.push(
          `FILE /etc/inittab <<-'END'`,
          "\t::sysinit:/etc/init.d/rcS",
          "\t::respawn:/sbin/getty 38400 tty1",
          "\tEND",
        );
    }
  }
  return `${out.slice(0, lines).join("\n")}\n`;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

const text = recipe(LINES);
const source = { path: "bench.nifty", text };

const coldStart = performance.now();
const { parseNiftyfile } = await import("../grammar/parse.ts");
const first = parseNiftyfile(source);
const cold = performance.now() - coldStart;
if (first.diagnostics.length > 0)
  throw new Error(`the bench recipe has diagnostics: ${first.diagnostics[0]!.message}`);

for (let i = 0; i < 3; i++) parseNiftyfile(source);
const times: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  parseNiftyfile(source);
  times.push(performance.now() - t0);
}
const warm = median(times);

const section = `## Front end

\`npx node bench/parse.ts\`: \`parseNiftyfile\` on a generated recipe of ${LINES.toLocaleString("en")} lines
(${(text.length / 1024).toFixed(0)} KiB, ${first.tree.instructions.length.toLocaleString("en")} instructions: fetches, heredocs,
continued lines, quotes, variables, comments).

| Measure | Time |
| --- | --- |
| cold: first run, including loading chevrotain and building the parser | ${ms(cold)} |
| warm: median of ${RUNS} runs after 3 warm-up runs | ${ms(warm)} |
| warm: fastest run | ${ms(Math.min(...times))} |
| warm: throughput | ${Math.round(LINES / (warm / 1000)).toLocaleString("en")} lines/s |

Measured with Node ${process.versions.node} on ${cpus()[0]?.model.trim() ?? "an unknown CPU"}. Target: well under a second.`;

await writeSection("parse", section);
console.log(section);
