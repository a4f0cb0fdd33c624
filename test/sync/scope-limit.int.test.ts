/**
 * A scoped run names its objects in `SyncBegin` (at most `MAX_SYNC_PAGE`). Asked for more, in one
 * request or merged from many while another run goes on (`command_waiting`, `used_dependencies`
 * during a long rebuild), it compares the whole open sets instead: it used to fail to encode its
 * `SyncBegin` and drop every request merged into it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SYNC_PAGE } from '../../src/protocol/sync-frames.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import type { ChannelSync, SyncLink } from '../../src/sync/resync.js';
import { memoryLink, memorySync, peekFrame, seedOpenPayments, withTwoStores } from './in-memory.js';
import { type Party, party } from './signed-histories.js';

describe('a scoped run asked for more objects than a SyncBegin carries', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('compares the whole open sets instead, and repairs what differs', async () => {
    const A = party(0xa7);
    const B = party(0xb8);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncB, B, A, 3);
    const make = (me: Party, peer: Party, store: SyncStore): ChannelSync => memorySync(me, peer, store, {});
    const sa = make(A, B, syncA);
    const sb = make(B, A, syncB);
    const begins: Array<{ method?: string; reference_ids?: string[] }> = [];
    const la: SyncLink = memoryLink((f) => {
      const frame = peekFrame(f) as { _ObjectType?: string; method?: string; reference_ids?: string[] };
      if (frame._ObjectType === 'SyncBegin') begins.push(frame);
      sb.handleFrame(f, lb);
    });
    const lb: SyncLink = memoryLink((f) => sa.handleFrame(f, la));
    sa.attach(la);
    sb.attach(lb);
    try {
      const many = Array.from({ length: MAX_SYNC_PAGE + 1 }, (_, i) => `ref-${i}`);
      // One request too large, then two that only together are: each becomes a full run.
      const first = sa.run('too_many', many);
      const half = many.slice(0, 600);
      const rest = many.slice(600);
      const merged = [sa.run('waiting', half), sa.run('waiting', rest)];
      expect((await first).outcome).toBe('repaired');
      const [a, b] = await Promise.all(merged);
      expect(a).toBe(b);
      expect(a!.outcome).toBe('in_sync');
      expect(begins.map((f) => [f.method, f.reference_ids])).toEqual([
        ['list', undefined],
        ['list', undefined],
      ]);
      expect((await syncA.openObjects(B.address, null, 100)).length).toBe(3);
    } finally {
      await sa.close();
      await sb.close();
    }
  });
});
