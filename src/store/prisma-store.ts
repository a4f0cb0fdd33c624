/**
 * `ParleyStore` over Prisma: typed queries for reads and rare writes, the group-commit queue
 * (raw multi-row SQL through the driver adapter) for commits and the outbox.
 */
import { ParleyError } from '../errors.js';
import type { StoreClient } from './client.js';
import { validateCommit, validateOutboxRecord } from './commit-plan.js';
import type { WriteStatement } from './commit-sql.js';
import type { Dialect } from './dialect.js';
import { type GroupCommitOptions, GroupCommitQueue, type WriteFence } from './group-commit.js';
import type { HotReads } from './hot-path.js';
import { checkIntegrity } from './integrity.js';
import type { StoreConnections } from './store-backend.js';
import type {
  CommandRecord,
  CommitItem,
  ObjectHead,
  OutboxRecord,
  ParleyStore,
  PeerRecord,
  StoredVersion,
  StoreEngine,
  StoreIdentity,
  WriteProbe,
} from './types.js';

function requireText(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ParleyError('STORE_INVALID_INPUT', `${name} must be a non-empty string`);
  }
}

/**
 * What the other repositories of `src/store` (e.g. `sync-repository.ts`) use of a store: not
 * part of `ParleyStore`, and never used outside `src/store`.
 */
export interface StoreInternals {
  readonly prisma: StoreClient;
  readonly dialect: Dialect;
  /** The hot path's reads (cached prepared statements); wrap calls in `read`. */
  readonly hot: HotReads;
  /** A tracked read (closing the store waits for it; driver errors become `STORE_UNAVAILABLE`). */
  read<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs `fn` as the store's only writer (between group commits). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Writes `statements` in one transaction on the writer connection; call inside `exclusive`.
   * With `peers`, the write fence's statements for those channels go first (see `setFence`).
   */
  writeBatch(statements: readonly WriteStatement[], peers?: ReadonlySet<string>): Promise<void>;
  /** Fences every later write of a channel (`group-commit.ts`); `undefined` removes the fence. */
  setFence(fence: WriteFence | undefined): void;
}

/** The store implementation `openStore` returns. */
export class PrismaStore implements ParleyStore {
  readonly engine: StoreEngine;
  readonly #prisma: StoreClient;
  readonly #connections: StoreConnections;
  readonly #dialect: Dialect;
  readonly #identity: StoreIdentity;
  readonly #queue: GroupCommitQueue;
  readonly #hot: HotReads;
  readonly #reads = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(
    connections: StoreConnections,
    dialect: Dialect,
    identity: StoreIdentity,
    groupCommit: GroupCommitOptions = {},
  ) {
    this.engine = dialect.engine;
    this.#connections = connections;
    this.#prisma = connections.prisma;
    this.#dialect = dialect;
    this.#identity = { ...identity };
    this.#hot = connections.hot;
    this.#queue = new GroupCommitQueue(connections.hot, dialect, groupCommit);
  }

  async identity(): Promise<StoreIdentity> {
    this.#assertOpen();
    return { ...this.#identity };
  }

  async upsertPeer(peer: { address: string; publicKeyHex: string }): Promise<void> {
    requireText('address', peer?.address);
    requireText('publicKeyHex', peer.publicKeyHex);
    await this.#queue.exclusive(async () => {
      const now = new Date();
      await this.#prisma.peer.upsert({
        where: { address: peer.address },
        create: { address: peer.address, publicKeyHex: peer.publicKeyHex, updatedAt: now },
        update: { publicKeyHex: peer.publicKeyHex, updatedAt: now },
      });
    });
  }

  getPeer(address: string): Promise<PeerRecord | undefined> {
    return this.#read(async () => {
      const row = await this.#prisma.peer.findUnique({ where: { address } });
      return row
        ? {
            address: row.address,
            publicKeyHex: row.publicKeyHex,
            epoch: row.epoch,
            updatedAtMs: row.updatedAt.getTime(),
          }
        : undefined;
    });
  }

  /** @throws ParleyError `STORE_INVALID_INPUT` when the peer is unknown. */
  async setPeerEpoch(address: string, epoch: string): Promise<void> {
    requireText('address', address);
    requireText('epoch', epoch);
    await this.#queue.exclusive(async () => {
      const { count } = await this.#prisma.peer.updateMany({
        where: { address },
        data: { epoch, updatedAt: new Date() },
      });
      if (count === 0) throw new ParleyError('STORE_INVALID_INPUT', `unknown peer ${address}`);
    });
  }

  /**
   * @throws ParleyError `STORE_INVALID_INPUT` (malformed items), `STORE_DUPLICATE_COMMAND` (a
   * `(peer, cid)` already logged or twice in the call), `STORE_VERSION_CONFLICT` (a version that
   * exists, a read that is not the head, a version consumed twice), `STORE_UNAVAILABLE`,
   * `STORE_CLOSED`. On any rejection nothing of the call is stored.
   */
  commit(items: readonly CommitItem[]): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const bad = validateCommit(items);
    if (bad) return Promise.reject(bad);
    if (items.length === 0) return Promise.resolve();
    return this.#queue.commit(items);
  }

  findCommand(peer: string, cid: string): Promise<CommandRecord | undefined> {
    return this.#read(() => this.#hot.findCommand(peer, cid));
  }

  history(peer: string, referenceId: string): Promise<CommandRecord[]> {
    return this.#read(async () => (await this.#hot.histories(peer, [referenceId])).get(referenceId) ?? []);
  }

  versions(peer: string, referenceId: string): Promise<StoredVersion[]> {
    return this.#read(() => this.#hot.versions(peer, referenceId));
  }

  head(peer: string, referenceId: string): Promise<ObjectHead | undefined> {
    return this.#read(() => this.#hot.head(peer, referenceId));
  }

  /** Ordered by the bytes of `referenceId` on both engines, so peers on different engines agree. */
  openObjects(peer: string, after: string | null, limit: number): Promise<ObjectHead[]> {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      return Promise.reject(
        new ParleyError('STORE_INVALID_INPUT', `limit must be an integer >= 0, got ${limit}`),
      );
    }
    if (limit === 0) return this.#read(async () => []);
    return this.#read(async () => {
      const d = this.#dialect;
      const args: unknown[] = [peer, true];
      let where = `peer = ${d.param(1)} AND open = ${d.param(2)}`;
      if (after !== null) {
        args.push(after);
        where += ` AND ${d.bytewise('reference_id')} > ${d.param(args.length)}`;
      }
      args.push(limit);
      const rows = await this.#prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(
        'SELECT peer, reference_id, head_version, open, version_count FROM object_head ' +
          `WHERE ${where} ORDER BY ${d.bytewise('reference_id')} LIMIT ${d.param(args.length)}`,
        ...args,
      );
      return rows.map((r) => ({
        peer: String(r['peer']),
        referenceId: String(r['reference_id']),
        headVersion: String(r['head_version']),
        open: r['open'] === true || r['open'] === 1 || r['open'] === 1n,
        versionCount: Number(r['version_count']),
      }));
    });
  }

  countOpenObjects(peer: string): Promise<number> {
    return this.#read(() => this.#prisma.objectHead.count({ where: { peer, open: true } }));
  }

  /**
   * @throws ParleyError `STORE_INVALID_INPUT`, `STORE_DUPLICATE_COMMAND` (already queued, or
   * already final in the signed log), `STORE_UNAVAILABLE`, `STORE_CLOSED`.
   */
  enqueue(record: OutboxRecord): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const bad = validateOutboxRecord(record);
    if (bad) return Promise.reject(bad);
    return this.#queue.enqueue({ ...record });
  }

  outbox(peer: string): Promise<OutboxRecord[]> {
    return this.#read(async () => {
      const rows = await this.#prisma.outbox.findMany({
        where: { peer },
        orderBy: [{ createdAt: 'asc' }, { cid: 'asc' }],
      });
      return rows.map(outboxRecordOf);
    });
  }

  /** A no-op when the entry is gone (settled meanwhile). */
  markAttempt(peer: string, cid: string): Promise<void> {
    return this.#queue.exclusive(async () => {
      await this.#prisma.outbox.updateMany({ where: { peer, cid }, data: { attempts: { increment: 1 } } });
    });
  }

  probeWritable(): Promise<WriteProbe> {
    if (this.#closed)
      return Promise.resolve({ writable: false, code: 'STORE_CLOSED', message: 'the store is closed' });
    return this.#connections.probeWritable();
  }

  checkIntegrity(): Promise<string[]> {
    return this.#read(() => checkIntegrity(this.#prisma));
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await this.#queue.close();
      await Promise.allSettled([...this.#reads]);
      await this.#connections.close();
    })();
    return this.#closing;
  }

  /** For the repositories of `src/store` only (see {@link StoreInternals}). */
  internals(): StoreInternals {
    return {
      prisma: this.#prisma,
      dialect: this.#dialect,
      hot: this.#hot,
      read: (fn) => this.#read(fn),
      exclusive: (fn) => {
        if (this.#closed) return Promise.reject(this.#closedError());
        return this.#queue.exclusive(fn);
      },
      writeBatch: async (statements, peers) => {
        const fence = peers === undefined ? [] : this.#queue.fenceFor(peers);
        await this.#connections.hot.write([...fence, ...statements]).catch((err: unknown) => {
          // The fence hears of its refusal; the caller gets the error as thrown.
          if (peers !== undefined) this.#queue.callerError(err, peers);
          throw err;
        });
      },
      setFence: (fence) => this.#queue.setFence(fence),
    };
  }

  /** Same as {@link PrismaStore.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closedError(): ParleyError {
    return new ParleyError('STORE_CLOSED', 'the store is closed');
  }

  #assertOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  /** Runs a read, tracked so that `close()` waits for it, with driver errors made `ParleyError`s. */
  #read<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const run = (async () => {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof ParleyError) throw err;
        throw new ParleyError('STORE_UNAVAILABLE', 'read failed', { cause: err });
      }
    })();
    this.#reads.add(run);
    const forget = () => this.#reads.delete(run);
    run.then(forget, forget);
    return run;
  }
}

/** An `outbox` row as the store's record. */
export function outboxRecordOf(r: {
  peer: string;
  cid: string;
  referenceId: string;
  readVersion: string | null;
  writeVersion: string;
  requestJws: string;
  createdAt: Date;
  attempts: number;
}): OutboxRecord {
  return {
    peer: r.peer,
    cid: r.cid,
    referenceId: r.referenceId,
    readVersion: r.readVersion,
    writeVersion: r.writeVersion,
    requestJws: r.requestJws,
    createdAtMs: r.createdAt.getTime(),
    attempts: r.attempts,
  };
}
