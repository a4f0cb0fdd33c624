/**
 * Lease expiry by PostgreSQL's clock: two replicas on one real PostgreSQL database, the standby's
 * own clock 20 s ahead of the owner's. It takes no lease from the live owner however many rounds
 * it runs (its clock is not the one that judges expiry), and a lease that is not renewed does
 * lapse by the database's clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLeaseKeeper, type LeaseEvent, type LeaseKeeper } from '../../src/replica/lease-keeper.js';
import { createLeaseRepository, type LeaseRepository } from '../../src/store/lease-repository.js';
import { virtualTime } from '../health/fakes.js';
import { createStoreFixture, HAVE_PG, PEER, type StoreFixture } from '../helpers/store.js';

const TTL = 3_000;
const RENEW = 1_000;
const SKEW_MS = 20_000;

describe.skipIf(!HAVE_PG)('lease expiry by the database clock (PostgreSQL)', () => {
  let fx: StoreFixture | undefined;
  const keepers: LeaseKeeper[] = [];
  afterEach(async () => {
    for (const keeper of keepers.splice(0)) await keeper.close();
    await fx?.dispose();
    fx = undefined;
  });

  it('a standby whose clock runs 20 s ahead takes no lease from a live owner', async () => {
    fx = await createStoreFixture('postgresql');
    // Virtual time from the real clock: only the replicas' clocks move with it, not the database's.
    const time = virtualTime(Date.now());
    const skewed = {
      now: () => time.scheduler.now() + SKEW_MS,
      schedule: time.scheduler.schedule.bind(time.scheduler),
    } as typeof time.scheduler;
    const start = async (owner: string, scheduler: typeof time.scheduler) => {
      const repo = createLeaseRepository(await fx!.open(), { owner });
      /** Lease calls answered so far (a round's call has landed once this moved). */
      const calls = { done: 0 };
      const count = <T>(p: Promise<T>): Promise<T> => p.finally(() => calls.done++);
      const leases: LeaseRepository = {
        ...repo,
        owner,
        acquire: (peer, now, ttl) => count(repo.acquire(peer, now, ttl)),
        renew: (peer, now, ttl) => count(repo.renew(peer, now, ttl)),
      };
      const keeper = createLeaseKeeper(
        { leaseTtlMs: TTL, renewMs: RENEW },
        { leases, peers: [PEER], scheduler },
      );
      keepers.push(keeper);
      const events: LeaseEvent[] = [];
      keeper.events$.subscribe((e) => events.push(e));
      return { keeper, events, calls };
    };

    const owner = await start('owner', time.scheduler);
    time.advance(0);
    await waitFor(() => owner.keeper.owns(PEER));
    const standby = await start('ahead', skewed);
    for (let i = 1; i <= 10; i++) {
      time.advance(RENEW);
      // This round's renewal and attempt to take the lease have both been answered.
      await waitFor(() => owner.calls.done >= i + 1 && standby.calls.done >= i);
    }
    await standby.keeper.close();
    // Its last attempts were judged by the database: the owner still holds the lease.
    expect(owner.keeper.owns(PEER)).toBe(true);
    expect(standby.events.filter((e) => e.type === 'lease_acquired')).toEqual([]);
    expect(standby.events.filter((e) => e.type === 'lease_error')).toEqual([]);
    expect(owner.events.map((e) => e.type)).toEqual(['lease_acquired']);
    const [row] = await fx.query<{ owner: string }>('SELECT owner FROM channel_lease');
    expect(row?.owner).toBe('owner');
  });

  it('a lease that is not renewed lapses by the database clock, whatever the caller says', async () => {
    fx = await createStoreFixture('postgresql');
    const a = createLeaseRepository(await fx.open(), { owner: 'a' });
    const b = createLeaseRepository(await fx.open(), { owner: 'b' });
    // The callers' times are far off (one in the past, one in the future): neither is used.
    expect(await a.acquire(PEER, 0, 300)).toBe(true);
    expect(await b.acquire(PEER, Date.now() + 3_600_000, 300)).toBe(false);
    const [row] = await fx.query<{ expires_at: string; db_now: string }>(
      'SELECT expires_at, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint AS db_now FROM channel_lease',
    );
    const left = Number(row!.expires_at) - Number(row!.db_now);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(300);
    // Not renewed: b takes it once the database's clock passed the expiry.
    await waitFor(() => b.acquire(PEER, 0, 300));
    expect(await a.renew(PEER, Date.now(), 300)).toBe(false);
  });
});

/** Polls `check` until it holds (bounded: a failure names the budget). */
async function waitFor(check: () => boolean | Promise<boolean>, budgetMs = 10_000): Promise<void> {
  const end = Date.now() + budgetMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not reached within ${budgetMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
