/**
 * Sends sync frames on the live link and pairs the peer's answers with what waits for them
 * (PROTOCOL.md §7.2): one waiter per {@link AnswerKey}, each with its own time limit, and
 * multi-part history answers put together by `seq` before they resolve.
 */
import { type SchedulerLike, type Subscription, timer } from 'rxjs';
import { ParleyError } from '../errors.js';
import type { PrivateKey } from '../protocol/index.js';
import { MAX_SYNC_PAGE, type SyncFrame, type SyncHistory, signSyncFrame } from '../protocol/sync-frames.js';
import type { ResyncCounters } from './ports.js';
import type { SyncLink } from './types.js';

/** What an answer answers: a run's begin, list page or push, or a request by its id. */
export type AnswerKey =
  | { kind: 'begin'; runId: string }
  | { kind: 'list'; runId: string }
  | { kind: 'push'; runId: string; seq: number }
  | { kind: 'sketch'; runId: string }
  | { kind: 'resolve'; runId: string }
  | { kind: 'object'; requestId: string }
  | { kind: 'history'; requestId: string };

/** Counters a frame sent or asked for adds to (a run's). */
export type FrameCounters = Pick<ResyncCounters, 'bytesSent' | 'rounds'>;

export interface CorrelatorDeps {
  myKey: PrivateKey;
  /** The live link, if any. */
  link(): SyncLink | undefined;
  closed(): boolean;
  scheduler: SchedulerLike;
  /** Largest frame the peer accepts. */
  maxFrameBytes: number;
  responseTimeoutMs: number;
}

export interface Correlator {
  /**
   * Signs and sends a frame on the live link, waiting out backpressure.
   * @throws SYNC_ABORTED (closed, no link, link closed), SYNC_HISTORY_TOO_LARGE (above `maxFrameBytes`)
   */
  send(frame: SyncFrame, counters?: FrameCounters): Promise<void>;
  /**
   * Waits for the answer keyed `key`, then sends `frames` (one, or parts in order). `multi`:
   * the answer is a `SyncHistory` in parts.
   * @throws SYNC_TIMEOUT without an answer in time; SYNC_* of the peer's `SyncError`
   */
  ask<T extends SyncFrame>(
    key: AnswerKey,
    frames: SyncFrame | readonly SyncFrame[],
    counters?: FrameCounters,
    multi?: boolean,
  ): Promise<T>;
  /** Hands an answer (`bytes` long) to its waiter; false when nothing waits for `key`. */
  settle(key: AnswerKey, frame: SyncFrame, bytes?: number): boolean;
  /** Rejects every answer waited for. */
  abortAll(err: ParleyError): void;
  /** Rejects what a run of this node waits for (its begin, list pages, symbols, keys and pushes). */
  abortRun(runId: string, err: ParleyError): void;
}

interface Waiter {
  key: AnswerKey;
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
  heldBytes: number;
  maxBytes: number;
  timer: Subscription;
}

function keyOf(key: AnswerKey): string {
  switch (key.kind) {
    case 'begin':
    case 'list':
    case 'sketch':
    case 'resolve':
      return `${key.kind}:${key.runId}`;
    case 'push':
      return `push:${key.runId}:${key.seq}`;
    case 'object':
    case 'history':
      return `${key.kind}:${key.requestId}`;
  }
}

export function createCorrelator(deps: CorrelatorDeps): Correlator {
  const waiters = new Map<string, Waiter>();

  function take(id: string): Waiter | undefined {
    const w = waiters.get(id);
    if (!w) return undefined;
    waiters.delete(id);
    w.timer.unsubscribe();
    return w;
  }

  async function send(frame: SyncFrame, counters?: FrameCounters): Promise<void> {
    if (deps.closed()) throw new ParleyError('SYNC_ABORTED', 'closed');
    const jws = await signSyncFrame(frame, deps.myKey);
    const live = deps.link();
    if (!live) throw new ParleyError('SYNC_ABORTED', 'no connection');
    // Never send what the peer's transport would close the connection for (1009).
    if (jws.length > deps.maxFrameBytes) {
      throw new ParleyError('SYNC_HISTORY_TOO_LARGE', `a ${frame._ObjectType} frame of ${jws.length} bytes`);
    }
    if (!live.send(jws)) {
      if (live.state !== 'open' || deps.link() !== live)
        throw new ParleyError('SYNC_ABORTED', 'connection closed');
      // Backpressure: `send` refuses above the high-water mark and `writable` waits for the
      // low one, so the frame fits now unless the socket is closing (a closing socket is
      // "writable" at once: looping here would spin and starve the close).
      await live.writable();
      if (deps.link() !== live || !live.send(jws)) throw new ParleyError('SYNC_ABORTED', 'connection closed');
    }
    if (counters) counters.bytesSent += jws.length;
  }

  function ask<T extends SyncFrame>(
    key: AnswerKey,
    frames: SyncFrame | readonly SyncFrame[],
    counters?: FrameCounters,
    multi = false,
  ): Promise<T> {
    const parts: readonly SyncFrame[] = Array.isArray(frames) ? frames : [frames as SyncFrame];
    const what = parts[0]?._ObjectType ?? 'frame';
    const id = keyOf(key);
    // Closed: no waiter (and no timer) may outlive the close.
    if (deps.closed()) return Promise.reject(new ParleyError('SYNC_ABORTED', 'closed'));
    const answer = new Promise<T>((resolve, reject) => {
      // Each object asked for fits in a frame of its own: an answer past that is not honest,
      // and is not held (memory stays bounded by what this node asked for).
      const asked = parts[0]?._ObjectType === 'SyncGetHistory' ? parts[0].wants.length : MAX_SYNC_PAGE;
      waiters.set(id, {
        key,
        resolve: resolve as (f: SyncFrame) => void,
        reject,
        ...(multi ? { parts: new Map() } : {}),
        heldBytes: 0,
        maxBytes: (asked + 1) * deps.maxFrameBytes,
        timer: timer(deps.responseTimeoutMs, deps.scheduler).subscribe(() => {
          waiters.delete(id);
          reject(new ParleyError('SYNC_TIMEOUT', `no answer to ${what}`));
        }),
      });
    });
    if (counters) counters.rounds++;
    (async () => {
      for (const part of parts) await send(part, counters);
    })().catch((err: unknown) => take(id)?.reject(err));
    return answer;
  }

  /** A part of a multi-part answer: resolves the waiter once every part up to the last is in. */
  function addPart(
    id: string,
    w: Waiter & { parts: Map<number, SyncHistory> },
    frame: SyncHistory,
    bytes: number,
  ) {
    w.heldBytes += bytes;
    if (w.heldBytes > w.maxBytes) {
      take(id);
      w.reject(new ParleyError('PROTOCOL_MALFORMED_FRAME', 'SyncHistory: an answer larger than asked for'));
      return;
    }
    // Frames are handled in the order they arrive, but the answer is put together by `seq` all
    // the same: it never resolves with a part missing.
    if (!w.parts.has(frame.seq)) w.parts.set(frame.seq, frame);
    if (frame.last) w.lastSeq = frame.seq;
    if (w.lastSeq === undefined) return;
    const ordered: SyncHistory[] = [];
    for (let seq = 0; seq <= w.lastSeq; seq++) {
      const part = w.parts.get(seq);
      if (!part) return;
      ordered.push(part);
    }
    take(id);
    w.resolve({ ...ordered.at(-1)!, objects: ordered.flatMap((p) => p.objects) });
  }

  function settle(key: AnswerKey, frame: SyncFrame, bytes = 0): boolean {
    const id = keyOf(key);
    const w = waiters.get(id);
    if (!w) return false;
    if (w.parts && frame._ObjectType === 'SyncHistory') {
      addPart(id, w as Waiter & { parts: Map<number, SyncHistory> }, frame, bytes);
      return true;
    }
    take(id);
    if (frame._ObjectType === 'SyncError') w.reject(new ParleyError(errorCodeOf(frame.code), frame.message));
    else w.resolve(frame);
    return true;
  }

  function abortWhere(err: ParleyError, which: (key: AnswerKey) => boolean): void {
    for (const [id, w] of [...waiters]) {
      if (!which(w.key)) continue;
      take(id);
      w.reject(err);
    }
  }

  return {
    send,
    ask,
    settle,
    abortAll: (err) => abortWhere(err, () => true),
    abortRun: (runId, err) => abortWhere(err, (k) => 'runId' in k && k.runId === runId),
  };
}

/**
 * A `SYNC_*` code from the wire; `SYNC_ABORTED` for a failure on the peer's side (a code of
 * another family: its store, say), `SYNC_INVALID_HISTORY` for a `SYNC_*` code this build does not know.
 */
export function errorCodeOf(code: string): ConstructorParameters<typeof ParleyError>[0] {
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
