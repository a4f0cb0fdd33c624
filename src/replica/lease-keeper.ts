/**
 * Keeps this replica's channel leases (`src/store/lease-repository.ts`): every `renewMs` it
 * renews the leases it holds and tries to take the others, and reports each change. A standby
 * replica thus takes a channel over within `leaseTtlMs + renewMs` of its owner's last renewal.
 *
 * A lease whose write the store's fence refused (another replica took it over) is lost at once.
 * A lease this replica could not renew in time (its store was unreachable) is given up when it
 * lapses by this replica's clock: by then another replica may own the channel. Safety does not
 * rest on this (the store's write fence does), but a replica that keeps serving a channel it
 * may have lost would only collect refused writes.
 */
import {
  asyncScheduler,
  exhaustMap,
  from,
  type Observable,
  type SchedulerLike,
  Subject,
  type Subscription,
  tap,
  timer,
} from 'rxjs';
import { isParleyError } from '../errors.js';
import type { LeaseRepository } from '../store/lease-repository.js';
import { settled } from '../util/background.js';

/** Lease timing. */
export interface LeaseOptions {
  /** A lease lapses this long after its last renewal. */
  leaseTtlMs: number;
  /** How often the owner renews its leases and a standby tries to take the others. */
  renewMs: number;
}

/** A lease this replica took, or no longer holds. */
export type LeaseEvent =
  | { type: 'lease_acquired'; peer: string; owner: string }
  | {
      type: 'lease_lost';
      peer: string;
      owner: string;
      /** `taken_over`: another replica holds it now; `lapsed`: not renewed in time; `released`: given up. */
      reason: 'taken_over' | 'lapsed' | 'released';
    }
  /** A lease read or write failed (the store is unreachable); tried again at the next round. */
  | { type: 'lease_error'; peer: string; owner: string; code: string };

export interface LeaseKeeperDeps {
  leases: LeaseRepository;
  /** The channels whose leases to keep. */
  peers: readonly string[];
  /** Virtual time in tests; its `now()` is the lease clock. @default asyncScheduler */
  scheduler?: SchedulerLike;
}

export interface LeaseKeeper {
  /** Every lease taken or lost, in order (hot). */
  readonly events$: Observable<LeaseEvent>;
  /** Whether this replica holds the lease of `peer` now. */
  owns(peer: string): boolean;
  /**
   * Gives one lease up now (`lease_lost`, reason `released`): this replica could not take the
   * channel over after all. Any replica, this one included, may take it at its next round.
   */
  release(peer: string): Promise<void>;
  /** Stops keeping leases and releases those held, for another replica to take at once. */
  close(): Promise<void>;
}

export function createLeaseKeeper(options: LeaseOptions, deps: LeaseKeeperDeps): LeaseKeeper {
  const { leases, peers } = deps;
  const { leaseTtlMs, renewMs } = options;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const events = new Subject<LeaseEvent>();
  /** peer → when its lease lapses by this replica's clock (held leases only) */
  const held = new Map<string, number>();
  let closed = false;

  function lost(peer: string, reason: 'taken_over' | 'lapsed' | 'released'): void {
    if (!held.delete(peer)) return;
    events.next({ type: 'lease_lost', peer, owner: leases.owner, reason });
  }

  function failed(peer: string, err: unknown): void {
    const code = isParleyError(err) ? err.code : 'INTERNAL';
    events.next({ type: 'lease_error', peer, owner: leases.owner, code });
  }

  /** Stops holding a lease and frees its row (its token is forgotten in any case). */
  async function giveUp(peer: string, reason: 'lapsed' | 'released'): Promise<void> {
    if (!held.has(peer)) return;
    lost(peer, reason);
    await leases.release(peer).catch((err: unknown) => failed(peer, err));
  }

  /** Gives up the leases that lapsed by this replica's clock (whatever the store is doing). */
  function dropLapsed(): void {
    const now = scheduler.now();
    // The row is freed at once if a late renewal did reach the store.
    for (const [peer, lapsesAt] of held) if (now >= lapsesAt) void giveUp(peer, 'lapsed');
  }

  async function keep(peer: string): Promise<void> {
    const now = scheduler.now();
    try {
      if (held.has(peer)) {
        if (await leases.renew(peer, now, leaseTtlMs)) {
          if (held.has(peer)) held.set(peer, now + leaseTtlMs);
        } else lost(peer, 'taken_over');
      } else if (!closed && (await leases.acquire(peer, now, leaseTtlMs))) {
        if (closed) {
          await leases.release(peer);
          return;
        }
        held.set(peer, now + leaseTtlMs);
        events.next({ type: 'lease_acquired', peer, owner: leases.owner });
      }
    } catch (err) {
      failed(peer, err);
    }
  }

  // A write the store's fence refused: taken over, known now rather than at the next renewal.
  const fencedSub = leases.fenced$.subscribe((peer) => lost(peer, 'taken_over'));

  /** The round in flight (a round still running when the next is due makes that one a no-op). */
  let round: Promise<unknown> = Promise.resolve();
  const rounds: Subscription = timer(0, renewMs, scheduler)
    .pipe(
      // Checked at every tick, not in the round: a round stuck on an unreachable store must not
      // keep this replica serving a channel whose lease lapsed.
      tap(dropLapsed),
      exhaustMap(() => {
        // Renewals first: trying to take other leases may wait on their rows (a frozen owner).
        const mine = peers.filter((peer) => held.has(peer));
        const others = peers.filter((peer) => !held.has(peer));
        round = Promise.all(mine.map(keep)).then(() => Promise.all(others.map(keep)));
        return from(round);
      }),
    )
    .subscribe();

  let closing: Promise<void> | undefined;
  return {
    events$: events.asObservable(),
    owns: (peer) => held.has(peer),
    release: (peer) => giveUp(peer, 'released'),
    close() {
      closing ??= (async () => {
        closed = true;
        rounds.unsubscribe();
        fencedSub.unsubscribe();
        await settled(round); // each lease's failure is reported by the round (`lease_error`)
        for (const peer of [...held.keys()]) await giveUp(peer, 'released');
        events.complete();
      })();
      return closing;
    },
  };
}
