/**
 * How a replica's share of the channels is decided (docs/replicas.md, "Spreading channels"):
 * pure, from a census of the live replicas and the lease rows.
 *
 * - **Share.** With `N` channels and `R` live replicas, a replica takes free leases only while it
 *   holds fewer than `ceil(N / R)`. The others, under their share, take the rest.
 * - **Orphans.** A lease that stayed free for `leaseTtlMs` (the replica meant to take it did
 *   not) is taken by any replica, whatever its share; so is a channel that never had a lease
 *   when no other live replica is under its share, or once it stayed without one for
 *   `leaseTtlMs` (the replicas under their share may not know it: a configuration rolled out to
 *   some replicas only). No channel is left unserved for want of a replica with room.
 * - **Rebalancing.** A replica that holds more than `floor(N / R)` channels and at least 2 more
 *   than the least-loaded live replica hands one channel over (at most one per
 *   `rebalanceIntervalMs`, counted by the caller): it gives the channel up and releases its
 *   lease, and the least-loaded replica, under its share, takes it.
 * - **Order.** Each replica tries free channels in an order of its own (highest random weight:
 *   a hash of its id and the channel), so replicas that take at the same moment mostly try
 *   different channels, and a replica hands over the channel it ranks last.
 */
import { createHash } from 'node:crypto';
import type { ReplicaCensus } from '../store/replica-repository.js';

/** What one replica does with the leases it does not hold, and which one it hands over. */
export interface SpreadPlan {
  /** `ceil(channels / live replicas)`. */
  share: number;
  /** Free channels to take while under the share, in this replica's order. */
  take: string[];
  /** Free channels to take whatever the share (orphans), in this replica's order. */
  orphans: string[];
  /** A channel to hand over now (when the caller's interval allows a move), if any. */
  handOver: string | undefined;
}

export interface SpreadInput {
  me: string;
  /** Every channel (the same list on every replica). */
  peers: readonly string[];
  /** The channels whose lease this replica holds. */
  held: ReadonlySet<string>;
  /** Channels this replica must not take now (handed over a moment ago). */
  excluded: ReadonlySet<string>;
  census: ReplicaCensus;
  leaseTtlMs: number;
  /** Since when (census time) each channel without a lease row was seen without one. */
  rowlessSinceMs?: ReadonlyMap<string, number>;
}

/** This replica's order of `peer` (higher first): a hash of both ids. */
function weight(me: string, peer: string): string {
  return createHash('sha256').update(me).update('\0').update(peer).digest('hex');
}

/** `peers` in `me`'s order of preference. */
export function preferenceOrder(me: string, peers: Iterable<string>): string[] {
  return [...peers]
    .map((peer) => ({ peer, w: weight(me, peer) }))
    .sort((x, y) => (x.w < y.w ? 1 : x.w > y.w ? -1 : 0))
    .map((x) => x.peer);
}

/** How many live leases each live replica holds (this replica's own count from `held`). */
export function loads(input: Pick<SpreadInput, 'me' | 'held' | 'census'>): Map<string, number> {
  const { me, held, census } = input;
  const out = new Map<string, number>([...census.live, me].map((id) => [id, 0]));
  for (const lease of census.leases) {
    if (lease.owner === me || lease.expiresAtMs <= census.nowMs) continue;
    const n = out.get(lease.owner);
    if (n !== undefined) out.set(lease.owner, n + 1);
  }
  out.set(me, held.size);
  return out;
}

/**
 * The channels without a lease row in `census` (held by none), each since when: the earlier
 * time from `before`, or now for one newly seen without a row.
 */
export function rowlessSince(
  peers: readonly string[],
  census: ReplicaCensus,
  before: ReadonlyMap<string, number>,
): Map<string, number> {
  const rows = new Set(census.leases.map((l) => l.peer));
  return new Map(
    peers.filter((peer) => !rows.has(peer)).map((peer) => [peer, before.get(peer) ?? census.nowMs]),
  );
}

export function planSpread(input: SpreadInput): SpreadPlan {
  const { me, peers, held, excluded, census, leaseTtlMs, rowlessSinceMs } = input;
  const load = loads(input);
  const replicas = load.size;
  const share = Math.ceil(peers.length / replicas);
  const floor = Math.floor(peers.length / replicas);
  const rows = new Map(census.leases.map((l) => [l.peer, l]));
  const othersUnder = [...load].some(([id, n]) => id !== me && n < share);

  const take: string[] = [];
  const orphans: string[] = [];
  for (const peer of preferenceOrder(me, peers)) {
    if (held.has(peer) || excluded.has(peer)) continue;
    const row = rows.get(peer);
    // A live lease, another replica's (or one of mine this replica no longer knows of: a
    // restart with the same id takes it back at once).
    if (row && row.expiresAtMs > census.nowMs && row.owner !== me) continue;
    take.push(peer);
    const unservedMs = census.nowMs - (row ? row.expiresAtMs : (rowlessSinceMs?.get(peer) ?? census.nowMs));
    const mineStill = row !== undefined && row.owner === me && row.expiresAtMs > census.nowMs;
    if (mineStill || unservedMs >= leaseTtlMs || (!row && !othersUnder)) orphans.push(peer);
  }

  let handOver: string | undefined;
  const others = [...load].filter(([id]) => id !== me).map(([, n]) => n);
  if (others.length > 0 && held.size > floor && held.size - Math.min(...others) >= 2) {
    handOver = preferenceOrder(me, held).at(-1);
  }
  return { share, take, orphans, handOver };
}
