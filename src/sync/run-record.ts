/**
 * The runs of one channel, as this node records them (PROTOCOL.md §7.3, step 4): each run, led
 * here or by the peer, is persisted when it starts and when it ends, and reported as `resync_*`
 * events meanwhile. A follower's run that hears nothing from its leader for a while ends `aborted`.
 */
import { type SchedulerLike, type Subject, type Subscription, timer } from 'rxjs';
import { ParleyError } from '../errors.js';
import type { CodedSymbols } from '../protocol/riblt.js';
import type { ApplyOutcome, SyncOutcome } from '../protocol/sync-frames.js';
import { settled } from '../util/background.js';
import type { ResyncCounters, ResyncRole, SyncStore } from './ports.js';
import type { ResyncEvent, ResyncRunResult } from './types.js';

/** Where a run is: comparing the sets, repairing differences, or over. */
export type RunPhase = 'compare' | 'repair' | 'done';

export interface RunState {
  runId: string;
  recordId: number;
  role: ResyncRole;
  reason: string;
  startedAtMs: number;
  counters: ResyncCounters;
  done: number;
  total: number;
  phase: RunPhase;
  rejected: Array<{ referenceId: string; code: string }>;
  forks: Array<{ referenceId: string; keep: string | null; dropped: string[] }>;
  /** How many objects ended with each apply outcome (pushed: the peer's answers; fetched: here). */
  results: Partial<Record<ApplyOutcome, number>>;
  /**
   * Differences sent or asked for that came back without any outcome (an answer that lacks an
   * object): the run is `partial`, and another run follows.
   */
  unsettled: string[];
  /** How the differences were found (`riblt→list`: the coded symbols fell back to `list`). */
  method?: string;
  /**
   * The leader's bytes (both ways) and rounds until the differences were known (`riblt`; in a
   * `restore` run, `method` says how: `riblt`, or `riblt→list` after a fallback).
   */
  reconcile?: { bytes: number; rounds: number; method?: string };
  /** A follower's coded symbols as of the run's begin (method `riblt`). */
  sketch?: CodedSymbols;
  /** A follower's run: ends `aborted` when the leader sends nothing for a while (see `touch`). */
  idle?: Subscription;
  /**
   * A follower's frames being handled (a push being applied, say): its end is recorded once
   * they are through, so what they store counts, reloads the digest and reaches recovery.
   */
  handling?: Set<Promise<unknown>>;
}

export interface RunRecordDeps {
  peer: string;
  store: Pick<SyncStore, 'startRun' | 'finishRun'>;
  events: Subject<ResyncEvent>;
  scheduler: SchedulerLike;
  responseTimeoutMs: number;
  /** Called at the end of a run that stored objects here (e.g. to recompute the summary). */
  afterApply?(): Promise<void>;
  /** Called when a run the peer leads ends `aborted` for want of its frames (`SYNC_TIMEOUT`). */
  timedOut?(run: RunState): void;
  closed(): boolean;
  /** Resolves when the channel's sync starts closing. */
  whenClosed: Promise<void>;
}

export interface RunRecords {
  /** Persists the start of a run and reports it. @throws SYNC_ABORTED once closed */
  start(runId: string, role: ResyncRole, reason: string): Promise<RunState>;
  /** Ends a run (once): persisted, then reported. */
  finish(run: RunState, outcome: SyncOutcome, error?: string): Promise<void>;
  emit(type: 'resync_started' | 'resync_progress' | 'resync_finished', run: RunState, extra?: object): void;
  get(runId: string): RunState | undefined;
  all(): RunState[];
  /** A frame of a follower's run came: its idle limit starts again. */
  touch(run: RunState): void;
  /** A follower's run waits for `work` before its end is recorded. */
  track(run: RunState, work: Promise<unknown>): void;
  /** Resolves once the peer's runs here ended, or one of them went quiet. */
  peerRunsEnded(): Promise<void>;
  /** At close: wakes what waits for the peer's runs, ends every run `aborted`, waits for the records. */
  closeAll(): Promise<void>;
}

export const newCounters = (): ResyncCounters => ({
  objectsSent: 0,
  objectsReceived: 0,
  bytesSent: 0,
  bytesReceived: 0,
  rounds: 0,
});

/** The end of a run as its leader reports it. */
export function runResult(run: RunState, outcome: SyncOutcome): ResyncRunResult {
  return {
    runId: run.runId,
    recordId: run.recordId,
    outcome,
    differences: run.total,
    rejected: run.rejected,
    ...run.counters,
  };
}

/** The persisted detail of a run's end. */
function endDetail(run: RunState, error?: string): Record<string, unknown> {
  return {
    runId: run.runId,
    role: run.role,
    ...(run.method ? { method: run.method } : {}),
    ...(run.reconcile ? { reconcile: run.reconcile } : {}),
    differences: run.total,
    rejected: run.rejected,
    forks: run.forks,
    results: run.results,
    ...(run.unsettled.length > 0
      ? { unsettled: run.unsettled.length, unsettledSample: run.unsettled.slice(0, 20) }
      : {}),
    ...(error ? { error } : {}),
  };
}

/** Adds `p` to `set` until it settles. */
function hold(set: Set<Promise<unknown>>, p: Promise<unknown>): void {
  const settled = p.then(
    () => undefined,
    () => undefined,
  );
  set.add(settled);
  void settled.finally(() => set.delete(settled));
}

/** Reports a run's start, progress or end. */
function emitRun(
  deps: Pick<RunRecordDeps, 'peer' | 'events' | 'scheduler'>,
  type: 'resync_started' | 'resync_progress' | 'resync_finished',
  run: RunState,
  extra: object = {},
): void {
  deps.events.next({
    type,
    peer: deps.peer,
    runId: run.runId,
    role: run.role,
    reason: run.reason,
    phase: run.phase,
    ...(run.method ? { method: run.method } : {}),
    done: run.done,
    total: run.total,
    ...run.counters,
    atMs: deps.scheduler.now(),
    ...extra,
  });
}

export function createRunRecords(deps: RunRecordDeps): RunRecords {
  const { peer, store, scheduler } = deps;
  const runs = new Map<string, RunState>();
  /** Run records being created or written: `closeAll` waits for them. */
  const starts = new Set<Promise<unknown>>();
  const finishing = new Set<Promise<unknown>>();
  /** Wakes whoever waits for the peer's runs here to end (see `peerRunsEnded`). */
  let wakeOnFollowerEnd: Array<() => void> = [];

  function wakeFollowerWaiters(): void {
    const waiting = wakeOnFollowerEnd;
    wakeOnFollowerEnd = [];
    for (const wake of waiting) wake();
  }

  const emit: RunRecords['emit'] = (type, run, extra) => emitRun(deps, type, run, extra);

  async function start(runId: string, role: ResyncRole, reason: string): Promise<RunState> {
    if (deps.closed()) throw new ParleyError('SYNC_ABORTED', 'closed');
    const startedAtMs = scheduler.now();
    const starting = store.startRun({ peer, reason, startedAtMs, detail: { runId, role } });
    // `closeAll()` waits for a run record being created, then ends it `aborted`.
    hold(starts, starting);
    const recordId = await starting;
    const state: RunState = {
      runId,
      recordId,
      role,
      reason,
      startedAtMs,
      counters: newCounters(),
      done: 0,
      total: 0,
      phase: 'compare',
      rejected: [],
      forks: [],
      results: {},
      unsettled: [],
    };
    runs.set(runId, state);
    emit('resync_started', state);
    return state;
  }

  async function recordEnd(run: RunState, outcome: SyncOutcome, error?: string): Promise<void> {
    // (Not once closing: `close()` never waits for the peer or the socket.)
    while (!deps.closed() && run.handling !== undefined && run.handling.size > 0) {
      await Promise.race([Promise.allSettled([...run.handling]), deps.whenClosed]);
    }
    run.phase = 'done';
    // At close the summary is not reloaded: the channel is going away (and its receiving order
    // may never run again).
    if (run.counters.objectsReceived > 0 && deps.afterApply && !deps.closed()) {
      await settled(deps.afterApply()); // the node's afterApply reports its own failure
    }
    // The run's record is best effort once the store is closing (a run left without an outcome
    // is ended at the next start); the event below carries the outcome either way.
    await settled(
      store.finishRun(run.recordId, {
        ...run.counters,
        finishedAtMs: scheduler.now(),
        outcome,
        detail: endDetail(run, error),
      }),
    );
    emit('resync_finished', run, error ? { outcome, error } : { outcome });
  }

  function finish(run: RunState, outcome: SyncOutcome, error?: string): Promise<void> {
    run.idle?.unsubscribe();
    if (runs.get(run.runId) !== run) return Promise.resolve();
    runs.delete(run.runId);
    if (run.role === 'follower') wakeFollowerWaiters();
    const done = recordEnd(run, outcome, error);
    hold(finishing, done);
    return done;
  }

  /**
   * A frame of the run came: a follower's run that then hears nothing for twice the leader's
   * own answer limit ends `aborted` (`SYNC_TIMEOUT`). Its leader failed without a `SyncEnd`, or
   * went away on a link that is not closed yet; until then the run would hold this node's own
   * runs back and keep the open-objects digest unreloaded.
   */
  function touch(run: RunState): void {
    if (run.role !== 'follower') return;
    run.idle?.unsubscribe();
    run.idle = timer(2 * deps.responseTimeoutMs, scheduler).subscribe(() => {
      void finish(run, 'aborted', 'SYNC_TIMEOUT');
      deps.timedOut?.(run);
    });
  }

  /**
   * Waits while a run the peer leads is in progress here. Both sides repairing the same set at
   * once only duplicates the work: a wiped node's `diverged` run would fetch objects the peer's
   * run is about to push (part of a rebuild moved twice: docs/benchmarks.md), and the
   * peer's push then finds them `known`. Once the peer's run ends, this one usually finds equal
   * summaries. A peer's run that sent nothing for `responseTimeoutMs` does not hold this one back.
   */
  async function peerRunsEnded(): Promise<void> {
    const followers = (): RunState[] => [...runs.values()].filter((r) => r.role === 'follower');
    const received = (): number => followers().reduce((n, r) => n + r.counters.bytesReceived, 0);
    while (!deps.closed() && followers().length > 0) {
      const before = received();
      const ended = await new Promise<boolean>((resolve) => {
        const quiet = timer(deps.responseTimeoutMs, scheduler).subscribe(() => resolve(false));
        wakeOnFollowerEnd.push(() => {
          quiet.unsubscribe();
          resolve(true);
        });
      });
      if (!ended && received() === before) return;
    }
  }

  return {
    start,
    finish,
    emit,
    get: (runId) => runs.get(runId),
    all: () => [...runs.values()],
    touch,
    track(run, work) {
      run.handling ??= new Set();
      hold(run.handling, work);
    },
    peerRunsEnded,
    async closeAll() {
      wakeFollowerWaiters();
      // Only the run records are waited for (store writes): never the peer or the socket.
      await Promise.allSettled([...starts]);
      for (const run of [...runs.values()]) void finish(run, 'aborted', 'SYNC_ABORTED');
      await Promise.allSettled([...finishing]);
    },
  };
}
