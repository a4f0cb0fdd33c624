/**
 * The leader's side of this node's runs (PROTOCOL.md §7.3): one run at a time (requests made
 * meanwhile merge into the next), the store-failure backoff, the begin and the summaries, the
 * differences in batches with at most `window` in flight, the end, and the follow-up runs after
 * one that left differences without an outcome.
 */
import { randomBytes } from 'node:crypto';
import { isParleyError, ParleyError } from '../errors.js';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import { openObjectsSketchOf } from '../protocol/heartbeat-frames.js';
import { MAX_SYNC_PAGE, type SyncBeginAck, type SyncOutcome } from '../protocol/sync-frames.js';
import { observed, settled } from '../util/background.js';
import type { SyncContext } from './context.js';
import type { Difference } from './differences.js';
import { listMethod, type ReconcileMethod, scopedMethod } from './methods.js';
import { repairBatch } from './repair.js';
import { ribltMethod } from './riblt-method.js';
import { createRunBackoff, isPeerStoreFailure, type RunBackoff } from './run-backoff.js';
import { type RunState, runResult } from './run-record.js';
import { sameSummary } from './summary.js';
import type { ResyncRunResult } from './types.js';

/** Runs queued in a row after runs that ended with differences left without an outcome. */
const MAX_FOLLOW_UPS = 3;

const newId = (): string => randomBytes(16).toString('hex');

export interface Leader {
  /** Runs now, or after the current run (requests made meanwhile merge into one). */
  schedule(reason: string, scope: readonly string[] | undefined): Promise<ResyncRunResult>;
  /** The peer's `SyncError` about a run of this node as a whole: what it waits for fails now. */
  runFailedAtPeer(runId: string, code: string, err: ParleyError): void;
  /**
   * Runs `fn` (a run of this node's that is not a comparison of open objects: a restore run)
   * once no other run of this node is going or queued, and the peer's runs here ended; runs
   * requested meanwhile wait for it.
   * @throws SYNC_ABORTED when closed or not connected
   */
  alone<T>(reason: string, fn: () => Promise<T>): Promise<T>;
}

interface LeaderState {
  backoff: RunBackoff;
  /** Runs of mine whose `SyncError` said the peer's store failed: the next run backs off. */
  storeFailedRuns: Set<string>;
  /** Runs queued in a row because the one before ended incomplete (see `followUp`). */
  followUps: number;
  /** Queues another run (see `followUp`). */
  followUp(scope: ReadonlySet<string> | null): void;
}

interface Queued {
  reason: string;
  scope: Set<string> | null;
  promise: Promise<ResyncRunResult>;
}

export function createLeader(ctx: SyncContext): Leader {
  let active: Promise<unknown> | undefined;
  let queued: Queued | undefined;
  const state: LeaderState = {
    backoff: createRunBackoff({ scheduler: ctx.scheduler, ...ctx.options.storeFailureBackoff }),
    storeFailedRuns: new Set(),
    followUps: 0,
    /**
     * Queues another run after one that ended with differences left (`incomplete`), at most
     * {@link MAX_FOLLOW_UPS} in a row: a peer that keeps answering short does not keep this
     * channel busy forever (heartbeats' `diverged` and the next connect still trigger runs).
     */
    followUp(scope) {
      if (ctx.closed() || state.followUps >= MAX_FOLLOW_UPS) return;
      state.followUps++;
      observed(schedule('incomplete', scope ? [...scope] : undefined)); // a run reports its own end
    },
  };

  function schedule(reason: string, scope: readonly string[] | undefined): Promise<ResyncRunResult> {
    if (ctx.closed()) return Promise.reject(new ParleyError('SYNC_ABORTED', 'closed'));
    // A scope larger than one `SyncBegin` may carry becomes a full comparison (one run).
    const asked = scope ? new Set(scope) : null;
    const wanted = asked && asked.size <= MAX_SYNC_PAGE ? asked : null;
    if (queued) {
      if (!wanted) queued.scope = null;
      else if (queued.scope) {
        for (const ref of wanted) queued.scope.add(ref);
        if (queued.scope.size > MAX_SYNC_PAGE) queued.scope = null;
      }
      return queued.promise;
    }
    const start = (r: string, s: Set<string> | null): Promise<ResyncRunResult> => {
      const p: Promise<ResyncRunResult> = lead(ctx, state, r, s).finally(() => {
        if (active === p) active = undefined;
      });
      active = p;
      return p;
    };
    if (!active) return start(reason, wanted);
    const entry = { reason, scope: wanted } as Queued;
    entry.promise = settled(active).then(() => {
      queued = undefined;
      return start(entry.reason, entry.scope);
    });
    queued = entry;
    return entry.promise;
  }

  async function alone<T>(reason: string, fn: () => Promise<T>): Promise<T> {
    // Wait until nothing of mine is going or queued (a run queued meanwhile goes first), then
    // take the lane in the same turn, before anything else can.
    for (let before = queued?.promise ?? active; before; before = queued?.promise ?? active) {
      await settled(before);
    }
    const p = (async () => {
      await readyToLead(ctx, state, reason);
      return fn();
    })();
    const lane: Promise<unknown> = p.finally(() => {
      if (active === lane) active = undefined;
    });
    observed(lane); // `p` is returned and awaited by the caller
    active = lane;
    return p;
  }

  return {
    schedule,
    alone,
    runFailedAtPeer(runId, code, err) {
      if (ctx.runs.get(runId)?.role !== 'leader') return;
      if (isPeerStoreFailure(code)) state.storeFailedRuns.add(runId);
      ctx.correlator.abortRun(runId, err);
    },
  };
}

/**
 * How this run finds its differences: `scoped` for named objects; `riblt` when the peer's hello
 * names it, this node allows it and `mine` came from an open-objects digest (its symbols are
 * copied now, with the summary); else `list`.
 */
function methodFor(ctx: SyncContext, scope: Set<string> | null, mine: OpenObjectsSummary): ReconcileMethod {
  if (scope) return scopedMethod(ctx, scope);
  const sketch = openObjectsSketchOf(mine);
  const allowed = ctx.options.methods ?? ['riblt', 'list'];
  if (sketch && allowed.includes('riblt') && ctx.link()?.peerSyncMethods?.includes('riblt')) {
    return ribltMethod(ctx, sketch, sketch.symbols.snapshot());
  }
  return listMethod(ctx);
}

/** Waits out the store-failure backoff and the peer's runs here, then checks the link. */
async function readyToLead(ctx: SyncContext, state: LeaderState, reason: string): Promise<void> {
  const abortIfClosed = (): void => {
    if (ctx.closed()) throw new ParleyError('SYNC_ABORTED', 'closed');
  };
  abortIfClosed();
  const { delayMs, failures } = state.backoff.pending();
  if (delayMs > 0) {
    ctx.events.next({
      type: 'resync_backoff',
      peer: ctx.peer,
      reason,
      delayMs,
      failures,
      atMs: ctx.scheduler.now(),
    });
    await state.backoff.wait(ctx.whenClosed);
    abortIfClosed();
  }
  await ctx.runs.peerRunsEnded();
  abortIfClosed();
  if (ctx.link()?.state !== 'open') throw new ParleyError('SYNC_ABORTED', 'no connection');
}

/** Tells the follower the run is over, with its outcome (best effort). */
function sendEnd(ctx: SyncContext, run: RunState, outcome: SyncOutcome): Promise<void> {
  // Best effort: the link may be what failed; the run's end is recorded either way.
  return settled(
    ctx.correlator.send(
      {
        _ObjectType: 'SyncEnd',
        run_id: run.runId,
        outcome,
        objects_sent: run.counters.objectsSent,
        objects_received: run.counters.objectsReceived,
      },
      run.counters,
    ),
  );
}

/** The differences the method finds, repaired in batches of `batchObjects`, at most `window` in flight. */
async function repairAll(
  ctx: SyncContext,
  run: RunState,
  method: ReconcileMethod,
  ack: SyncBeginAck,
): Promise<void> {
  const { batchObjects, window } = ctx.limits;
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let batch: Difference[] = [];
  const flush = async (): Promise<void> => {
    const diffs = batch;
    batch = [];
    const p: Promise<void> = repairBatch(ctx, run, diffs).then(
      () => {
        run.done += diffs.length;
        run.phase = 'repair';
        ctx.runs.emit('resync_progress', run);
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    const tracked = p.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    if (inflight.size >= window) await Promise.race(inflight);
  };
  for await (const diff of method.differences(run, ack)) {
    if (failure) break;
    if (ctx.closed()) throw new ParleyError('SYNC_ABORTED', 'closed');
    run.total++;
    batch.push(diff);
    if (batch.length >= batchObjects) await flush();
  }
  if (batch.length > 0 && !failure) await flush();
  await Promise.all(inflight);
  if (failure) throw failure;
}

async function lead(
  ctx: SyncContext,
  state: LeaderState,
  reason: string,
  scope: Set<string> | null,
): Promise<ResyncRunResult> {
  await readyToLead(ctx, state, reason);
  const run = await ctx.runs.start(newId(), 'leader', reason);
  try {
    const mine = await ctx.summary();
    const method = methodFor(ctx, scope, mine);
    const ack = await ctx.correlator.ask<SyncBeginAck>(
      { kind: 'begin', runId: run.runId },
      {
        _ObjectType: 'SyncBegin',
        run_id: run.runId,
        method: method.name,
        reason,
        open_objects: mine,
        ...method.begin(),
      },
      run.counters,
    );
    state.backoff.answered();
    if (!scope && sameSummary(mine, ack.open_objects)) {
      await ctx.runs.finish(run, 'in_sync');
      return runResult(run, 'in_sync');
    }
    run.phase = 'compare';
    ctx.runs.emit('resync_progress', run);
    await repairAll(ctx, run, method, ack);
    // `repaired` only when every difference ended with an outcome, none of them rejected.
    const outcome: SyncOutcome =
      run.total === 0
        ? 'in_sync'
        : run.rejected.length > 0 || run.unsettled.length > 0
          ? 'partial'
          : 'repaired';
    await sendEnd(ctx, run, outcome);
    await ctx.runs.finish(run, outcome);
    state.storeFailedRuns.delete(run.runId);
    state.backoff.answered();
    // Differences left without an outcome: another run follows (bounded, see `followUp`).
    if (run.unsettled.length > 0) state.followUp(scope);
    else state.followUps = 0;
    return runResult(run, outcome);
  } catch (err) {
    const aborted = isParleyError(err, 'SYNC_ABORTED') || isParleyError(err, 'SYNC_TIMEOUT');
    const outcome: SyncOutcome = aborted ? 'aborted' : 'failed';
    const code = isParleyError(err) ? err.code : 'INTERNAL';
    // The follower learns the run is over (best effort: the link may be what failed).
    if (ctx.link()?.state === 'open') await sendEnd(ctx, run, outcome);
    await ctx.runs.finish(run, outcome, code);
    if (state.storeFailedRuns.delete(run.runId)) state.backoff.storeFailed();
    // An answer that never came on a live link: the differences are still there.
    if (isParleyError(err, 'SYNC_TIMEOUT') && ctx.link()?.state === 'open') state.followUp(scope);
    throw err;
  }
}
