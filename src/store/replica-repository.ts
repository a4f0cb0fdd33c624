/**
 * Which replicas of this VASP are running, when several node replicas share one database, and
 * how the channels' leases are spread between them (docs/replicas.md, "Spreading channels").
 *
 * Each replica renews a row of `replica_heartbeat` every lease round, with an expiry set and
 * judged by the lease clock as the leases are (PostgreSQL's `clock_timestamp()` on PostgreSQL):
 * a replica whose row has not lapsed is live. A census reads the live replicas and every lease
 * row in one go, so that each replica can take only its share of the channels.
 */
import { ParleyError } from '../errors.js';
import { writeStatement } from './commit-sql.js';
import type { LeaseClock } from './lease-repository.js';
import { leaseClock, PG_NOW_MS, runLeaseStatement } from './lease-repository.js';
import { PrismaStore } from './prisma-store.js';
import type { ParleyStore } from './types.js';

/** A lease row as a census sees it. */
export interface CensusLease {
  peer: string;
  owner: string;
  /** When it lapses (or lapsed), by the lease clock. */
  expiresAtMs: number;
}

/** The replicas and leases of this VASP at one moment of the lease clock. */
export interface ReplicaCensus {
  /** The lease clock's time of the census. */
  nowMs: number;
  /** The ids of the replicas whose heartbeat row has not lapsed, sorted. */
  live: string[];
  /** Every lease row, by peer. */
  leases: CensusLease[];
}

/** This replica's side of the replica table. */
export interface ReplicaRegistry {
  /** This replica's id. */
  readonly id: string;
  /** Says this replica is live until now + `ttlMs` (by the lease clock, as leases are). */
  heartbeat(nowMs: number, ttlMs: number): Promise<void>;
  /** The live replicas and every lease row (`nowMs`: the caller's clock, used on the `caller` clock). */
  census(nowMs: number): Promise<ReplicaCensus>;
  /** Removes this replica's row: the others share the channels without it at once. */
  retire(): Promise<void>;
}

/** Rows of replicas gone this long are removed (ids drawn at random pile up otherwise). */
const FORGET_AFTER_MS = 24 * 3_600_000;

/**
 * The replica registry of `store` (made by `openStore`) for replica `id`.
 * @throws ParleyError `STORE_INVALID_INPUT` for another store implementation.
 */
export function createReplicaRegistry(
  store: ParleyStore,
  options: { id: string /** @default 'database' */; clock?: LeaseClock },
): ReplicaRegistry {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the replica registry needs a store made by openStore');
  }
  const { id } = options;
  const db = store.internals();
  const d = db.dialect;
  const dbClock = (options.clock ?? 'database') === 'database' && d.engine === 'postgresql';
  let forgotten = false;

  return {
    id,
    async heartbeat(nowMs, ttlMs) {
      const t = leaseClock(dbClock, nowMs, ttlMs);
      await runLeaseStatement(
        db,
        writeStatement(
          d,
          (p) =>
            `INSERT INTO replica_heartbeat (id, expires_at, updated_at) VALUES (${p()}, ${t.expires(p)}, ${t.at(p)}) ` +
            'ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, updated_at = excluded.updated_at',
          [[id, 'string'], ...t.expiresArgs, ...t.atArgs],
          'STORE_LEASE_LOST',
        ),
      );
      if (forgotten) return;
      forgotten = true;
      // Once per run: the rows of replicas long gone.
      const old = leaseClock(dbClock, nowMs, -FORGET_AFTER_MS);
      await runLeaseStatement(
        db,
        writeStatement(
          d,
          (p) => `DELETE FROM replica_heartbeat WHERE expires_at < ${old.expires(p)}`,
          [...old.expiresArgs],
          'STORE_LEASE_LOST',
        ),
      );
    },
    census: (nowMs) =>
      db.read(async () => {
        const now = dbClock
          ? Number(
              (
                (await db.prisma.$queryRawUnsafe(`SELECT ${PG_NOW_MS} AS now_ms`)) as Array<{
                  now_ms: unknown;
                }>
              )[0]!.now_ms,
            )
          : nowMs;
        const replicas = (await db.prisma.$queryRawUnsafe(
          'SELECT id, expires_at FROM replica_heartbeat',
        )) as Array<{ id: string; expires_at: unknown }>;
        const leases = (await db.prisma.$queryRawUnsafe(
          'SELECT peer, owner, expires_at FROM channel_lease ORDER BY peer',
        )) as Array<{ peer: string; owner: string; expires_at: unknown }>;
        return {
          nowMs: now,
          live: replicas
            .filter((r) => Number(r.expires_at) > now)
            .map((r) => r.id)
            .sort(),
          leases: leases.map((l) => ({ peer: l.peer, owner: l.owner, expiresAtMs: Number(l.expires_at) })),
        };
      }),
    async retire() {
      await runLeaseStatement(
        db,
        writeStatement(
          d,
          (p) => `DELETE FROM replica_heartbeat WHERE id = ${p()}`,
          [[id, 'string']],
          'STORE_LEASE_LOST',
        ),
      );
    },
  };
}
