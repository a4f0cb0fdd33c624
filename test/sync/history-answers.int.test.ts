/**
 * How a follower answers `SyncGetHistory`: each object once however often a request names it,
 * streamed in frames of at most `maxBatchBytes` (the final one `last`), and several requests at
 * once answered one after the other, each whole and in order. A request naming one large object
 * a thousand times used to make the follower read and hold that history a thousand times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSyncFrame, type SyncFrame, signSyncFrame } from '../../src/protocol/sync-frames.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncLink } from '../../src/sync/resync.js';
import { changes } from '../helpers/wait.js';
import { memoryLink, memorySync, seedOpenPayments, withTwoStores } from './in-memory.js';
import { party } from './signed-histories.js';

type History = Extract<SyncFrame, { _ObjectType: 'SyncHistory' }>;

describe('history answers', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('send each object once, in frames within the budget, one answer after the other', async () => {
    const A = party(0x31);
    const B = party(0x32);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncB, B, A, 12);
    const refs = (await syncB.openObjects(A.address, null, 100)).map((h) => h.referenceId);
    expect(refs).toHaveLength(12);
    const sb = memorySync(B, A, syncB, { maxBatchBytes: 8_000 });
    const answers: History[] = [];
    const answered = changes();
    const lb: SyncLink = memoryLink((f) => {
      const frame = decodeSyncFrame(Buffer.from(f.split('.')[1]!, 'base64url').toString('utf8'));
      if (frame._ObjectType === 'SyncHistory') answers.push(frame);
      answered.changed();
    });
    sb.attach(lb);
    try {
      const ask = async (id: string, wants: string[]) =>
        sb.handleFrame(
          await signSyncFrame(
            {
              _ObjectType: 'SyncGetHistory',
              request_id: id,
              run_id: null,
              wants: wants.map((reference_id) => ({ reference_id, after: null })),
            },
            A.key,
          ),
          lb,
        );
      await ask(
        'r1',
        Array.from({ length: 1000 }, (_, i) => refs[i % 2]!),
      );
      await ask('r2', [...refs, ...refs]);
      const done = () => answers.filter((a) => a.last).length === 2;
      await answered.until(done, 'the final frames of both answers');
      expect(done()).toBe(true);

      const r1 = answers.filter((a) => a.request_id === 'r1');
      const r2 = answers.filter((a) => a.request_id === 'r2');
      expect(r1.flatMap((a) => a.objects.map((o) => o.reference_id))).toEqual([refs[0], refs[1]]);
      expect(r2.flatMap((a) => a.objects.map((o) => o.reference_id))).toEqual(refs);
      // Streamed in several frames, numbered in order, the final one last; answers not interleaved.
      expect(r2.length).toBeGreaterThan(1);
      expect(r2.map((a) => a.seq)).toEqual(r2.map((_, i) => i));
      expect(r2.map((a) => a.last)).toEqual(r2.map((_, i) => i === r2.length - 1));
      expect(answers.map((a) => a.request_id)).toEqual([...r1.map(() => 'r1'), ...r2.map(() => 'r2')]);
      for (const a of r2) {
        if (a.objects.length > 1) expect(JSON.stringify(a.objects).length).toBeLessThanOrEqual(8_000);
      }
    } finally {
      await sb.close();
    }
  });
});
