/**
 * Runs async tasks one at a time, in submission order. The channel's decisions (locks,
 * versions, dedup) go through one of these so that they see each other's effects; work that
 * needs no ordering (signature checks, durable commits) stays outside it.
 */
export interface SerialQueue {
  run<T>(task: () => Promise<T> | T): Promise<T>;
  /** Number of tasks waiting or running. */
  readonly size: number;
}

export function createSerialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve();
  let size = 0;
  return {
    run<T>(task: () => Promise<T> | T): Promise<T> {
      size++;
      const result = tail.then(task);
      // The chain continues whether the task failed or not; the caller sees the failure.
      tail = result.then(
        () => {
          size--;
        },
        () => {
          size--;
        },
      );
      return result;
    },
    get size() {
      return size;
    },
  };
}

/** Runs async tasks with at most `limit` of them in flight; the rest wait in submission order. */
export interface Limiter {
  run<T>(task: () => Promise<T>): Promise<T>;
}

export function createLimiter(limit: number): Limiter {
  let active = 0;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      else active++;
      try {
        return await task();
      } finally {
        // Hand the slot straight to the next waiter (`active` stays the same).
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
}
