/**
 * A verified sync frame of the peer, to whom it concerns: requests and the pushes of the peer's
 * runs to the follower's side, answers to the correlator, a run-level `SyncError` to the leader.
 */
import { ParleyError } from '../errors.js';
import type { SyncError, SyncFrame } from '../protocol/sync-frames.js';
import type { SyncContext } from './context.js';
import { errorCodeOf } from './correlator.js';
import {
  answerBegin,
  answerGetObject,
  answerHistory,
  answerListRequest,
  applyPush,
  type FollowerState,
} from './follower.js';
import type { Leader } from './leader.js';
import { answerResolve, answerSketchRequest } from './riblt-method.js';
import type { RunState } from './run-record.js';

/** Handles a verified frame `bytes` long; what it does for a follower's run is tracked by that run. */
export function onFrame(
  ctx: SyncContext,
  follower: FollowerState,
  leader: Leader,
  frame: SyncFrame,
  bytes: number,
): Promise<void> {
  const runId = 'run_id' in frame ? frame.run_id : null;
  const run = runId ? ctx.runs.get(runId) : undefined;
  if (run) {
    run.counters.bytesReceived += bytes;
    ctx.runs.touch(run);
  }
  const work = dispatch(ctx, follower, leader, frame, bytes, run);
  // The end of a follower's run waits for its other frames in hand (not for the SyncEnd that
  // ends it: that would wait for itself).
  if (run?.role === 'follower' && frame._ObjectType !== 'SyncEnd') ctx.runs.track(run, work);
  return work;
}

async function dispatch(
  ctx: SyncContext,
  follower: FollowerState,
  leader: Leader,
  frame: SyncFrame,
  bytes: number,
  run: RunState | undefined,
): Promise<void> {
  const { correlator } = ctx;
  switch (frame._ObjectType) {
    case 'SyncBegin':
      return answerBegin(ctx, follower, frame, bytes, run);
    case 'SyncListRequest':
      return answerListRequest(ctx, frame, run);
    case 'SyncGetObject':
      return answerGetObject(ctx, frame);
    case 'SyncSketchRequest':
      return answerSketchRequest(ctx, frame, run);
    case 'SyncResolve':
      return answerResolve(ctx, frame, run);
    case 'SyncSketch':
      correlator.settle({ kind: 'sketch', runId: frame.run_id }, frame);
      return;
    case 'SyncResolved':
      correlator.settle({ kind: 'resolve', runId: frame.run_id }, frame);
      return;
    case 'SyncGetHistory':
      return answerHistory(ctx, follower, frame, run);
    case 'SyncHistory':
      if (frame.request_id !== null) {
        correlator.settle({ kind: 'history', requestId: frame.request_id }, frame, bytes);
        return;
      }
      return applyPush(ctx, follower, frame, bytes, run);
    case 'SyncEnd':
      if (run && run.role === 'follower') {
        await ctx.runs.finish(run, frame.outcome);
        if (run.method === 'restore') {
          const stopped = frame.outcome === 'failed' || frame.outcome === 'aborted';
          ctx.restore.followerEnded(frame.restore_done === true, stopped);
        }
      }
      return;
    case 'SyncBeginAck':
      correlator.settle({ kind: 'begin', runId: frame.run_id }, frame);
      return;
    case 'SyncList':
      correlator.settle({ kind: 'list', runId: frame.run_id }, frame);
      return;
    case 'SyncApplied':
      correlator.settle({ kind: 'push', runId: frame.run_id, seq: frame.seq }, frame);
      return;
    case 'SyncObject':
      correlator.settle({ kind: 'object', requestId: frame.request_id }, frame);
      return;
    case 'SyncError':
      onSyncError(ctx, leader, frame);
      return;
  }
}

function onSyncError(ctx: SyncContext, leader: Leader, frame: SyncError): void {
  const { correlator } = ctx;
  if (frame.request_id !== null) {
    const requestId = frame.request_id;
    if (
      correlator.settle({ kind: 'history', requestId }, frame) ||
      correlator.settle({ kind: 'object', requestId }, frame)
    ) {
      return;
    }
  }
  // About a run of mine as a whole (the follower could not handle its begin, a list page or a
  // push): whatever of it waits here fails now.
  if (frame.request_id === null && frame.reference_id === null && frame.run_id !== null) {
    leader.runFailedAtPeer(frame.run_id, frame.code, new ParleyError(errorCodeOf(frame.code), frame.message));
    return;
  }
  if (frame.reference_id !== null) {
    ctx.events.next({
      type: 'history_rejected',
      peer: ctx.peer,
      referenceId: frame.reference_id,
      code: frame.code,
      runId: frame.run_id,
    });
  }
}
