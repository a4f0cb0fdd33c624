/**
 * The closed-object restore's part of `SyncStore` (PROTOCOL.md §7.6): pages of a channel's closed
 * objects in byte order (the `object_head (peer, open, reference_id)` index serves them on both
 * engines, `COLLATE "C"` on PostgreSQL), and the `restore_cursor` row of each channel.
 */
import { ParleyError } from '../errors.js';
import type { RestoreCursor, SyncStore } from '../sync/ports.js';
import type { StoreInternals } from './prisma-store.js';
import type { ObjectHead } from './types.js';

export function createRestoreRepository(
  db: StoreInternals,
): Required<Pick<SyncStore, 'closedObjects' | 'restoreCursor' | 'saveRestoreCursor'>> {
  const { prisma, dialect: d } = db;
  return {
    closedObjects(peer, after, limit) {
      if (!Number.isSafeInteger(limit) || limit < 1) {
        return Promise.reject(
          new ParleyError('STORE_INVALID_INPUT', `limit must be an integer >= 1, got ${limit}`),
        );
      }
      return db.read(async () => {
        const args: unknown[] = [peer, false];
        let where = `peer = ${d.param(1)} AND open = ${d.param(2)}`;
        if (after !== null) {
          args.push(after);
          where += ` AND ${d.bytewise('reference_id')} > ${d.param(args.length)}`;
        }
        args.push(limit);
        const rows = await prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(
          'SELECT peer, reference_id, head_version, version_count FROM object_head ' +
            `WHERE ${where} ORDER BY ${d.bytewise('reference_id')} LIMIT ${d.param(args.length)}`,
          ...args,
        );
        return rows.map(
          (r): ObjectHead => ({
            peer: String(r['peer']),
            referenceId: String(r['reference_id']),
            headVersion: String(r['head_version']),
            open: false,
            versionCount: Number(r['version_count']),
          }),
        );
      });
    },

    restoreCursor(peer) {
      return db.read(async () => {
        const r = await prisma.restoreCursor.findUnique({ where: { peer } });
        if (!r) return null;
        return {
          peer: r.peer,
          reason: r.reason,
          after: r.after,
          compared: r.compared,
          moved: r.moved,
          startedAtMs: r.startedAt.getTime(),
          updatedAtMs: r.updatedAt.getTime(),
          finishedAtMs: r.finishedAt ? r.finishedAt.getTime() : null,
        };
      });
    },

    saveRestoreCursor(c: RestoreCursor) {
      const row = {
        reason: c.reason,
        after: c.after,
        compared: c.compared,
        moved: c.moved,
        startedAt: new Date(c.startedAtMs),
        updatedAt: new Date(c.updatedAtMs),
        finishedAt: c.finishedAtMs === null ? null : new Date(c.finishedAtMs),
      };
      return db.exclusive(async () => {
        try {
          await prisma.restoreCursor.upsert({
            where: { peer: c.peer },
            create: { peer: c.peer, ...row },
            update: row,
          });
        } catch (err) {
          throw new ParleyError('STORE_UNAVAILABLE', 'cannot save the restore cursor', { cause: err });
        }
      });
    },
  };
}
