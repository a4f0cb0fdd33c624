/**
 * Lease expiry by PostgreSQL's clock: two replicas on one real PostgreSQL database, the standby's
 * own clock 20 s ahead of the owner's. It takes no lease from the live owner however many rounds
 * it runs (its clock is not the one that judges expiry), and a lease that is not renewed does
 * lapse by the database's clock.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BehaviorSubject, filter, firstValueFrom, type Observable } from 'rxjs';
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
      const calls = new BehaviorSubject(0);
      const count = <T>(p: Promise<T>): Promise<T> => p.finally(() => calls.next(calls.value + 1));
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
    const acquired = firstValueFrom(owner.keeper.events$.pipe(filter((e) => e.type === 'lease_acquired')));
    time.advance(0);
    await acquired;
    expect(owner.keeper.owns(PEER)).toBe(true);
    const standby = await start('ahead', skewed);
    for (let i = 1; i <= 10; i++) {
      time.advance(RENEW);
      // This round's renewal and attempt to take the lease have both been answered.
      await Promise.all([reached(owner.calls, i + 1), reached(standby.calls, i)]);
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
      `SELECT expires_at, ${PG_NOW_MS} AS db_now FROM channel_lease`,
    );
    const left = Number(row!.expires_at) - Number(row!.db_now);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(300);
    // Not renewed: b takes it once the database's clock passed the expiry (waited for on that
    // clock, inside the database).
    await fx.query(`SELECT pg_sleep(GREATEST(0, expires_at - ${PG_NOW_MS} + 1) / 1000.0) FROM channel_lease`);
    expect(await b.acquire(PEER, 0, 300)).toBe(true);
    expect(await a.renew(PEER, Date.now(), 300)).toBe(false);
  });
});

/** PostgreSQL's clock in epoch milliseconds, as the lease repository reads it. */
const PG_NOW_MS = '(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint';

/**
 * Resolves once the count of answered lease calls reaches `n`, and the round that made the call
 * has ended (its remaining steps are promise callbacks, all run before the next turn): a tick
 * during a round would be skipped.
 */
async function reached(calls: Observable<number>, n: number): Promise<void> {
  await firstValueFrom(calls.pipe(filter((done) => done >= n)));
  await nextTurn();
}
