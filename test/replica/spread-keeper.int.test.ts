/**
 * Lease keepers spreading six channels over three replicas, in virtual time on one real SQLite
 * database: a replica alone takes them all, later ones get their share by rebalancing (at most
 * one channel handed over per replica per interval), a replica that stops answering loses its
 * channels to the others, and when it returns it gets its share back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLeaseKeeper, type LeaseEvent, type LeaseKeeper } from '../../src/replica/lease-keeper.js';
import { createLeaseRepository, type LeaseRepository } from '../../src/store/lease-repository.js';
import { createReplicaRegistry, type ReplicaRegistry } from '../../src/store/replica-repository.js';
import { virtualTime } from '../health/fakes.js';
import { createStoreFixture, type StoreFixture } from '../helpers/store.js';

const TTL = 3_000;
const RENEW = 500;
const INTERVAL = 30_000;
const PEERS = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];

interface Replica {
  id: string;
  keeper: LeaseKeeper;
  events: Array<{ at: number; event: LeaseEvent }>;
  /** Its store calls hang from now on (the replica is cut off, as if dead). */
  dead: boolean;
  /** It stays live but never takes a lease (its takeovers fail). */
  refuses: boolean;
  pending: Set<Promise<unknown>>;
}

describe('lease keepers spreading channels (virtual time, SQLite)', () => {
  let fx: StoreFixture | undefined;
  const keepers: LeaseKeeper[] = [];
  afterEach(async () => {
    for (const keeper of keepers.splice(0)) void keeper.close();
    await fx?.dispose();
    fx = undefined;
  });

  async function setup() {
    fx = await createStoreFixture('sqlite');
    const time = virtualTime();
    const replicas: Replica[] = [];

    const start = async (id: string): Promise<Replica> => {
      const store = await fx!.open();
      const r: Replica = {
        id,
        keeper: undefined as unknown as LeaseKeeper,
        events: [],
        dead: false,
        refuses: false,
        pending: new Set(),
      };
      const track = <T>(make: () => Promise<T>): Promise<T> => {
        const p = r.dead ? new Promise<T>(() => undefined) : make();
        if (!r.dead) {
          r.pending.add(p);
          const forget = () => r.pending.delete(p);
          p.then(forget, forget);
        }
        return p;
      };
      const repo = createLeaseRepository(store, { owner: id });
      const leases: LeaseRepository = {
        owner: id,
        acquire: (peer, now, ttl) => track(async () => !r.refuses && (await repo.acquire(peer, now, ttl))),
        renew: (peer, now, ttl) => track(() => repo.renew(peer, now, ttl)),
        release: (peer, now) => track(() => repo.release(peer, now)),
        holds: (peer) => repo.holds(peer),
        leases: () => repo.leases(),
        fenced$: repo.fenced$,
      };
      const reg = createReplicaRegistry(store, { id });
      const registry: ReplicaRegistry = {
        id,
        heartbeat: (now, ttl) => track(() => reg.heartbeat(now, ttl)),
        census: (now) => track(() => reg.census(now)),
        retire: () => track(() => reg.retire()),
      };
      r.keeper = createLeaseKeeper(
        { leaseTtlMs: TTL, renewMs: RENEW, rebalanceIntervalMs: INTERVAL },
        { leases, replicas: registry, peers: PEERS, scheduler: time.scheduler },
      );
      r.keeper.events$.subscribe((event) => r.events.push({ at: time.now(), event }));
      keepers.push(r.keeper);
      replicas.push(r);
      return r;
    };

    /** Advances the clock in renewal steps, letting every live keeper's round finish each time. */
    const advance = async (ms: number): Promise<void> => {
      for (let done = 0; done < ms || ms === 0; done += RENEW) {
        time.advance(ms === 0 ? 0 : Math.min(RENEW, ms - done));
        for (;;) {
          await new Promise((resolve) => setImmediate(resolve));
          const all = replicas.filter((x) => !x.dead).flatMap((x) => [...x.pending]);
          if (all.length === 0) break;
          await Promise.allSettled(all);
        }
        if (ms === 0) break;
      }
    };

    /** Channels per live replica, and the channels held by none or by several. */
    const distribution = (): { counts: Record<string, number>; unserved: string[]; doubly: string[] } => {
      const counts: Record<string, number> = {};
      const unserved: string[] = [];
      const doubly: string[] = [];
      for (const r of replicas) if (!r.dead) counts[r.id] = 0;
      for (const peer of PEERS) {
        const owners = replicas.filter((r) => !r.dead && r.keeper.owns(peer));
        if (owners.length === 0) unserved.push(peer);
        if (owners.length > 1) doubly.push(peer);
        for (const o of owners) counts[o.id]! += 1;
      }
      return { counts, unserved, doubly };
    };

    return { time, start, advance, distribution, replicas };
  }

  it('spreads six channels over three replicas and gets a returning replica its share back', async () => {
    const { time, start, advance, distribution, replicas } = await setup();
    await start('a');
    await advance(0);
    expect(distribution()).toEqual({ counts: { a: 6 }, unserved: [], doubly: [] });

    await start('b');
    await advance(3 * INTERVAL + RENEW);
    expect(distribution()).toEqual({ counts: { a: 3, b: 3 }, unserved: [], doubly: [] });

    await start('c');
    await advance(RENEW * 4); // one move each of a and b
    expect(distribution()).toEqual({ counts: { a: 2, b: 2, c: 2 }, unserved: [], doubly: [] });

    // c is cut off: its leases lapse, a and b take them.
    const c = replicas.find((r) => r.id === 'c')!;
    c.dead = true;
    await advance(TTL + 3 * RENEW);
    expect(distribution()).toEqual({ counts: { a: 3, b: 3 }, unserved: [], doubly: [] });

    // c back (a new run, same id): one channel from each of a and b.
    replicas.splice(replicas.indexOf(c), 1);
    await start('c');
    await advance(INTERVAL + RENEW * 4);
    const end = distribution();
    expect(end.unserved).toEqual([]);
    expect(end.doubly).toEqual([]);
    expect(
      Math.max(...Object.values(end.counts)) - Math.min(...Object.values(end.counts)),
    ).toBeLessThanOrEqual(1);
    expect(end.counts['c']).toBe(2);

    // At most one channel handed over per replica per interval.
    for (const r of replicas) {
      const moves = r.events.filter((e) => e.event.type === 'lease_lost' && e.event.reason === 'handed_over');
      for (let i = 1; i < moves.length; i++)
        expect(moves[i]!.at - moves[i - 1]!.at).toBeGreaterThanOrEqual(INTERVAL);
    }
    expect(time.now()).toBeGreaterThan(0);
  });

  it('a channel handed over that nobody takes is taken again once it stayed free for a lease TTL', async () => {
    const { start, advance, distribution, replicas } = await setup();
    await start('a');
    await advance(0);
    const b = await start('b');
    // b is live (its heartbeat goes on) but takes nothing: a hands it a channel it never takes.
    b.refuses = true;
    const a = replicas.find((r) => r.id === 'a')!;
    const handedOver = () =>
      a.events.find((e) => e.event.type === 'lease_lost' && e.event.reason === 'handed_over');
    // a counts b live from b's first heartbeat on: the same round or the next one (their store
    // calls interleave), well within a lease TTL.
    for (let round = 0; round < 2 && !handedOver(); round++) await advance(RENEW);
    const handed = handedOver();
    expect(handed).toBeDefined();
    expect(distribution()).toMatchObject({ counts: { a: 5, b: 0 }, unserved: [handed!.event.peer] });
    await advance(TTL + 2 * RENEW);
    expect(distribution()).toEqual({ counts: { a: 6, b: 0 }, unserved: [], doubly: [] });
    const back = a.events.find((e) => e.at > handed!.at && e.event.type === 'lease_acquired');
    expect(back?.event.peer).toBe(handed!.event.peer);
  });
});
