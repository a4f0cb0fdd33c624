import type { PrivateKey, PublicKey } from '../protocol/index.js';
import type { ParleyStore } from '../store/types.js';
import type { CommitPipe } from './commit-pipe.js';
import type { ObjectCache } from './object-cache.js';
import type { OpenObjectTracker } from './open-objects.js';
import type { Limiter, SerialQueue } from './serial-queue.js';
import type { SignJws, VerifyJws } from './verify-batcher.js';

/** What the receiving and the sending side of one channel share (see `channel-core.ts`). */
export interface CoreContext {
  readonly me: string;
  readonly peer: string;
  /** Whether this node is the LIP-1 protocol server of the pair. */
  readonly isServer: boolean;
  readonly store: ParleyStore;
  readonly myKey: PrivateKey;
  readonly peerKey: PublicKey;
  readonly verifyPeer: VerifyJws;
  /** Signs a payload with `myKey`. */
  readonly sign: SignJws;
  readonly maxFrameBytes: number;
  /** Decisions, one at a time, so pipelined commands see each other's effects. */
  readonly queue: SerialQueue;
  /**
   * Store lookups in flight at once: a burst of frames (a reconnect flushes every pending
   * command) queues here rather than in the store's connection pool (PostgreSQL), where it
   * would delay every other read of the node.
   */
  readonly lookups: Limiter;
  readonly cache: ObjectCache;
  /** Group commits in decision order. */
  readonly pipe: CommitPipe;
  readonly openObjects: OpenObjectTracker;
}
