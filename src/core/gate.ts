// At most N of something at once (downloads, .deb reads), the rest waiting in
// the order they asked. Only when work runs is bounded: what it produces is
// still collected and applied by the caller in its own order.

/** A counting semaphore: `run(task)` starts `task` once fewer than `size` others run. */
export class Gate {
  readonly #size: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`a gate needs a size of 1 or more: ${size}`);
    this.#size = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#size) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes to the next waiter as it is: the count stays.
      if (next === undefined) this.#running--;
      else next();
    }
  }
}

/**
 * `start` every item, the largest first (a large one takes longest: begun last, it would end
 * alone while the rest of the gate stands idle), its result at the item's own place in the order.
 */
export function largestFirst<T, R>(
  items: readonly T[],
  size: (item: T) => number,
  start: (item: T) => Promise<R>,
): Array<Promise<R>> {
  const order = [...items.keys()].sort((a, b) => size(items[b]!) - size(items[a]!) || a - b);
  const started: Array<Promise<R>> = [];
  for (const i of order) started[i] = start(items[i]!);
  return started;
}
