/**
 * The payments view of a store (`src/store/payments-query.ts`) on both engines: pages ordered by
 * last change, then peer and reference id, with no payment lost or repeated across pages even
 * when many heads share one change time (one group commit), and the store's filters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PaymentCursor } from '../../src/admin/ports.js';
import { createPaymentsQuery } from '../../src/store/payments-query.js';
import type { StoreEngine } from '../../src/store/types.js';
import { commandItem, createStoreFixture, HAVE_PG, PEER, type StoreFixture } from '../helpers/store.js';

function describePayments(engine: StoreEngine): void {
  describe(`payments query (${engine})`, () => {
    let fx: StoreFixture | undefined;
    afterEach(async () => {
      await fx?.dispose();
      fx = undefined;
    });

    it('pages every head once, in order, through ties of the change time; filters by peer and open', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      const payments = createPaymentsQuery(store);
      // One commit: heads written together (likely the same updated_at), on two channels.
      await store.commit([
        ...Array.from({ length: 7 }, (_, i) =>
          commandItem({ cid: `a${i}`, referenceId: `r${i}`, write: 'v1' }),
        ),
        ...Array.from({ length: 3 }, (_, i) =>
          commandItem({ cid: `b${i}`, peer: 'other-peer', referenceId: `r${i}`, write: 'v1', open: false }),
        ),
      ]);
      await store.commit([
        commandItem({ cid: 'c3', referenceId: 'r3', read: 'v1', write: 'v2', open: false }),
      ]);

      const all = await payments.heads({ limit: 100 });
      expect(all).toHaveLength(10);
      // The case the cursor's tie-break is for: heads with the same change time.
      expect(new Set(all.map((h) => h.updatedAtMs)).size).toBeLessThan(all.length);
      // Last changed first: r3 of PEER was changed last.
      expect([all[0]!.peer, all[0]!.referenceId, all[0]!.version, all[0]!.open]).toEqual([
        PEER,
        'r3',
        'v2',
        false,
      ]);
      const key = (h: { updatedAtMs: number; peer: string; referenceId: string }) => [
        -h.updatedAtMs,
        h.peer,
        h.referenceId,
      ];
      const sorted = [...all].sort((x, y) => {
        const [a, b] = [key(x), key(y)];
        for (let i = 0; i < 3; i++) if (a[i]! !== b[i]!) return a[i]! < b[i]! ? -1 : 1;
        return 0;
      });
      expect(all).toEqual(sorted);
      expect(JSON.parse(all[0]!.payment)).toEqual({ reference_id: 'r3', version: 'v2' });

      for (const limit of [1, 3]) {
        const seen: string[] = [];
        let after: PaymentCursor | undefined;
        for (;;) {
          const page = await payments.heads({ limit, ...(after ? { after } : {}) });
          seen.push(...page.map((h) => `${h.peer} ${h.referenceId}`));
          if (page.length < limit) break;
          const last = page.at(-1)!;
          after = { updatedAtMs: last.updatedAtMs, peer: last.peer, referenceId: last.referenceId };
        }
        expect(seen).toEqual(all.map((h) => `${h.peer} ${h.referenceId}`));
      }

      expect((await payments.heads({ limit: 100, peer: 'other-peer' })).map((h) => h.referenceId)).toEqual([
        'r0',
        'r1',
        'r2',
      ]);
      expect((await payments.heads({ limit: 100, open: false })).length).toBe(4);
      expect((await payments.heads({ limit: 100, open: true, peer: PEER })).length).toBe(6);
      expect((await payments.find('r1')).map((h) => h.peer).sort()).toEqual(['other-peer', PEER].sort());
      expect((await payments.history(PEER, 'r3')).map((c) => [c.cid, c.requestJws])).toEqual([
        ['a3', 'req.a3.sig'],
        ['c3', 'req.c3.sig'],
      ]);
      await store.close();
    });
  });
}

describePayments('sqlite');
describe.skipIf(!HAVE_PG)('with PostgreSQL (TEST_PG_URL)', () => {
  describePayments('postgresql');
});
