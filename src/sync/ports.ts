/**
 * What resync needs from durable storage (implemented by `src/store/sync-repository.ts`).
 * Reads of the signed log and the open-object index, the atomic writes of a verified history,
 * and the history of resync runs.
 */
import type { CommandRecord, CommitItem, ObjectHead, OutboxRecord, StoredVersion } from '../store/types.js';

/** Which side of a run this node was. */
export type ResyncRole = 'leader' | 'follower';

/** Counters of one run, as persisted. */
export interface ResyncCounters {
  objectsSent: number;
  objectsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Request/response exchanges (begin, each list page, each push batch, each fetch). */
  rounds: number;
}

/** One persisted resync run. */
export interface ResyncRunRecord extends ResyncCounters {
  id: number;
  peer: string;
  reason: string;
  startedAtMs: number;
  finishedAtMs: number | null;
  /** `in_sync`, `repaired`, `partial`, `failed`, `aborted`; null while running. */
  outcome: string | null;
  /** JSON: run id, role, method, rejected objects, forks, errors. */
  detail: Record<string, unknown>;
}

/** What replacing a losing fork branch removed. */
export interface ReplacedBranch {
  /** Signed-log entries of the losing branch (kept in the run's detail as evidence). */
  dropped: CommandRecord[];
  /** This node's pending commands that read a version of the losing branch: they can never complete. */
  droppedOutbox: OutboxRecord[];
}

/** Where the closed-object restore a node leads on a channel is (PROTOCOL.md §7.6), as persisted. */
export interface RestoreCursor {
  peer: string;
  /** `peer_state_lost`, or `on_demand`. */
  reason: string;
  /** Every closed object up to this reference id (byte order) is settled; null: none yet. */
  after: string | null;
  /** Closed objects compared so far, and moved (pushed or fetched). */
  compared: number;
  moved: number;
  startedAtMs: number;
  updatedAtMs: number;
  /** Set once the restore is over. */
  finishedAtMs: number | null;
}

/** The storage port of `src/sync`. Every method may throw `STORE_*` errors. */
export interface SyncStore {
  /** Open objects of a channel in byte order of `referenceId`, strictly after `after`. */
  openObjects(peer: string, after: string | null, limit: number): Promise<ObjectHead[]>;
  /**
   * Closed objects of a channel in byte order of `referenceId`, strictly after `after` (the
   * restore, §7.6). Optional: a store without it neither leads nor feeds a restore.
   */
  closedObjects?(peer: string, after: string | null, limit: number): Promise<ObjectHead[]>;
  /** The restore this node leads on a channel, if one was ever started. */
  restoreCursor?(peer: string): Promise<RestoreCursor | null>;
  /** Persists where the restore of a channel is (one row per channel, replaced). */
  saveRestoreCursor?(cursor: RestoreCursor): Promise<void>;
  /** Heads (open or closed) of the named objects that exist. */
  heads(peer: string, referenceIds: readonly string[]): Promise<Map<string, ObjectHead>>;
  /** Every version of an object, in chain order. */
  versions(peer: string, referenceId: string): Promise<StoredVersion[]>;
  /** Every signed-log entry of an object, in commit order. */
  history(peer: string, referenceId: string): Promise<CommandRecord[]>;
  /**
   * Every signed-log entry of each named object (commit order), in one read: what a full
   * rebuild pushes, a batch at a time. Optional: without it, `history` is read per object.
   */
  histories?(peer: string, referenceIds: readonly string[]): Promise<Map<string, CommandRecord[]>>;
  /** Which of `cids` are in the signed log of the channel. */
  knownCids(peer: string, cids: readonly string[]): Promise<Set<string>>;
  /** Stores verified commands atomically (signed log + versions + heads): all or nothing. */
  commit(items: readonly CommitItem[]): Promise<void>;
  /**
   * In one transaction: removes the versions of `referenceId` after `keep` (all of them when
   * `keep` is null) with their signed-log entries and the outbox entries that read them, then
   * stores `items` (the winning branch from `keep` on).
   * @throws STORE_VERSION_CONFLICT when the object changed meanwhile
   */
  replaceBranch(
    peer: string,
    referenceId: string,
    keep: string | null,
    items: readonly CommitItem[],
  ): Promise<ReplacedBranch>;
  /** Persists the start of a run; returns its id. */
  startRun(run: {
    peer: string;
    reason: string;
    startedAtMs: number;
    detail: Record<string, unknown>;
  }): Promise<number>;
  /** Persists the end of a run; a run that already has an outcome keeps it. */
  finishRun(
    id: number,
    end: ResyncCounters & { finishedAtMs: number; outcome: string; detail: Record<string, unknown> },
  ): Promise<void>;
  /** Latest runs of a channel (all channels when `peer` is undefined), newest first. */
  runs(peer: string | undefined, limit: number): Promise<ResyncRunRecord[]>;
  /**
   * Ends every run still without an outcome: a process that stopped in the middle of a run
   * (killed, crashed) left it so. Called when a node starts, before any channel runs: they end
   * `aborted` at `atMs`, with `error: SYNC_ABORTED` and `interrupted: true` in their detail.
   * With `peer`, only that channel's runs (a replica taking a channel over ends its former
   * owner's). Returns how many.
   */
  endInterruptedRuns(atMs: number, peer?: string): Promise<number>;
  /** Deletes the runs that finished before `beforeMs` (never one still running); returns how many. */
  pruneRuns(beforeMs: number): Promise<number>;
}
