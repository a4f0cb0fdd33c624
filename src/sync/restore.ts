/**
 * The closed-object restore a node leads on one channel (PROTOCOL.md §7.6). After the peer lost
 * its state (`peer_state_lost`), or on an operator's request, the leader compares the two sets
 * of closed objects with the `list` pages of a `restore` run, from a persisted cursor (an
 * operator's restore, with a peer that speaks it, first by the coded symbols of the two whole
 * sets: `closed_sketch`), and pushes or fetches every history one side lacks (verified on
 * arrival, §7.4). A restore is a
 * series of runs of at most `restoreRunObjects` closed objects each (other runs go between
 * them); its batches are paced to `restoreObjectsPerS`, at most two in flight. The cursor moves
 * once every object up to it is settled, so a restart of either side resumes where it stood.
 */
import { randomBytes } from 'node:crypto';
import { firstValueFrom, from, race, takeUntil, timer } from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import type { SyncBeginAck, SyncEntry, SyncList, SyncOutcome } from '../protocol/sync-frames.js';
import { observed, settled } from '../util/background.js';
import type { SyncContext } from './context.js';
import {
  arrayCursor,
  boundedCursor,
  type Cursor,
  checkedPage,
  type Difference,
  type ListPage,
  mergeDifferences,
  remoteCursor,
} from './differences.js';
import type { Leader } from './leader.js';
import type { RestoreCursor } from './ports.js';
import { repairBatch } from './repair.js';
import { type ClosedSet, closedDifferences, closedSet } from './riblt-method.js';
import type { RunState } from './run-record.js';
import { compareIds } from './summary.js';
import type { RestoreStatus } from './types.js';

/** Restore runs in a row that fail or settle nothing before the restore waits for the next connection. */
const MAX_STALLS = 3;
/** Batches of a restore in flight. */
const RESTORE_WINDOW = 2;
/**
 * The pace of a restore, objects a second, unless configured: what a two-core machine keeps up
 * with while the channel's commands go on (docs/benchmarks.md, "Restore of closed objects").
 */
export const DEFAULT_RESTORE_OBJECTS_PER_S = 600;
/**
 * Closed objects per batch of a restore, unless configured: a smaller batch holds each side's
 * event loop and writer for less time at once.
 */
const DEFAULT_RESTORE_BATCH_OBJECTS = 20;

const newId = (): string => randomBytes(16).toString('hex');

export interface Restorer {
  /**
   * Starts a restore from the beginning (a restore going goes on from the start): resolves once
   * its cursor is durable, with `done` for its end.
   */
  begin(reason: string): Promise<{ status: RestoreStatus; done: Promise<RestoreStatus> }>;
  /** A new connection: a restore left unfinished goes on. */
  resume(): void;
  /**
   * At the sync's close (after it is marked closed and its answers aborted): resolves once the
   * restore loop ended, or after `boundMs` on the scheduler; the loop writes nothing once closed.
   */
  closed(boundMs: number): Promise<void>;
}

interface RestoreLimits {
  perS: number;
  batch: number;
  runObjects: number;
}

function restoreLimits(ctx: SyncContext): RestoreLimits {
  const { options, limits } = ctx;
  const perS = Math.max(1, options.restoreObjectsPerS ?? DEFAULT_RESTORE_OBJECTS_PER_S);
  return {
    perS,
    // At most 5 s of pace per batch: the follower's run hears from its leader well within its
    // idle limit (twice the answer limit) however slow the pace.
    batch: Math.max(
      1,
      Math.min(options.restoreBatchObjects ?? DEFAULT_RESTORE_BATCH_OBJECTS, limits.batchObjects, perS * 5),
    ),
    runObjects: Math.max(1, options.restoreRunObjects ?? 5000),
  };
}

/** How a restore compares the closed sets: `riblt`, by coded symbols first (then by list). */
interface RestorePlan {
  riblt: boolean;
}

/**
 * Coded symbols for an operator's restore (a node put back from an old backup: few differences
 * in large sets), with a peer that names `restore-riblt`; a peer that lost its state holds
 * nothing, and a list moves everything anyway.
 */
function planFor(ctx: SyncContext, c: RestoreCursor): RestorePlan {
  const allowed = ctx.options.methods ?? ['riblt', 'list'];
  return {
    riblt:
      c.reason !== 'peer_state_lost' &&
      allowed.includes('riblt') &&
      ctx.link()?.peerSyncMethods?.includes('restore-riblt') === true,
  };
}

const supported = (ctx: SyncContext): boolean =>
  ctx.store.closedObjects !== undefined &&
  ctx.store.restoreCursor !== undefined &&
  ctx.store.saveRestoreCursor !== undefined;

export function createRestorer(ctx: SyncContext, leader: Leader): Restorer {
  let driving: Promise<RestoreStatus | undefined> | undefined;
  /** The cursor of the restore being driven (the store's row, kept up to date). */
  let cursor: RestoreCursor | undefined;
  // Nothing is written once the sync is closed (its close does not wait past its bound).
  const save = (c: RestoreCursor): Promise<void> =>
    ctx.closed()
      ? Promise.reject(new ParleyError('SYNC_ABORTED', 'closed'))
      : ctx.store.saveRestoreCursor!(c);

  /** A connection came while the loop was going (it may be ending on the one before). */
  let resumeAfter = false;

  function drive(): Promise<RestoreStatus | undefined> {
    driving ??= loop().finally(() => {
      driving = undefined;
      if (!resumeAfter) return;
      resumeAfter = false;
      if (!ctx.closed() && ctx.link()?.state === 'open') observed(drive()); // reports its own state
    });
    return driving;
  }

  async function loop(): Promise<RestoreStatus | undefined> {
    let read: RestoreCursor | undefined;
    if (cursor === undefined) {
      try {
        read = (await ctx.store.restoreCursor!(ctx.peer)) ?? undefined;
      } catch (err) {
        // Unknown whether a restore is left: it shows waiting, and the next connection reads again
        // (a restore begun during the read goes on below).
        if (cursor === undefined) {
          ctx.restore.leaderUnread(isParleyError(err) ? err.code : 'INTERNAL');
          throw err;
        }
      }
    }
    // A restore begun during the read replaces the one read (its fresh cursor wins).
    let c = cursor ?? read;
    if (!c || c.finishedAtMs !== null) {
      ctx.restore.leaderNothingLeft(c);
      return ctx.restore.status();
    }
    cursor = c;
    ctx.restore.leader(c, 'running', 0);
    /** Leaves the loop: the cursor in memory goes, unless a new restore replaced it meanwhile. */
    const stop = (at: RestoreCursor, state: 'waiting' | 'finished', error?: string): void => {
      if (cursor === at) cursor = undefined;
      ctx.restore.leader(at, state, 0, error);
    };
    // Open objects first (they block business): each restore run waits for the runs of mine
    // going or queued (the run on connect, on `peer_state_lost`) and for the peer's runs here.
    let stalls = 0;
    let plan = planFor(ctx, c);
    for (;;) {
      // A new restore started meanwhile (the peer lost its state again): from its cursor on.
      if (cursor !== undefined && cursor !== c) {
        c = cursor;
        stalls = 0;
        plan = planFor(ctx, c);
      }
      const at: RestoreCursor = c;
      // Only the current restore's cursor is written (a replaced one's runs may still end).
      const saveAt = (snapshot: RestoreCursor): Promise<void> =>
        cursor === at ? save(snapshot) : Promise.resolve();
      let step: { finished: boolean; progressed: boolean };
      try {
        if (ctx.link() && !ctx.link()?.peerSyncMethods?.includes('restore')) {
          throw new ParleyError('SYNC_RESTORE_UNSUPPORTED', 'the peer does not speak restore');
        }
        const runPlan = plan;
        // Read before the run takes its turn: the channel's other runs do not wait for it.
        const mine = runPlan.riblt ? await closedSet(ctx) : undefined;
        step = await leader.alone(at.reason, () => restoreRun(ctx, at, saveAt, runPlan, mine));
      } catch (err) {
        const code = isParleyError(err) ? err.code : 'INTERNAL';
        const live = !ctx.closed() && ctx.link()?.state === 'open';
        if (live && code !== 'SYNC_RESTORE_UNSUPPORTED' && ++stalls < MAX_STALLS) continue;
        stop(at, 'waiting', code);
        throw err;
      }
      if (cursor !== at) continue;
      if (step.finished) {
        at.finishedAtMs = at.updatedAtMs = ctx.scheduler.now();
        try {
          await save(at);
        } catch (err) {
          // Not finished on disk: the next connection resumes it (the last batches again).
          at.finishedAtMs = null;
          stop(at, 'waiting', isParleyError(err) ? err.code : 'INTERNAL');
          throw err;
        }
        stop(at, 'finished');
        return ctx.restore.status();
      }
      stalls = step.progressed ? 0 : stalls + 1;
      if (stalls >= MAX_STALLS) {
        stop(at, 'waiting', 'SYNC_RESTORE_STALLED');
        throw new ParleyError('SYNC_RESTORE_STALLED', `no progress in ${MAX_STALLS} restore runs`);
      }
    }
  }

  return {
    async begin(reason) {
      if (!supported(ctx)) throw new ParleyError('SYNC_RESTORE_UNSUPPORTED', 'this store cannot restore');
      if (ctx.closed()) throw new ParleyError('SYNC_ABORTED', 'closed');
      const now = ctx.scheduler.now();
      const fresh: RestoreCursor = {
        peer: ctx.peer,
        reason,
        after: null,
        compared: 0,
        moved: 0,
        startedAtMs: now,
        updatedAtMs: now,
        finishedAtMs: null,
      };
      // A restore going takes this one over at its next run (see `loop`); otherwise one starts.
      const going = driving;
      // Durable first: a failed save starts nothing (a loop going does not take up a cursor
      // that is not on disk).
      await save(fresh);
      cursor = fresh;
      ctx.restore.leader(fresh, 'running', 0);
      const status = ctx.restore.status()!;
      const after = going !== undefined ? settled(going).then(() => drive()) : drive();
      const done = after.then((end) => {
        if (!end) throw new ParleyError('SYNC_ABORTED', 'the restore did not run');
        return end;
      });
      observed(done); // the caller awaits it
      return { status, done };
    },
    resume() {
      if (!supported(ctx) || ctx.closed()) return;
      if (driving !== undefined) {
        resumeAfter = true;
        return;
      }
      observed(drive()); // a restore reports its own state (restore_progress, `waiting` with its code)
    },
    async closed(boundMs) {
      const going = driving;
      if (going === undefined) return;
      await firstValueFrom(race(from(settled(going)), timer(boundMs, ctx.scheduler)));
    },
  };
}

/**
 * The follower's closed objects from `after` on, a page at a time, at most `max` of them: when it
 * holds more, `capped` gets the last one listed (the run ends there, the next one goes on).
 */
function closedPages(
  ctx: SyncContext,
  run: RunState,
  after: string | null,
  max: number,
  capped: (last: string) => void,
): Cursor<SyncEntry> {
  const { pageSize } = ctx.limits;
  let received = 0;
  const fetchPage = (from: string | null): Promise<ListPage> => {
    // A page is asked for only while fewer than `max` came (`next` is null once they did).
    const limit = Math.min(pageSize, max - received);
    const page = ctx.correlator
      .ask<SyncList>(
        { kind: 'list', runId: run.runId },
        { _ObjectType: 'SyncListRequest', run_id: run.runId, after: from, limit },
        run.counters,
      )
      .then((answer): ListPage => {
        const checked = checkedPage(answer, from, limit);
        received += checked.entries.length;
        if (checked.next === null || received < max) return checked;
        capped(checked.next);
        return { entries: checked.entries, next: null };
      });
    // Prefetched: awaited only if the merge reaches it (see `listMethod`).
    observed(page);
    return page;
  };
  return remoteCursor(fetchPage, after);
}

/** Ends a restore run: `SyncEnd` to the follower (best effort), the run's record. */
async function endRun(ctx: SyncContext, run: RunState, outcome: SyncOutcome, done: boolean, error?: string) {
  if (ctx.link()?.state === 'open') {
    await settled(
      ctx.correlator.send(
        {
          _ObjectType: 'SyncEnd',
          run_id: run.runId,
          outcome,
          objects_sent: run.counters.objectsSent,
          objects_received: run.counters.objectsReceived,
          restore_done: done,
        },
        run.counters,
      ),
    );
  }
  await ctx.runs.finish(run, outcome, error);
}

/**
 * One restore run: the closed objects after the cursor up to the `runObjects`-th of either side
 * (all of the rest when both hold fewer), compared and repaired, the cursor saved as batches
 * settle.
 */
async function restoreRun(
  ctx: SyncContext,
  c: RestoreCursor,
  save: (c: RestoreCursor) => Promise<void>,
  plan: RestorePlan,
  mine: ClosedSet | undefined,
): Promise<{ finished: boolean; progressed: boolean }> {
  const lim = restoreLimits(ctx);
  const startAfter = c.after;
  const run = await ctx.runs.start(newId(), 'leader', c.reason);
  run.method = 'restore';
  let coded: ClosedSet | undefined;
  let decoded = false;
  try {
    // Coded symbols first: this node's closed set, read whole from its store before the run (an
    // operator's request); none held, the follower's are not asked for (a list moves them all).
    coded = plan.riblt && mine !== undefined && mine.count > 0 ? mine : undefined;
    const ack = await ctx.correlator.ask<SyncBeginAck>(
      { kind: 'begin', runId: run.runId },
      {
        _ObjectType: 'SyncBegin',
        run_id: run.runId,
        method: 'restore',
        reason: c.reason,
        open_objects: await ctx.summary(),
        ...(coded ? { closed_sketch: true } : {}),
      },
      run.counters,
    );
    const found = coded ? await closedDifferences(ctx, run, coded, ack) : undefined;
    decoded = true;
    if (coded) {
      const { bytesSent, bytesReceived, rounds } = run.counters;
      run.reconcile = { method: found ? 'riblt' : 'riblt→list', bytes: bytesSent + bytesReceived, rounds };
    }
    // Not decoded (or nothing to code): this run and the restore's next ones list.
    if (!found) plan.riblt = false;
    run.phase = 'repair';
    ctx.runs.emit('resync_progress', run);
    const { finished, settledAll } =
      coded && found
        ? await repairDecoded(ctx, run, c, save, lim, coded, found)
        : await repairListed(ctx, run, c, save, lim);
    c.updatedAtMs = ctx.scheduler.now();
    await save(c);
    const outcome: SyncOutcome =
      run.total === 0 ? 'in_sync' : run.rejected.length > 0 || !settledAll ? 'partial' : 'repaired';
    await endRun(ctx, run, outcome, finished);
    ctx.restore.leader(c, 'running', 0);
    return { finished, progressed: finished || c.after !== startAfter };
  } catch (err) {
    // A comparison by coded symbols that failed before it decoded (the follower's build
    // outlasting the answer limit, say): the rest of this restore lists, so a large set cannot
    // stall it for good. One that failed in its repair compares by symbols again.
    if (coded && !decoded) plan.riblt = false;
    const aborted = isParleyError(err, 'SYNC_ABORTED') || isParleyError(err, 'SYNC_TIMEOUT');
    await endRun(ctx, run, aborted ? 'aborted' : 'failed', false, isParleyError(err) ? err.code : 'INTERNAL');
    throw err;
  }
}

/**
 * A run's differences decoded from the coded symbols of the two whole closed sets: repaired, the
 * restore is over once they all settled (objects not among them are equal on both sides).
 */
async function repairDecoded(
  ctx: SyncContext,
  run: RunState,
  c: RestoreCursor,
  save: (c: RestoreCursor) => Promise<void>,
  lim: RestoreLimits,
  mine: ClosedSet,
  found: Difference[],
): Promise<{ finished: boolean; settledAll: boolean }> {
  async function* each(): AsyncGenerator<Difference> {
    yield* found;
  }
  const { settledAll, peerOnly } = await repairPaced(ctx, run, each(), c, save, lim, mine);
  // Each such run compares the two whole sets: what it compared is their union, not more.
  c.compared = mine.count + peerOnly;
  return { finished: settledAll, settledAll };
}

/**
 * The closed objects after the cursor up to the `runObjects`-th of either side (all of the rest
 * when both hold fewer), listed, merged and repaired; the cursor moves as batches settle.
 */
async function repairListed(
  ctx: SyncContext,
  run: RunState,
  c: RestoreCursor,
  save: (c: RestoreCursor) => Promise<void>,
  lim: RestoreLimits,
): Promise<{ finished: boolean; settledAll: boolean }> {
  const local = await ctx.store.closedObjects!(ctx.peer, c.after, lim.runObjects);
  // The run ends at the first of the two bounds: this node's `runObjects`-th closed object, or
  // the follower's (either side may hold far more than the other: a wiped or old-backup node).
  let upTo: string | null = local.length === lim.runObjects ? local[local.length - 1]!.referenceId : null;
  const lower = (ref: string): void => {
    if (upTo === null || compareIds(ref, upTo) < 0) upTo = ref;
  };
  const bound = (): string | null => upTo;
  const diffs = mergeDifferences(
    boundedCursor(closedPages(ctx, run, c.after, lim.runObjects, lower), (e) => e.reference_id, bound),
    boundedCursor(arrayCursor(local), (h) => h.referenceId, bound),
  );
  const held = new Set(local.map((h) => h.referenceId));
  const { settledAll, peerOnly } = await repairPaced(ctx, run, diffs, c, save, lim, held);
  const end = upTo as string | null;
  const compared =
    end === null ? local.length : local.filter((h) => compareIds(h.referenceId, end) <= 0).length;
  c.compared += compared + peerOnly;
  if (settledAll && end !== null) c.after = end;
  return { finished: settledAll && end === null, settledAll };
}

/**
 * Repairs the differences in batches of `lim.batch`, at most {@link RESTORE_WINDOW} in flight,
 * started no faster than `lim.perS` objects a second. The cursor moves to a batch's last object
 * once it and every batch before it settled with nothing left unsettled.
 */
async function repairPaced(
  ctx: SyncContext,
  run: RunState,
  diffs: AsyncGenerator<Difference>,
  c: RestoreCursor,
  save: (c: RestoreCursor) => Promise<void>,
  lim: RestoreLimits,
  held: Pick<ReadonlySet<string>, 'has'>,
): Promise<{ settledAll: boolean; peerOnly: number }> {
  const startedAt = ctx.scheduler.now();
  const order: Array<{ last: string; size: number; done: boolean }> = [];
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let frozen = false;
  let started = 0;
  let peerOnly = 0;
  let saving: Promise<void> = Promise.resolve();

  const settle = (): void => {
    if (run.unsettled.length > 0) frozen = true;
    let moved = 0;
    while (!frozen && order[0]?.done) {
      const b = order.shift()!;
      c.after = b.last;
      c.moved += b.size;
      moved += b.size;
    }
    if (moved === 0) return;
    c.updatedAtMs = ctx.scheduler.now();
    // Reported once durable: a restart resumes from at least what was reported.
    const snapshot = { ...c };
    saving = saving
      .then(() => save(snapshot))
      .then(() => ctx.restore.leader(snapshot, 'running', moved))
      .catch((err: unknown) => {
        failure ??= err;
      });
  };

  const flush = async (batch: Difference[]): Promise<void> => {
    // Paced: this batch starts once the objects started so far are due at `perS`.
    const due = startedAt + (started * 1000) / lim.perS - ctx.scheduler.now();
    if (due > 0) {
      // The sync's close ends the wait at once.
      await firstValueFrom(timer(due, ctx.scheduler).pipe(takeUntil(from(ctx.whenClosed))), {
        defaultValue: undefined,
      });
      if (ctx.closed()) throw new ParleyError('SYNC_ABORTED', 'closed');
    }
    started += batch.length;
    const entry = { last: batch[batch.length - 1]!.ref, size: batch.length, done: false };
    order.push(entry);
    const p: Promise<void> = repairBatch(ctx, run, batch).then(
      () => {
        entry.done = true;
        run.done += batch.length;
        ctx.runs.emit('resync_progress', run);
        settle();
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    const tracked = p.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    if (inflight.size >= RESTORE_WINDOW) await Promise.race(inflight);
  };

  let batch: Difference[] = [];
  try {
    for await (const diff of diffs) {
      if (failure) break;
      if (ctx.closed()) throw new ParleyError('SYNC_ABORTED', 'closed');
      run.total++;
      if (diff.remote && !held.has(diff.ref)) peerOnly++;
      batch.push(diff);
      if (batch.length >= lim.batch) {
        const full = batch;
        batch = [];
        await flush(full);
      }
    }
    if (batch.length > 0 && !failure) await flush(batch);
  } finally {
    // Whatever ends the run, its batches and saves end with it (they never reject).
    await Promise.all(inflight);
    await saving;
  }
  if (failure) throw failure;
  return { settledAll: !frozen && run.unsettled.length === 0, peerOnly };
}
