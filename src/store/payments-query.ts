/**
 * The payments view of a store (`PaymentsReader`, src/admin/ports.ts): pages of object heads with
 * their current object, and each payment's signed history. Typed Prisma reads, no writes.
 */
import type {
  PaymentHeadQuery,
  PaymentHeadRow,
  PaymentsReader,
  PendingCommandRow,
  SignedCommandRow,
} from '../admin/ports.js';
import { ParleyError } from '../errors.js';
import type { Prisma } from './generated/sqlite/client.js';
import { PrismaStore } from './prisma-store.js';
import type { ParleyStore } from './types.js';

type HeadRow = {
  peer: string;
  referenceId: string;
  headVersion: string;
  open: boolean;
  versionCount: number;
  updatedAt: Date;
};

/**
 * The payments view of `store` (a store made by `openStore`).
 * @throws ParleyError `STORE_INVALID_INPUT` for another `ParleyStore` implementation.
 */
export function createPaymentsQuery(store: ParleyStore): PaymentsReader {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the payments query needs a store made by openStore');
  }
  const db = store.internals();

  /** The head rows with their current object (one query for the objects of a page). */
  async function withObjects(heads: readonly HeadRow[]): Promise<PaymentHeadRow[]> {
    if (heads.length === 0) return [];
    const versions = await db.prisma.objectVersion.findMany({
      where: {
        OR: heads.map((h) => ({ peer: h.peer, referenceId: h.referenceId, version: h.headVersion })),
      },
      select: { peer: true, referenceId: true, version: true, payment: true },
    });
    const byKey = new Map(versions.map((v) => [`${v.peer} ${v.referenceId} ${v.version}`, v.payment]));
    return heads.map((h) => {
      const payment = byKey.get(`${h.peer} ${h.referenceId} ${h.headVersion}`);
      if (payment === undefined) {
        throw new ParleyError(
          'STORE_INVARIANT_BROKEN',
          `the head version ${h.headVersion} of ${h.referenceId} (${h.peer}) has no stored object`,
        );
      }
      return {
        peer: h.peer,
        referenceId: h.referenceId,
        version: h.headVersion,
        open: h.open,
        versionCount: h.versionCount,
        updatedAtMs: h.updatedAt.getTime(),
        payment,
      };
    });
  }

  return {
    heads(query: PaymentHeadQuery) {
      return db.read(async () => {
        const where: Prisma.ObjectHeadWhereInput[] = [];
        if (query.peer !== undefined) where.push({ peer: query.peer });
        if (query.open !== undefined) where.push({ open: query.open });
        if (query.sinceMs !== undefined) where.push({ updatedAt: { gte: new Date(query.sinceMs) } });
        if (query.untilMs !== undefined) where.push({ updatedAt: { lt: new Date(query.untilMs) } });
        const after = query.after;
        if (after !== undefined) {
          const at = new Date(after.updatedAtMs);
          where.push({
            OR: [
              { updatedAt: { lt: at } },
              { updatedAt: at, peer: { gt: after.peer } },
              { updatedAt: at, peer: after.peer, referenceId: { gt: after.referenceId } },
            ],
          });
        }
        const heads = await db.prisma.objectHead.findMany({
          where: { AND: where },
          orderBy: [{ updatedAt: 'desc' }, { peer: 'asc' }, { referenceId: 'asc' }],
          take: query.limit,
        });
        return withObjects(heads);
      });
    },

    find(referenceId, peer) {
      return db.read(async () => {
        const heads = await db.prisma.objectHead.findMany({
          where: { referenceId, ...(peer !== undefined ? { peer } : {}) },
          orderBy: { peer: 'asc' },
        });
        return withObjects(heads);
      });
    },

    history(peer, referenceId) {
      return db.read(async () => {
        const rows = await db.prisma.commandLog.findMany({
          where: { peer, referenceId },
          orderBy: { id: 'asc' },
        });
        return rows.map(
          (r): SignedCommandRow => ({
            cid: r.cid,
            direction: r.direction as SignedCommandRow['direction'],
            readVersion: r.readVersion,
            writeVersion: r.writeVersion,
            status: r.status as SignedCommandRow['status'],
            errorCode: r.errorCode,
            requestJws: r.requestJws,
            responseJws: r.responseJws,
            createdAtMs: r.createdAt.getTime(),
          }),
        );
      });
    },

    pending(peer, referenceId) {
      return db.read(async () => {
        const rows = await db.prisma.outbox.findMany({
          where: { peer, referenceId },
          orderBy: [{ createdAt: 'asc' }, { cid: 'asc' }],
        });
        return rows.map(
          (r): PendingCommandRow => ({
            cid: r.cid,
            readVersion: r.readVersion,
            writeVersion: r.writeVersion,
            requestJws: r.requestJws,
            createdAtMs: r.createdAt.getTime(),
            attempts: r.attempts,
          }),
        );
      });
    },
  };
}
