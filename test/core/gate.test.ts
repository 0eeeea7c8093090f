import test from "ava";
import { Gate, largestFirst } from "../../src/core/gate.ts";

test("a gate runs at most its size at once, the rest in the order they asked", async (t) => {
  const gate = new Gate(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const releases: Array<() => void> = [];
  const tasks = [0, 1, 2, 3, 4].map((i) =>
    gate.run(async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => releases.push(resolve));
      running--;
      return i * 10;
    }),
  );
  for (let done = 0; done < 5; done++) {
    while (releases.length === 0) await new Promise((r) => setImmediate(r));
    releases.shift()!();
  }
  t.deepEqual(await Promise.all(tasks), [0, 10, 20, 30, 40]);
  t.is(most, 2);
  t.deepEqual(started, [0, 1, 2, 3, 4]);
});

test("a failing task frees its place", async (t) => {
  const gate = new Gate(1);
  await t.throwsAsync(
    gate.run(() => Promise.reject(new Error("no"))),
    { message: "no" },
  );
  t.is(await gate.run(() => Promise.resolve(7)), 7);
  t.throws(() => new Gate(0), { instanceOf: RangeError });
});

test("largestFirst starts the largest items first, ties in their order, and gives each result at its item's place", async (t) => {
  const started: string[] = [];
  const items = [
    { name: "a", size: 1 },
    { name: "b", size: 30 },
    { name: "c", size: 5 },
    { name: "d", size: 30 },
  ];
  const results = largestFirst(
    items,
    (i) => i.size,
    async (i) => {
      started.push(i.name);
      return i.name.toUpperCase();
    },
  );
  t.deepEqual(started, ["b", "d", "c", "a"]);
  t.deepEqual(await Promise.all(results), ["A", "B", "C", "D"]);
});
