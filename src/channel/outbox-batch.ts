import type { OutboxRecord, ParleyStore } from '../store/types.js';

/**
 * Outbox writes made in the same turn of the event loop, handed to the store together. The
 * store groups writes queued in one tick into one transaction, but the SQLite driver is
 * synchronous: while a transaction commits nothing else runs, so outbox records whose
 * signatures completed one callback apart each paid for their own fsync (one fsync per sent
 * command capped a channel at a few hundred commands/s). Waiting one `setImmediate` lets
 * every signature that is ready join the same transaction.
 */
export function createOutboxBatcher(store: ParleyStore): (record: OutboxRecord) => Promise<void> {
  let outboxBatch: Array<{ record: OutboxRecord; done: (err?: unknown) => void }> = [];
  return (record) =>
    new Promise<void>((resolve, reject) => {
      outboxBatch.push({ record, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (outboxBatch.length > 1) return;
      setImmediate(() => {
        const batch = outboxBatch;
        outboxBatch = [];
        for (const { record: r, done } of batch) {
          store.enqueue(r).then(
            () => done(),
            (err: unknown) => done(err ?? new Error('enqueue failed')),
          );
        }
      });
    });
}
