/**
 * The leader's repair of one batch of differences (PROTOCOL.md §7.4): per object, push this
 * node's history (the peer lacks it or is behind) or fetch the peer's (this node lacks it, is
 * behind, or the two forked), then push this branch where the peer yielded a fork to it, and
 * follow up on what the peer answered `ahead` or `fork`.
 */
import type {
  ObjectHistory,
  SyncApplied,
  SyncEntry,
  SyncFrame,
  SyncHistory,
  SyncWant,
} from '../protocol/sync-frames.js';
import { applyHistories } from './apply.js';
import type { SyncContext } from './context.js';
import type { Difference } from './differences.js';
import { pack, readHistory, sendable } from './histories.js';
import type { RunState } from './run-record.js';
import { unsettledOf } from './run-report.js';

/** How deep a batch follows up on the peer's `ahead` / `fork` answers. */
const MAX_FOLLOW_UP_DEPTH = 2;

/**
 * Pushes `objects` as one push: frames of at most `maxBatchBytes` with the same `seq`, `last`
 * on the final one; the peer applies them together and answers once (`SyncApplied`).
 */
function push(ctx: SyncContext, run: RunState, objects: ObjectHistory[]): Promise<SyncApplied> {
  const seq = ctx.nextSeq();
  const parts = pack(objects, ctx.limits.maxBatchBytes);
  // One waiter from before the first part: a follower may answer before the last one (when
  // the parts pass what it holds, `maxPushHoldBytes`).
  return ctx.correlator.ask<SyncApplied>(
    { kind: 'push', runId: run.runId, seq },
    parts.map(
      (part, i): SyncFrame => ({
        _ObjectType: 'SyncHistory',
        request_id: null,
        run_id: run.runId,
        seq,
        objects: part,
        last: i === parts.length - 1,
      }),
    ),
    run.counters,
  );
}

/** This node's whole histories of `refs`, as sent (`too_large` past the limit), read in one go when the store can. */
async function wholeHistories(
  ctx: SyncContext,
  refs: readonly string[],
): Promise<Map<string, ObjectHistory>> {
  const { store, peer, sides } = ctx;
  const logs = store.histories && refs.length > 1 ? await store.histories(peer, refs) : undefined;
  const out = new Map<string, ObjectHistory>();
  for (const ref of refs)
    out.set(
      ref,
      sendable(await readHistory(store, sides, ref, null, logs?.get(ref)), ctx.limits.maxObjectBytes),
    );
  return out;
}

/** Per difference: what to push, and what to ask the peer for. */
async function decide(
  ctx: SyncContext,
  diffs: readonly Difference[],
): Promise<{ pushes: ObjectHistory[]; wants: SyncWant[] }> {
  const { store, peer, sides } = ctx;
  const max = ctx.limits.maxObjectBytes;
  const heads = await store.heads(
    peer,
    diffs.map((d) => d.ref),
  );
  const pushes: ObjectHistory[] = [];
  const wants: SyncWant[] = [];
  // Whole histories to push (objects the peer does not list).
  const whole = await wholeHistories(
    ctx,
    diffs.filter((d) => !d.remote && heads.has(d.ref)).map((d) => d.ref),
  );
  for (const d of diffs) {
    const local = heads.get(d.ref);
    if (!local) {
      if (d.remote) wants.push({ reference_id: d.ref, after: null });
      continue;
    }
    if (!d.remote) {
      pushes.push(whole.get(d.ref)!);
      continue;
    }
    if (d.remote.head === local.headVersion) continue;
    const versions = await store.versions(peer, d.ref);
    const at = versions.findIndex((v) => v.version === d.remote!.head);
    if (at >= 0 && at < versions.length - 1)
      pushes.push(sendable(await readHistory(store, sides, d.ref, d.remote.head), max));
    else wants.push({ reference_id: d.ref, after: local.headVersion });
  }
  return { pushes, wants };
}

/** Pushes `pushable`; returns the objects the peer is ahead on or forked from (to follow up). */
async function pushAll(ctx: SyncContext, run: RunState, pushable: ObjectHistory[]): Promise<Difference[]> {
  run.counters.objectsSent += pushable.filter((o) => o.commands.length > 0).length;
  const answer = await push(ctx, run, pushable);
  unsettledOf(run, pushable, answer.results);
  ctx.reporter.pushed(run, answer.results);
  const followUps: Difference[] = [];
  for (const r of answer.results) {
    if ((r.outcome === 'ahead' || r.outcome === 'fork') && r.head !== null) {
      const remote: SyncEntry = { reference_id: r.reference_id, head: r.head, version_count: 0 };
      followUps.push({ ref: r.reference_id, remote });
    }
  }
  return followUps;
}

/** Fetches and applies `wants`; returns this branch's histories to push where the peer yielded a fork. */
async function fetchAll(ctx: SyncContext, run: RunState, wants: SyncWant[]): Promise<ObjectHistory[]> {
  const id = `${run.runId.slice(0, 16)}-${ctx.nextSeq()}`;
  const answer = await ctx.correlator.ask<SyncHistory>(
    { kind: 'history', requestId: id },
    { _ObjectType: 'SyncGetHistory', request_id: id, run_id: run.runId, wants },
    run.counters,
    true,
  );
  // Only the objects asked for, each once: anything else in the answer is ignored.
  const asked = new Set(wants.map((w) => w.reference_id));
  const objects = answer.objects.filter((o) => asked.delete(o.reference_id));
  const forcePush: ObjectHistory[] = [];
  // The peer holds none of an object asked from it after a head of ours (a difference placed
  // by a key hash that two reference ids share, §7.3.1): push our whole history, as for an
  // object it did not list; the peer's own object behind that hash comes at its next run.
  const fromHead = new Set(wants.filter((w) => w.after !== null).map((w) => w.reference_id));
  const absent = objects.filter((o) => o.kind === 'missing' && fromHead.has(o.reference_id));
  const mine = await wholeHistories(
    ctx,
    absent.map((o) => o.reference_id),
  );
  for (const h of mine.values()) if (h.kind === 'history' || h.kind === 'too_large') forcePush.push(h);
  for (const o of objects) {
    // The peer yields a fork to this node (the protocol server): push our whole branch.
    if (o.kind === 'yield' && ctx.sides.isServer) {
      const mine = await readHistory(ctx.store, ctx.sides, o.reference_id, null);
      if (mine.kind === 'history')
        forcePush.push(sendable({ ...mine, kind: 'replace' }, ctx.limits.maxObjectBytes));
    }
  }
  // A restore's histories are stored as restored: no payment events (§7.6).
  const deps = run.method === 'restore' ? { ...ctx.applyDeps, restored: true } : ctx.applyDeps;
  const batch = await applyHistories(objects, deps);
  ctx.reporter.applied(batch, run.runId, run);
  // Every object asked for ends with an outcome here, or the run is not complete.
  unsettledOf(run, wants, batch.results);
  if (batch.error !== undefined) throw batch.error;
  return forcePush;
}

/** Handles one batch of differences: decide, push and fetch, then the follow-ups. */
export async function repairBatch(
  ctx: SyncContext,
  run: RunState,
  diffs: readonly Difference[],
  depth = 0,
): Promise<void> {
  const { pushes, wants } = await decide(ctx, diffs);
  const pushable = pushes.filter((p) => p.kind === 'history' || p.kind === 'too_large');
  const work: [Promise<Difference[]>, Promise<ObjectHistory[]>] = [
    pushable.length > 0 ? pushAll(ctx, run, pushable) : Promise.resolve([]),
    wants.length > 0 ? fetchAll(ctx, run, wants) : Promise.resolve([]),
  ];
  const settled = await Promise.allSettled(work);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  const followUps = (settled[0] as PromiseFulfilledResult<Difference[]>).value;
  const forcePush = (settled[1] as PromiseFulfilledResult<ObjectHistory[]>).value;

  if (forcePush.length > 0) {
    run.counters.objectsSent += forcePush.filter((o) => o.commands.length > 0).length;
    const answer = await push(ctx, run, forcePush);
    unsettledOf(run, forcePush, answer.results);
    ctx.reporter.pushed(run, answer.results);
  }
  if (followUps.length > 0 && depth < MAX_FOLLOW_UP_DEPTH) await repairBatch(ctx, run, followUps, depth + 1);
}
