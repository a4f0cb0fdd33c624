/**
 * Store epochs per peer: state-loss detection and zombie fencing (PROTOCOL.md §8.4).
 *
 * An epoch is a random id made when a database is created, so epochs cannot be compared by
 * value. What orders them is when this node first saw them: the guard keeps, per peer, the
 * current epoch and every epoch it replaced. Then, for an epoch presented in a hello or a
 * heartbeat:
 * - the current one: fine;
 * - none known yet (first contact): it becomes the current one;
 * - a never-seen one: the peer lost or replaced its state (`peer_state_lost`); it becomes the
 *   current one and the old one is superseded;
 * - a superseded one: a zombie (an old process, a restored backup) — refused, whatever it
 *   says, so it can never overwrite what the peer's new incarnation builds.
 *
 * Pure and synchronous, so a connection is judged before anything else happens on it. The
 * caller loads the history once and persists what `admit` decides.
 */

/** What {@link EpochGuard.admit} decided. */
export type EpochVerdict =
  | { kind: 'current' }
  | { kind: 'first' }
  | { kind: 'new'; previous: string }
  | { kind: 'superseded'; current: string };

/** The epochs of every peer of one node. */
export interface EpochGuard {
  /**
   * Seeds a peer's knowledge: `history` oldest first (from the health history, written before
   * the peer row), `stored` the peer row's epoch (newest only when the history never saw it:
   * a database from before the history existed).
   */
  load(peer: string, history: readonly string[], stored: string | null): void;
  /** Judges `epoch` for `peer` and records it when it is first or new. */
  admit(peer: string, epoch: string): EpochVerdict;
  /** The current epoch of `peer`, null before first contact. */
  current(peer: string): string | null;
  /** Whether `epoch` was superseded for `peer`. */
  isSuperseded(peer: string, epoch: string): boolean;
  /**
   * The operator's epoch reset (docs/security.md, "Peer epoch reset"): `epoch`, superseded
   * before, becomes the current one again, and the current one is superseded. Returns the
   * epoch it replaced.
   */
  reinstate(peer: string, epoch: string): string | null;
}

interface PeerEpochs {
  current: string | null;
  superseded: Set<string>;
}

export function createEpochGuard(): EpochGuard {
  const peers = new Map<string, PeerEpochs>();
  const of = (peer: string): PeerEpochs => {
    let entry = peers.get(peer);
    if (!entry) {
      entry = { current: null, superseded: new Set() };
      peers.set(peer, entry);
    }
    return entry;
  };

  return {
    load(peer, history, stored) {
      const entry = of(peer);
      entry.current = null;
      entry.superseded.clear();
      const order = [...history];
      if (stored !== null && !order.includes(stored)) order.push(stored);
      for (const epoch of order) {
        if (entry.current !== null && entry.current !== epoch) entry.superseded.add(entry.current);
        entry.current = epoch;
      }
      if (entry.current !== null) entry.superseded.delete(entry.current);
    },
    admit(peer, epoch) {
      const entry = of(peer);
      if (entry.current === epoch) return { kind: 'current' };
      if (entry.superseded.has(epoch)) return { kind: 'superseded', current: entry.current ?? '' };
      const previous = entry.current;
      entry.current = epoch;
      if (previous === null) return { kind: 'first' };
      entry.superseded.add(previous);
      return { kind: 'new', previous };
    },
    current(peer) {
      return peers.get(peer)?.current ?? null;
    },
    isSuperseded(peer, epoch) {
      return peers.get(peer)?.superseded.has(epoch) ?? false;
    },
    reinstate(peer, epoch) {
      const entry = of(peer);
      const previous = entry.current;
      if (previous !== null && previous !== epoch) entry.superseded.add(previous);
      entry.superseded.delete(epoch);
      entry.current = epoch;
      return previous;
    },
  };
}
