// Milliseconds on a monotonic clock, for the times of stages and steps (what
// --json reports; never part of an artifact). Not performance.now(): the
// performance global loads perf_hooks, about 2 ms of every start.
export function clockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
