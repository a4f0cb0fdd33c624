/**
 * `HealthStore` (src/health/ports.ts) over the `health_event` table: typed Prisma queries, the
 * writes run as exclusive jobs of the store's single writer (like peers and epochs), so they
 * never wait on a group commit's lock inside one process.
 */
import { ParleyError } from '../errors.js';
import {
  EPOCH_HISTORY_KINDS,
  type HealthHistoryQuery,
  type HealthRecord,
  type HealthStore,
  KEPT_HISTORY_KINDS,
  type NewHealthRecord,
} from '../health/ports.js';
import { eventInsert, type NewChannelEvent } from './event-repository.js';
import { PrismaStore } from './prisma-store.js';
import type { ParleyStore } from './types.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

function parseDetail(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** The back-office event a health record causes (docs/backoffice.md, "Events"), if any. */
export function channelEventOf(r: NewHealthRecord): NewChannelEvent | undefined {
  const kind =
    r.kind === 'transition'
      ? r.toState === 'down' || r.toState === 'healthy'
        ? `peer_${r.toState}`
        : undefined
      : r.kind === 'peer_state_lost' || r.kind === 'peer_behind'
        ? r.kind
        : undefined;
  return kind === undefined ? undefined : { peer: r.peer, kind, detail: r.detail, atMs: r.atMs };
}

/**
 * The health history of `store` (a store made by `openStore`). With `events`, a record that is a
 * back-office event (peer down / healthy / state lost / behind) writes it in the same transaction.
 * @throws ParleyError `STORE_INVALID_INPUT` for another `ParleyStore` implementation.
 */
export function createHealthRepository(store: ParleyStore, options: { events?: boolean } = {}): HealthStore {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the health repository needs a store made by openStore');
  }
  const db = store.internals();

  return {
    async append(records: readonly NewHealthRecord[]) {
      if (records.length === 0) return;
      const data = records.map((r) => ({
        peer: r.peer,
        kind: r.kind,
        fromState: r.fromState,
        toState: r.toState,
        detail: JSON.stringify(r.detail),
        createdAt: new Date(r.atMs),
      }));
      const events = options.events ? records.flatMap((r) => channelEventOf(r) ?? []) : [];
      await db.exclusive(async () => {
        try {
          if (events.length === 0) await db.prisma.healthEvent.createMany({ data });
          else
            await db.prisma.$transaction([
              db.prisma.healthEvent.createMany({ data }),
              db.prisma.webhookEvent.createMany({ data: eventInsert(events) }),
            ]);
        } catch (err) {
          throw new ParleyError('STORE_UNAVAILABLE', 'cannot write health events', { cause: err });
        }
      });
    },

    history(query: HealthHistoryQuery = {}) {
      const limit = Math.min(MAX_LIMIT, Math.max(0, Math.floor(query.limit ?? DEFAULT_LIMIT)));
      return db.read(async () => {
        const rows = await db.prisma.healthEvent.findMany({
          where: {
            ...(query.peer !== undefined ? { peer: query.peer } : {}),
            ...(query.kinds !== undefined ? { kind: { in: [...query.kinds] } } : {}),
            ...(query.beforeId !== undefined ? { id: { lt: query.beforeId } } : {}),
          },
          orderBy: { id: 'desc' },
          take: limit,
        });
        return rows.map(
          (r): HealthRecord => ({
            // BIGINT on PostgreSQL (a bigint at run time there); ids stay far below 2^53.
            id: Number(r.id),
            peer: r.peer,
            kind: r.kind,
            fromState: r.fromState,
            toState: r.toState,
            detail: parseDetail(r.detail),
            atMs: r.createdAt.getTime(),
          }),
        );
      });
    },

    async prune(beforeMs: number) {
      return db.exclusive(async () => {
        try {
          const { count } = await db.prisma.healthEvent.deleteMany({
            where: { createdAt: { lt: new Date(beforeMs) }, kind: { notIn: [...KEPT_HISTORY_KINDS] } },
          });
          return count;
        } catch (err) {
          throw new ParleyError('STORE_UNAVAILABLE', 'cannot prune health events', { cause: err });
        }
      });
    },

    async trim(peer: string, kind: string, keep: number) {
      return db.exclusive(async () => {
        try {
          const newest = await db.prisma.healthEvent.findMany({
            where: { peer, kind },
            orderBy: { id: 'desc' },
            skip: Math.max(0, keep - 1),
            take: 1,
            select: { id: true },
          });
          const oldestKept = newest[0]?.id;
          if (oldestKept === undefined) return 0;
          const { count } = await db.prisma.healthEvent.deleteMany({
            where: keep === 0 ? { peer, kind } : { peer, kind, id: { lt: oldestKept } },
          });
          return count;
        } catch (err) {
          throw new ParleyError('STORE_UNAVAILABLE', 'cannot trim health events', { cause: err });
        }
      });
    },

    epochs(peer: string) {
      return db.read(async () => {
        const rows = await db.prisma.healthEvent.findMany({
          where: { peer, kind: { in: [...EPOCH_HISTORY_KINDS] } },
          orderBy: { id: 'asc' },
          select: { detail: true },
        });
        const epochs: string[] = [];
        for (const row of rows) {
          const epoch = parseDetail(row.detail)['epoch'];
          if (typeof epoch === 'string' && epochs.at(-1) !== epoch) epochs.push(epoch);
        }
        return epochs;
      });
    },
  };
}
