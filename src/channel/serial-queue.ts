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
