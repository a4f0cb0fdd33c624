/**
 * The `riblt` reconciliation method (PROTOCOL.md §7.3.1), both sides: the follower sends its
 * first coded symbols with its `SyncBeginAck` and more on request; the leader peels the
 * difference of its own symbols and the follower's, asking for four times as many each round,
 * turns the decoded keys back into objects (its own from its digest's reference-id map, the
 * follower's by pairing a key with one of its own of the same reference id, else by asking the
 * follower: `SyncResolve`), and falls back to `list` when the symbols do not decode within
 * {@link SKETCH_SYMBOLS} or the follower sent none. Bytes and rounds grow with the number of
 * differences, not with the size of the sets. The closed-object restore (§7.6) uses the same
 * peeling over the two closed sets, whose symbols both sides build from their stores on demand
 * ({@link closedSet}).
 */
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import { type OpenObjectsSketch, openObjectKey, openObjectsSketchOf } from '../protocol/heartbeat-frames.js';
import {
  CodedSymbols,
  type Decoded,
  decodeKeys,
  decodeSymbolsInto,
  encodeKeys,
  encodeSymbols,
  estimateRemaining,
  type ItemKey,
  peel,
  refHash,
  SKETCH_SYMBOLS,
} from '../protocol/riblt.js';
import type {
  SyncBeginAck,
  SyncEntry,
  SyncResolve,
  SyncResolved,
  SyncSketch,
  SyncSketchRequest,
} from '../protocol/sync-frames.js';
import type { SyncContext } from './context.js';
import type { Difference } from './differences.js';
import type { ReconcileMethod } from './methods.js';
import { listMethod } from './methods.js';
import type { RunState } from './run-record.js';
import { compareIds, sameSummary } from './summary.js';

/** Coded symbols sent with the `SyncBeginAck`: enough for about 40 differing pairs. */
export const FIRST_SYMBOLS = 64;
/** Each request asks for this many times the symbols so far. */
const GROWTH = 4;
/**
 * Symbols needed per differing pair, about (a little above the measured ones:
 * docs/benchmarks.md): a run whose estimate needs more than {@link SKETCH_SYMBOLS} falls back to
 * `list` at once.
 */
const OVERHEAD = 1.6;

/** The head of an object the peer holds at a version this node does not know (only its hash came). */
export const UNKNOWN_HEAD = '';

/**
 * The follower's coded symbols for a `riblt` begin, as of now: none when the summaries are
 * equal (the run ends), when either set is empty (a full `list` costs less), or without a sketch.
 */
export function followerSketch(
  leader: OpenObjectsSummary,
  mine: OpenObjectsSummary,
): CodedSymbols | undefined {
  if (sameSummary(leader, mine) || leader.count === 0 || mine.count === 0) return undefined;
  return openObjectsSketchOf(mine)?.symbols.snapshot();
}

/** Follower: symbols `[from, to)` of the run's copy (none without one: the leader then lists). */
export async function answerSketchRequest(
  ctx: SyncContext,
  frame: SyncSketchRequest,
  run: RunState | undefined,
): Promise<void> {
  const symbols = run?.sketch ? encodeSymbols(run.sketch, frame.from, frame.to) : '';
  if (run) run.counters.rounds++;
  await ctx.correlator.send(
    { _ObjectType: 'SyncSketch', run_id: frame.run_id, from: frame.from, symbols },
    run?.counters,
  );
}

/** A set of objects whose coded symbols a run reads: which reference ids hash to a key's `hi`. */
type KeyedSet = Pick<OpenObjectsSketch, 'refsOf'>;

/** The objects (of `sketch`'s set) behind `keys`, read for the candidates of each key only. */
async function objectsOf(
  ctx: SyncContext,
  sketch: KeyedSet,
  keys: readonly ItemKey[],
): Promise<Array<{ key: ItemKey; entry: SyncEntry }>> {
  const candidates = [...new Set(keys.flatMap((k) => sketch.refsOf(k.hi)))];
  const heads = await ctx.store.heads(ctx.peer, candidates);
  const found: Array<{ key: ItemKey; entry: SyncEntry }> = [];
  for (const key of keys) {
    const refs = sketch.refsOf(key.hi);
    const match = refs.find((ref) => {
      const head = heads.get(ref);
      return head !== undefined && openObjectKey(ref, head.headVersion).lo === key.lo;
    });
    // The object moved since the symbols were taken: its current head is the difference now.
    const ref = match ?? (refs.length === 1 ? refs[0] : undefined);
    const head = ref === undefined ? undefined : heads.get(ref);
    if (ref !== undefined && head !== undefined) {
      found.push({
        key,
        entry: { reference_id: ref, head: head.headVersion, version_count: head.versionCount },
      });
    }
  }
  return found;
}

/** Follower: the objects behind the leader's decoded keys (closed ones in a `restore` run, §7.6). */
export async function answerResolve(
  ctx: SyncContext,
  frame: SyncResolve,
  run: RunState | undefined,
): Promise<void> {
  const sketch = (run && closedSets.get(run)) ?? openObjectsSketchOf(await ctx.summary());
  const keys = (decodeKeys(frame.keys) ?? []).slice(0, 1000);
  const found = sketch ? await objectsOf(ctx, sketch, keys) : [];
  if (run) run.counters.rounds++;
  await ctx.correlator.send(
    { _ObjectType: 'SyncResolved', run_id: frame.run_id, entries: found.map((f) => f.entry) },
    run?.counters,
  );
}

/** Leader: the decoded difference, or undefined when the symbols did not decode (then `list`). */
async function decode(
  ctx: SyncContext,
  run: RunState,
  mine: CodedSymbols,
  ack: SyncBeginAck,
): Promise<Decoded | undefined> {
  if (!ack.sketch) return undefined;
  const theirs = new CodedSymbols(SKETCH_SYMBOLS);
  let m = decodeSymbolsInto(ack.sketch, theirs, 0);
  while (m > 0) {
    const peeled = peel(mine, theirs, m);
    if (peeled.decoded) return peeled.decoded;
    if (m >= SKETCH_SYMBOLS) return undefined;
    // Far more differences than the symbols kept can decode: list at once.
    if (m >= 256 && (peeled.recovered + estimateRemaining(peeled.rest)) * OVERHEAD > SKETCH_SYMBOLS)
      return undefined;
    const to = Math.min(SKETCH_SYMBOLS, m * GROWTH);
    const more = await ctx.correlator.ask<SyncSketch>(
      { kind: 'sketch', runId: run.runId },
      { _ObjectType: 'SyncSketchRequest', run_id: run.runId, from: m, to },
      run.counters,
    );
    const n = more.from === m ? decodeSymbolsInto(more.symbols, theirs, m) : -1;
    if (n <= 0) return undefined;
    m += n;
  }
  return undefined;
}

/**
 * Leader: where a follower's decoded key goes, among this node's decoded objects `candidates`
 * with its `hi`: the one holding a version with its `lo` (the follower behind), else the only
 * one at a head this node does not know (the follower ahead or forked), unless `confirm` asks
 * for the key to be resolved then (another object whose id has the same hash is possible).
 * Undefined: resolve it.
 */
async function placeKey(
  ctx: SyncContext,
  key: ItemKey,
  candidates: readonly string[],
  confirm: boolean,
): Promise<Difference | undefined> {
  for (const ref of candidates) {
    const versions = await ctx.store.versions(ctx.peer, ref);
    const head = versions.find((v) => openObjectKey(ref, v.version).lo === key.lo)?.version;
    if (head !== undefined) return { ref, remote: { reference_id: ref, head, version_count: 0 } };
  }
  const [only] = candidates;
  if (candidates.length !== 1 || confirm || only === undefined) return undefined;
  return { ref: only, remote: { reference_id: only, head: UNKNOWN_HEAD, version_count: 0 } };
}

/**
 * Leader: the decoded keys as differences, in byte order of reference id. A follower's key is
 * placed on one of this node's decoded objects by its `hi` ({@link placeKey}; two follower keys
 * with one `hi` are both resolved) or resolved with the follower (`SyncResolve`).
 */
async function differencesOf(
  ctx: SyncContext,
  run: RunState,
  sketch: KeyedSet,
  decoded: Decoded,
  confirm: boolean,
): Promise<Difference[]> {
  const mine = await objectsOf(ctx, sketch, decoded.mine);
  const byHi = new Map<number, string[]>();
  const myHeads = new Map<string, string>();
  for (const m of mine) {
    byHi.set(m.key.hi, [...(byHi.get(m.key.hi) ?? []), m.entry.reference_id]);
    myHeads.set(m.entry.reference_id, m.entry.head);
  }
  const out = new Map<string, Difference>();
  for (const m of mine) out.set(m.entry.reference_id, { ref: m.entry.reference_id });
  const theirsPerHi = new Map<number, number>();
  for (const key of decoded.theirs) theirsPerHi.set(key.hi, (theirsPerHi.get(key.hi) ?? 0) + 1);
  const unplaced: ItemKey[] = [];
  for (const key of decoded.theirs) {
    const candidates = theirsPerHi.get(key.hi)! > 1 ? [] : (byHi.get(key.hi) ?? []);
    const placed = candidates.length > 0 ? await placeKey(ctx, key, candidates, confirm) : undefined;
    if (placed) out.set(placed.ref, placed);
    else unplaced.push(key);
  }
  for (let at = 0; at < unplaced.length; at += 1000) {
    const asked = unplaced.slice(at, at + 1000);
    const resolved = await ctx.correlator.ask<SyncResolved>(
      { kind: 'resolve', runId: run.runId },
      { _ObjectType: 'SyncResolve', run_id: run.runId, keys: encodeKeys(asked) },
      run.counters,
    );
    // Only objects behind the keys asked for (as many as asked per hash), each once: the
    // peer's other entries are ignored.
    const open = new Map<number, number>();
    for (const k of asked) open.set(k.hi, (open.get(k.hi) ?? 0) + 1);
    for (const e of resolved.entries) {
      const hi = refHash(e.reference_id);
      const left = open.get(hi) ?? 0;
      // One of this node's decoded objects gets the follower's entry (its head there), never
      // at this node's own head (the symbols said the follower does not hold that).
      if (left === 0 || out.get(e.reference_id)?.remote || myHeads.get(e.reference_id) === e.head) continue;
      open.set(hi, left - 1);
      out.set(e.reference_id, { ref: e.reference_id, remote: e });
    }
  }
  return [...out.values()].sort((a, b) => compareIds(a.ref, b.ref));
}

/**
 * The `riblt` method of a run whose summary `summary` came from an open-objects digest; `mine`
 * is a copy of its symbols taken with that summary.
 */
export function ribltMethod(
  ctx: SyncContext,
  sketch: OpenObjectsSketch,
  mine: CodedSymbols,
): ReconcileMethod {
  return {
    name: 'riblt',
    begin: () => ({}),
    async *differences(run, ack) {
      const decoded = await decode(ctx, run, mine, ack);
      const found = decoded ? await differencesOf(ctx, run, sketch, decoded, false) : undefined;
      const { bytesSent, bytesReceived, rounds } = run.counters;
      run.reconcile = { bytes: bytesSent + bytesReceived, rounds };
      if (!found) {
        run.method = 'riblt→list';
        yield* listMethod(ctx).differences(run, ack);
        return;
      }
      run.method = 'riblt';
      yield* found;
    },
  };
}

/**
 * The coded symbols of a channel's closed objects (PROTOCOL.md §7.6), built from the store when a
 * `restore` run asks for them: every closed object read once, a page at a time.
 */
export interface ClosedSet extends KeyedSet {
  symbols: CodedSymbols;
  count: number;
  has(referenceId: string): boolean;
}

/** The follower's closed set of each `restore` run that asked for its symbols (for `SyncResolve`). */
const closedSets = new WeakMap<RunState, ClosedSet>();

/**
 * Closed objects beyond which no coded symbols are built for them (the set is held in memory
 * while a run uses it): a larger set is compared by list pages, which cost the same per page
 * whatever its size.
 */
export const CLOSED_SKETCH_MAX_OBJECTS = 1_000_000;
/** A follower builds the symbols of its closed set at most {@link CLOSED_SKETCH_BUILDS} times per this long per channel (ms). */
export const CLOSED_SKETCH_WINDOW_MS = 600_000;
/** See {@link CLOSED_SKETCH_WINDOW_MS}: room for a restore's retries, not for a peer's loop. */
export const CLOSED_SKETCH_BUILDS = 3;

/**
 * This node's closed objects with the peer as a {@link ClosedSet}; none when the store cannot
 * list them, the sync closes meanwhile, or they are more than {@link CLOSED_SKETCH_MAX_OBJECTS}.
 */
export async function closedSet(ctx: SyncContext): Promise<ClosedSet | undefined> {
  if (!ctx.store.closedObjects) return undefined;
  const symbols = new CodedSymbols(SKETCH_SYMBOLS);
  const byHi = new Map<number, string[]>();
  const refs = new Set<string>();
  const page = ctx.limits.pageSize;
  for (let after: string | null = null; ; ) {
    if (ctx.closed()) return undefined;
    const heads = await ctx.store.closedObjects(ctx.peer, after, page);
    if (refs.size + heads.length > CLOSED_SKETCH_MAX_OBJECTS) return undefined;
    for (const h of heads) {
      const key = openObjectKey(h.referenceId, h.headVersion);
      symbols.toggle(key.hi, key.lo, 1);
      const same = byHi.get(key.hi);
      if (same) same.push(h.referenceId);
      else byHi.set(key.hi, [h.referenceId]);
      refs.add(h.referenceId);
    }
    if (heads.length < page) break;
    after = heads[heads.length - 1]!.referenceId;
  }
  return {
    symbols,
    count: refs.size,
    has: (ref) => refs.has(ref),
    refsOf: (hi) => byHi.get(hi) ?? [],
  };
}

/**
 * Follower of a `restore` run whose begin asked for coded symbols: its closed set, kept for the
 * run's requests; undefined when it holds none (the leader then lists).
 */
export async function followerClosedSketch(
  ctx: SyncContext,
  run: RunState,
  last: { building: boolean; startedAtMs: number[] },
): Promise<CodedSymbols | undefined> {
  // One build at a time, and a few per window: a peer's begins cannot make this node read its
  // whole closed set over and over (a begin without symbols is answered by list pages).
  const now = ctx.scheduler.now();
  last.startedAtMs = last.startedAtMs.filter((at) => now - at < CLOSED_SKETCH_WINDOW_MS);
  if (last.building || last.startedAtMs.length >= CLOSED_SKETCH_BUILDS) return undefined;
  last.building = true;
  last.startedAtMs.push(now);
  const set = await closedSet(ctx).finally(() => {
    last.building = false;
  });
  if (!set || set.count === 0) return undefined;
  closedSets.set(run, set);
  return set.symbols;
}

/**
 * Leader of a `restore` run (§7.6): the differences between its closed set `mine` and the
 * follower's, in byte order of reference id, from the follower's symbols in `ack` and more asked
 * for; undefined when they do not decode (the run then lists).
 */
export async function closedDifferences(
  ctx: SyncContext,
  run: RunState,
  mine: ClosedSet,
  ack: SyncBeginAck,
): Promise<Difference[] | undefined> {
  const decoded = await decode(ctx, run, mine.symbols, ack);
  return decoded ? differencesOf(ctx, run, mine, decoded, true) : undefined;
}
