/**
 * What a peer's restore begins can make this node do (PROTOCOL.md §7.6): the coded symbols of
 * its closed set are built one at a time and a few times per window per channel; a larger set
 * than the limit, or a sync closing meanwhile, gives none (the leader then lists).
 */
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ObjectHead } from '../../src/store/types.js';
import type { SyncContext } from '../../src/sync/context.js';
import {
  CLOSED_SKETCH_BUILDS,
  CLOSED_SKETCH_WINDOW_MS,
  closedSet,
  followerClosedSketch,
} from '../../src/sync/riblt-method.js';
import type { RunState } from '../../src/sync/run-record.js';

const heads = (n: number): ObjectHead[] =>
  Array.from({ length: n }, (_, i) => ({
    peer: 'lbr1peer',
    referenceId: `ref-${String(i).padStart(6, '0')}`,
    headVersion: `v-${i}`,
    open: false,
    versionCount: 3,
  }));

function context(all: ObjectHead[], closed = { now: false }) {
  const scheduler = new VirtualTimeScheduler();
  let reads = 0;
  const ctx = {
    peer: 'lbr1peer',
    scheduler,
    closed: () => closed.now,
    limits: { pageSize: 10 },
    store: {
      async closedObjects(_peer: string, after: string | null, limit: number) {
        reads++;
        const from = after === null ? 0 : all.findIndex((h) => h.referenceId === after) + 1;
        return all.slice(from, from + limit);
      },
    },
  } as unknown as SyncContext;
  return { ctx, scheduler, reads: () => reads };
}

const run = (): RunState => ({}) as RunState;

describe('the closed-set symbols a peer can ask for', () => {
  it('are built a few times per window per channel, then not until the window moves on', async () => {
    const { ctx, scheduler, reads } = context(heads(25));
    const budget = { building: false, startedAtMs: [] as number[] };
    for (let i = 0; i < CLOSED_SKETCH_BUILDS; i++) {
      expect(await followerClosedSketch(ctx, run(), budget)).toBeDefined();
    }
    const before = reads();
    expect(await followerClosedSketch(ctx, run(), budget)).toBeUndefined();
    expect(reads()).toBe(before); // declined without reading the store
    scheduler.schedule(() => undefined, CLOSED_SKETCH_WINDOW_MS);
    scheduler.flush();
    expect(await followerClosedSketch(ctx, run(), budget)).toBeDefined();
  });

  it('are built one at a time: a begin during a build gets none', async () => {
    const { ctx } = context(heads(25));
    const budget = { building: false, startedAtMs: [] as number[] };
    const first = followerClosedSketch(ctx, run(), budget);
    expect(await followerClosedSketch(ctx, run(), budget)).toBeUndefined();
    expect(await first).toBeDefined();
  });

  it('are not built for a set that closes meanwhile', async () => {
    const closed = { now: false };
    const { ctx, reads } = context(heads(25), closed);
    closed.now = true;
    expect(await closedSet(ctx)).toBeUndefined();
    expect(reads()).toBe(0);
  });
});
