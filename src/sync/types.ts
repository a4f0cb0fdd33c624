/**
 * The public shapes of resync (PROTOCOL.md §7): the link it uses, the events it reports, its
 * options and collaborators, and the `ChannelSync` object `createChannelSync` returns.
 */
import type { Observable, SchedulerLike } from 'rxjs';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import type { PrivateKey, PublicKey } from '../protocol/index.js';
import type { SyncObject, SyncOutcome } from '../protocol/sync-frames.js';
import type { JwsVerifier } from '../protocol/verify-pool.js';
import type { ResyncCounters, ResyncRole, SyncStore } from './ports.js';
import type { RunBackoffOptions } from './run-backoff.js';
import type { VerifiedHistory } from './verify-history.js';

/** The live connection as resync uses it. */
export interface SyncLink {
  /** Queue a frame; false when not queued (closed, or backpressure: wait for `writable`). */
  send(frame: string): boolean;
  writable(): Promise<void>;
  readonly state: 'open' | 'closing' | 'closed';
  readonly closed: Promise<unknown>;
  close(code: number, reason: string): void;
  /** The reconciliation methods the peer announced in its hello (absent: `list` only). */
  readonly peerSyncMethods?: readonly string[];
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
      /** How the differences are found (`list`, `riblt`, `restore`, …), once known. */
      method?: string;
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

/**
 * Progress of a closed-object restore (PROTOCOL.md §7.6), at each settled batch, and its end
 * (hot, on `ChannelSync.restore$` and the node's `events$`). `leader`: this node leads it (its
 * cursor, counts of the whole restore); `follower`: the peer restores this node (what this node
 * stored, counted since the restore began). Restored objects are reported here only: not as
 * `object_rebuilt`, not as payment events.
 */
export interface RestoreEvent extends RestoreStatus {
  type: 'restore_progress' | 'restore_finished';
  peer: string;
  /** Objects moved since the previous event of this restore. */
  movedNow: number;
}

/** Where a closed-object restore of a channel is (PROTOCOL.md §7.6). */
export interface RestoreStatus {
  role: ResyncRole;
  /** `peer_state_lost` or `on_demand`. */
  reason: string;
  /** `running`; `finished` once every closed object is compared; `waiting`: no link, resumes at the next. */
  state: 'running' | 'waiting' | 'finished';
  /** Closed objects compared (leader only; 0 on a follower). */
  compared: number;
  /** Objects moved: pushed or fetched by a leader, stored by a follower. */
  moved: number;
  /** The leader's cursor: every closed object up to it is settled (null: none yet). */
  after: string | null;
  startedAtMs: number;
  atMs: number;
  /** Why it stopped, when it is `waiting`. */
  error?: string;
}

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
  /**
   * The reconciliation methods this node leads runs with, when the peer speaks them: `riblt`
   * (coded symbols, PROTOCOL.md §7.3.1) needs the summary of an open-objects digest
   * (`createOpenObjectsDigest`); otherwise, and as its fallback, `list`. @default ['riblt', 'list']
   */
  methods?: ReadonlyArray<'riblt' | 'list'>;
  /** The wait before a run after runs the peer's store failed (`run-backoff.ts`). */
  storeFailureBackoff?: RunBackoffOptions;
  /**
   * Most objects per second a restore this node leads moves (pushes or fetches, PROTOCOL.md
   * §7.6): its batches are paced to it, at most two in flight, so the channel's live traffic is
   * not held up. @default 600 (`DEFAULT_RESTORE_OBJECTS_PER_S`)
   */
  restoreObjectsPerS?: number;
  /** Closed objects per batch of a restore. @default 20 */
  restoreBatchObjects?: number;
  /**
   * Closed objects compared per restore run: a restore is a series of runs, each resumable, with
   * the channel's other runs between them. @default 5000
   */
  restoreRunObjects?: number;
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
  /** Closed-object restore progress, led here or by the peer (hot). */
  readonly restore$: Observable<RestoreEvent>;
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
  /**
   * Leads a closed-object restore with the peer from the start (PROTOCOL.md §7.6): every closed
   * object either side holds is compared, and the histories the other lacks are pushed or
   * fetched, verified (§7.4). Persisted as it goes: after a restart of either side, the next
   * connection resumes it. Resolves once it finished.
   * @throws SYNC_ABORTED when the link goes first (it resumes at the next connection);
   *   SYNC_RESTORE_UNSUPPORTED when the peer or the store cannot restore
   */
  restore(reason: string): Promise<RestoreStatus>;
  /**
   * Starts the same restore and resolves once its cursor is durable (what an operator's request
   * is answered with); progress on `restore$`. @throws SYNC_RESTORE_UNSUPPORTED, STORE_*
   */
  startRestore(reason: string): Promise<RestoreStatus>;
  /** The restore of this channel as this process last saw it (led here, or by the peer). */
  restoreStatus(): RestoreStatus | undefined;
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
