/**
 * A follower's run ends only once the frames of it in hand are through. Here a `SyncEnd` of the
 * leader arrives while the follower still verifies a push of that run (as when the leader gives
 * up on its answer limit); the follower then finishes applying the push. Its run record must
 * count those objects and its `resync_finished` must say so, or the node would neither reload its
 * open-objects digest nor run business recovery for them (digests stay different, payments stuck).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signSyncFrame } from '../../src/protocol/sync-frames.js';
import { inThreadVerifier, type JwsVerifier } from '../../src/protocol/verify-pool.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncLink } from '../../src/sync/resync.js';
import { nextMatch } from '../helpers/wait.js';
import { memoryLink, memorySync, peekFrame, seedOpenPayments, withTwoStores } from './in-memory.js';
import { party } from './signed-histories.js';

describe('the end of a follower run', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('waits for the push being applied when the leader’s SyncEnd comes first', async () => {
    const A = party(0x81);
    const B = party(0x82);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncA, A, B, 5);
    // B verifies the pushed histories only once it has handled the SyncEnd: released one turn
    // after the SyncEnd frame's own check (its handling follows within that turn).
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: JwsVerifier = {
      async verifyMany(items) {
        if (items.length > 1) await gate;
        const out = await inThreadVerifier.verifyMany(items);
        if (items.some((i) => peekFrame(typeof i.jws === 'string' ? i.jws : '')._ObjectType === 'SyncEnd')) {
          setImmediate(release);
        }
        return out;
      },
    };
    const sa = memorySync(A, B, syncA, {});
    const sb = memorySync(B, A, syncB, {}, slow);
    const la: SyncLink = memoryLink((f) => {
      sb.handleFrame(f, lb);
      const frame = peekFrame(f) as { _ObjectType?: string; request_id?: string | null; run_id?: string };
      if (frame._ObjectType !== 'SyncHistory' || frame.request_id !== null) return;
      // Right behind the push: the leader's SyncEnd of the same run.
      void signSyncFrame(
        {
          _ObjectType: 'SyncEnd',
          run_id: frame.run_id!,
          outcome: 'aborted',
          objects_sent: 5,
          objects_received: 0,
        },
        A.key,
      ).then((end) => sb.handleFrame(end, lb));
    });
    const lb: SyncLink = memoryLink((f) => sa.handleFrame(f, la));
    sa.attach(la);
    sb.attach(lb);
    const finished = nextMatch(sb.events$, (e) => e.type === 'resync_finished', 'the follower run to end');
    try {
      expect((await sa.run('test')).outcome).toBe('repaired');
      expect(await finished).toMatchObject({ outcome: 'aborted', objectsReceived: 5 });
      const [record] = await syncB.runs(A.address, 1);
      expect(record).toMatchObject({ outcome: 'aborted', objectsReceived: 5 });
      expect((await syncB.openObjects(A.address, null, 10)).length).toBe(5);
    } finally {
      release();
      await sa.close();
      await sb.close();
    }
  });
});
