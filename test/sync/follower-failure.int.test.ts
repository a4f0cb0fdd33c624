/**
 * A request the follower cannot answer because something failed on its side (here its store is
 * closed): it reports `sync_frame_failed` and answers the request with `SyncError`, so the
 * asker learns at once instead of waiting out its answer limit, and the connection stays (the
 * peer did nothing wrong). Real stores; the in-memory link of the resync tests.
 */
import { describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { ResyncEvent, SyncLink } from '../../src/sync/resync.js';
import { memoryLink, memorySync, openTwoStores, seedOpenPayments } from './in-memory.js';
import { party } from './signed-histories.js';

describe('a follower that fails to answer', () => {
  it('reports sync_frame_failed and answers SyncError; the asker fails fast, the link stays open', async () => {
    const stores = await openTwoStores();
    const A = party(0x51);
    const B = party(0x52);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncB, B, A, 1);
    const [ref] = (await syncB.openObjects(A.address, null, 10)).map((h) => h.referenceId);
    // A long answer limit: a test that waited it out would time out first.
    const sa = memorySync(A, B, syncA, { responseTimeoutMs: 600_000 });
    const sb = memorySync(B, A, syncB, {});
    const closes: number[] = [];
    const la: SyncLink = { ...memoryLink((f) => sb.handleFrame(f, lb)), close: (code) => closes.push(code) };
    const lb: SyncLink = { ...memoryLink((f) => sa.handleFrame(f, la)), close: (code) => closes.push(code) };
    sa.attach(la);
    sb.attach(lb);
    const seen: ResyncEvent[] = [];
    sb.events$.subscribe((e) => seen.push(e));
    try {
      await stores.b.close();
      // Its failure is the peer's, and may pass: SYNC_ABORTED (try again later), with its code.
      await expect(sa.getHistory(ref!)).rejects.toMatchObject({
        code: 'SYNC_ABORTED',
        message: expect.stringContaining('STORE_CLOSED'),
      });
      expect(seen).toContainEqual({
        type: 'sync_frame_failed',
        peer: A.address,
        frameType: 'SyncGetHistory',
        runId: null,
        code: 'STORE_CLOSED',
      });
      expect(closes).toEqual([]);
    } finally {
      await sa.close();
      await sb.close();
      await stores.dispose();
    }
  });

  it('a run whose begin the follower cannot handle fails at once (SyncError naming the run)', async () => {
    const stores = await openTwoStores();
    const A = party(0x53);
    const B = party(0x54);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    const sa = memorySync(A, B, syncA, { responseTimeoutMs: 600_000 });
    const sb = memorySync(B, A, syncB, {});
    const la: SyncLink = memoryLink((f) => sb.handleFrame(f, lb));
    const lb: SyncLink = memoryLink((f) => sa.handleFrame(f, la));
    sa.attach(la);
    sb.attach(lb);
    const seen: ResyncEvent[] = [];
    sb.events$.subscribe((e) => seen.push(e));
    try {
      await stores.b.close();
      await expect(sa.run('test')).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
      expect(
        seen.filter((e) => e.type === 'sync_frame_failed').map((e) => (e as { frameType: string }).frameType),
      ).toEqual(['SyncBegin']);
      const [record] = await syncA.runs(B.address, 1);
      expect(record?.outcome).toBe('aborted');
    } finally {
      await sa.close();
      await sb.close();
      await stores.dispose();
    }
  });

  it('a push the follower fails to store is answered with what was applied; the run ends partial, not aborted', async () => {
    const stores = await openTwoStores();
    const A = party(0x55);
    const B = party(0x56);
    const syncA = createSyncRepository(stores.a);
    const repoB = createSyncRepository(stores.b);
    // B's store takes no commit (its disk is gone); everything else answers.
    const syncB = {
      ...repoB,
      commit: () => Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'disk gone')),
    };
    await seedOpenPayments(syncA, A, B, 8);
    // Several pushes in flight at once: a run-level error for one would fail the others.
    const sa = memorySync(A, B, syncA, { batchObjects: 2, window: 4, responseTimeoutMs: 600_000 });
    const sb = memorySync(B, A, syncB, {});
    const la: SyncLink = memoryLink((f) => sb.handleFrame(f, lb));
    const lb: SyncLink = memoryLink((f) => sa.handleFrame(f, la));
    sa.attach(la);
    sb.attach(lb);
    const seen: ResyncEvent[] = [];
    sb.events$.subscribe((e) => seen.push(e));
    try {
      const result = await sa.run('test');
      expect(result.outcome).toBe('partial');
      expect(result.differences).toBe(8);
      const failed = seen.filter((e) => e.type === 'sync_frame_failed');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.every((e) => (e as { frameType: string }).frameType === 'SyncHistory')).toBe(true);
    } finally {
      await sa.close();
      await sb.close();
      await stores.dispose();
    }
  });
});
