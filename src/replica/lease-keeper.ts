/**
 * Keeps this replica's channel leases (`src/store/lease-repository.ts`): every `renewMs` it
 * renews the leases it holds and tries to take the others, and reports each change. A standby
 * replica thus takes a channel over within `leaseTtlMs + renewMs` of its owner's last renewal.
 *
 * With a replica registry (`deps.replicas`), the channels are spread over the live replicas
 * (`spread.ts`): this replica takes free leases only up to its share, and hands one channel over
 * at most every `rebalanceIntervalMs` while it holds 2 more than the least-loaded live replica.
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
import type { ReplicaCensus, ReplicaRegistry } from '../store/replica-repository.js';
import { settled } from '../util/background.js';
import { planSpread, rowlessSince } from './spread.js';

/** Lease timing. */
export interface LeaseOptions {
  /** A lease lapses this long after its last renewal. */
  leaseTtlMs: number;
  /** How often the owner renews its leases and a standby tries to take the others. */
  renewMs: number;
  /** With spreading: at most one channel handed over per this long. @default 30000 */
  rebalanceIntervalMs?: number;
}

/** Default of {@link LeaseOptions.rebalanceIntervalMs}. */
export const DEFAULT_REBALANCE_INTERVAL_MS = 30_000;

/** A lease this replica took, or no longer holds. */
export type LeaseEvent =
  | { type: 'lease_acquired'; peer: string; owner: string }
  | {
      type: 'lease_lost';
      peer: string;
      owner: string;
      /**
       * `taken_over`: another replica holds it now; `lapsed`: not renewed in time; `released`:
       * given up; `handed_over`: given up for a less-loaded replica to take (rebalancing).
       */
      reason: LostReason;
    }
  /** A lease read or write failed (the store is unreachable); tried again at the next round. */
  | { type: 'lease_error'; peer: string; owner: string; code: string };

/** Why a lease was lost (see `LeaseEvent`). */
export type LostReason = 'taken_over' | 'lapsed' | 'released' | 'handed_over';

export interface LeaseKeeperDeps {
  leases: LeaseRepository;
  /** The live replicas: with it, the leases are spread over them; without, taken by whoever asks first. */
  replicas?: ReplicaRegistry;
  /**
   * Resolves once a channel handed over is given up (its connection closed, its writes done):
   * its lease is released only then. @default resolves at once
   */
  handedOver?: (peer: string) => Promise<unknown>;
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

  function lost(peer: string, reason: LostReason): void {
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
    // Free at once, for any replica to take (a hand-over reserves it for a while instead).
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

  const spread = createSpreading(options, deps, {
    held,
    lost,
    keep,
    failed,
    closed: () => closed,
  });

  /** The round in flight (a round still running when the next is due makes that one a no-op). */
  let round: Promise<unknown> = Promise.resolve();
  const rounds: Subscription = timer(0, renewMs, scheduler)
    .pipe(
      // Checked at every tick, not in the round: a round stuck on an unreachable store must not
      // keep this replica serving a channel whose lease lapsed.
      tap(dropLapsed),
      exhaustMap(() => {
        // Renewals first: trying to take other leases may wait on their rows (a frozen owner),
        // and a census may be slow on a busy database. Neither holds back the next renewals.
        const mine = peers.filter((peer) => held.has(peer));
        round = Promise.all(mine.map(keep));
        spread.afterRenewals(round);
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
        await spread.settled();
        for (const peer of [...held.keys()]) await giveUp(peer, 'released');
        if (deps.replicas) await settled(deps.replicas.retire()); // its row lapses by itself otherwise
        events.complete();
      })();
      return closing;
    },
  };
}

/** What the spreading needs of its keeper. */
interface KeeperState {
  held: Map<string, number>;
  lost(peer: string, reason: LostReason): void;
  keep(peer: string): Promise<void>;
  failed(peer: string, err: unknown): void;
  closed(): boolean;
}

/**
 * The keeper's rounds with or without spreading: the heartbeat of this replica, then the leases
 * it does not hold taken within its share (all of them without a registry), and a channel handed
 * over when this replica holds too many.
 */
function createSpreading(options: LeaseOptions, deps: LeaseKeeperDeps, k: KeeperState) {
  const { leases, peers, replicas } = deps;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const intervalMs = options.rebalanceIntervalMs ?? DEFAULT_REBALANCE_INTERVAL_MS;
  /** The renewal rounds the heartbeat may miss before this replica counts as gone. */
  const heartbeatTtlMs = options.leaseTtlMs - options.renewMs;
  let lastMoveAtMs = Number.NEGATIVE_INFINITY;
  /** Channels seen without a lease row, since when (census time): see `rowlessSince`. */
  let rowless = new Map<string, number>();
  /** Channels handed over: not taken back by this replica until then (ms; Infinity while releasing). */
  const excluded = new Map<string, number>();
  const handovers = new Set<Promise<void>>();
  /** The step taking other leases, while it runs. */
  let taking: Promise<void> | undefined;

  async function handOver(peer: string): Promise<void> {
    excluded.set(peer, Number.POSITIVE_INFINITY);
    k.lost(peer, 'handed_over');
    if (deps.handedOver) await deps.handedOver(peer).catch((err: unknown) => k.failed(peer, err));
    await leases.release(peer, scheduler.now()).catch((err: unknown) => k.failed(peer, err));
    excluded.set(peer, scheduler.now() + options.leaseTtlMs);
  }

  /** Takes up to `room` of `candidates` at once, then more while some were taken by others. */
  async function takeUpTo(candidates: readonly string[], share: number): Promise<void> {
    let next = 0;
    while (next < candidates.length && k.held.size < share && !k.closed()) {
      const batch = candidates.slice(next, next + share - k.held.size);
      next += batch.length;
      await Promise.all(batch.map(k.keep));
    }
  }

  return {
    /** Takes other leases once `renewals` are done, unless the previous such step still runs. */
    afterRenewals(renewals: Promise<unknown>): void {
      if (taking) return;
      // A failed lease attempt is reported as `lease_error` by the keeper; the step itself
      // ends either way, and the next round tries again.
      const step = settled(renewals.then(takeOthers));
      taking = step;
      void step.finally(() => {
        if (taking === step) taking = undefined;
      });
    },
    /** Resolves once the hand-overs under way are done. */
    async settled(): Promise<void> {
      await taking;
      await Promise.all([...handovers]);
    },
  };

  async function takeOthers(): Promise<void> {
    const others = (): string[] => peers.filter((peer) => !k.held.has(peer) && !excluded.has(peer));
    let census: ReplicaCensus | undefined;
    // This replica says it is live, then counts the live ones (none if the store failed).
    const beat = replicas?.heartbeat(scheduler.now(), heartbeatTtlMs).then(
      () => true,
      () => false,
    );
    if (replicas && (await beat)) {
      census = await replicas.census(scheduler.now()).then(
        (c) => c,
        () => undefined, // without a census every lease is tried, as below
      );
    }
    // Without a census (no registry, or the store failed), every lease is tried as before.
    if (!census) {
      await Promise.all(others().map(k.keep));
      return;
    }
    const now = scheduler.now();
    for (const [peer, untilMs] of excluded) if (now >= untilMs) excluded.delete(peer);
    rowless = rowlessSince(peers, census, rowless);
    const plan = planSpread({
      me: leases.owner,
      peers,
      held: new Set(k.held.keys()),
      excluded: new Set(excluded.keys()),
      census,
      leaseTtlMs: options.leaseTtlMs,
      rowlessSinceMs: rowless,
    });
    if (plan.handOver !== undefined && now - lastMoveAtMs >= intervalMs && !k.closed()) {
      lastMoveAtMs = now;
      // Not awaited: giving the channel up must not hold back the next renewals.
      const p = handOver(plan.handOver);
      handovers.add(p);
      void p.finally(() => handovers.delete(p));
    }
    await takeUpTo(plan.take, plan.share);
    await Promise.all(plan.orphans.filter((peer) => !k.held.has(peer)).map(k.keep));
  }
}
