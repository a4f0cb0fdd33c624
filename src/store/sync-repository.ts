/**
 * `SyncStore` (src/sync/ports.ts) over the Prisma store: resync runs, the atomic write of a
 * verified history (the store's own `commit`), and the replacement of a losing fork branch in
 * one transaction on the writer connection.
 */
import { ParleyError } from '../errors.js';
import type { ReplacedBranch, ResyncRunRecord, SyncStore } from '../sync/ports.js';
import { planCommits, validateCommit } from './commit-plan.js';
import { commitStatements, type WriteStatement, writeStatement } from './commit-sql.js';
import type { ParamType } from './dialect.js';
import { eventInsert } from './event-repository.js';
import { outboxRecordOf, PrismaStore, type StoreInternals } from './prisma-store.js';
import { createRestoreRepository } from './restore-repository.js';
import type { CommandRecord, Direction, OutboxRecord, ParleyStore } from './types.js';

function parseDetail(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * The sync repository of a store opened by `openStore`.
 * @throws ParleyError `STORE_INVALID_INPUT` for a store of another implementation.
 */
/**
 * With `events`, a finished run writes the back-office event `resync_finished` in the same
 * transaction (docs/backoffice.md, "Events").
 */
export function createSyncRepository(store: ParleyStore, options: { events?: boolean } = {}): SyncStore {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the sync repository needs a store opened by openStore');
  }
  const db = store.internals();

  return {
    openObjects: (peer, after, limit) => store.openObjects(peer, after, limit),

    // One statement per batch on the hot path's prepared statements: through PrismaClient these
    // reads were a tenth of a rebuild's pushing side (plan and row mapping per query).
    heads: (peer, referenceIds) => db.read(() => db.hot.heads(peer, referenceIds)),
    versions: (peer, referenceId) => store.versions(peer, referenceId),
    history: (peer, referenceId) => store.history(peer, referenceId),
    histories: (peer, referenceIds) => db.read(() => db.hot.histories(peer, referenceIds)),
    knownCids: (peer, cids) => db.read(() => db.hot.knownCids(peer, cids)),

    commit: (items) => store.commit(items),

    replaceBranch(peer, referenceId, keep, items) {
      const bad = validateCommit(items);
      if (bad) return Promise.reject(bad);
      return db.exclusive(() => replaceBranch(store, db, { peer, referenceId, keep, items }));
    },

    ...createRunRepository(db, options.events === true),
    ...createRestoreRepository(db),
  };
}

/** What `replaceBranch` replaces: `items` (a verified history) after the kept version `keep`. */
interface BranchReplacement {
  peer: string;
  referenceId: string;
  keep: string | null;
  items: Parameters<SyncStore['replaceBranch']>[3];
}

/**
 * Drops the versions of `referenceId` after `keep` (the losing branch: its versions, its log
 * rows, the outbox entries that read them, the head) and stores `items` in their place, in one
 * fenced batch. Runs inside the writer's exclusive section.
 */
async function replaceBranch(
  store: ParleyStore,
  db: StoreInternals,
  { peer, referenceId, keep, items }: BranchReplacement,
): Promise<ReplacedBranch> {
  const { prisma, dialect: d } = db;
  const statement = (
    build: (p: (type: ParamType) => string) => string,
    values: Array<[unknown, ParamType]>,
    onConflict: WriteStatement['onConflict'],
    expectRows?: number,
  ): WriteStatement => writeStatement(d, build, values, onConflict, expectRows);

  const list = (count: number, p: (t: ParamType) => string): string =>
    Array.from({ length: count }, () => p('string')).join(', ');

  const versions = await store.versions(peer, referenceId);
  const keepAt = keep === null ? -1 : versions.findIndex((v) => v.version === keep);
  if (keep !== null && keepAt < 0) {
    throw new ParleyError('STORE_VERSION_CONFLICT', `version ${keep} of ${referenceId} is not held`);
  }
  const losing = versions.slice(keepAt + 1).map((v) => v.version);
  const oldHead = versions.at(-1)?.version ?? null;
  const logRows = await prisma.commandLog.findMany({
    where: { peer, referenceId, status: 'success', writeVersion: { in: losing } },
  });
  const dropped: CommandRecord[] = logRows.map((r) => ({
    peer: r.peer,
    cid: r.cid,
    direction: r.direction as Direction,
    referenceId: r.referenceId,
    readVersion: r.readVersion,
    writeVersion: r.writeVersion,
    requestJws: r.requestJws,
    responseJws: r.responseJws,
    status: 'success',
    errorCode: null,
  }));
  const outboxRows = await prisma.outbox.findMany({
    where: { peer, referenceId, readVersion: { in: losing } },
  });
  const droppedOutbox: OutboxRecord[] = outboxRows.map(outboxRecordOf);

  const statements: WriteStatement[] = [];
  const now = new Date();
  if (losing.length > 0) {
    statements.push(
      statement(
        (p) =>
          `DELETE FROM object_version WHERE peer = ${p('string')} AND reference_id = ${p('string')} ` +
          `AND version IN (${list(losing.length, p)})`,
        [
          [peer, 'string'],
          [referenceId, 'string'],
          ...losing.map((v): [unknown, ParamType] => [v, 'string']),
        ],
        'STORE_VERSION_CONFLICT',
        losing.length,
      ),
    );
    statements.push(
      statement(
        (p) => `DELETE FROM command_log WHERE peer = ${p('string')} AND cid IN (${list(dropped.length, p)})`,
        [[peer, 'string'], ...dropped.map((c): [unknown, ParamType] => [c.cid, 'string'])],
        'STORE_VERSION_CONFLICT',
        dropped.length,
      ),
    );
  }
  if (droppedOutbox.length > 0) {
    statements.push(
      statement(
        (p) => `DELETE FROM outbox WHERE peer = ${p('string')} AND cid IN (${list(droppedOutbox.length, p)})`,
        [[peer, 'string'], ...droppedOutbox.map((o): [unknown, ParamType] => [o.cid, 'string'])],
        'STORE_VERSION_CONFLICT',
      ),
    );
  }
  if (oldHead !== null && keep === null) {
    statements.push(
      statement(
        (p) => `DELETE FROM object_head WHERE peer = ${p('string')} AND reference_id = ${p('string')}`,
        [
          [peer, 'string'],
          [referenceId, 'string'],
        ],
        'STORE_VERSION_CONFLICT',
        1,
      ),
    );
  } else if (oldHead !== null && keep !== null && losing.length > 0) {
    const kept = versions[keepAt]!;
    statements.push(
      statement(
        (p) =>
          `UPDATE object_head SET head_version = ${p('string')}, open = ${p('boolean')}, ` +
          `version_count = ${p('int')}, updated_at = ${p('datetime')} ` +
          `WHERE peer = ${p('string')} AND reference_id = ${p('string')} AND head_version = ${p('string')}`,
        [
          [keep, 'string'],
          [kept.open, 'boolean'],
          [keepAt + 1, 'int'],
          [now, 'datetime'],
          [peer, 'string'],
          [referenceId, 'string'],
          [oldHead, 'string'],
        ],
        'STORE_VERSION_CONFLICT',
        1,
      ),
    );
  }
  const plan = planCommits([items]);
  if (!plan) throw new ParleyError('STORE_VERSION_CONFLICT', 'the items do not chain');
  statements.push(...commitStatements(d, plan, now));
  await db.writeBatch(statements, new Set([peer]));
  return { dropped, droppedOutbox };
}

/** The resync run history over the `resync_run` table. */
function createRunRepository(
  db: StoreInternals,
  events: boolean,
): Pick<SyncStore, 'startRun' | 'finishRun' | 'endInterruptedRuns' | 'pruneRuns' | 'runs'> {
  const { prisma } = db;
  return {
    startRun(run) {
      return db.exclusive(async () => {
        const row = await prisma.resyncRun.create({
          data: {
            peer: run.peer,
            reason: run.reason,
            startedAt: new Date(run.startedAtMs),
            detail: JSON.stringify(run.detail),
          },
          select: { id: true },
        });
        // BIGINT on PostgreSQL (a bigint at run time there); ids stay far below 2^53.
        return Number(row.id);
      });
    },

    finishRun(id, end) {
      return db.exclusive(async () => {
        // A run is ended once: one already ended elsewhere (a replica that took the channel over
        // ended its former owner's runs `aborted`) keeps that record.
        const run = events
          ? await prisma.resyncRun.findFirst({ where: { id, outcome: null }, select: { peer: true } })
          : null;
        const event = run
          ? [
              prisma.webhookEvent.createMany({
                data: eventInsert([
                  {
                    peer: run.peer,
                    // A run of a closed-object restore (§7.6) is restore progress to the back office.
                    kind: end.detail['method'] === 'restore' ? 'restore_progress' : 'resync_finished',
                    detail: { runId: id, ...end },
                    atMs: end.finishedAtMs,
                  },
                ]),
              }),
            ]
          : [];
        const finish = prisma.resyncRun.updateMany({
          where: { id, outcome: null },
          data: {
            finishedAt: new Date(end.finishedAtMs),
            outcome: end.outcome,
            objectsSent: end.objectsSent,
            objectsReceived: end.objectsReceived,
            bytesSent: end.bytesSent,
            bytesReceived: end.bytesReceived,
            rounds: end.rounds,
            detail: JSON.stringify(end.detail),
          },
        });
        await prisma.$transaction([finish, ...event]);
      });
    },

    endInterruptedRuns(atMs, peer) {
      return db.exclusive(async () => {
        try {
          const rows = await prisma.resyncRun.findMany({
            where: peer === undefined ? { outcome: null } : { outcome: null, peer },
            select: { id: true, detail: true },
          });
          for (const r of rows) {
            await prisma.resyncRun.update({
              where: { id: r.id },
              data: {
                outcome: 'aborted',
                finishedAt: new Date(atMs),
                detail: JSON.stringify({
                  ...parseDetail(r.detail),
                  error: 'SYNC_ABORTED',
                  interrupted: true,
                }),
              },
            });
          }
          return rows.length;
        } catch (err) {
          throw new ParleyError('STORE_UNAVAILABLE', 'cannot end interrupted resync runs', { cause: err });
        }
      });
    },

    pruneRuns(beforeMs) {
      return db.exclusive(async () => {
        try {
          const { count } = await prisma.resyncRun.deleteMany({
            where: { finishedAt: { lt: new Date(beforeMs) } },
          });
          return count;
        } catch (err) {
          throw new ParleyError('STORE_UNAVAILABLE', 'cannot prune resync runs', { cause: err });
        }
      });
    },

    runs(peer, limit) {
      return db.read(async () => {
        const rows = await prisma.resyncRun.findMany({
          where: peer === undefined ? {} : { peer },
          orderBy: { id: 'desc' },
          take: limit,
        });
        return rows.map(
          (r): ResyncRunRecord => ({
            id: Number(r.id),
            peer: r.peer,
            reason: r.reason,
            startedAtMs: r.startedAt.getTime(),
            finishedAtMs: r.finishedAt ? r.finishedAt.getTime() : null,
            outcome: r.outcome,
            objectsSent: r.objectsSent,
            objectsReceived: r.objectsReceived,
            // BIGINT on PostgreSQL (a bigint at run time there).
            bytesSent: Number(r.bytesSent),
            bytesReceived: Number(r.bytesReceived),
            rounds: r.rounds,
            detail: parseDetail(r.detail),
          }),
        );
      });
    },
  };
}
