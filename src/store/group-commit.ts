/**
 * Group commit: the store's single writer. Every write goes through this queue; concurrent
 * `commit()` calls (and `enqueue()` calls) are written together in one transaction, and each
 * caller resolves only once that transaction is durable.
 *
 * Why this shape. Of the ways to write a batch (Prisma interactive transactions, driver adapter
 * transactions; one statement per row or multi-row statements), multi-row statements through
 * the driver adapter wrote the most commits per second on both engines (the comparison is in
 * docs/benchmarks.md, "Measurements behind design choices"). So the hot path writes multi-row
 * statements (`commit-sql.ts`), one fsync per batch and a few statements per batch whatever its
 * size, through the engine's {@link BatchWriter}
 * (`hot-path.ts`): on SQLite a writer thread with its own connection and cached prepared
 * statements (`sqlite-writer.ts`, so that neither a batch nor a checkpoint blocks the event
 * loop), on PostgreSQL the pg driver adapter with named prepared statements. Reads through
 * PrismaClient or the hot reads use other connections and see a batch only once it committed.
 *
 * SQLite is bound by the database itself, not by this layer: each commit inserts at random
 * places of four indexes (docs/benchmarks.md).
 *
 * Other writes (peers, epochs, attempts) are rare; they use typed Prisma queries, run as
 * exclusive jobs of this queue so that no two writers ever wait on each other's lock inside one
 * process (a synchronous SQLite busy-wait would block the very event loop that must finish the
 * other transaction).
 *
 * Failure isolation: a group is first written as one transaction. If it fails because of its
 * content (a duplicate cid, a version consumed twice), nothing of it is stored and its calls are
 * replayed one by one, each in its own transaction, so only the offending call rejects. If it
 * fails because the database failed, every call of the group rejects with `STORE_UNAVAILABLE`.
 *
 * Fencing (several replicas of one VASP on one database, `lease-repository.ts`): with a
 * {@link WriteFence} set, every batch starts with the fence's statements for the channels it
 * writes, in the same transaction, so a replica that lost a channel's lease writes nothing more
 * of that channel: its calls reject with `STORE_LEASE_LOST`.
 */

import { ParleyError } from '../errors.js';
import { StoreConflict } from './batch-writer.js';
import { planCommits } from './commit-plan.js';
import { commitStatements, enqueueStatements, type WriteStatement } from './commit-sql.js';
import type { Dialect } from './dialect.js';
import type { BatchWriter } from './hot-path.js';
import type { CommitItem, OutboxRecord } from './types.js';

/** Group-commit knobs. */
export interface GroupCommitOptions {
  /**
   * Most commit items (or outbox records) written in one transaction. A single `commit()` call
   * with more items than this is still written whole, in a transaction of its own.
   * @default 256
   */
  maxBatch?: number;
  /**
   * Write a back-office event (`webhook_event`) for every committed command, in the same
   * transaction (docs/backoffice.md, "Events"). @default false
   */
  events?: boolean;
}

/** Default of {@link GroupCommitOptions.maxBatch}. */
export const DEFAULT_MAX_BATCH = 256;

/**
 * The effective {@link GroupCommitOptions.maxBatch}.
 * @throws ParleyError `CONFIG_INVALID` unless it is a positive integer.
 */
export function resolveMaxBatch(options: GroupCommitOptions = {}): number {
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) {
    throw new ParleyError(
      'CONFIG_INVALID',
      `groupCommit.maxBatch must be a positive integer, got ${maxBatch}`,
    );
  }
  return maxBatch;
}

/**
 * The statements that make a write of these channels fail unless this replica still owns them.
 * @throws ParleyError `STORE_LEASE_LOST` for a channel this replica does not hold.
 */
export type WriteFence = ((peers: ReadonlySet<string>) => WriteStatement[]) & {
  /** Told that the fence refused a write of `peers` (their lease is gone); returns the error its callers get. */
  refused?: (peers: ReadonlySet<string>, err: ParleyError) => ParleyError;
};

interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

type Job =
  | (Pending & { kind: 'commit'; items: readonly CommitItem[] })
  | (Pending & { kind: 'enqueue'; record: OutboxRecord })
  | (Pending & { kind: 'exclusive'; run: () => Promise<unknown> });

type CommitJob = Extract<Job, { kind: 'commit' }>;
type EnqueueJob = Extract<Job, { kind: 'enqueue' }>;

const jobSize = (job: Job): number => (job.kind === 'commit' ? job.items.length : 1);

/** The channels a commit or enqueue job writes. */
function peersOf(jobs: readonly Job[]): Set<string> {
  const peers = new Set<string>();
  for (const job of jobs) {
    if (job.kind === 'commit') for (const item of job.items) peers.add(item.command.peer);
    else if (job.kind === 'enqueue') peers.add(job.record.peer);
  }
  return peers;
}

/** Lets resolved callers queue their next writes before the next batch is cut. */
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Turns whatever a write threw into the `ParleyError` a caller receives. */
function toCallerError(err: unknown): ParleyError {
  if (err instanceof ParleyError) return err;
  if (err instanceof StoreConflict)
    return new ParleyError(err.code, err.message, { cause: err.cause ?? err });
  return new ParleyError('STORE_UNAVAILABLE', 'write failed', { cause: err });
}

/** The store's write queue; see the file comment. */
export class GroupCommitQueue {
  readonly #writer: BatchWriter;
  readonly #dialect: Dialect;
  readonly #maxBatch: number;
  readonly #events: boolean;
  #queue: Job[] = [];
  #draining = false;
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  #fence: WriteFence | undefined;

  constructor(writer: BatchWriter, dialect: Dialect, options: GroupCommitOptions = {}) {
    this.#writer = writer;
    this.#dialect = dialect;
    this.#maxBatch = resolveMaxBatch(options);
    this.#events = options.events === true;
  }

  /** Queues validated commit items; resolves once they are durable. */
  commit(items: readonly CommitItem[]): Promise<void> {
    return this.#push((p) => ({ ...p, kind: 'commit', items })) as Promise<void>;
  }

  /** Queues a validated outbox record; resolves once it is durable. */
  enqueue(record: OutboxRecord): Promise<void> {
    return this.#push((p) => ({ ...p, kind: 'enqueue', record })) as Promise<void>;
  }

  /** Runs `run` alone, between batches, with no other write in flight. */
  exclusive<T>(run: () => Promise<T>): Promise<T> {
    return this.#push((p) => ({ ...p, kind: 'exclusive', run })) as Promise<T>;
  }

  /** Fences every later batch (see the file comment); `undefined` removes the fence. */
  setFence(fence: WriteFence | undefined): void {
    this.#fence = fence;
  }

  /** The fence's statements for `peers` (none without a fence). @throws ParleyError `STORE_LEASE_LOST` */
  fenceFor(peers: ReadonlySet<string>): WriteStatement[] {
    return this.#fence === undefined || peers.size === 0 ? [] : this.#fence(peers);
  }

  /** The error a caller of a failed write of `peers` gets (a refusal of the fence is the fence's to word). */
  callerError(err: unknown, peers: ReadonlySet<string>): ParleyError {
    const e = toCallerError(err);
    const refused = this.#fence?.refused;
    return e.code === 'STORE_LEASE_LOST' && refused && peers.size > 0 ? refused(peers, e) : e;
  }

  /** Refuses new writes and resolves when every queued write has settled. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    if (!this.#draining && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #push(make: (p: Pending) => Job): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ParleyError('STORE_CLOSED', 'the store is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push(make({ resolve, reject }));
      if (!this.#draining) {
        this.#draining = true;
        // Start on a microtask so that writes issued in the same tick share the first batch.
        queueMicrotask(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        await this.#run(this.#takeBatch());
        await nextMacrotask();
      }
    } finally {
      this.#draining = false;
      for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  /** The longest run of same-kind jobs at the head of the queue that fits in one batch. */
  #takeBatch(): Job[] {
    const first = this.#queue[0]!;
    if (first.kind === 'exclusive') return this.#queue.splice(0, 1);
    let count = 1;
    let size = jobSize(first);
    while (count < this.#queue.length) {
      const next = this.#queue[count]!;
      if (next.kind !== first.kind || size + jobSize(next) > this.#maxBatch) break;
      size += jobSize(next);
      count += 1;
    }
    return this.#queue.splice(0, count);
  }

  async #run(batch: Job[]): Promise<void> {
    const first = batch[0]!;
    if (first.kind === 'exclusive') {
      try {
        first.resolve(await first.run());
      } catch (err) {
        first.reject(toCallerError(err));
      }
      return;
    }
    if (first.kind === 'commit') {
      const jobs = batch as CommitJob[];
      await this.#writeGroup(jobs, (group) => {
        const plan = planCommits(
          group.map((j) => j.items),
          { events: this.#events },
        );
        return plan && commitStatements(this.#dialect, plan, new Date());
      });
      return;
    }
    const jobs = batch as EnqueueJob[];
    await this.#writeGroup(jobs, (group) =>
      enqueueStatements(
        this.#dialect,
        group.map((j) => j.record),
      ),
    );
  }

  /**
   * Writes a group in one transaction; on a content conflict, writes its jobs one by one so each
   * gets its own verdict. `statements` returns undefined when the jobs cannot be folded together.
   */
  async #writeGroup<J extends CommitJob | EnqueueJob>(
    jobs: J[],
    statements: (group: J[]) => WriteStatement[] | undefined,
  ): Promise<void> {
    // Without a fence (one node per database) nothing is added, nor are the batch's peers listed.
    const fenced = (group: J[]): WriteStatement[] | undefined => {
      const body = statements(group);
      return body && this.#fence ? [...this.fenceFor(peersOf(group)), ...body] : body;
    };
    let together: WriteStatement[] | undefined;
    try {
      together = fenced(jobs);
    } catch {
      together = undefined; // a channel this replica does not hold: each job gets its verdict below
    }
    if (together !== undefined) {
      try {
        await this.#writer.write(together);
        for (const job of jobs) job.resolve(undefined);
        return;
      } catch (err) {
        if (!(err instanceof StoreConflict) || jobs.length === 1) {
          for (const job of jobs) job.reject(this.callerError(err, peersOf([job])));
          return;
        }
      }
    }
    for (const job of jobs) {
      try {
        const alone = fenced([job]);
        if (alone === undefined) throw new ParleyError('STORE_VERSION_CONFLICT', 'the items do not chain');
        await this.#writer.write(alone);
        job.resolve(undefined);
      } catch (err) {
        job.reject(this.callerError(err, peersOf([job])));
      }
    }
  }
}
