/**
 * Channel leases: which replica of this VASP owns a channel, when several node replicas share one
 * database (DESIGN.md §6: one replica owns a given channel at a time).
 *
 * A lease row `(peer, owner, token, expires_at)` is taken with one upsert that succeeds only when
 * the row is new, lapsed, or already this replica's; the owner renews it before it lapses. Each
 * acquisition draws a new random token, and the repository installs a write fence on the store:
 * every batch that writes a channel's commands first checks, in its own transaction, that the
 * lease row still holds this replica's token. So a replica that stalled past its lease (a long
 * GC pause, a frozen VM) and was taken over cannot write anything more of that channel, even
 * before it notices: its writes reject with `STORE_LEASE_LOST`. On PostgreSQL the check is an
 * `UPDATE` of the lease row, so a takeover waits for a batch in flight to commit, and the new
 * owner reads that batch.
 *
 * Expiry is set and judged by one clock for all replicas: on PostgreSQL the database's
 * (`clock_timestamp()`), so a replica whose clock runs ahead does not see a live owner's lease
 * as lapsed; on SQLite (replicas on one machine) the `nowMs` callers pass. Safety does not depend
 * on the clock (the token does); only how soon a lapsed lease is taken over does.
 */
import { randomBytes } from 'node:crypto';
import { type Observable, Subject } from 'rxjs';
import { ParleyError } from '../errors.js';
import { StoreConflict } from './batch-writer.js';
import { type WriteStatement, writeStatement } from './commit-sql.js';
import type { Dialect } from './dialect.js';
import { PrismaStore, type StoreInternals } from './prisma-store.js';
import type { ParleyStore } from './types.js';

/** A lease row as stored. */
export interface ChannelLeaseRecord {
  peer: string;
  owner: string;
  /** Milliseconds since the epoch, by the lease clock (PostgreSQL's on PostgreSQL). */
  expiresAtMs: number;
  updatedAtMs: number;
}

/** This replica's side of the lease table. */
export interface LeaseRepository {
  /** This replica's id (the `owner` of the leases it takes). */
  readonly owner: string;
  /**
   * Takes the lease of `peer` for `ttlMs` if it is free, lapsed, or already this replica's (a
   * restarted replica with the same id takes its lease back at once), with a new token. Returns
   * whether this replica holds it now. "Now" is the lease clock's: `nowMs` with the `caller`
   * clock, the database's time otherwise (`nowMs` unused).
   */
  acquire(peer: string, nowMs: number, ttlMs: number): Promise<boolean>;
  /**
   * Extends a lease this replica holds to now + `ttlMs` (by the lease clock, as `acquire`).
   * Returns false (and forgets the lease) when another replica took it over, or this replica
   * does not hold it.
   */
  renew(peer: string, nowMs: number, ttlMs: number): Promise<boolean>;
  /**
   * Gives the lease up at once (another replica may take it at its next attempt). Without
   * `nowMs` the row says it lapsed at 0 (free for anyone at once); with it, that it lapsed now
   * by the lease clock (the database's on PostgreSQL), so that replicas spreading the channels
   * can tell how long it has gone unserved (a hand-over: `src/replica/spread.ts`).
   */
  release(peer: string, nowMs?: number): Promise<void>;
  /** Whether this replica holds the lease of `peer`, as far as it knows. */
  holds(peer: string): boolean;
  /** Every lease row, by peer. */
  leases(): Promise<ChannelLeaseRecord[]>;
  /**
   * The channels whose writes the fence refused although this replica held their lease (another
   * replica took it over): each lease is forgotten at once, before its next renewal would tell.
   */
  readonly fenced$: Observable<string>;
}

const MAX_OWNER_LENGTH = 128;

/**
 * Which clock sets and judges lease expiry. `database`: PostgreSQL's `clock_timestamp()` (one
 * clock for every replica, whatever their own clocks say); on SQLite, whose replicas share one
 * machine, the same as `caller`. `caller`: the `nowMs` passed to `acquire` and `renew`.
 */
export type LeaseClock = 'database' | 'caller';

/** PostgreSQL's time now, in milliseconds since the epoch (it moves within a transaction). */
export const PG_NOW_MS = '(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint';

/**
 * How long a lease statement waits for a lease row another transaction holds (PostgreSQL): the
 * owner's own commit in flight (its fence touches the row until it commits), or a replica frozen
 * in the middle of one, whose row may stay locked until its connection dies. The statement then
 * fails (`STORE_UNAVAILABLE`) and is tried again at the next round. It runs off the write queue,
 * so waiting delays nothing else of this replica.
 */
export const LEASE_LOCK_TIMEOUT_MS = 1_000;

/**
 * The lease repository of `store` (made by `openStore`) for replica `owner`. From now on, every
 * write of a channel's commands to this store needs this replica to hold that channel's lease.
 * @throws ParleyError `STORE_INVALID_INPUT` for another store implementation or a bad owner id.
 */
export function createLeaseRepository(
  store: ParleyStore,
  options: { owner: string /** @default 'database' */; clock?: LeaseClock },
): LeaseRepository {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the lease repository needs a store made by openStore');
  }
  const { owner } = options;
  if (owner.length === 0 || owner.length > MAX_OWNER_LENGTH) {
    throw new ParleyError('STORE_INVALID_INPUT', `a replica id has 1 to ${MAX_OWNER_LENGTH} characters`);
  }
  const db = store.internals();
  const d = db.dialect;
  /** peer → the token of the lease this replica holds */
  const tokens = new Map<string, string>();

  const fenced = new Subject<string>();
  db.setFence(
    Object.assign((peers: ReadonlySet<string>) => fenceStatements(d, owner, tokens, peers), {
      refused(peers: ReadonlySet<string>, err: ParleyError): ParleyError {
        // One channel: its lease is gone. (A write of several does not say which one was refused.)
        const [peer] = peers;
        if (peers.size === 1 && peer !== undefined && tokens.delete(peer)) fenced.next(peer);
        const names = [...peers].sort().join(', ');
        return new ParleyError(
          'STORE_LEASE_LOST',
          `another replica of this VASP owns the channel to ${names} now (this replica's lease was taken over); nothing was stored`,
          { cause: err },
        );
      },
    }),
  );
  const dbClock = (options.clock ?? 'database') === 'database' && d.engine === 'postgresql';

  const conditional = (statement: WriteStatement): Promise<boolean> => runLeaseStatement(db, statement);

  return {
    owner,
    async acquire(peer, nowMs, ttlMs) {
      const token = randomBytes(16).toString('hex');
      const acquired = await conditional(
        acquireStatement(d, { peer, owner, token }, leaseClock(dbClock, nowMs, ttlMs)),
      );
      if (acquired) tokens.set(peer, token);
      else tokens.delete(peer);
      return acquired;
    },
    async renew(peer, nowMs, ttlMs) {
      const token = tokens.get(peer);
      if (token === undefined) return false;
      const t = leaseClock(dbClock, nowMs, ttlMs);
      const renewed = await conditional(
        writeStatement(
          d,
          (p) =>
            `UPDATE channel_lease SET expires_at = ${t.expires(p)}, updated_at = ${t.at(p)} ` +
            `WHERE peer = ${p()} AND token = ${p()}`,
          [...t.expiresArgs, ...t.atArgs, [peer, 'string'], [token, 'string']],
          'STORE_LEASE_LOST',
          1,
        ),
      );
      if (!renewed && tokens.get(peer) === token) tokens.delete(peer);
      return renewed;
    },
    async release(peer, nowMs) {
      const token = tokens.get(peer);
      if (token === undefined) return;
      tokens.delete(peer);
      // Lapsed now: expiry set to "now" by the lease clock (a ttl of 0).
      const t = leaseClock(dbClock, nowMs ?? 0, 0);
      const at = nowMs !== undefined;
      await conditional(
        writeStatement(
          d,
          (p) =>
            `UPDATE channel_lease SET expires_at = ${at ? t.expires(p) : '0'}, updated_at = ${t.at(p)} ` +
            `WHERE peer = ${p()} AND token = ${p()}`,
          [...(at ? t.expiresArgs : []), ...t.atArgs, [peer, 'string'], [token, 'string']],
          'STORE_LEASE_LOST',
        ),
      );
    },
    holds: (peer) => tokens.has(peer),
    fenced$: fenced.asObservable(),
    leases: () =>
      db.read(async () => {
        const rows = await db.prisma.channelLease.findMany({ orderBy: { peer: 'asc' } });
        return rows.map((r) => ({
          peer: r.peer,
          owner: r.owner,
          expiresAtMs: Number(r.expiresAt),
          updatedAtMs: r.updatedAt.getTime(),
        }));
      }),
  };
}

/**
 * Takes `peer`'s lease for `owner` with `token` when it is free, lapsed, or already this owner's.
 * The row of a live lease (another owner's, not lapsed) is only read, not locked: the upsert,
 * which would lock it for the rest of this transaction, does not even start. A standby's attempt
 * thus never delays the owner's renewal or its fenced writes.
 */
function acquireStatement(
  d: Dialect,
  lease: { peer: string; owner: string; token: string },
  t: ReturnType<typeof leaseClock>,
): WriteStatement {
  const { peer, owner, token } = lease;
  const pg = d.engine === 'postgresql';
  // Typed for PostgreSQL, which cannot infer the parameters' types in a SELECT list.
  const as = (sql: string, type: string): string => (pg ? `CAST(${sql} AS ${type})` : sql);
  return writeStatement(
    d,
    // The row of a live lease (another owner's, not lapsed) is only read, not locked: the
    // upsert, which would lock it for the rest of this transaction, does not even start.
    // A standby's attempt thus never delays the owner's renewal or its fenced writes.
    (p) =>
      'INSERT INTO channel_lease (peer, owner, token, expires_at, updated_at) ' +
      `SELECT ${as(p(), 'TEXT')}, ${as(p(), 'TEXT')}, ${as(p(), 'TEXT')}, ` +
      `${as(t.expires(p), 'BIGINT')}, ${as(t.at(p), 'TIMESTAMP(3)')} ` +
      `WHERE NOT EXISTS (SELECT 1 FROM channel_lease WHERE peer = ${p()} ` +
      `AND expires_at > ${t.ms(p)} AND owner <> ${p()}) ` +
      'ON CONFLICT (peer) DO UPDATE SET ' +
      'owner = excluded.owner, token = excluded.token, expires_at = excluded.expires_at, ' +
      `updated_at = excluded.updated_at WHERE channel_lease.expires_at <= ${t.ms(p)} ` +
      `OR channel_lease.owner = ${p()}`,
    [
      [peer, 'string'],
      [owner, 'string'],
      [token, 'string'],
      ...t.expiresArgs,
      ...t.atArgs,
      [peer, 'string'],
      ...t.msArgs,
      [owner, 'string'],
      ...t.msArgs,
      [owner, 'string'],
    ],
    'STORE_LEASE_LOST',
    1,
  );
}

/**
 * Runs one conditional lease statement; false when it touched no row. On PostgreSQL it runs on
 * a connection of its own, not behind this store's queued writes: a renewal must not wait for
 * the commits in flight (seconds on a busy machine) and let the lease lapse meanwhile.
 */
export function runLeaseStatement(db: StoreInternals, statement: WriteStatement): Promise<boolean> {
  if (db.dialect.engine === 'postgresql') {
    return db.read(async () => {
      const [, rows] = await db.prisma.$transaction([
        db.prisma.$executeRawUnsafe(`SET LOCAL lock_timeout = ${LEASE_LOCK_TIMEOUT_MS}`),
        db.prisma.$executeRawUnsafe(statement.sql, ...statement.args),
      ]);
      return statement.expectRows === undefined || rows === statement.expectRows;
    });
  }
  return db.exclusive(async () => {
    try {
      await db.writeBatch([statement]);
      return true;
    } catch (err) {
      if (err instanceof StoreConflict) return false;
      throw err;
    }
  });
}

/**
 * "Now" and "now + ttl" in a lease statement: the SQL of each and its parameters (none for
 * "now" on the database clock). `updated_at` is a timestamp (UTC), from the same clock.
 */
export function leaseClock(dbClock: boolean, nowMs: number, ttlMs: number) {
  return dbClock
    ? {
        ms: () => PG_NOW_MS,
        msArgs: [],
        expires: (p: () => string) => `${PG_NOW_MS} + ${p()}`,
        expiresArgs: [[ttlMs, 'int'] as const],
        at: () => "(clock_timestamp() AT TIME ZONE 'UTC')",
        atArgs: [],
      }
    : {
        ms: (p: () => string) => p(),
        msArgs: [[nowMs, 'int'] as const],
        expires: (p: () => string) => p(),
        expiresArgs: [[nowMs + ttlMs, 'int'] as const],
        at: (p: () => string) => p(),
        atArgs: [[new Date(nowMs), 'datetime'] as const],
      };
}

/**
 * The fence of a batch that writes the channels `peers`: one statement per channel that touches
 * its lease row and fails unless the row still holds this replica's token.
 */
function fenceStatements(
  d: Dialect,
  owner: string,
  tokens: ReadonlyMap<string, string>,
  peers: Iterable<string>,
): WriteStatement[] {
  const out: WriteStatement[] = [];
  // In one order everywhere, so that two replicas' batches never wait on each other's rows.
  for (const peer of [...peers].sort()) {
    const token = tokens.get(peer);
    if (token === undefined) {
      throw new ParleyError(
        'STORE_LEASE_LOST',
        `this replica (${owner}) does not own the channel to ${peer}`,
      );
    }
    // Touches the row so that, on PostgreSQL, a takeover waits for this transaction.
    out.push(
      writeStatement(
        d,
        (p) => `UPDATE channel_lease SET token = token WHERE peer = ${p()} AND token = ${p()}`,
        [
          [peer, 'string'],
          [token, 'string'],
        ],
        'STORE_LEASE_LOST',
        1,
      ),
    );
  }
  return out;
}
