/**
 * Serving a channel as one replica of several (docs/replicas.md): the lease keeper says when
 * this replica took a channel's lease or lost it, and this module turns each change into taking
 * the channel over (its state reloaded from the store, then served) or giving it up (no longer
 * served), one change at a time, in order.
 *
 * A takeover goes on only while the lease it started from is still held: a lease lost (and even
 * taken back) meanwhile makes a later change redo it. A takeover that fails (the store failed in
 * its middle) gives the lease back, for any replica (this one too) to take at its next round.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ParleyError } from '../errors.js';
import type { LeaseRepository } from '../store/lease-repository.js';
import type { ReplicaRegistry } from '../store/replica-repository.js';
import { background, type ReportFailure } from '../util/background.js';
import { createLeaseKeeper, type LeaseEvent, type LeaseKeeper, type LeaseOptions } from './lease-keeper.js';

/** What the node does to a channel when its lease comes or goes. */
export interface ChannelServingPorts {
  /** Whether the node is closing: no channel is taken over or given up from then on. */
  closing(): boolean;
  /** Every lease event (the node's `events$`). */
  emit(event: LeaseEvent): void;
  /**
   * Stops serving `peer`: health no longer watched, the channel suspended (waiting callers get
   * `CHANNEL_CLOSED`), its connection closed with `4421 NOT_OWNER` and its dialer stopped.
   */
  giveUp(peer: string): Promise<void>;
  /**
   * Loads `peer`'s channel from the store as the former owner left it (its unfinished resync
   * runs ended, its state reloaded) and starts watching its health while `current()` holds.
   * @throws when the store fails: the takeover is abandoned and the lease given back.
   */
  load(peer: string, current: () => boolean): Promise<void>;
  /** Stops watching `peer`'s health (a takeover that did not complete). */
  unwatch(peer: string): void;
  /** Serves `peer`: the channel resumed, the peer dialed, open payments taken up again. */
  serve(peer: string): void;
  /** Where a lease change that failed to be handled goes (the node's `background_failed`). */
  report: ReportFailure;
}

export interface ChannelServing {
  /** This replica's leases. */
  readonly keeper: LeaseKeeper;
  /** Resolves once the lease changes handled so far are done (`close()` of the node waits). */
  settled(): Promise<void>;
}

/**
 * Keeps this replica's leases for `peers` and serves exactly the channels whose lease it holds.
 * With `replicas`, the channels are spread over the live replicas; a channel handed over to
 * another is given up (closed with 4421, so its peer redials) before its lease is released.
 */
export function startChannelServing(
  options: LeaseOptions,
  deps: { leases: LeaseRepository; peers: readonly string[]; replicas?: ReplicaRegistry },
  ports: ChannelServingPorts,
): ChannelServing {
  /** The lease changes being handled, one at a time. */
  let changes: Promise<void> = Promise.resolve();
  const keeper = createLeaseKeeper(options, {
    leases: deps.leases,
    peers: deps.peers,
    ...(deps.replicas ? { replicas: deps.replicas } : {}),
    // The `lease_lost` of a channel handed over is queued by then: its lease goes once it is given up.
    handedOver: () => changes,
  });
  /** peer → how many times its lease was taken or lost: a takeover goes on only while unchanged. */
  const terms = new Map<string, number>();

  async function onChange(event: Exclude<LeaseEvent, { type: 'lease_error' }>, term: number): Promise<void> {
    if (ports.closing()) return;
    const { peer } = event;
    if (event.type === 'lease_lost') {
      await ports.giveUp(peer);
      return;
    }
    // Still ours since this acquisition, and the node still running?
    const current = (): boolean => !ports.closing() && keeper.owns(peer) && terms.get(peer) === term;
    try {
      await ports.load(peer, current);
    } catch {
      // Not served, so not kept: given back for any replica (this one too) to take next round.
      ports.unwatch(peer);
      if (current()) await keeper.release(peer);
      return;
    }
    if (!current()) {
      ports.unwatch(peer);
      return;
    }
    ports.serve(peer);
  }

  // Completes when the keeper closes.
  keeper.events$.subscribe((event) => {
    ports.emit(event);
    if (event.type === 'lease_error') return;
    const term = (terms.get(event.peer) ?? 0) + 1;
    terms.set(event.peer, term);
    changes = background(
      changes.then(() => onChange(event, term)),
      event.type === 'lease_lost' ? 'give_up_channel' : 'take_over_channel',
      ports.report,
      event.peer,
    );
  });

  return { keeper, settled: () => changes };
}

/** A replica id unique enough among a VASP's replicas when none is configured. */
export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** The refusal of a command (or a peer's hello) on a channel another replica owns. */
export function notOwner(
  peer: string,
  code: 'STORE_LEASE_LOST' | 'TRANSPORT_NOT_OWNER' = 'STORE_LEASE_LOST',
): ParleyError {
  return new ParleyError(code, `another replica of this VASP owns the channel to ${peer} now`);
}
