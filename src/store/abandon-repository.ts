/**
 * The durable part of abandoning a command of mine (`parley command abandon`): its outbox row
 * is deleted and the `command_abandoned` record is added to the health history, in one
 * transaction on the writer connection. The signed log is left alone: it holds signed final
 * responses only, and must stay identical to the peer's.
 */
import { ParleyError } from '../errors.js';
import type { NewHealthRecord } from '../health/ports.js';
import { StoreConflict } from './batch-writer.js';
import { type WriteStatement, writeStatement } from './commit-sql.js';
import type { ParamType } from './dialect.js';
import { PrismaStore } from './prisma-store.js';
import type { ParleyStore } from './types.js';

/** The health history kind of the record an abandonment leaves. */
export const ABANDONED_KIND = 'command_abandoned';

export interface AbandonStore {
  /**
   * Deletes the outbox row `(peer, cid)` and appends `record` (a `command_abandoned` record), in
   * one transaction.
   * @throws COMMAND_ALREADY_FINAL when the row is gone (the command became final meanwhile);
   *   STORE_LEASE_LOST when another replica serves the channel; STORE_UNAVAILABLE
   */
  abandon(peer: string, cid: string, record: NewHealthRecord): Promise<void>;
  /** When `(peer, cid)` was abandoned, if it was. */
  abandonedAt(peer: string, cid: string): Promise<number | undefined>;
  /** `<referenceId> <readVersion>` of every command of mine abandoned on the channel (updates only). */
  abandonedReads(peer: string): Promise<Set<string>>;
}

/**
 * The abandon repository of a store opened by `openStore`.
 * @throws ParleyError `STORE_INVALID_INPUT` for a store of another implementation.
 */
export function createAbandonRepository(store: ParleyStore): AbandonStore {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the abandon repository needs a store opened by openStore');
  }
  const db = store.internals();
  const d = db.dialect;

  return {
    abandon(peer, cid, record) {
      const remove: WriteStatement = writeStatement(
        d,
        (p) => `DELETE FROM outbox WHERE peer = ${p()} AND cid = ${p()}`,
        [
          [peer, 'string'],
          [cid, 'string'],
        ],
        'STORE_VERSION_CONFLICT',
        1,
      );
      const values: Array<[unknown, ParamType]> = [
        [record.peer, 'string'],
        [record.kind, 'string'],
        [record.fromState, 'string'],
        [record.toState, 'string'],
        [JSON.stringify(record.detail), 'string'],
        [new Date(record.atMs), 'datetime'],
      ];
      const insert = writeStatement(
        d,
        (p) =>
          'INSERT INTO health_event (peer, kind, from_state, to_state, detail, created_at) ' +
          `VALUES (${values.map(() => p()).join(', ')})`,
        values,
        'STORE_VERSION_CONFLICT',
        1,
      );
      return db.exclusive(async () => {
        try {
          await db.writeBatch([remove, insert], new Set([peer]));
        } catch (err) {
          if (!(err instanceof StoreConflict)) throw err;
          if (err.code === 'STORE_LEASE_LOST') {
            throw new ParleyError('STORE_LEASE_LOST', `another replica serves the channel to ${peer} now`);
          }
          throw new ParleyError('COMMAND_ALREADY_FINAL', `${cid} is no longer in the outbox`, { cause: err });
        }
      });
    },

    abandonedAt(peer, cid) {
      return db.read(async () => {
        // The cid is matched in the JSON detail: abandonments are rare, and the peer narrows it.
        const rows = await db.prisma.healthEvent.findMany({
          where: { peer, kind: ABANDONED_KIND, detail: { contains: `"cid":${JSON.stringify(cid)}` } },
          select: { createdAt: true },
          take: 1,
        });
        return rows[0]?.createdAt.getTime();
      });
    },

    abandonedReads(peer) {
      return db.read(async () => {
        const rows = await db.prisma.healthEvent.findMany({
          where: { peer, kind: ABANDONED_KIND },
          select: { detail: true },
        });
        const reads = new Set<string>();
        for (const row of rows) {
          try {
            const { referenceId, readVersion } = JSON.parse(row.detail) as Record<string, unknown>;
            if (typeof referenceId === 'string' && typeof readVersion === 'string') {
              reads.add(`${referenceId} ${readVersion}`);
            }
          } catch {
            // An unreadable record names no version.
          }
        }
        return reads;
      });
    },
  };
}
