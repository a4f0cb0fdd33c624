/**
 * A connection lost while the leader holds a prefetched list page: the leader asks for the next
 * page of the follower's list as soon as it has one, and merges meanwhile. When the link closes
 * while that request is unanswered and the leader is waiting on a fetch, the run ends `aborted`
 * and the page's rejection is handled: an unhandled rejection would end a Node process (vitest
 * reports it as an error of this file). Real signatures, real stores.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import type { ChannelSync, SyncLink } from '../../src/sync/resync.js';
import { memorySync, peekFrame, seedOpenPayments, withTwoStores } from './in-memory.js';
import { type Party, party } from './signed-histories.js';

/** A link whose frames go to `deliver` until `close()`; then it is closed, as a dropped socket. */
function closableLink(deliver: (frame: string) => void): SyncLink & { drop(): void } {
  let state: 'open' | 'closed' = 'open';
  let resolveClosed: (v: unknown) => void = () => undefined;
  const closed = new Promise<unknown>((resolve) => {
    resolveClosed = resolve;
  });
  return {
    get state() {
      return state;
    },
    closed,
    send(frame) {
      if (state !== 'open') return false;
      setImmediate(() => {
        if (state === 'open') deliver(frame);
      });
      return true;
    },
    writable: async () => undefined,
    close() {
      this.drop();
    },
    drop() {
      if (state === 'closed') return;
      state = 'closed';
      resolveClosed(undefined);
    },
  };
}

describe('a link lost while a list page is prefetched', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('ends the run aborted, with the prefetched page’s rejection handled', async () => {
    const A = party(0xa3);
    const B = party(0xb4);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    // B holds 6 objects A lacks; pages of 2: the list has 3 pages.
    await seedOpenPayments(syncB, B, A, 6);
    const make = (me: Party, peer: Party, store: SyncStore): ChannelSync =>
      memorySync(me, peer, store, { pageSize: 2, batchObjects: 1, window: 1, responseTimeoutMs: 60_000 });
    const sa = make(A, B, syncA);
    const sb = make(B, A, syncB);
    const seen: string[] = [];
    // A → B: the first fetch of a history is where the connection drops (A has asked for the
    // second page already, and waits on that fetch).
    const la = closableLink((f) => sb.handleFrame(f, lb));
    const lb = closableLink((f) => sa.handleFrame(f, la));
    // The second page's request and the first fetch go out in either order: the one first out
    // of the two is held back (undelivered), and the connection drops at the other.
    const send = la.send.bind(la);
    let fetching = false;
    let droppedAt = -1;
    la.send = (frame) => {
      const type = peekFrame(frame)._ObjectType ?? '?';
      seen.push(type);
      if (type === 'SyncGetHistory') fetching = true;
      const pageAsked = seen.filter((t) => t === 'SyncListRequest').length >= 2;
      if (fetching && pageAsked && droppedAt < 0) {
        droppedAt = seen.length;
        la.drop();
        lb.drop();
        return true;
      }
      if (type === 'SyncGetHistory') return true;
      return send(frame);
    };
    sa.attach(la);
    sb.attach(lb);
    // A rejection no one handles is reported by Node once the microtasks of its turn are done.
    const strays: unknown[] = [];
    const stray = (reason: unknown) => strays.push(reason);
    process.on('unhandledRejection', stray);
    try {
      await expect(sa.run('test')).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
      // The scenario holds: the second page and a history were asked for when the link dropped.
      expect(seen.filter((t) => t === 'SyncListRequest').length).toBe(2);
      expect(seen).toContain('SyncGetHistory');
      // (Nothing went out after the drop.)
      expect(seen.length).toBe(droppedAt);
      const [record] = await syncA.runs(B.address, 1);
      expect(record?.outcome).toBe('aborted');
    } finally {
      await sa.close();
      await sb.close();
      // One more turn of the event loop (not a time): every rejection so far has been reported.
      await new Promise((resolve) => setImmediate(resolve));
      process.off('unhandledRejection', stray);
    }
    expect(strays).toEqual([]);
  });
});
