/**
 * What the health module needs from storage (libp2p "components" style): the health history
 * (`HealthStore`, implemented over the `health_event` table by `src/store/health-repository.ts`,
 * and in memory by `memory-health-store.ts`) and the peer's stored epoch (the `ParleyStore`
 * already has it).
 */
import type { ParleyStore } from '../store/types.js';

/** One persisted health event. */
export interface HealthRecord {
  /** Increasing in insertion order (per database). */
  id: number;
  peer: string;
  /** A `HealthEvent` kind (`transition`, `peer_state_lost`, …). */
  kind: string;
  /** For transitions: the state left / entered; null otherwise. */
  fromState: string | null;
  toState: string | null;
  /** The rest of the event (epochs, digests, phi, …). */
  detail: Record<string, unknown>;
  atMs: number;
}

/** A health event to persist. */
export type NewHealthRecord = Omit<HealthRecord, 'id'>;

/** Filter of {@link HealthStore.history}. */
export interface HealthHistoryQuery {
  /** Only this channel; all channels when absent. */
  peer?: string;
  /** Only these kinds. */
  kinds?: readonly string[];
  /** Only records with `id < beforeId` (paging backwards). */
  beforeId?: number;
  /** @default 100 */
  limit?: number;
}

/** Durable health history. Methods may throw `ParleyError('STORE_UNAVAILABLE' | 'STORE_CLOSED')`. */
export interface HealthStore {
  /** Appends records, in order, atomically. */
  append(records: readonly NewHealthRecord[]): Promise<void>;
  /** Records matching `query`, newest first. */
  history(query?: HealthHistoryQuery): Promise<HealthRecord[]>;
  /**
   * The store epochs seen from `peer`, oldest first (from its `epoch_seen` and
   * `peer_state_lost` records): every one but the last has been superseded.
   */
  epochs(peer: string): Promise<string[]>;
  /**
   * Deletes the records written before `beforeMs`, except those of the kinds in
   * {@link KEPT_HISTORY_KINDS} (what `epochs` reads: a superseded epoch must stay known; and the
   * abandoned commands).
   * Resolves with how many were deleted.
   */
  prune(beforeMs: number): Promise<number>;
  /** Deletes `peer`'s records of `kind` but the newest `keep`. Resolves with how many were deleted. */
  trim(peer: string, kind: string, keep: number): Promise<number>;
}

/**
 * The record kinds that carry a peer's store epoch (`detail.epoch`), in the order the node took
 * them as current: kept by `prune`.
 */
export const EPOCH_HISTORY_KINDS: readonly string[] = ['epoch_seen', 'peer_state_lost', 'epoch_reset'];

/** The record kinds `prune` keeps besides {@link EPOCH_HISTORY_KINDS}: the record of an operator's act. */
export const KEPT_HISTORY_KINDS: readonly string[] = [...EPOCH_HISTORY_KINDS, 'command_abandoned'];

/** The peer's stored epoch (part of `ParleyStore`). */
export type PeerEpochStore = Pick<ParleyStore, 'getPeer' | 'setPeerEpoch'>;
