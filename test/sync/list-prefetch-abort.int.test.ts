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
    const send = la.send.bind(la);
    la.send = (frame) => {
      const type = peekFrame(frame)._ObjectType ?? '?';
      seen.push(type);
      if (type === 'SyncGetHistory') {
        la.drop();
        lb.drop();
        return true;
      }
      return send(frame);
    };
    sa.attach(la);
    sb.attach(lb);
    try {
      await expect(sa.run('test')).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
      // The scenario holds: the second page was asked for before the fetch.
      expect(seen.filter((t) => t === 'SyncListRequest').length).toBe(2);
      expect(seen.at(-1)).toBe('SyncGetHistory');
      const [record] = await syncA.runs(B.address, 1);
      expect(record?.outcome).toBe('aborted');
      // Let a stray rejection surface before the file ends.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await sa.close();
      await sb.close();
    }
  });
});
