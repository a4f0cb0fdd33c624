import { ParleyError } from '../errors.js';
import type { CommitItem, ParleyStore } from '../store/types.js';
import { observed, settled } from '../util/background.js';

/**
 * Hands a channel's decided commands to the store in decision order, as group commits: while
 * one transaction is running, later decisions accumulate and go together in the next one.
 *
 * Order matters: a command may read the version written by the command decided just before
 * it, so the two must never be stored out of order. One transaction at a time per channel
 * guarantees that; the store may still group transactions of several channels.
 *
 * A failed transaction fails every later entry too (they were decided on top of it), and the
 * channel is told through `onFailure` so it can drop its in-memory state and reload.
 */
export interface CommitPipe {
  /**
   * Queue an entry, in decision order. `item` may still be pending (e.g. a signature being
   * made); the returned promise resolves when the entry is durable.
   */
  push(item: Promise<CommitItem>): Promise<void>;
  /** Entries queued or being committed. */
  readonly depth: number;
  /** Resolves when everything queued so far is settled (durable or failed); never rejects. */
  drain(): Promise<void>;
}

interface Entry {
  item: Promise<CommitItem>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface CommitPipeOptions {
  /** @default 512 */
  maxBatch?: number;
}

export function createCommitPipe(
  store: ParleyStore,
  onFailure: (err: unknown) => void,
  options: CommitPipeOptions = {},
): CommitPipe {
  const maxBatch = options.maxBatch ?? 512;
  const queue: Entry[] = [];
  let running = false;
  let last: Promise<void> = Promise.resolve();

  function failAll(err: unknown): void {
    const failed = queue.splice(0, queue.length);
    for (const entry of failed) entry.reject(err);
  }

  async function loop(): Promise<void> {
    running = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, maxBatch);
        let items: CommitItem[];
        try {
          items = await Promise.all(batch.map((e) => e.item));
        } catch (err) {
          // An entry could not even be prepared: nothing of this batch or later is stored.
          for (const entry of batch) entry.reject(err);
          failAll(err);
          onFailure(err);
          continue;
        }
        try {
          await store.commit(items);
          for (const entry of batch) entry.resolve();
        } catch (cause) {
          const err =
            cause instanceof ParleyError
              ? cause
              : new ParleyError('STORE_UNAVAILABLE', 'commit failed', { cause });
          for (const entry of batch) entry.reject(err);
          failAll(err);
          onFailure(err);
        }
      }
    } finally {
      running = false;
    }
  }

  return {
    push(item) {
      const done = new Promise<void>((resolve, reject) => {
        // A rejected item must not surface as an unhandled rejection before the loop reads it.
        observed(item);
        queue.push({ item, resolve, reject });
        if (!running) void loop();
      });
      last = settled(done);
      return done;
    },
    get depth() {
      return queue.length + (running ? 1 : 0);
    },
    drain() {
      return last;
    },
  };
}
