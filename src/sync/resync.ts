/**
 * Resync of one channel (DESIGN.md §4, PROTOCOL.md §7): the leader of a run compares the two
 * open-object sets (summary first, then the follower's list in pages merged with its own), and
 * per difference pushes its signed history to the peer or fetches the peer's; forks go to the
 * protocol server's branch. The same object serves the follower's side of runs the peer leads
 * and the network reads (get an object, get its signed history).
 *
 * Memory stays bounded at any set size: lists move in pages, differences in batches, with at
 * most `window` batches in flight. Time comes from the injected scheduler only.
 */
import { randomBytes } from 'node:crypto';
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription, timer } from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import type { PrivateKey, PublicKey } from '../protocol/index.js';
import {
  type ApplyOutcome,
  MAX_SYNC_PAGE,
  type ObjectHistory,
  type SignedCommand,
  type SyncApplied,
  type SyncBeginAck,
  type SyncEntry,
  type SyncFrame,
  type SyncGetHistory,
  type SyncHistory,
  type SyncList,
  type SyncObject,
  type SyncOutcome,
  type SyncWant,
  signSyncFrame,
  verifySyncFrame,
} from '../protocol/sync-frames.js';
import type { JwsVerifier } from '../protocol/verify-pool.js';
import type { CommandRecord, ObjectHead } from '../store/types.js';
import { type AppliedBatch, applyHistories, type ForkResolution } from './apply.js';
import type { ResyncCounters, ResyncRole, SyncStore } from './ports.js';
import { createRunBackoff, isPeerStoreFailure, type RunBackoffOptions } from './run-backoff.js';
import { compareIds, DEFAULT_SYNC_PAGE_SIZE, openObjectsSummary, sameSummary } from './summary.js';
import { type VerifiedHistory, verifyHistory } from './verify-history.js';

/** The live connection as resync uses it. */
export interface SyncLink {
  /** Queue a frame; false when not queued (closed, or backpressure: wait for `writable`). */
  send(frame: string): boolean;
  writable(): Promise<void>;
  readonly state: 'open' | 'closing' | 'closed';
  readonly closed: Promise<unknown>;
  close(code: number, reason: string): void;
}

/** Resync progress and facts, for logs, the dashboard and the business layer (hot stream). */
export type ResyncEvent =
  | {
      type: 'resync_started' | 'resync_progress' | 'resync_finished';
      peer: string;
      runId: string;
      role: ResyncRole;
      reason: string;
      phase: string;
      /** Differences handled so far, and found so far (`total` grows while lists are compared). */
      done: number;
      total: number;
      objectsSent: number;
      objectsReceived: number;
      bytesSent: number;
      bytesReceived: number;
      rounds: number;
      /** Set on `resync_finished`. */
      outcome?: SyncOutcome;
      error?: string;
      atMs: number;
    }
  /** An object was stored from the peer's signed history (`from` null: rebuilt from nothing). */
  | { type: 'object_rebuilt'; peer: string; referenceId: string; from: string | null; head: string }
  /** A history from the peer failed verification; nothing of it was stored. */
  | { type: 'history_rejected'; peer: string; referenceId: string; code: string; runId: string | null }
  /**
   * A fork was resolved here: this node's branch lost (the peer is the protocol server) and was
   * replaced; `droppedPending` are commands of mine that can never complete.
   */
  | {
      type: 'fork_lost';
      peer: string;
      referenceId: string;
      keep: string | null;
      droppedCids: string[];
      droppedPending: string[];
    }
  /** A fork was resolved at the peer in favour of this node's branch. */
  | { type: 'fork_won'; peer: string; referenceId: string }
  /**
   * A verified sync frame of the peer could not be handled here (the store failed, the
   * verifying threads stopped, an answer could not be built): nothing of it was applied. A
   * request with a `request_id` is answered with `SyncError`; the peer's run otherwise times out
   * and runs again later.
   */
  | { type: 'sync_frame_failed'; peer: string; frameType: string; runId: string | null; code: string }
  /**
   * A run waits `delayMs` before it starts: the peer's store failed the last `failures` runs in a
   * row (`run-backoff.ts`).
   */
  | { type: 'resync_backoff'; peer: string; reason: string; delayMs: number; failures: number; atMs: number };

export interface ChannelSyncOptions {
  /** Entries per list page. @default 1000 */
  pageSize?: number;
  /** Objects per push / fetch batch. @default 200 */
  batchObjects?: number;
  /**
   * Budget of one history frame's JSON, in bytes; a push or an answer larger than this goes in
   * several frames, and one object's history larger than this in a frame of its own (up to what
   * `maxFrameBytes` allows). @default 90000
   */
  maxBatchBytes?: number;
  /**
   * Largest frame the peer accepts (its transport closes with 1009 above it). One object's
   * history that cannot fit in a frame of this size is sent as `too_large` instead
   * (`SYNC_HISTORY_TOO_LARGE`), and no frame above it is ever sent. @default 1048576
   */
  maxFrameBytes?: number;
  /** Batches in flight. @default 4 */
  window?: number;
  /**
   * Most bytes of push parts held here before their last part comes; past it, a part is applied
   * at once (its answer then covers the parts so far, and the leader's run counts the rest as
   * unsettled and follows up). Above what a leader with the defaults has in flight (4 pushes of
   * 200 objects). @default 33554432
   */
  maxPushHoldBytes?: number;
  /** How long to wait for an answer. @default 30000 */
  responseTimeoutMs?: number;
  /** The wait before a run after runs the peer's store failed (`run-backoff.ts`). */
  storeFailureBackoff?: RunBackoffOptions;
}

export interface ChannelSyncDeps {
  me: string;
  peer: string;
  myKey: PrivateKey;
  peerKey: PublicKey;
  isServer: boolean;
  store: SyncStore;
  /**
   * This node's open-object summary with the peer (what its hello and heartbeats announce).
   * @default a scan of the store ({@link openObjectsSummary})
   */
  summary?(): Promise<OpenObjectsSummary>;
  /** Runs `fn` with the channel's receiving order paused (ChannelCore.exclusive). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Called once at the end of a run that stored objects here (e.g. to recompute the summary). */
  afterApply?(): Promise<void>;
  isPending(cid: string): boolean;
  dropPending(cid: string): boolean;
  /**
   * Checks the signatures of received histories: the node's pool of verifying threads.
   * @default WebCrypto on this thread (`inThreadVerifier`)
   */
  verifier?: JwsVerifier;
  /**
   * Checks the signature of each sync frame itself: a live frame, which must be signed with the
   * peer's current key (the node's `verifier` also accepts retired keys, for the histories
   * only). @default `verifier`
   */
  frameVerifier?: JwsVerifier;
  /** @default asyncScheduler */
  scheduler?: SchedulerLike;
}

/** The end of a run as its leader saw it. */
export interface ResyncRunResult extends ResyncCounters {
  runId: string;
  recordId: number;
  outcome: SyncOutcome;
  differences: number;
  rejected: Array<{ referenceId: string; code: string }>;
}

/** Resync of one channel. */
export interface ChannelSync {
  readonly peer: string;
  /** Progress and facts (hot). */
  readonly events$: Observable<ResyncEvent>;
  /** Use this link from now on (each (re)connect). */
  attach(link: SyncLink): void;
  /** An incoming sync frame (JWS) from `link`. */
  handleFrame(jws: string, link: SyncLink): void;
  /**
   * Runs a resync as leader now, or after the current one (requests made meanwhile are merged
   * into one). `scope` limits the run to those objects.
   * @throws SYNC_ABORTED when no link is attached or it closes during the run
   */
  run(reason: string, scope?: readonly string[]): Promise<ResyncRunResult>;
  /** Network read: the peer's current state of an object. */
  getObject(referenceId: string): Promise<SyncObject>;
  /**
   * Network read: the peer's whole signed history of an object, verified (never trust it
   * otherwise). @throws SYNC_UNKNOWN_OBJECT, SYNC_HISTORY_TOO_LARGE, SYNC_BAD_SIGNATURE, SYNC_BROKEN_CHAIN,
   *   SYNC_INVALID_HISTORY
   */
  getHistory(referenceId: string): Promise<VerifiedHistory>;
  /**
   * Stops: runs in progress end `aborted` (persisted before this resolves), answers awaited
   * reject with `SYNC_ABORTED`, no run starts any more. Never waits for the peer or the socket.
   * Idempotent.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Waiter {
  resolve(frame: SyncFrame): void;
  reject(err: unknown): void;
  /**
   * For multi-frame answers: frames so far by `seq`. The answer is whole once the `last` frame
   * and every frame before it (by `seq`) are in, whatever order they were handled in.
   */
  parts?: Map<number, SyncHistory>;
  /** The `seq` of the frame marked `last`, once it is in. */
  lastSeq?: number;
  /** Bytes of the parts held so far, and the most an honest answer can take. */
  heldBytes?: number;
  maxBytes?: number;
  timer: Subscription;
}

interface RunState {
  runId: string;
  recordId: number;
  role: ResyncRole;
  reason: string;
  startedAtMs: number;
  counters: ResyncCounters;
  done: number;
  total: number;
  phase: string;
  rejected: Array<{ referenceId: string; code: string }>;
  forks: Array<{ referenceId: string; keep: string | null; dropped: string[] }>;
  /** How many objects ended with each apply outcome (pushed: the peer's answers; fetched: here). */
  results: Partial<Record<ApplyOutcome, number>>;
  /**
   * Differences sent or asked for that came back without any outcome (an answer that lacks an
   * object): the run is `partial`, and another run follows.
   */
  unsettled: string[];
  /** A follower's run: ends `aborted` when the leader sends nothing for a while (see `touch`). */
  idle?: Subscription;
  /**
   * A follower's frames being handled (a push being applied, say): its end is recorded once
   * they are through, so what they store counts, reloads the digest and reaches recovery.
   */
  handling?: Set<Promise<unknown>>;
}

const newId = (): string => randomBytes(16).toString('hex');

/** Runs queued in a row after runs that ended with differences left without an outcome. */
const MAX_FOLLOW_UPS = 3;

/**
 * Default budget of one history frame's JSON. Frames stay below 128 KiB (base64url adds a third):
 * V8 allocates larger strings one by one in their own pages, and on a virtual machine whose page
 * faults are slow, building, encoding and decoding 800 KB frames took a sixth of both sides' main
 * threads during a rebuild. A push is sent in as many frames as it needs and applied as one.
 */
const DEFAULT_MAX_BATCH_BYTES = 90_000;

/** Rough JSON size of a signed command in a frame. */
const commandBytes = (c: SignedCommand): number =>
  c.request.length + c.response.length + c.proposer.length + 64;

export function createChannelSync(options: ChannelSyncOptions, deps: ChannelSyncDeps): ChannelSync {
  const { me, peer, store } = deps;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const pageSize = options.pageSize ?? DEFAULT_SYNC_PAGE_SIZE;
  const batchObjects = options.batchObjects ?? 200;
  const maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024;
  // A frame is the base64url of its JSON (4/3) plus the JWS header, signature and envelope.
  const maxObjectBytes = Math.floor(((maxFrameBytes - 1024) * 3) / 4);
  const maxBatchBytes = Math.min(options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, maxObjectBytes);
  const window = options.window ?? 4;
  const maxPushHoldBytes = options.maxPushHoldBytes ?? 32 * 1024 * 1024;
  const responseTimeoutMs = options.responseTimeoutMs ?? 30_000;
  const parties = { me, peer, myKey: deps.myKey.publicKey, peerKey: deps.peerKey };
  const applyDeps = {
    parties,
    isServer: deps.isServer,
    store,
    exclusive: deps.exclusive,
    isPending: deps.isPending,
    dropPending: deps.dropPending,
    ...(deps.verifier ? { verifier: deps.verifier } : {}),
  };

  const summary = deps.summary ?? (() => openObjectsSummary(store, peer, pageSize));
  const events = new Subject<ResyncEvent>();
  const waiters = new Map<string, Waiter>();
  const runs = new Map<string, RunState>();
  let link: SyncLink | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  /** Resolves when `close()` starts. */
  let markClosed: () => void = () => undefined;
  const whenClosed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  /** Run records being written (`finishRun`): `close()` waits for them. */
  const finishing = new Set<Promise<void>>();
  /** Run records being created (`startRun`): `close()` waits for them. */
  const starts = new Set<Promise<void>>();
  /** Wakes whoever waits for the peer's runs here to end (see {@link peerRunsEnded}). */
  let wakeOnFollowerEnd: Array<() => void> = [];
  /** Run ids of the peer's `SyncBegin`s being started here (their record is being created). */
  const beginning = new Set<string>();
  /** The history answer being sent (one at a time, see `answerHistory`). */
  let answering: Promise<void> = Promise.resolve();
  let requestSeq = 0;
  /** Runs of mine whose `SyncError` said the peer's store failed: the next run backs off. */
  const backoff = createRunBackoff({ scheduler, ...options.storeFailureBackoff });
  const storeFailedRuns = new Set<string>();

  // Leader runs: one at a time; requests made meanwhile merge into the next.
  let active: Promise<ResyncRunResult> | undefined;
  interface Queued {
    reason: string;
    scope: Set<string> | null;
    promise: Promise<ResyncRunResult>;
  }
  let queued: Queued | undefined;
  /** Runs queued in a row because the one before ended incomplete (see `followUp`). */
  let followUps = 0;
  /** Verified frames go to `onFrame` in the order they arrived (see `handleFrame`). */
  let inbound: Promise<unknown> = Promise.resolve();

  const now = (): number => scheduler.now();

  function emitRun(
    type: 'resync_started' | 'resync_progress' | 'resync_finished',
    run: RunState,
    extra = {},
  ): void {
    events.next({
      type,
      peer,
      runId: run.runId,
      role: run.role,
      reason: run.reason,
      phase: run.phase,
      done: run.done,
      total: run.total,
      ...run.counters,
      atMs: now(),
      ...extra,
    });
  }

  /** Parts of pushes not applied yet (until their last part), by `run_id:seq`; bounded in bytes. */
  const pushParts = new Map<string, { objects: ObjectHistory[]; bytes: number }>();
  let heldBytes = 0;

  function dropPushParts(): void {
    pushParts.clear();
    heldBytes = 0;
  }

  /** Rejects every answer waited for (or those whose key `which` picks). */
  function abortAll(err: ParleyError, which: (key: string) => boolean = () => true): void {
    for (const [key, w] of [...waiters]) {
      if (!which(key)) continue;
      waiters.delete(key);
      w.timer.unsubscribe();
      w.reject(err);
    }
  }

  /** Signs and sends a frame on the live link, waiting out backpressure. */
  async function send(frame: SyncFrame, run?: RunState): Promise<void> {
    if (closed) throw new ParleyError('SYNC_ABORTED', 'closed');
    const jws = await signSyncFrame(frame, deps.myKey);
    const live = link;
    if (!live) throw new ParleyError('SYNC_ABORTED', 'no connection');
    // Never send what the peer's transport would close the connection for (1009).
    if (jws.length > maxFrameBytes) {
      throw new ParleyError('SYNC_HISTORY_TOO_LARGE', `a ${frame._ObjectType} frame of ${jws.length} bytes`);
    }
    if (!live.send(jws)) {
      if (live.state !== 'open' || link !== live) throw new ParleyError('SYNC_ABORTED', 'connection closed');
      // Backpressure: `send` refuses above the high-water mark and `writable` waits for the
      // low one, so the frame fits now unless the socket is closing (a closing socket is
      // "writable" at once: looping here would spin and starve the close).
      await live.writable();
      if (link !== live || !live.send(jws)) throw new ParleyError('SYNC_ABORTED', 'connection closed');
    }
    if (run) run.counters.bytesSent += jws.length;
  }

  /** Registers a waiter for the answer keyed `key`, then sends `frames` (one, or parts in order). */
  function ask<T extends SyncFrame>(
    key: string,
    frames: SyncFrame | readonly SyncFrame[],
    run?: RunState,
    multi = false,
  ): Promise<T> {
    const parts: readonly SyncFrame[] = Array.isArray(frames) ? frames : [frames as SyncFrame];
    const what = parts[0]?._ObjectType ?? 'frame';
    // Closed: no waiter (and no timer) may outlive the close.
    if (closed) return Promise.reject(new ParleyError('SYNC_ABORTED', 'closed'));
    const answer = new Promise<T>((resolve, reject) => {
      const w: Waiter = {
        resolve: resolve as (f: SyncFrame) => void,
        reject,
        timer: timer(responseTimeoutMs, scheduler).subscribe(() => {
          waiters.delete(key);
          reject(new ParleyError('SYNC_TIMEOUT', `no answer to ${what}`));
        }),
      };
      if (multi) {
        w.parts = new Map();
        // Each object asked for fits in a frame of its own: an answer past that is not honest,
        // and is not held (memory stays bounded by what this node asked for).
        const asked = parts[0]?._ObjectType === 'SyncGetHistory' ? parts[0].wants.length : MAX_SYNC_PAGE;
        w.heldBytes = 0;
        w.maxBytes = (asked + 1) * maxFrameBytes;
      }
      waiters.set(key, w);
    });
    if (run) run.counters.rounds++;
    (async () => {
      for (const part of parts) await send(part, run);
    })().catch((err: unknown) => {
      const w = waiters.get(key);
      if (w) {
        waiters.delete(key);
        w.timer.unsubscribe();
        w.reject(err);
      }
    });
    return answer;
  }

  function settle(key: string, frame: SyncFrame, bytes = 0): boolean {
    const w = waiters.get(key);
    if (!w) return false;
    if (w.parts && frame._ObjectType === 'SyncHistory') {
      w.heldBytes = (w.heldBytes ?? 0) + bytes;
      if (w.heldBytes > (w.maxBytes ?? Number.POSITIVE_INFINITY)) {
        waiters.delete(key);
        w.timer.unsubscribe();
        w.reject(new ParleyError('PROTOCOL_MALFORMED_FRAME', 'SyncHistory: an answer larger than asked for'));
        return true;
      }
      // Frames are handled in the order they arrive (see `handleFrame`), but the answer is put
      // together by `seq` all the same: it never resolves with a part missing.
      if (!w.parts.has(frame.seq)) w.parts.set(frame.seq, frame);
      if (frame.last) w.lastSeq = frame.seq;
      if (w.lastSeq === undefined) return true;
      const ordered: SyncHistory[] = [];
      for (let seq = 0; seq <= w.lastSeq; seq++) {
        const part = w.parts.get(seq);
        if (!part) return true;
        ordered.push(part);
      }
      const merged: SyncHistory = { ...ordered.at(-1)!, objects: ordered.flatMap((p) => p.objects) };
      waiters.delete(key);
      w.timer.unsubscribe();
      w.resolve(merged);
      return true;
    }
    waiters.delete(key);
    w.timer.unsubscribe();
    if (frame._ObjectType === 'SyncError') {
      w.reject(new ParleyError(errorCodeOf(frame.code), frame.message));
    } else {
      w.resolve(frame);
    }
    return true;
  }

  // ---------------------------------------------------------------- histories out

  function signedOf(record: CommandRecord): SignedCommand {
    return {
      proposer: record.direction === 'outbound' ? me : peer,
      request: record.requestJws,
      response: record.responseJws,
    };
  }

  /**
   * This node's history of an object for a peer that holds `after` (null: all of it). A fork
   * (`after` unknown here) is answered per the role rule: the server sends its whole branch as
   * `replace`, the client answers `yield`.
   */
  async function historyFor(
    referenceId: string,
    after: string | null,
    prefetched?: CommandRecord[],
  ): Promise<ObjectHistory> {
    const log = prefetched ?? (await store.history(peer, referenceId));
    const successes = log.filter((r) => r.status === 'success');
    if (successes.length === 0)
      return { reference_id: referenceId, kind: 'missing', base: null, commands: [] };
    const failures = log.filter((r) => r.status === 'failure');
    if (after === null) {
      return { reference_id: referenceId, kind: 'history', base: null, commands: log.map(signedOf) };
    }
    const at = successes.findIndex((r) => r.writeVersion === after);
    if (at >= 0) {
      return {
        reference_id: referenceId,
        kind: 'history',
        base: after,
        commands: [...successes.slice(at + 1), ...failures].map(signedOf),
      };
    }
    if (deps.isServer) {
      return { reference_id: referenceId, kind: 'replace', base: null, commands: log.map(signedOf) };
    }
    return { reference_id: referenceId, kind: 'yield', base: null, commands: [] };
  }

  const historyBytes = (h: ObjectHistory): number => h.commands.reduce((n, c) => n + commandBytes(c), 256);

  /**
   * The history itself, or a `too_large` entry in its place when it cannot fit in one frame
   * (PROTOCOL.md §7.5): the receiver stores nothing of it and reports `SYNC_HISTORY_TOO_LARGE`.
   */
  function sendable(history: ObjectHistory): ObjectHistory {
    if (history.commands.length === 0 || historyBytes(history) <= maxObjectBytes) return history;
    return { reference_id: history.reference_id, kind: 'too_large', base: null, commands: [] };
  }

  /** Splits histories into frames of at most `maxBatchBytes` (a larger history in a frame of its own). */
  function pack(histories: ObjectHistory[]): ObjectHistory[][] {
    const frames: ObjectHistory[][] = [];
    let current: ObjectHistory[] = [];
    let bytes = 0;
    for (const h of histories) {
      const size = historyBytes(h);
      if (current.length > 0 && bytes + size > maxBatchBytes) {
        frames.push(current);
        current = [];
        bytes = 0;
      }
      current.push(h);
      bytes += size;
    }
    if (current.length > 0) frames.push(current);
    return frames;
  }

  /**
   * Pushes `objects` as one push: frames of at most `maxBatchBytes` with the same `seq`, `last`
   * on the final one; the peer applies them together and answers once (`SyncApplied`).
   */
  async function push(run: RunState, objects: ObjectHistory[]): Promise<SyncApplied> {
    const seq = requestSeq++;
    const parts = pack(objects);
    // One waiter from before the first part: a follower may answer before the last one (when
    // the parts pass what it holds, `maxPushHoldBytes`).
    return ask<SyncApplied>(
      `push:${run.runId}:${seq}`,
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
      run,
    );
  }

  // ---------------------------------------------------------------- histories in

  function report(batch: AppliedBatch, runId: string | null, run?: RunState): void {
    for (const s of batch.stored) {
      events.next({ type: 'object_rebuilt', peer, referenceId: s.referenceId, from: s.from, head: s.head });
    }
    for (const r of batch.results) {
      if (r.outcome === 'rejected') {
        const code = r.code ?? 'SYNC_INVALID_HISTORY';
        events.next({ type: 'history_rejected', peer, referenceId: r.reference_id, code, runId });
        run?.rejected.push({ referenceId: r.reference_id, code });
      }
    }
    for (const f of batch.forks) reportFork(f, run);
    if (run) {
      run.counters.objectsReceived += batch.stored.length;
      for (const r of batch.results) tally(run, r.outcome);
    }
  }

  function tally(run: RunState, outcome: ApplyOutcome): void {
    run.results[outcome] = (run.results[outcome] ?? 0) + 1;
  }

  /** Records the objects of `sent` (pushed or asked for) that no result in `results` names. */
  function unsettledOf(
    run: RunState,
    sent: ReadonlyArray<{ reference_id: string }>,
    results: ReadonlyArray<{ reference_id: string }>,
  ): void {
    const settledRefs = new Set(results.map((r) => r.reference_id));
    for (const o of sent) if (!settledRefs.has(o.reference_id)) run.unsettled.push(o.reference_id);
  }

  function reportFork(f: ForkResolution, run?: RunState): void {
    const droppedCids = f.dropped.map((d) => d.cid);
    events.next({
      type: 'fork_lost',
      peer,
      referenceId: f.referenceId,
      keep: f.keep,
      droppedCids,
      droppedPending: f.droppedOutbox.map((o) => o.cid),
    });
    // The losing branch stays on record: its signed entries go into the run's detail.
    run?.forks.push({
      referenceId: f.referenceId,
      keep: f.keep,
      dropped: f.dropped.map((d) => `${d.requestJws} ${d.responseJws}`),
    });
  }

  // ---------------------------------------------------------------- follower side

  function onFrame(frame: SyncFrame, bytes: number): Promise<void> {
    const runId = 'run_id' in frame ? frame.run_id : null;
    const run = runId ? runs.get(runId) : undefined;
    if (run) {
      run.counters.bytesReceived += bytes;
      touch(run);
    }
    const work = handleVerified(frame, bytes, run);
    // The end of a follower's run waits for its other frames in hand (not for the SyncEnd that
    // ends it: that would wait for itself).
    if (run?.role === 'follower' && frame._ObjectType !== 'SyncEnd') {
      run.handling ??= new Set();
      const handling = run.handling;
      const settled = work.catch(() => undefined);
      handling.add(settled);
      void settled.finally(() => handling.delete(settled));
    }
    return work;
  }

  async function handleVerified(frame: SyncFrame, bytes: number, run: RunState | undefined): Promise<void> {
    switch (frame._ObjectType) {
      case 'SyncBegin': {
        // A run id already going or starting here (the peer's or mine) is not a new run.
        if (run || beginning.has(frame.run_id)) return;
        beginning.add(frame.run_id);
        let state: RunState;
        let mine: OpenObjectsSummary;
        try {
          mine = await summary();
          state = await startRun(frame.run_id, 'follower', frame.reason);
        } finally {
          beginning.delete(frame.run_id);
        }
        touch(state);
        state.counters.bytesReceived += bytes;
        state.counters.rounds++;
        await send({ _ObjectType: 'SyncBeginAck', run_id: frame.run_id, open_objects: mine }, state);
        // Equal summaries: the leader stops here too, without another frame.
        if (frame.method === 'list' && sameSummary(frame.open_objects, mine))
          await finishRun(state, 'in_sync');
        return;
      }
      case 'SyncListRequest': {
        const page = await store.openObjects(peer, frame.after, frame.limit);
        const entries: SyncEntry[] = page.map((h) => ({
          reference_id: h.referenceId,
          head: h.headVersion,
          version_count: h.versionCount,
        }));
        const next = page.length === frame.limit ? page[page.length - 1]!.referenceId : null;
        if (run) run.counters.rounds++;
        await send({ _ObjectType: 'SyncList', run_id: frame.run_id, entries, next }, run);
        return;
      }
      case 'SyncGetObject': {
        const head = (await store.heads(peer, [frame.reference_id])).get(frame.reference_id);
        let payment: Record<string, unknown> | null = null;
        if (head) {
          const versions = await store.versions(peer, frame.reference_id);
          const last = versions.at(-1);
          payment = last ? (JSON.parse(last.payment) as Record<string, unknown>) : null;
        }
        await send({
          _ObjectType: 'SyncObject',
          request_id: frame.request_id,
          reference_id: frame.reference_id,
          found: head !== undefined,
          head: head?.headVersion ?? null,
          version_count: head?.versionCount ?? 0,
          open: head?.open ?? false,
          payment,
        });
        return;
      }
      case 'SyncGetHistory': {
        await answerHistory(frame, run);
        return;
      }
      case 'SyncHistory': {
        if (frame.request_id !== null) {
          settle(`hist:${frame.request_id}`, frame, bytes);
          return;
        }
        // A push: verify, apply, answer with one result per object. A push may come in parts
        // (same run and seq, `last` on the final one): applied together, in one transaction,
        // when the last part is in, or at once when the parts held pass `maxPushHoldBytes`.
        const key = `${frame.run_id}:${frame.seq}`;
        const held = pushParts.get(key);
        if (!frame.last && heldBytes + bytes <= maxPushHoldBytes) {
          const entry = held ?? { objects: [], bytes: 0 };
          entry.objects.push(...frame.objects);
          entry.bytes += bytes;
          pushParts.set(key, entry);
          heldBytes += bytes;
          return;
        }
        if (held) {
          pushParts.delete(key);
          heldBytes -= held.bytes;
        }
        const objects = held ? [...held.objects, ...frame.objects] : frame.objects;
        const pushed = objects.filter((o) => o.kind !== 'missing' && o.kind !== 'yield');
        const batch = await applyHistories(pushed, applyDeps);
        report(batch, frame.run_id, run);
        // Stored outside any run here (its end came first): the digest is reloaded now.
        if (!run && batch.stored.length > 0 && deps.afterApply && !closed) {
          await deps.afterApply().catch(() => undefined);
        }
        // What was applied before a store failure is answered (the rest has no result: the
        // leader's run counts it unsettled and runs again); the failure is then reported here.
        if (frame.run_id !== null) {
          if (run) run.counters.rounds++;
          await send(
            { _ObjectType: 'SyncApplied', run_id: frame.run_id, seq: frame.seq, results: batch.results },
            run,
          );
          // Answered with what was applied: the failure is only reported here (a run-level
          // SyncError on top would fail the leader's whole run instead of leaving it partial).
          if (batch.error !== undefined) {
            const code = isParleyError(batch.error) ? batch.error.code : 'INTERNAL';
            events.next({
              type: 'sync_frame_failed',
              peer,
              frameType: 'SyncHistory',
              runId: frame.run_id,
              code,
            });
          }
          return;
        }
        if (batch.error !== undefined) throw batch.error;
        return;
      }
      case 'SyncEnd': {
        if (run && run.role === 'follower') await finishRun(run, frame.outcome);
        return;
      }
      case 'SyncBeginAck':
        settle(`begin:${frame.run_id}`, frame);
        return;
      case 'SyncList':
        settle(`list:${frame.run_id}`, frame);
        return;
      case 'SyncApplied':
        settle(`push:${frame.run_id}:${frame.seq}`, frame);
        return;
      case 'SyncObject':
        settle(`obj:${frame.request_id}`, frame);
        return;
      case 'SyncError': {
        if (frame.request_id !== null) {
          if (settle(`hist:${frame.request_id}`, frame) || settle(`obj:${frame.request_id}`, frame)) return;
        }
        // About a run of mine as a whole (the follower could not handle its begin, a list page or
        // a push): whatever of it waits here fails now.
        if (frame.request_id === null && frame.reference_id === null && frame.run_id !== null) {
          if (runs.get(frame.run_id)?.role === 'leader') {
            // Its begin, list pages and pushes (keys `begin:RUN`, `list:RUN`, `push:RUN:SEQ`).
            const runId = frame.run_id;
            if (isPeerStoreFailure(frame.code)) storeFailedRuns.add(runId);
            abortAll(new ParleyError(errorCodeOf(frame.code), frame.message), (key) => {
              const [kind, id] = key.split(':');
              return id === runId && (kind === 'begin' || kind === 'list' || kind === 'push');
            });
          }
          return;
        }
        if (frame.reference_id !== null) {
          events.next({
            type: 'history_rejected',
            peer,
            referenceId: frame.reference_id,
            code: frame.code,
            runId: frame.run_id,
          });
        }
        return;
      }
    }
  }

  /**
   * Answers a `SyncGetHistory`, one answer at a time per channel, streamed: each object once
   * (a request may repeat one), read and sent frame by frame, so an answer holds at most two
   * frames' histories whatever it asks for, and many requests at once wait their turn instead of
   * each holding its own.
   */
  function answerHistory(frame: SyncGetHistory, run: RunState | undefined): Promise<void> {
    // The connection it was asked on: once another replaced it, nobody waits for the answer.
    const origin = link;
    const turn = answering.then(() => streamHistory(frame, run, origin));
    answering = turn.catch(() => undefined);
    return turn;
  }

  async function streamHistory(
    frame: SyncGetHistory,
    run: RunState | undefined,
    origin: SyncLink | undefined,
  ): Promise<void> {
    const stillWanted = (): void => {
      if (link !== origin) throw new ParleyError('SYNC_ABORTED', 'connection replaced');
    };
    const seen = new Set<string>();
    const wants = frame.wants.filter((w) => !seen.has(w.reference_id) && seen.add(w.reference_id));
    let seq = 0;
    const emit = async (objects: ObjectHistory[], last: boolean): Promise<void> => {
      stillWanted();
      if (run) run.counters.objectsSent += objects.filter((o) => o.commands.length > 0).length;
      await send(
        {
          _ObjectType: 'SyncHistory',
          request_id: frame.request_id,
          run_id: frame.run_id,
          seq: seq++,
          objects,
          last,
        },
        run,
      );
    };
    // A full frame is held until the next one starts: only then is it known not to be the last.
    let held: ObjectHistory[] | undefined;
    let current: ObjectHistory[] = [];
    let bytes = 0;
    for (const want of wants) {
      stillWanted();
      const history = sendable(await historyFor(want.reference_id, want.after));
      if (frame.run_id === null && wants.length === 1 && history.kind === 'missing') {
        await send({
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
      if (current.length > 0 && bytes + size > maxBatchBytes) {
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

  // ---------------------------------------------------------------- runs

  async function startRun(runId: string, role: ResyncRole, reason: string): Promise<RunState> {
    if (closed) throw new ParleyError('SYNC_ABORTED', 'closed');
    const startedAtMs = now();
    const starting = store.startRun({ peer, reason, startedAtMs, detail: { runId, role } });
    // `close()` waits for a run record being created, then ends it `aborted`.
    const tracked = starting.then(
      () => undefined,
      () => undefined,
    );
    starts.add(tracked);
    void tracked.finally(() => starts.delete(tracked));
    const recordId = await starting;
    const state: RunState = {
      runId,
      recordId,
      role,
      reason,
      startedAtMs,
      counters: { objectsSent: 0, objectsReceived: 0, bytesSent: 0, bytesReceived: 0, rounds: 0 },
      done: 0,
      total: 0,
      phase: 'compare',
      rejected: [],
      forks: [],
      results: {},
      unsettled: [],
    };
    runs.set(runId, state);
    emitRun('resync_started', state);
    return state;
  }

  /** The connection went: its answers, push parts and the peer's runs here end with it. */
  function linkGone(): void {
    dropPushParts();
    abortAll(new ParleyError('SYNC_ABORTED', 'connection closed'));
    for (const run of [...runs.values()]) {
      if (run.role === 'follower') void finishRun(run, 'aborted', 'SYNC_ABORTED');
    }
  }

  /**
   * A verified frame whose handling failed here (not the peer's fault, so the connection stays):
   * reported, and a request the peer waits on by its `request_id` is answered with `SyncError`.
   * The link closing meanwhile is not a failure to report.
   */
  function failedHere(frame: SyncFrame, err: unknown): void {
    if (closed || isParleyError(err, 'SYNC_ABORTED')) return;
    const code = isParleyError(err) ? err.code : 'INTERNAL';
    const runId = 'run_id' in frame ? frame.run_id : null;
    events.next({ type: 'sync_frame_failed', peer, frameType: frame._ObjectType, runId, code });
    const requestId =
      frame._ObjectType === 'SyncGetHistory' || frame._ObjectType === 'SyncGetObject'
        ? frame.request_id
        : null;
    // A request of a run without its own id (begin, list page, push): the error names the run.
    const aboutRun =
      frame._ObjectType === 'SyncBegin' ||
      frame._ObjectType === 'SyncListRequest' ||
      (frame._ObjectType === 'SyncHistory' && frame.request_id === null);
    if (requestId === null && !(aboutRun && runId !== null)) return;
    void send({
      _ObjectType: 'SyncError',
      request_id: requestId,
      run_id: runId,
      reference_id: frame._ObjectType === 'SyncGetObject' ? frame.reference_id : null,
      code,
      message: `${code}: the request could not be answered here`,
    }).catch(() => undefined);
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
    run.idle = timer(2 * responseTimeoutMs, scheduler).subscribe(() => {
      void finishRun(run, 'aborted', 'SYNC_TIMEOUT');
    });
  }

  function finishRun(run: RunState, outcome: SyncOutcome, error?: string): Promise<void> {
    run.idle?.unsubscribe();
    if (runs.get(run.runId) !== run) return Promise.resolve();
    runs.delete(run.runId);
    if (run.role === 'follower') wakeFollowerWaiters();
    const done = recordEnd(run, outcome, error);
    finishing.add(done);
    void done.finally(() => finishing.delete(done));
    return done;
  }

  async function recordEnd(run: RunState, outcome: SyncOutcome, error?: string): Promise<void> {
    // (Not once closing: `close()` never waits for the peer or the socket.)
    while (!closed && run.handling !== undefined && run.handling.size > 0) {
      await Promise.race([Promise.allSettled([...run.handling]), whenClosed]);
    }
    run.phase = 'done';
    // At close the summary is not reloaded: the channel is going away (and its receiving order
    // may never run again).
    if (run.counters.objectsReceived > 0 && deps.afterApply && !closed) {
      await deps.afterApply().catch(() => undefined);
    }
    await store
      .finishRun(run.recordId, {
        ...run.counters,
        finishedAtMs: now(),
        outcome,
        detail: {
          runId: run.runId,
          role: run.role,
          differences: run.total,
          rejected: run.rejected,
          forks: run.forks,
          results: run.results,
          ...(run.unsettled.length > 0
            ? { unsettled: run.unsettled.length, unsettledSample: run.unsettled.slice(0, 20) }
            : {}),
          ...(error ? { error } : {}),
        },
      })
      .catch(() => undefined); // the run's record is best effort once the store is closing
    emitRun('resync_finished', run, error ? { outcome, error } : { outcome });
  }

  /** Differences in byte order of reference id: the follower's list merged with this node's. */
  async function* differences(
    run: RunState,
    scope: Set<string> | null,
  ): AsyncGenerator<{ ref: string; remote?: SyncEntry }> {
    if (scope) {
      for (const ref of [...scope].sort(compareIds)) {
        const id = `${run.runId.slice(0, 16)}-${requestSeq++}`;
        const o = await ask<SyncObject>(
          `obj:${id}`,
          { _ObjectType: 'SyncGetObject', request_id: id, reference_id: ref },
          run,
        );
        const local = (await store.heads(peer, [ref])).get(ref);
        if (o.found && local?.headVersion === o.head) continue;
        if (!o.found && !local) continue;
        yield o.found
          ? { ref, remote: { reference_id: ref, head: o.head!, version_count: o.version_count } }
          : { ref };
      }
      return;
    }
    let remote: SyncEntry[] = [];
    let remoteAt = 0;
    let pendingPage: Promise<{ entries: SyncEntry[]; next: string | null }> | undefined = fetchPage(null);
    let local: ObjectHead[] = [];
    let localAt = 0;
    let localAfter: string | null = null;
    let localDone = false;

    function fetchPage(after: string | null): Promise<{ entries: SyncEntry[]; next: string | null }> {
      const page = ask<SyncList>(
        `list:${run.runId}`,
        { _ObjectType: 'SyncListRequest', run_id: run.runId, after, limit: pageSize },
        run,
      ).then((answer) => checkedPage(answer, after, pageSize));
      // A prefetched page is awaited only when the merge reaches it: a run that stops first (the
      // link closed, a batch failed) never awaits it, and its rejection must not go unhandled
      // (that ends the process). Whoever awaits it still gets the rejection.
      page.catch(() => undefined);
      return page;
    }
    async function remotePeek(): Promise<SyncEntry | undefined> {
      while (remoteAt >= remote.length) {
        if (!pendingPage) return undefined;
        const page = await pendingPage;
        remote = page.entries;
        remoteAt = 0;
        // The next page is asked for while this one is merged.
        pendingPage = page.next === null ? undefined : fetchPage(page.next);
      }
      return remote[remoteAt];
    }
    async function localPeek(): Promise<ObjectHead | undefined> {
      while (localAt >= local.length) {
        if (localDone) return undefined;
        local = await store.openObjects(peer, localAfter, pageSize);
        localAt = 0;
        if (local.length < pageSize) localDone = true;
        if (local.length > 0) localAfter = local[local.length - 1]!.referenceId;
      }
      return local[localAt];
    }
    for (;;) {
      const r = await remotePeek();
      const l = await localPeek();
      if (!r && !l) return;
      const order = !r ? -1 : !l ? 1 : compareIds(l.referenceId, r.reference_id);
      if (order < 0) {
        localAt++;
        yield { ref: l!.referenceId };
      } else if (order > 0) {
        remoteAt++;
        yield { ref: r!.reference_id, remote: r! };
      } else {
        localAt++;
        remoteAt++;
        if (l!.headVersion !== r!.head) yield { ref: r!.reference_id, remote: r! };
      }
    }
  }

  /**
   * A list page as the follower must send it: at most `limit` entries, in strictly increasing
   * order after `after`, and `next` either null or its last entry. Anything else (a peer that
   * repeats a cursor would keep the run going forever) fails the run.
   * @throws ParleyError `PROTOCOL_MALFORMED_FRAME`
   */
  function checkedPage(
    page: { entries: SyncEntry[]; next: string | null },
    after: string | null,
    limit: number,
  ): { entries: SyncEntry[]; next: string | null } {
    const bad = (why: string) => new ParleyError('PROTOCOL_MALFORMED_FRAME', `SyncList: ${why}`);
    if (page.entries.length > limit) throw bad(`${page.entries.length} entries, ${limit} asked for`);
    let previous = after;
    for (const entry of page.entries) {
      if (previous !== null && compareIds(entry.reference_id, previous) <= 0) {
        throw bad(`${entry.reference_id} is not after ${previous}`);
      }
      previous = entry.reference_id;
    }
    if (page.next !== null && (page.entries.length === 0 || page.next !== previous)) {
      throw bad('next is not the last entry of the page');
    }
    return page;
  }

  /** Handles one batch of differences: decide, push and fetch, then the follow-ups. */
  async function handleBatch(
    run: RunState,
    diffs: Array<{ ref: string; remote?: SyncEntry }>,
    depth = 0,
  ): Promise<void> {
    const refs = diffs.map((d) => d.ref);
    const heads = await store.heads(peer, refs);
    const pushes: ObjectHistory[] = [];
    const wants: SyncWant[] = [];
    // Whole histories to push (objects the peer does not list), read in one go when the store can.
    const whole = diffs.filter((d) => !d.remote && heads.has(d.ref)).map((d) => d.ref);
    const logs = store.histories && whole.length > 1 ? await store.histories(peer, whole) : undefined;
    for (const d of diffs) {
      const local = heads.get(d.ref);
      if (!local) {
        if (d.remote) wants.push({ reference_id: d.ref, after: null });
        continue;
      }
      if (!d.remote) {
        pushes.push(sendable(await historyFor(d.ref, null, logs?.get(d.ref))));
        continue;
      }
      if (d.remote.head === local.headVersion) continue;
      const versions = await store.versions(peer, d.ref);
      const at = versions.findIndex((v) => v.version === d.remote!.head);
      if (at >= 0 && at < versions.length - 1) pushes.push(sendable(await historyFor(d.ref, d.remote.head)));
      else wants.push({ reference_id: d.ref, after: local.headVersion });
    }

    const followUps: Array<{ ref: string; remote?: SyncEntry }> = [];
    const forcePush: ObjectHistory[] = [];
    const work: Array<Promise<void>> = [];
    const pushable = pushes.filter((p) => p.kind === 'history' || p.kind === 'too_large');
    if (pushable.length > 0) {
      work.push(
        (async () => {
          run.counters.objectsSent += pushable.filter((o) => o.commands.length > 0).length;
          const answer = await push(run, pushable);
          unsettledOf(run, pushable, answer.results);
          for (const r of answer.results) {
            tally(run, r.outcome);
            if (r.outcome === 'rejected')
              run.rejected.push({ referenceId: r.reference_id, code: r.code ?? 'SYNC_INVALID_HISTORY' });
            else if (r.outcome === 'replaced')
              events.next({ type: 'fork_won', peer, referenceId: r.reference_id });
            else if ((r.outcome === 'ahead' || r.outcome === 'fork') && r.head !== null) {
              followUps.push({
                ref: r.reference_id,
                remote: { reference_id: r.reference_id, head: r.head, version_count: 0 },
              });
            }
          }
        })(),
      );
    }
    if (wants.length > 0) {
      work.push(
        (async () => {
          const id = `${run.runId.slice(0, 16)}-${requestSeq++}`;
          const answer = await ask<SyncHistory>(
            `hist:${id}`,
            { _ObjectType: 'SyncGetHistory', request_id: id, run_id: run.runId, wants },
            run,
            true,
          );
          // Only the objects asked for, each once: anything else in the answer is ignored.
          const asked = new Set(wants.map((w) => w.reference_id));
          const objects = answer.objects.filter((o) => asked.delete(o.reference_id));
          for (const o of objects) {
            // The peer yields a fork to this node (the protocol server): push our whole branch.
            if (o.kind === 'yield' && deps.isServer) {
              const mine = await historyFor(o.reference_id, null);
              if (mine.kind === 'history') forcePush.push(sendable({ ...mine, kind: 'replace' }));
            }
          }
          const batch = await applyHistories(objects, applyDeps);
          report(batch, run.runId, run);
          // Every object asked for ends with an outcome here, or the run is not complete.
          unsettledOf(run, wants, batch.results);
          if (batch.error !== undefined) throw batch.error;
        })(),
      );
    }
    const settled = await Promise.allSettled(work);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    if (forcePush.length > 0) {
      run.counters.objectsSent += forcePush.filter((o) => o.commands.length > 0).length;
      const answer = await push(run, forcePush);
      unsettledOf(run, forcePush, answer.results);
      for (const r of answer.results) {
        tally(run, r.outcome);
        if (r.outcome === 'replaced') events.next({ type: 'fork_won', peer, referenceId: r.reference_id });
        if (r.outcome === 'rejected')
          run.rejected.push({ referenceId: r.reference_id, code: r.code ?? 'SYNC_INVALID_HISTORY' });
      }
    }
    if (followUps.length > 0 && depth < 2) await handleBatch(run, followUps, depth + 1);
  }

  function wakeFollowerWaiters(): void {
    const waiting = wakeOnFollowerEnd;
    wakeOnFollowerEnd = [];
    for (const wake of waiting) wake();
  }

  /**
   * Waits while a run the peer leads is in progress here. Both sides repairing the same set at
   * once only duplicates the work: a wiped node's `diverged` run would fetch objects the peer's
   * run is about to push (measured: 9 % of a 100,000-object rebuild moved twice), and the
   * peer's push then finds them `known`. Once the peer's run ends, this one usually finds equal
   * summaries. A peer's run that sent nothing for `responseTimeoutMs` does not hold this one back.
   */
  async function peerRunsEnded(): Promise<void> {
    const received = (): number =>
      [...runs.values()].reduce((n, r) => (r.role === 'follower' ? n + r.counters.bytesReceived : n), 0);
    while (!closed && [...runs.values()].some((r) => r.role === 'follower')) {
      const before = received();
      const ended = await new Promise<boolean>((resolve) => {
        const quiet = timer(responseTimeoutMs, scheduler).subscribe(() => resolve(false));
        wakeOnFollowerEnd.push(() => {
          quiet.unsubscribe();
          resolve(true);
        });
      });
      if (!ended && received() === before) return;
    }
  }

  /** Tells the follower the run is over, with its outcome (best effort). */
  function sendEnd(run: RunState, outcome: SyncOutcome): Promise<void> {
    return send(
      {
        _ObjectType: 'SyncEnd',
        run_id: run.runId,
        outcome,
        objects_sent: run.counters.objectsSent,
        objects_received: run.counters.objectsReceived,
      },
      run,
    ).catch(() => undefined);
  }

  async function lead(reason: string, scope: Set<string> | null): Promise<ResyncRunResult> {
    if (closed) throw new ParleyError('SYNC_ABORTED', 'closed');
    const { delayMs, failures } = backoff.pending();
    if (delayMs > 0) {
      events.next({ type: 'resync_backoff', peer, reason, delayMs, failures, atMs: now() });
      await backoff.wait(whenClosed);
      if (closed) throw new ParleyError('SYNC_ABORTED', 'closed');
    }
    await peerRunsEnded();
    if (closed) throw new ParleyError('SYNC_ABORTED', 'closed');
    if (link?.state !== 'open') throw new ParleyError('SYNC_ABORTED', 'no connection');
    const run = await startRun(newId(), 'leader', reason);
    try {
      const mine = await summary();
      const ack = await ask<SyncBeginAck>(
        `begin:${run.runId}`,
        {
          _ObjectType: 'SyncBegin',
          run_id: run.runId,
          method: scope ? 'scoped' : 'list',
          reason,
          open_objects: mine,
          ...(scope ? { reference_ids: [...scope] } : {}),
        },
        run,
      );
      backoff.answered();
      if (!scope && sameSummary(mine, ack.open_objects)) {
        await finishRun(run, 'in_sync');
        return result(run, 'in_sync');
      }
      run.phase = 'compare';
      emitRun('resync_progress', run);
      // Batches of differences, at most `window` in flight.
      const inflight = new Set<Promise<void>>();
      let failure: unknown;
      let batch: Array<{ ref: string; remote?: SyncEntry }> = [];
      const flush = async (): Promise<void> => {
        const diffs = batch;
        batch = [];
        const p: Promise<void> = handleBatch(run, diffs).then(
          () => {
            run.done += diffs.length;
            run.phase = 'repair';
            emitRun('resync_progress', run);
          },
          (err: unknown) => {
            failure ??= err;
          },
        );
        const tracked = p.finally(() => inflight.delete(tracked));
        inflight.add(tracked);
        if (inflight.size >= window) await Promise.race(inflight);
      };
      for await (const diff of differences(run, scope)) {
        if (failure) break;
        if (closed) throw new ParleyError('SYNC_ABORTED', 'closed');
        run.total++;
        batch.push(diff);
        if (batch.length >= batchObjects) await flush();
      }
      if (batch.length > 0 && !failure) await flush();
      await Promise.all(inflight);
      if (failure) throw failure;
      // `repaired` only when every difference ended with an outcome, none of them rejected.
      const outcome: SyncOutcome =
        run.total === 0
          ? 'in_sync'
          : run.rejected.length > 0 || run.unsettled.length > 0
            ? 'partial'
            : 'repaired';
      await sendEnd(run, outcome);
      await finishRun(run, outcome);
      storeFailedRuns.delete(run.runId);
      backoff.answered();
      // Differences left without an outcome: another run follows (bounded, see `followUp`).
      if (run.unsettled.length > 0) followUp(scope);
      else followUps = 0;
      return result(run, outcome);
    } catch (err) {
      const aborted = isParleyError(err, 'SYNC_ABORTED') || isParleyError(err, 'SYNC_TIMEOUT');
      const outcome: SyncOutcome = aborted ? 'aborted' : 'failed';
      const code = isParleyError(err) ? err.code : 'INTERNAL';
      // The follower learns the run is over (best effort: the link may be what failed).
      if (link?.state === 'open') await sendEnd(run, outcome);
      await finishRun(run, outcome, code);
      if (storeFailedRuns.delete(run.runId)) backoff.storeFailed();
      // An answer that never came on a live link: the differences are still there.
      if (isParleyError(err, 'SYNC_TIMEOUT') && link?.state === 'open') followUp(scope);
      throw err;
    }
  }

  /**
   * Queues another run after one that ended with differences left (`incomplete`), at most
   * {@link MAX_FOLLOW_UPS} in a row: a peer that keeps answering short does not keep this
   * channel busy forever (heartbeats' `diverged` and the next connect still trigger runs).
   */
  function followUp(scope: Set<string> | null): void {
    if (closed || followUps >= MAX_FOLLOW_UPS) return;
    followUps++;
    schedule('incomplete', scope ? [...scope] : undefined).catch(() => undefined);
  }

  function result(run: RunState, outcome: SyncOutcome): ResyncRunResult {
    return {
      runId: run.runId,
      recordId: run.recordId,
      outcome,
      differences: run.total,
      rejected: run.rejected,
      ...run.counters,
    };
  }

  function schedule(reason: string, scope: readonly string[] | undefined): Promise<ResyncRunResult> {
    if (closed) return Promise.reject(new ParleyError('SYNC_ABORTED', 'closed'));
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
      const p: Promise<ResyncRunResult> = lead(r, s).finally(() => {
        if (active === p) active = undefined;
      });
      active = p;
      return p;
    };
    if (!active) return start(reason, wanted);
    const entry = { reason, scope: wanted } as Queued;
    entry.promise = active
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return start(entry.reason, entry.scope);
      });
    queued = entry;
    return entry.promise;
  }

  const sync: ChannelSync = {
    peer,
    events$: events.asObservable(),
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
    },
    handleFrame(jws, from) {
      if (closed || from !== link) return;
      // Frames are verified concurrently (a pool of threads: a small frame checked on this
      // thread overtakes a large one sent to a worker), but handled in the order they came:
      // the parts of one answer, and a run's frames, keep the peer's order.
      const verified = verifySyncFrame(jws, deps.peerKey, deps.frameVerifier ?? deps.verifier);
      // Its failure is handled on its turn below (not "unhandled" while earlier frames wait).
      verified.catch(() => undefined);
      const turn = inbound.then(() => verified);
      inbound = turn.catch(() => undefined);
      turn.then(
        (frame) => {
          if (closed || from !== link) return;
          return onFrame(frame, jws.length).catch((err: unknown) => failedHere(frame, err));
        },
        (err: unknown) => {
          // The frame itself is bad: the peer's fault, and the connection's end. (A verifier
          // that stopped, at close, is neither.)
          if (isParleyError(err, 'PROTOCOL_BAD_SIGNATURE')) from.close(4401, 'sync frame signature');
          else if (isParleyError(err, 'PROTOCOL_MALFORMED_FRAME') || isParleyError(err, 'PROTOCOL_NOT_JWS')) {
            from.close(4400, 'bad sync frame');
          }
        },
      );
    },
    run: (reason, scope) => schedule(reason, scope),
    async getObject(referenceId) {
      const id = newId();
      return ask<SyncObject>(`obj:${id}`, {
        _ObjectType: 'SyncGetObject',
        request_id: id,
        reference_id: referenceId,
      });
    },
    async getHistory(referenceId) {
      const id = newId();
      const answer = await ask<SyncHistory>(
        `hist:${id}`,
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
      return verifyHistory(history, parties, undefined, deps.verifier);
    },
    close() {
      closing ??= (async () => {
        closed = true;
        markClosed();
        // No frame goes out any more, and the leader's run fails at its next step.
        link = undefined;
        dropPushParts();
        abortAll(new ParleyError('SYNC_ABORTED', 'closed'));
        wakeFollowerWaiters();
        // Only the run records are waited for (store writes): never the peer or the socket.
        await Promise.allSettled([...starts]);
        for (const run of [...runs.values()]) void finishRun(run, 'aborted', 'SYNC_ABORTED');
        await Promise.allSettled([...finishing]);
        events.complete();
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return sync.close();
    },
  };
  return sync;
}

/**
 * A `SYNC_*` code from the wire; `SYNC_ABORTED` for a failure on the peer's side (a code of
 * another family: its store, say), `SYNC_INVALID_HISTORY` for a `SYNC_*` code this build does not know.
 */
function errorCodeOf(code: string): ConstructorParameters<typeof ParleyError>[0] {
  const known = [
    'SYNC_BAD_SIGNATURE',
    'SYNC_BROKEN_CHAIN',
    'SYNC_INVALID_HISTORY',
    'SYNC_UNKNOWN_OBJECT',
    'SYNC_HISTORY_TOO_LARGE',
    'SYNC_FORK',
  ] as const;
  if ((known as readonly string[]).includes(code)) return code as (typeof known)[number];
  // The peer failed on its side (its store, say: `sync_frame_failed` there): try again later.
  if (!code.startsWith('SYNC_')) return 'SYNC_ABORTED';
  return 'SYNC_INVALID_HISTORY';
}
