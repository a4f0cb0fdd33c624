/**
 * Long loops over a store's objects (the business driver's recovery, the open-objects digest)
 * share the event loop with every channel. SQLite reads on this thread answer at once, so a loop
 * that only awaits them never lets timers and sockets run: over a large store, recovery held
 * heartbeats back long enough for both sides to call the channel down and drop it
 * (docs/benchmarks.md, "Measurements behind design choices"). Such a loop awaits `pause()` at
 * each step: once `budgetMs` of work has run since the last pause, it waits for the next
 * macrotask (timers and I/O run first); otherwise it returns at once.
 */
export function createSlicer(
  budgetMs = 10,
  now: () => number = () => performance.now(),
): () => Promise<void> {
  let sliceStart = now();
  return async () => {
    if (now() - sliceStart < budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStart = now();
  };
}
