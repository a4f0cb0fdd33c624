/**
 * A push larger than one frame goes in parts (same `seq`, `last` on the final one) and the
 * follower applies it as one: one answer, one write per group of `APPLY_GROUP_OBJECTS` objects,
 * every object rebuilt. And a follower that
 * would hold more parts than `maxPushHoldBytes` applies them at once instead: its early answer
 * covers the parts so far, the leader counts the rest unsettled, and its follow-up run ends
 * with both sides equal.
 *
 * Two real stores, two `ChannelSync`s over an in-memory ordered link, real signatures.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import { APPLY_GROUP_OBJECTS } from '../../src/sync/apply.js';
import type { SyncStore } from '../../src/sync/ports.js';
import type { ChannelSync, ChannelSyncOptions, SyncLink } from '../../src/sync/resync.js';
import {
  memoryLink,
  memorySync,
  peekFrame,
  seedOpenPayments,
  serialExclusive,
  withTwoStores,
} from './in-memory.js';
import { type Party, party } from './signed-histories.js';

/** Objects the leader holds and pushes to the (empty) follower. */
const N = 40;

describe('a push in several frames', () => {
  const stores = withTwoStores(beforeEach, afterEach);

  /** A (the leader) holds N open payments; B has none. Frames of about 11 KB of JSON. */
  async function pushing(followerOptions: ChannelSyncOptions = {}, leaderOptions: ChannelSyncOptions = {}) {
    const A = party(0xa1);
    const B = party(0xb2);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncA, A, B, N);
    let writes = 0;
    // The writes made in each pause of B's receiving order (its `exclusive`), and outside any.
    const writesPerPause: number[] = [];
    let pause: number | undefined;
    let writesOutside = 0;
    const serial = serialExclusive();
    const exclusiveB = <T>(fn: () => Promise<T>): Promise<T> =>
      serial(async () => {
        pause = writesPerPause.push(0) - 1;
        try {
          return await fn();
        } finally {
          pause = undefined;
        }
      });
    const countedB: SyncStore = {
      ...syncB,
      commit(items) {
        writes++;
        if (pause === undefined) writesOutside++;
        else writesPerPause[pause]!++;
        return syncB.commit(items);
      },
    };
    const make = (
      me: Party,
      peer: Party,
      store: SyncStore,
      options: ChannelSyncOptions,
      exclusive?: <T>(fn: () => Promise<T>) => Promise<T>,
    ): ChannelSync =>
      memorySync(
        me,
        peer,
        store,
        { batchObjects: N, maxFrameBytes: 16_000, responseTimeoutMs: 10_000, ...options },
        undefined,
        exclusive,
      );
    const sa = make(A, B, syncA, leaderOptions);
    const sb = make(B, A, countedB, followerOptions, exclusiveB);
    const pushParts: Array<{ seq: number; last: boolean }> = [];
    let applied = 0;
    const la: SyncLink = memoryLink((f) => {
      const frame = peekFrame(f);
      if (frame._ObjectType === 'SyncHistory') pushParts.push({ seq: frame.seq!, last: frame.last === true });
      sb.handleFrame(f, lb);
    });
    const lb: SyncLink = memoryLink((f) => {
      if (peekFrame(f)._ObjectType === 'SyncApplied') applied++;
      sa.handleFrame(f, la);
    });
    sa.attach(la);
    sb.attach(lb);
    return {
      A,
      B,
      sa,
      sb,
      syncA,
      syncB,
      pushParts,
      applied: () => applied,
      writesPerPause: () => writesPerPause.filter((w) => w > 0),
      writesOutside: () => writesOutside,
      writes: () => writes,
      async close() {
        await sa.close();
        await sb.close();
      },
    };
  }

  it('is applied as one: one answer, one write per group of objects, every object rebuilt, the run repaired', async () => {
    const p = await pushing();
    try {
      const result = await p.sa.run('rebuild');
      // The scenario holds: one push (one seq) in several frames, `last` on the final one only.
      expect(p.pushParts.length).toBeGreaterThan(3);
      expect(new Set(p.pushParts.map((x) => x.seq)).size).toBe(1);
      expect(p.pushParts.map((x) => x.last)).toEqual([...Array(p.pushParts.length - 1).fill(false), true]);

      expect(p.applied()).toBe(1);
      expect(p.writes()).toBe(Math.ceil(N / APPLY_GROUP_OBJECTS));
      // Each group in a pause of its own: the channel's commands go between them.
      expect(p.writesPerPause()).toEqual(Array(Math.ceil(N / APPLY_GROUP_OBJECTS)).fill(1));
      expect(p.writesOutside()).toBe(0);
      expect(result).toMatchObject({ outcome: 'repaired', differences: N, objectsSent: N });
      expect((await p.syncB.openObjects(p.A.address, null, 10_000)).length).toBe(N);
      expect(await stores.b.checkIntegrity()).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it('past maxPushHoldBytes the follower applies what it holds at once; the rest follows and both sides end equal', async () => {
    // About two parts held at most.
    const p = await pushing({ maxPushHoldBytes: 30_000 });
    try {
      const first = await p.sa.run('rebuild');
      // Answered before its last part: the objects of the later parts are not covered by it.
      expect(first.outcome).toBe('partial');
      const heads = async (s: SyncStore, peer: string) =>
        (await s.openObjects(peer, null, 10_000)).map((h) => [h.referenceId, h.headVersion]);
      // The parts after the early answer are applied as they come; the follow-up runs the
      // partial run queued find the rest.
      await expect.poll(async () => (await heads(p.syncB, p.A.address)).length, { timeout: 20_000 }).toBe(N);
      expect(await heads(p.syncB, p.A.address)).toEqual(await heads(p.syncA, p.B.address));
      expect(p.applied()).toBeGreaterThan(1);
      expect(p.writes()).toBeGreaterThan(1);
      expect(await stores.b.checkIntegrity()).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it('an object whose history is larger than the frame budget goes in a frame of its own, not as too_large', async () => {
    // A budget smaller than any one history, frames up to 16 KB: each object alone in a frame.
    const p = await pushing({}, { maxBatchBytes: 1_000 });
    try {
      const result = await p.sa.run('rebuild');
      expect(p.pushParts.length).toBe(N);
      expect(result).toMatchObject({ outcome: 'repaired', objectsSent: N, rejected: [] });
      expect((await p.syncB.openObjects(p.A.address, null, 10_000)).length).toBe(N);
      expect(p.applied()).toBe(1);
    } finally {
      await p.close();
    }
  });
});
