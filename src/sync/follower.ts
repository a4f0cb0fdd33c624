/**
 * The follower's side of a run the peer leads (PROTOCOL.md §7.3–§7.5), and the answers to the
 * peer's network reads: the begin, list pages, objects, history answers (streamed, one at a time)
 * and the pushed histories (held until their last part, then verified, applied and answered as one).
 */
import { isParleyError, ParleyError } from '../errors.js';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import { type CodedSymbols, encodeSymbols } from '../protocol/riblt.js';
import type {
  ObjectHistory,
  SyncBegin,
  SyncEntry,
  SyncFrame,
  SyncGetHistory,
  SyncGetObject,
  SyncHistory,
  SyncListRequest,
} from '../protocol/sync-frames.js';
import { observed, settled } from '../util/background.js';
import { applyHistories } from './apply.js';
import type { SyncContext } from './context.js';
import { historyBytes, readHistory, sendable } from './histories.js';
import { FIRST_SYMBOLS, followerClosedSketch, followerSketch } from './riblt-method.js';
import type { RunState } from './run-record.js';
import { sameSummary } from './summary.js';
import type { SyncLink } from './types.js';

/** The follower's state on one channel. */
export interface FollowerState {
  /** Run ids of the peer's `SyncBegin`s being started here (their record is being created). */
  beginning: Set<string>;
  /** Parts of pushes not applied yet (until their last part), by `run_id:seq`; bounded in bytes. */
  pushParts: Map<string, { objects: ObjectHistory[]; bytes: number }>;
  heldBytes: number;
  /** The history answer being sent (one at a time, see `answerHistory`). */
  answering: Promise<void>;
  /** The last build of this node's closed-set symbols for the peer's restore (see `followerClosedSketch`). */
  closedSketch: { building: boolean; startedAtMs: number[] };
}

export const newFollowerState = (): FollowerState => ({
  beginning: new Set(),
  pushParts: new Map(),
  heldBytes: 0,
  answering: Promise.resolve(),
  closedSketch: { building: false, startedAtMs: [] },
});

export function dropPushParts(state: FollowerState): void {
  state.pushParts.clear();
  state.heldBytes = 0;
}

/** The peer begins a run: recorded here, answered with this node's summary (equal: over at once). */
export async function answerBegin(
  ctx: SyncContext,
  state: FollowerState,
  frame: SyncBegin,
  bytes: number,
  run: RunState | undefined,
): Promise<void> {
  // A run id already going or starting here (the peer's or mine) is not a new run.
  if (run || state.beginning.has(frame.run_id)) return;
  state.beginning.add(frame.run_id);
  let started: RunState;
  let mine: OpenObjectsSummary;
  let sketch: CodedSymbols | undefined;
  try {
    mine = await ctx.summary();
    // The coded symbols as of this summary: every answer of the run reads this copy.
    if (frame.method === 'riblt') sketch = followerSketch(frame.open_objects, mine);
    started = await ctx.runs.start(frame.run_id, 'follower', frame.reason);
  } finally {
    state.beginning.delete(frame.run_id);
  }
  ctx.runs.touch(started);
  started.counters.bytesReceived += bytes;
  started.counters.rounds++;
  if (sketch) {
    started.sketch = sketch;
    started.method = 'riblt';
  }
  // A run of the peer's closed-object restore (§7.6): its list pages are of closed objects, and
  // its coded symbols, when asked for, those of this node's closed objects as of now.
  if (frame.method === 'restore') {
    started.method = 'restore';
    ctx.restore.followerBegan(frame.reason);
    if (frame.closed_sketch === true) {
      sketch = await followerClosedSketch(ctx, started, state.closedSketch);
      if (sketch) started.sketch = sketch;
    }
  }
  await ctx.correlator.send(
    {
      _ObjectType: 'SyncBeginAck',
      run_id: frame.run_id,
      open_objects: mine,
      ...(sketch ? { sketch: encodeSymbols(sketch, 0, FIRST_SYMBOLS) } : {}),
    },
    started.counters,
  );
  // Equal summaries: the leader stops here too, without another frame.
  if (frame.method !== 'scoped' && frame.method !== 'restore' && sameSummary(frame.open_objects, mine))
    await ctx.runs.finish(started, 'in_sync');
}

export async function answerListRequest(
  ctx: SyncContext,
  frame: SyncListRequest,
  run: RunState | undefined,
): Promise<void> {
  const closed = run?.method === 'restore';
  const page = closed
    ? ((await ctx.store.closedObjects?.(ctx.peer, frame.after, frame.limit)) ?? [])
    : await ctx.store.openObjects(ctx.peer, frame.after, frame.limit);
  const entries: SyncEntry[] = page.map((h) => ({
    reference_id: h.referenceId,
    head: h.headVersion,
    version_count: h.versionCount,
  }));
  const next = page.length === frame.limit ? page[page.length - 1]!.referenceId : null;
  if (run) run.counters.rounds++;
  await ctx.correlator.send({ _ObjectType: 'SyncList', run_id: frame.run_id, entries, next }, run?.counters);
}

export async function answerGetObject(ctx: SyncContext, frame: SyncGetObject): Promise<void> {
  const { store, peer } = ctx;
  const head = (await store.heads(peer, [frame.reference_id])).get(frame.reference_id);
  let payment: Record<string, unknown> | null = null;
  if (head) {
    const versions = await store.versions(peer, frame.reference_id);
    const last = versions.at(-1);
    payment = last ? (JSON.parse(last.payment) as Record<string, unknown>) : null;
  }
  await ctx.correlator.send({
    _ObjectType: 'SyncObject',
    request_id: frame.request_id,
    reference_id: frame.reference_id,
    found: head !== undefined,
    head: head?.headVersion ?? null,
    version_count: head?.versionCount ?? 0,
    open: head?.open ?? false,
    payment,
  });
}

/**
 * Answers a `SyncGetHistory`, one answer at a time per channel, streamed: each object once
 * (a request may repeat one), read and sent frame by frame, so an answer holds at most two
 * frames' histories whatever it asks for, and many requests at once wait their turn instead of
 * each holding its own.
 */
export function answerHistory(
  ctx: SyncContext,
  state: FollowerState,
  frame: SyncGetHistory,
  run: RunState | undefined,
): Promise<void> {
  // The connection it was asked on: once another replaced it, nobody waits for the answer.
  const origin = ctx.link();
  const turn = state.answering.then(() => streamHistory(ctx, frame, run, origin));
  state.answering = settled(turn);
  return turn;
}

async function streamHistory(
  ctx: SyncContext,
  frame: SyncGetHistory,
  run: RunState | undefined,
  origin: SyncLink | undefined,
): Promise<void> {
  const { limits, correlator } = ctx;
  const stillWanted = (): void => {
    if (ctx.link() !== origin) throw new ParleyError('SYNC_ABORTED', 'connection replaced');
  };
  const seen = new Set<string>();
  const wants = frame.wants.filter((w) => !seen.has(w.reference_id) && seen.add(w.reference_id));
  let seq = 0;
  const emit = async (objects: ObjectHistory[], last: boolean): Promise<void> => {
    stillWanted();
    if (run) run.counters.objectsSent += objects.filter((o) => o.commands.length > 0).length;
    await correlator.send(
      {
        _ObjectType: 'SyncHistory',
        request_id: frame.request_id,
        run_id: frame.run_id,
        seq: seq++,
        objects,
        last,
      },
      run?.counters,
    );
  };
  // A full frame is held until the next one starts: only then is it known not to be the last.
  let held: ObjectHistory[] | undefined;
  let current: ObjectHistory[] = [];
  let bytes = 0;
  for (const want of wants) {
    stillWanted();
    const history = sendable(
      await readHistory(ctx.store, ctx.sides, want.reference_id, want.after),
      limits.maxObjectBytes,
    );
    if (frame.run_id === null && wants.length === 1 && history.kind === 'missing') {
      await correlator.send({
        _ObjectType: 'SyncError',
        request_id: frame.request_id,
        run_id: null,
        reference_id: want.reference_id,
        code: 'SYNC_UNKNOWN_OBJECT',
        message: 'no such object on this channel',
      });
      return;
    }
    const size = historyBytes(history);
    if (current.length > 0 && bytes + size > limits.maxBatchBytes) {
      if (held) await emit(held, false);
      held = current;
      current = [];
      bytes = 0;
    }
    current.push(history);
    bytes += size;
  }
  if (held) await emit(held, false);
  await emit(current, true);
}

/**
 * A push of the peer's run: verified, applied, answered with one result per object. A push may
 * come in parts (same run and seq, `last` on the final one): applied together (a group of
 * objects per transaction, `applyHistories`) when the last part is in, or at once when the parts held pass `maxPushHoldBytes`.
 */
export async function applyPush(
  ctx: SyncContext,
  state: FollowerState,
  frame: SyncHistory,
  bytes: number,
  run: RunState | undefined,
): Promise<void> {
  const key = `${frame.run_id}:${frame.seq}`;
  const held = state.pushParts.get(key);
  if (!frame.last && state.heldBytes + bytes <= ctx.limits.maxPushHoldBytes) {
    const entry = held ?? { objects: [], bytes: 0 };
    entry.objects.push(...frame.objects);
    entry.bytes += bytes;
    state.pushParts.set(key, entry);
    state.heldBytes += bytes;
    return;
  }
  if (held) {
    state.pushParts.delete(key);
    state.heldBytes -= held.bytes;
  }
  const objects = held ? [...held.objects, ...frame.objects] : frame.objects;
  const pushed = objects.filter((o) => o.kind !== 'missing' && o.kind !== 'yield');
  // A restore's histories are stored as restored: no payment events (§7.6).
  const restoring = run?.method === 'restore';
  const batch = await applyHistories(
    pushed,
    restoring ? { ...ctx.applyDeps, restored: true } : ctx.applyDeps,
  );
  ctx.reporter.applied(batch, frame.run_id, run);
  if (restoring) ctx.restore.followerStored(batch.stored.length);
  // Stored outside any run here (its end came first): the digest is reloaded now.
  if (!run && batch.stored.length > 0 && ctx.deps.afterApply && !ctx.closed()) {
    await settled(ctx.deps.afterApply()); // the node's afterApply reports its own failure
  }
  if (frame.run_id === null) {
    if (batch.error !== undefined) throw batch.error;
    return;
  }
  // What was applied before a store failure is answered (the rest has no result: the leader's
  // run counts it unsettled and runs again); the failure is then reported here.
  if (run) run.counters.rounds++;
  await ctx.correlator.send(
    { _ObjectType: 'SyncApplied', run_id: frame.run_id, seq: frame.seq, results: batch.results },
    run?.counters,
  );
  // Answered with what was applied: the failure is only reported here (a run-level SyncError
  // on top would fail the leader's whole run instead of leaving it partial).
  if (batch.error !== undefined) {
    const code = isParleyError(batch.error) ? batch.error.code : 'INTERNAL';
    ctx.events.next({
      type: 'sync_frame_failed',
      peer: ctx.peer,
      frameType: 'SyncHistory',
      runId: frame.run_id,
      code,
    });
  }
}

/**
 * A verified frame whose handling failed here (not the peer's fault, so the connection stays):
 * reported, and a request the peer waits on by its `request_id` is answered with `SyncError`.
 * The link closing meanwhile is not a failure to report.
 */
export function failedHere(ctx: SyncContext, frame: SyncFrame, err: unknown): void {
  if (ctx.closed() || isParleyError(err, 'SYNC_ABORTED')) return;
  const code = isParleyError(err) ? err.code : 'INTERNAL';
  const runId = 'run_id' in frame ? frame.run_id : null;
  ctx.events.next({ type: 'sync_frame_failed', peer: ctx.peer, frameType: frame._ObjectType, runId, code });
  const requestId =
    frame._ObjectType === 'SyncGetHistory' || frame._ObjectType === 'SyncGetObject' ? frame.request_id : null;
  // A request of a run without its own id (begin, list page, push): the error names the run.
  const aboutRun =
    frame._ObjectType === 'SyncBegin' ||
    frame._ObjectType === 'SyncListRequest' ||
    frame._ObjectType === 'SyncSketchRequest' ||
    frame._ObjectType === 'SyncResolve' ||
    (frame._ObjectType === 'SyncHistory' && frame.request_id === null);
  if (requestId === null && !(aboutRun && runId !== null)) return;
  // Best effort: the link may be what failed, and the failure is reported above.
  observed(
    ctx.correlator.send({
      _ObjectType: 'SyncError',
      request_id: requestId,
      run_id: runId,
      reference_id: frame._ObjectType === 'SyncGetObject' ? frame.reference_id : null,
      code,
      message: `${code}: the request could not be answered here`,
    }),
  );
}
