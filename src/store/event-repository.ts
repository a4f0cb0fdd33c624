/**
 * The back-office events (`webhook_event`, docs/backoffice.md "Events"): payment events are
 * written by the commit transaction itself (`commit-sql.ts`), channel events with the health
 * record or the resync run that causes them ({@link eventInsert}). Read in id order, marked
 * delivered, pruned after a retention.
 */

import { ParleyError } from '../errors.js';
import type { Prisma } from './generated/sqlite/client.js';
import { PrismaStore, type StoreInternals } from './prisma-store.js';
import type { ParleyStore } from './types.js';

/** An event as stored, with the command and version a payment event reports. */
export interface StoredEvent {
  id: number;
  peer: string;
  referenceId: string | null;
  cid: string | null;
  kind: string;
  detail: Record<string, unknown> | null;
  createdAtMs: number;
  deliveredAtMs: number | null;
  /** Payment events: the command. */
  command?: {
    direction: string;
    status: string;
    errorCode: string | null;
    readVersion: string | null;
    writeVersion: string;
  };
  /** Payment events of a successful command: the version it wrote (JSON text). */
  payment?: string;
}

/** A channel event to write with the change that causes it. */
export interface NewChannelEvent {
  peer: string;
  kind: string;
  detail: Record<string, unknown>;
  atMs: number;
}

export interface EventRepository {
  /** Undelivered events of `peers` (all peers when null), oldest first. */
  pending(peers: readonly string[] | null, limit: number): Promise<StoredEvent[]>;
  /** Every event after `id` (delivered or not), oldest first: what a pull consumer resumes from. */
  after(id: number, limit: number): Promise<StoredEvent[]>;
  /** The newest event id (0 when none). */
  lastId(): Promise<number>;
  markDelivered(ids: readonly number[], atMs: number): Promise<void>;
  /** Deletes delivered events delivered before `beforeMs`; returns how many. */
  prune(beforeMs: number): Promise<number>;
}

function internalsOf(store: ParleyStore): StoreInternals {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the event repository needs a store made by openStore');
  }
  return store.internals();
}

/** The createMany data of channel events (for a `$transaction` with the change they report). */
export function eventInsert(events: readonly NewChannelEvent[]): Prisma.WebhookEventCreateManyInput[] {
  return events.map((e) => ({
    peer: e.peer,
    kind: e.kind,
    detail: JSON.stringify(e.detail),
    createdAt: new Date(e.atMs),
  }));
}

function parseDetail(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export function createEventRepository(store: ParleyStore): EventRepository {
  const db = internalsOf(store);
  const { prisma } = db;

  /** The rows with the command and version of each payment event. */
  async function withCommands(
    rows: Awaited<ReturnType<typeof prisma.webhookEvent.findMany>>,
  ): Promise<StoredEvent[]> {
    const keys = rows.filter((r) => r.cid !== null).map((r) => ({ peer: r.peer, cid: r.cid! }));
    const commands =
      keys.length === 0
        ? []
        : await prisma.commandLog.findMany({
            where: { OR: keys },
            select: {
              peer: true,
              cid: true,
              direction: true,
              status: true,
              errorCode: true,
              readVersion: true,
              writeVersion: true,
              version: { select: { payment: true } },
            },
          });
    const byKey = new Map(commands.map((c) => [`${c.peer} ${c.cid}`, c]));
    return rows.map((r) => {
      const c = r.cid === null ? undefined : byKey.get(`${r.peer} ${r.cid}`);
      return {
        id: Number(r.id),
        peer: r.peer,
        referenceId: r.referenceId,
        cid: r.cid,
        kind: r.kind,
        detail: parseDetail(r.detail),
        createdAtMs: r.createdAt.getTime(),
        deliveredAtMs: r.deliveredAt?.getTime() ?? null,
        ...(c
          ? {
              command: {
                direction: c.direction,
                status: c.status,
                errorCode: c.errorCode,
                readVersion: c.readVersion,
                writeVersion: c.writeVersion,
              },
              ...(c.version ? { payment: c.version.payment } : {}),
            }
          : {}),
      };
    });
  }

  return {
    pending(peers, limit) {
      return db.read(async () =>
        withCommands(
          await prisma.webhookEvent.findMany({
            where: { deliveredAt: null, ...(peers ? { peer: { in: [...peers] } } : {}) },
            orderBy: { id: 'asc' },
            take: limit,
          }),
        ),
      );
    },
    after(id, limit) {
      return db.read(async () =>
        withCommands(
          await prisma.webhookEvent.findMany({
            where: { id: { gt: id } },
            orderBy: { id: 'asc' },
            take: limit,
          }),
        ),
      );
    },
    lastId() {
      return db.read(async () => {
        const row = await prisma.webhookEvent.findFirst({ orderBy: { id: 'desc' }, select: { id: true } });
        return row ? Number(row.id) : 0;
      });
    },
    markDelivered(ids, atMs) {
      if (ids.length === 0) return Promise.resolve();
      return db.exclusive(async () => {
        await prisma.webhookEvent.updateMany({
          where: { id: { in: [...ids] }, deliveredAt: null },
          data: { deliveredAt: new Date(atMs) },
        });
      });
    },
    prune(beforeMs) {
      return db.exclusive(async () => {
        const { count } = await prisma.webhookEvent.deleteMany({
          where: { deliveredAt: { lt: new Date(beforeMs) } },
        });
        return count;
      });
    },
  };
}
