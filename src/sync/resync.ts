/**
 * Resync of one channel (DESIGN.md §4, PROTOCOL.md §7): the leader of a run compares the two
 * open-object sets (summary first, then a reconciliation method: `methods.ts`), and per
 * difference pushes its signed history to the peer or fetches the peer's (`repair.ts`); forks go
 * to the protocol server's branch. The same object serves the follower's side of runs the peer
 * leads (`follower.ts`) and the network reads (get an object, get its signed history).
 *
 * This file wires the parts: the correlator (frames out, answers in), the run records, the
 * leader and the follower. Memory stays bounded at any set size: lists move in pages,
 * differences in batches, with at most `window` batches in flight. Time comes from the injected
 * scheduler only.
 */
import { randomBytes } from 'node:crypto';
import { asyncScheduler, Subject } from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { type SyncHistory, type SyncObject, verifySyncFrame } from '../protocol/sync-frames.js';
import { observed, settled } from '../util/background.js';
import type { SyncContext } from './context.js';
import { syncLimits } from './context.js';
import { createCorrelator } from './correlator.js';
import { dropPushParts, failedHere, newFollowerState } from './follower.js';
import { onFrame } from './inbound.js';
import { createLeader } from './leader.js';
import { createRestorer } from './restore.js';
import { createRestoreTracker } from './restore-tracker.js';
import { createRunRecords } from './run-record.js';
import { createRunReporter } from './run-report.js';
import { openObjectsSummary } from './summary.js';
import type {
  ChannelSync,
  ChannelSyncDeps,
  ChannelSyncOptions,
  RestoreEvent,
  ResyncEvent,
  SyncLink,
} from './types.js';
import { verifyHistory } from './verify-history.js';

export type { RunPhase } from './run-record.js';
export type {
  ChannelSync,
  ChannelSyncDeps,
  ChannelSyncOptions,
  RestoreEvent,
  RestoreStatus,
  ResyncEvent,
  ResyncRunResult,
  SyncLink,
} from './types.js';

const newId = (): string => randomBytes(16).toString('hex');

/** How long a close waits for the closed-object restore loop to end (a store write in progress). */
const RESTORE_CLOSE_BOUND_MS = 5000;

/** The shared context of one channel's resync; `link` and `closed` are the façade's. */
function createContext(
  options: ChannelSyncOptions,
  deps: ChannelSyncDeps,
  io: { link(): SyncLink | undefined; closed(): boolean; whenClosed: Promise<void> },
  restoreEvents: Subject<RestoreEvent>,
): SyncContext {
  const { me, peer, store } = deps;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const limits = syncLimits(options);
  const events = new Subject<ResyncEvent>();
  const restore = createRestoreTracker(peer, restoreEvents, scheduler);
  let seq = 0;
  return {
    peer,
    store,
    deps,
    options,
    limits,
    scheduler,
    sides: { me, peer, isServer: deps.isServer },
    applyDeps: {
      parties: { me, peer, myKey: deps.myKey.publicKey, peerKey: deps.peerKey },
      isServer: deps.isServer,
      store,
      exclusive: deps.exclusive,
      isPending: deps.isPending,
      dropPending: deps.dropPending,
      ...(deps.verifier ? { verifier: deps.verifier } : {}),
    },
    events,
    correlator: createCorrelator({ myKey: deps.myKey, scheduler, ...io, ...limits }),
    runs: createRunRecords({
      peer,
      store,
      events,
      scheduler,
      responseTimeoutMs: limits.responseTimeoutMs,
      ...(deps.afterApply ? { afterApply: deps.afterApply } : {}),
      // A restore run here whose leader went quiet: the restore waits (it resumes with a run).
      timedOut: (run) => {
        if (run.method === 'restore') restore.followerEnded(false, true);
      },
      ...io,
    }),
    reporter: createRunReporter(peer, events),
    restore,
    summary: deps.summary ?? (() => openObjectsSummary(store, peer, limits.pageSize)),
    ...io,
    nextSeq: () => seq++,
  };
}

export function createChannelSync(options: ChannelSyncOptions, deps: ChannelSyncDeps): ChannelSync {
  let link: SyncLink | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  let markClosed: () => void = () => undefined;
  const whenClosed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const restoreEvents = new Subject<RestoreEvent>();
  const io = { link: () => link, closed: () => closed, whenClosed };
  const ctx = createContext(options, deps, io, restoreEvents);
  const { correlator, runs, events } = ctx;
  const follower = newFollowerState();
  const leader = createLeader(ctx);
  const restorer = createRestorer(ctx, leader);
  /** Verified frames are handled in the order they arrived (see `handleFrame`). */
  let inbound: Promise<unknown> = Promise.resolve();

  /** The connection went: its answers, push parts and the peer's runs here end with it. */
  function linkGone(): void {
    dropPushParts(follower);
    correlator.abortAll(new ParleyError('SYNC_ABORTED', 'connection closed'));
    for (const run of runs.all()) {
      if (run.role === 'follower') void runs.finish(run, 'aborted', 'SYNC_ABORTED');
    }
    // The peer's restore of this node stops with the link (it resumes at the next one).
    if (ctx.restore.status()?.state === 'running') ctx.restore.followerEnded(false, true);
  }

  const sync: ChannelSync = {
    peer: deps.peer,
    events$: events.asObservable(),
    restore$: restoreEvents.asObservable(),
    attach(next) {
      if (closed) return;
      const previous = link;
      link = next;
      // A new connection replaces one whose close is not through yet (its peer's close frame can
      // take a while): what was under way on the old one ends now, as it would at its close.
      if (previous !== undefined && previous !== next) linkGone();
      void next.closed.then(() => {
        if (link !== next) return;
        link = undefined;
        linkGone();
      });
      // A closed-object restore this node leads and left unfinished goes on (§7.6).
      restorer.resume();
    },
    handleFrame(jws, from) {
      if (closed || from !== link) return;
      // Frames are verified concurrently (a pool of threads: a small frame checked on this
      // thread overtakes a large one sent to a worker), but handled in the order they came:
      // the parts of one answer, and a run's frames, keep the peer's order.
      const verified = verifySyncFrame(jws, deps.peerKey, deps.frameVerifier ?? deps.verifier);
      // Its failure is handled on its turn below (not "unhandled" while earlier frames wait).
      observed(verified);
      const turn = inbound.then(() => verified);
      inbound = settled(turn);
      turn.then(
        (frame) => {
          if (closed || from !== link) return;
          return onFrame(ctx, follower, leader, frame, jws.length).catch((err: unknown) =>
            failedHere(ctx, frame, err),
          );
        },
        (err: unknown) => {
          // The frame itself is bad: the peer's fault, and the connection's end. (A verifier
          // that stopped, at close, is neither.)
          if (isParleyError(err, 'PROTOCOL_BAD_SIGNATURE'))
            from.close(CloseCode.BAD_SIGNATURE, 'sync frame signature');
          else if (isParleyError(err, 'PROTOCOL_MALFORMED_FRAME') || isParleyError(err, 'PROTOCOL_NOT_JWS')) {
            from.close(CloseCode.BAD_FRAME, 'bad sync frame');
          }
        },
      );
    },
    run: (reason, scope) => leader.schedule(reason, scope),
    restore: (reason) => restorer.begin(reason).then((begun) => begun.done),
    startRestore: (reason) => restorer.begin(reason).then((begun) => begun.status),
    restoreStatus: () => ctx.restore.status(),
    async getObject(referenceId) {
      const id = newId();
      return correlator.ask<SyncObject>(
        { kind: 'object', requestId: id },
        { _ObjectType: 'SyncGetObject', request_id: id, reference_id: referenceId },
      );
    },
    async getHistory(referenceId) {
      const id = newId();
      const answer = await correlator.ask<SyncHistory>(
        { kind: 'history', requestId: id },
        {
          _ObjectType: 'SyncGetHistory',
          request_id: id,
          run_id: null,
          wants: [{ reference_id: referenceId, after: null }],
        },
        undefined,
        true,
      );
      const history = answer.objects[0];
      if (!history || history.kind === 'missing') throw new ParleyError('SYNC_UNKNOWN_OBJECT', referenceId);
      if (history.kind === 'too_large') throw new ParleyError('SYNC_HISTORY_TOO_LARGE', referenceId);
      return verifyHistory(history, ctx.applyDeps.parties, undefined, deps.verifier);
    },
    close() {
      closing ??= (async () => {
        closed = true;
        markClosed();
        // No frame goes out any more, and the leader's run fails at its next step.
        link = undefined;
        dropPushParts(follower);
        correlator.abortAll(new ParleyError('SYNC_ABORTED', 'closed'));
        // The restore loop ends with its run (its state reported, nothing written after this).
        await restorer.closed(RESTORE_CLOSE_BOUND_MS);
        // Only the run records are waited for (store writes): never the peer or the socket.
        await runs.closeAll();
        ctx.restore.close();
        events.complete();
        restoreEvents.complete();
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return sync.close();
    },
  };
  return sync;
}
