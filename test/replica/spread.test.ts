/**
 * The share of each replica (pure): how many channels it takes, which ones are orphans that any
 * replica takes, and when it hands one over.
 */
import { describe, expect, it } from 'vitest';
import {
  loads,
  planSpread,
  preferenceOrder,
  rowlessSince,
  type SpreadInput,
} from '../../src/replica/spread.js';

const NOW = 1_000_000;
const TTL = 3_000;
const PEERS = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];

/** A census where `owners` maps each held peer to its live owner. */
function input(
  me: string,
  live: string[],
  owners: Record<string, string>,
  extra: Partial<SpreadInput> = {},
): SpreadInput {
  return {
    me,
    peers: PEERS,
    held: new Set(
      Object.entries(owners)
        .filter(([, o]) => o === me)
        .map(([p]) => p),
    ),
    excluded: new Set(),
    census: {
      nowMs: NOW,
      live,
      leases: Object.entries(owners).map(([peer, owner]) => ({ peer, owner, expiresAtMs: NOW + TTL })),
    },
    leaseTtlMs: TTL,
    ...extra,
  };
}

describe('spreading channels over replicas', () => {
  it('a replica alone takes every channel; with three live, at most its share of two', () => {
    expect(planSpread(input('a', ['a'], {}))).toMatchObject({ share: 6, handOver: undefined });
    expect(planSpread(input('a', ['a'], {})).take).toHaveLength(6);
    const plan = planSpread(input('c', ['a', 'b', 'c'], { p1: 'a', p2: 'a', p3: 'b', p4: 'b' }));
    expect(plan.share).toBe(2);
    expect(new Set(plan.take)).toEqual(new Set(['p5', 'p6']));
    // A replica at its share leaves free channels to the one with room.
    const full = planSpread(input('a', ['a', 'b', 'c'], { p1: 'a', p2: 'a', p3: 'b', p4: 'b' }));
    expect(full.orphans).toEqual([]);
  });

  it('counts itself live even before its heartbeat shows, and ignores leases of replicas not live', () => {
    const census = input('c', ['a'], { p1: 'a', p2: 'gone' }).census;
    expect(loads({ me: 'c', held: new Set(), census })).toEqual(
      new Map([
        ['a', 1],
        ['c', 0],
      ]),
    );
  });

  it('hands one channel over when it holds 2 more than the least-loaded replica and more than its floor', () => {
    const six = Object.fromEntries(PEERS.map((p) => [p, 'a']));
    expect(planSpread(input('a', ['a', 'b'], six)).handOver).toBe(preferenceOrder('a', PEERS).at(-1));
    // 3 / 3 / 0: both loaded replicas hand one over.
    const even = { p1: 'a', p2: 'a', p3: 'a', p4: 'b', p5: 'b', p6: 'b' };
    expect(planSpread(input('a', ['a', 'b', 'c'], even)).handOver).toBeDefined();
    expect(planSpread(input('b', ['a', 'b', 'c'], even)).handOver).toBeDefined();
    // 2 / 4 / 0: only the one above its floor of 2.
    const skewed = { p1: 'a', p2: 'a', p3: 'b', p4: 'b', p5: 'b', p6: 'b' };
    expect(planSpread(input('a', ['a', 'b', 'c'], skewed)).handOver).toBeUndefined();
    expect(planSpread(input('b', ['a', 'b', 'c'], skewed)).handOver).toBeDefined();
    // 3 / 2 / 1 of six, 2 / 2 / 2: within 1 of each other, or nobody has room.
    expect(
      planSpread(input('a', ['a', 'b', 'c'], { p1: 'a', p2: 'a', p3: 'a', p4: 'b', p5: 'b', p6: 'c' }))
        .handOver,
    ).toBe(preferenceOrder('a', ['p1', 'p2', 'p3']).at(-1));
    const spread = { p1: 'a', p2: 'a', p3: 'b', p4: 'b', p5: 'c', p6: 'c' };
    for (const me of ['a', 'b', 'c'])
      expect(planSpread(input(me, ['a', 'b', 'c'], spread)).handOver).toBeUndefined();
  });

  it('takes a lease left free for a TTL whatever its share, and never one it just handed over', () => {
    const owners = { p1: 'a', p2: 'a', p3: 'b', p4: 'b', p5: 'c' };
    const base = input('a', ['a', 'b', 'c'], owners);
    const freed = (freeSinceMs: number): SpreadInput => ({
      ...base,
      census: {
        ...base.census,
        leases: [...base.census.leases, { peer: 'p6', owner: 'c', expiresAtMs: freeSinceMs }],
      },
    });
    expect(planSpread(freed(NOW - TTL + 1)).orphans).toEqual([]);
    expect(planSpread(freed(NOW - TTL)).orphans).toEqual(['p6']);
    expect(planSpread({ ...freed(NOW - TTL), excluded: new Set(['p6']) }).take).toEqual([]);
    // Never leased, and no other replica has room: the one that has takes it whatever happens.
    const alone = input('c', ['a', 'b', 'c'], { p1: 'a', p2: 'a', p3: 'b', p4: 'b' });
    expect(new Set(planSpread(alone).orphans)).toEqual(new Set(['p5', 'p6']));
  });

  it('orders channels differently for different replicas', () => {
    const orders = ['a', 'b', 'c'].map((me) => preferenceOrder(me, PEERS).join());
    expect(new Set(orders).size).toBeGreaterThan(1);
    expect(preferenceOrder('a', PEERS)).toEqual(preferenceOrder('a', [...PEERS].reverse()));
  });

  it('takes a channel that stayed without a lease for the lease TTL, though another replica is under its share', () => {
    // b is under its share but does not know p6 (a configuration rolled out to a only).
    const owners = { p1: 'a', p2: 'a', p3: 'a', p4: 'b' };
    const fresh = planSpread(input('a', ['a', 'b'], owners, { rowlessSinceMs: new Map([['p6', NOW - 10]]) }));
    expect(fresh.orphans).not.toContain('p6');
    const long = planSpread(input('a', ['a', 'b'], owners, { rowlessSinceMs: new Map([['p6', NOW - TTL]]) }));
    expect(long.orphans).toContain('p6');
    expect(long.orphans).not.toContain('p5');
  });

  it('remembers since when each channel has no lease row', () => {
    const census = { nowMs: NOW, live: ['a'], leases: [{ peer: 'p1', owner: 'a', expiresAtMs: NOW + TTL }] };
    const first = rowlessSince(
      ['p1', 'p2', 'p3'],
      census,
      new Map([
        ['p3', NOW - 500],
        ['p1', NOW - 900],
      ]),
    );
    expect([...first]).toEqual([
      ['p2', NOW],
      ['p3', NOW - 500],
    ]);
  });
});
