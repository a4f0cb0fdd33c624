/**
 * The operator's way back after a hostile hello fenced a peer's real epoch out (docs/security.md,
 * "Peer epoch reset"). Whoever holds a peer's key can complete one hello with a made-up epoch;
 * from then on the real peer's epoch is superseded and refused with 4412 at every redial
 * (PROTOCOL.md §8.4). `parley peer reset-epoch` reinstates the real epoch: it becomes the
 * current one again and the made-up one is superseded (so it is refused in turn). The reset is
 * an `epoch_reset` record of the health history, which is where the epoch order is read from.
 *
 * Only an epoch this node superseded for the peer can be reinstated: an epoch never seen needs
 * no reset (its first hello is taken as a state loss, and resynced).
 */
import { ParleyError } from '../errors.js';
import { createEpochGuard, type EpochGuard } from './epoch-guard.js';
import type { HealthStore, NewHealthRecord, PeerEpochStore } from './ports.js';
import type { HealthEvent } from './status.js';

/** What a reset did. */
export interface EpochResetResult {
  peer: string;
  epoch: string;
  /** The epoch it replaced (now superseded); equal to `epoch` when nothing changed. */
  previousEpoch: string | null;
  /** False when `epoch` was the current one already (nothing written). */
  changed: boolean;
}

/**
 * Checks that `epoch` may be reinstated for `peer` under `guard`.
 * @returns false when it is the current epoch already (nothing to do)
 * @throws HEALTH_EPOCH_UNKNOWN when it is not an epoch the node superseded for the peer
 */
export function mayReinstate(guard: EpochGuard, peer: string, epoch: string): boolean {
  if (guard.current(peer) === epoch) return false;
  if (!guard.isSuperseded(peer, epoch)) {
    throw new ParleyError(
      'HEALTH_EPOCH_UNKNOWN',
      `${epoch} is not an epoch this node replaced for ${peer} (its epochs: health history, epoch_seen / peer_state_lost / zombie_refused)`,
    );
  }
  return true;
}

/** The `epoch_reset` event of a reset. */
export function epochResetEvent(
  peer: string,
  epoch: string,
  previousEpoch: string | null,
  atMs: number,
  via: 'admin' | 'offline',
): Extract<HealthEvent, { kind: 'epoch_reset' }> {
  return { kind: 'epoch_reset', peer, atMs, epoch, previousEpoch, via };
}

/** The persisted form of an `epoch_reset` event. */
export function epochResetRecord(event: Extract<HealthEvent, { kind: 'epoch_reset' }>): NewHealthRecord {
  const { peer, atMs, kind, epoch, previousEpoch, via } = event;
  return { peer, atMs, kind, fromState: null, toState: null, detail: { epoch, previousEpoch, via } };
}

/**
 * The reset on the database of a stopped node (`parley peer reset-epoch` when no node runs):
 * reads the peer's epoch history, checks, and writes the `epoch_reset` record and the peer's
 * stored epoch. A running node would not see it until it reloads the channel: use its admin
 * route instead.
 * @throws HEALTH_EPOCH_UNKNOWN; the store's errors
 */
export async function resetPeerEpochOffline(
  deps: { store: HealthStore; peers: PeerEpochStore; now?: () => number },
  peer: string,
  epoch: string,
): Promise<EpochResetResult> {
  const stored = await deps.peers.getPeer(peer);
  if (stored === undefined) {
    throw new ParleyError('HEALTH_EPOCH_UNKNOWN', `${peer} has never connected to this node`);
  }
  const guard = createEpochGuard();
  guard.load(peer, await deps.store.epochs(peer), stored.epoch);
  if (!mayReinstate(guard, peer, epoch)) return { peer, epoch, previousEpoch: epoch, changed: false };
  const previousEpoch = guard.current(peer);
  const event = epochResetEvent(peer, epoch, previousEpoch, (deps.now ?? Date.now)(), 'offline');
  await deps.store.append([epochResetRecord(event)]);
  await deps.peers.setPeerEpoch(peer, epoch);
  return { peer, epoch, previousEpoch, changed: true };
}
