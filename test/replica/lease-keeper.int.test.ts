/**
 * The lease keeper in virtual time, two replicas on one real SQLite database: the first takes the
 * lease and renews it, the standby takes it only when it lapses or is released, an owner that
 * cannot reach its store gives the lease up when it lapses by its own clock, and an owner whose
 * lease was taken over learns it at its next renewal.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { createLeaseKeeper, type LeaseEvent, type LeaseKeeper } from '../../src/replica/lease-keeper.js';
import { createLeaseRepository, type LeaseRepository } from '../../src/store/lease-repository.js';
import { virtualTime } from '../health/fakes.js';
import { commandItem, createStoreFixture, PEER, type StoreFixture } from '../helpers/store.js';

const TTL = 3_000;
const RENEW = 1_000;

/** The real repository, with its calls tracked (so the test can wait for a round) and a switch that makes them fail. */
function tracked(repo: LeaseRepository) {
  const pending = new Set<Promise<unknown>>();
  /** `failing`: calls reject. `hanging`: calls wait until `unhang()` (an unreachable store). */
  const state = { failing: false, hanging: false };
  const hung: Array<() => void> = [];
  const unhang = (): void => {
    state.hanging = false;
    for (const wake of hung.splice(0)) wake();
  };
  const track = <T>(make: () => Promise<T>): Promise<T> => {
    const p = state.failing
      ? Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'store down'))
      : state.hanging
        ? new Promise<void>((resolve) => hung.push(resolve)).then(make)
        : make();
    pending.add(p);
    const forget = () => pending.delete(p);
    p.then(forget, forget);
    return p;
  };
  const leases: LeaseRepository = {
    owner: repo.owner,
    acquire: (peer, now, ttl) => track(() => repo.acquire(peer, now, ttl)),
    renew: (peer, now, ttl) => track(() => repo.renew(peer, now, ttl)),
    release: (peer) => track(() => repo.release(peer)),
    holds: (peer) => repo.holds(peer),
    leases: () => repo.leases(),
    fenced$: repo.fenced$,
  };
  return { leases, pending, state, unhang };
}

describe('lease keeper (virtual time, SQLite)', () => {
  let fx: StoreFixture | undefined;
  const keepers: LeaseKeeper[] = [];
  afterEach(async () => {
    for (const keeper of keepers.splice(0)) await keeper.close();
    await fx?.dispose();
    fx = undefined;
  });

  async function setup() {
    fx = await createStoreFixture('sqlite');
    const time = virtualTime();
    const replica = async (owner: string) => {
      const store = await fx!.open();
      const repo = tracked(createLeaseRepository(store, { owner }));
      const events: LeaseEvent[] = [];
      const keeper = createLeaseKeeper(
        { leaseTtlMs: TTL, renewMs: RENEW },
        {
          leases: repo.leases,
          peers: [PEER],
          scheduler: time.scheduler,
        },
      );
      keepers.push(keeper);
      keeper.events$.subscribe((e) => events.push(e));
      const errors = () => events.filter((e) => e.type === 'lease_error');
      return { keeper, events, errors, store, ...repo };
    };
    const replicas = [await replica('a'), await replica('b')];
    /** Advances the clock and waits until both keepers finished the rounds it started (but hung calls). */
    const advance = async (ms: number): Promise<void> => {
      time.advance(ms);
      for (;;) {
        // A round's calls start in turns (renewals, then attempts to take leases).
        await new Promise((resolve) => setImmediate(resolve));
        const all = replicas.filter((r) => !r.state.hanging).flatMap((r) => [...r.pending]);
        if (all.length === 0) break;
        await Promise.allSettled(all);
      }
    };
    return { a: replicas[0]!, b: replicas[1]!, advance };
  }

  it('the first replica takes the lease and keeps it; the standby takes it once it is released', async () => {
    const { a, b, advance } = await setup();
    await advance(0);
    const owners = [a.keeper.owns(PEER), b.keeper.owns(PEER)];
    expect(owners.filter(Boolean)).toHaveLength(1); // exactly one of the two, whichever asked first
    const [owner, standby] = owners[0] ? [a, b] : [b, a];
    expect(owner.events).toEqual([{ type: 'lease_acquired', peer: PEER, owner: owner.leases.owner }]);

    for (let i = 0; i < 10; i++) await advance(RENEW); // ten TTLs' worth of renewals
    expect(owner.keeper.owns(PEER)).toBe(true);
    expect(standby.keeper.owns(PEER)).toBe(false);
    expect(standby.events).toEqual([]);

    await owner.keeper.close();
    expect(owner.events.at(-1)).toEqual({
      type: 'lease_lost',
      peer: PEER,
      owner: owner.leases.owner,
      reason: 'released',
    });
    await advance(RENEW);
    expect(standby.keeper.owns(PEER)).toBe(true);
    expect(standby.events).toEqual([{ type: 'lease_acquired', peer: PEER, owner: standby.leases.owner }]);
  });

  it('an owner that cannot reach its store gives the lease up when it lapses, and the standby takes it then', async () => {
    const { a, b, advance } = await setup();
    await advance(0);
    const [owner, standby] = a.keeper.owns(PEER) ? [a, b] : [b, a];
    await advance(RENEW); // renewed: lapses at t0 + 4,000
    owner.state.failing = true;
    await advance(RENEW);
    await advance(RENEW);
    await advance(RENEW - 1);
    expect(owner.keeper.owns(PEER)).toBe(true); // renewals fail, the lease has not lapsed yet
    expect(owner.errors()).toHaveLength(2);
    expect(owner.errors()[0]).toEqual({
      type: 'lease_error',
      peer: PEER,
      owner: owner.leases.owner,
      code: 'STORE_UNAVAILABLE',
    });
    expect(standby.keeper.owns(PEER)).toBe(false);
    await advance(1);
    expect(owner.keeper.owns(PEER)).toBe(false);
    expect(owner.events.filter((e) => e.type === 'lease_lost')).toMatchObject([{ reason: 'lapsed' }]);
    // Its store still refuses both the release of the lapsed row and the attempt to take it back.
    expect(owner.errors()).toHaveLength(4);
    expect(standby.keeper.owns(PEER)).toBe(true);

    // Back in touch, the former owner stays a standby while the lease is held.
    owner.state.failing = false;
    for (let i = 0; i < 5; i++) await advance(RENEW);
    expect(owner.keeper.owns(PEER)).toBe(false);
    expect(standby.keeper.owns(PEER)).toBe(true);
  });

  it('an owner whose lease was taken over learns it at its next renewal', async () => {
    const { a, b, advance } = await setup();
    await advance(0);
    const [owner, standby] = a.keeper.owns(PEER) ? [a, b] : [b, a];
    // Another replica takes the row (as after a pause of the owner longer than the TTL).
    await fx!.exec(`UPDATE channel_lease SET owner = 'z', token = 'other'`);
    await advance(RENEW);
    expect(owner.keeper.owns(PEER)).toBe(false);
    expect(owner.events.at(-1)).toMatchObject({ type: 'lease_lost', reason: 'taken_over' });
    expect(standby.keeper.owns(PEER)).toBe(false);
  });

  it('an owner whose write the fence refuses loses the lease at once, before its next renewal', async () => {
    const { a, b, advance } = await setup();
    await advance(0);
    const [owner, standby] = a.keeper.owns(PEER) ? [a, b] : [b, a];
    await owner.store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
    await fx!.exec(`UPDATE channel_lease SET owner = 'z', token = 'other'`);
    // No time passes: only the refused write can tell it.
    await expect(
      owner.store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'v1', write: 'v2' })]),
    ).rejects.toMatchObject({ code: 'STORE_LEASE_LOST', message: expect.stringMatching(/another replica/) });
    expect(owner.keeper.owns(PEER)).toBe(false);
    expect(owner.events.at(-1)).toEqual({
      type: 'lease_lost',
      peer: PEER,
      owner: owner.leases.owner,
      reason: 'taken_over',
    });
    await advance(RENEW);
    expect(owner.events.filter((e) => e.type === 'lease_lost')).toHaveLength(1);
    expect(standby.keeper.owns(PEER)).toBe(false);
  });

  it('an owner whose store stops answering gives the lease up when it lapses, though its round never ends', async () => {
    const { a, b, advance } = await setup();
    await advance(0);
    const [owner, standby] = a.keeper.owns(PEER) ? [a, b] : [b, a];
    owner.state.hanging = true; // the renewal at t0 + 1,000 never returns
    await advance(RENEW);
    await advance(TTL - RENEW - 1);
    expect(owner.keeper.owns(PEER)).toBe(true);
    await advance(1);
    expect(owner.keeper.owns(PEER)).toBe(false);
    expect(owner.events.at(-1)).toMatchObject({ type: 'lease_lost', reason: 'lapsed' });
    expect(standby.keeper.owns(PEER)).toBe(true);
    owner.unhang();
    await advance(RENEW);
    expect(owner.keeper.owns(PEER)).toBe(false);
  });
});
