/**
 * The sync repository's batched read of whole histories (what a rebuild pushes) agrees with the
 * per-object read, on both engines.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { StoreEngine } from '../../src/store/types.js';
import { commandItem, createStoreFixture, HAVE_PG, PEER, type StoreFixture } from '../helpers/store.js';

function describeHistories(engine: StoreEngine): void {
  describe(`sync repository: histories (${engine})`, () => {
    let fx: StoreFixture | undefined;
    afterEach(async () => {
      await fx?.dispose();
      fx = undefined;
    });

    it('reads the signed logs of many objects at once, each in commit order, like history() one by one', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      const sync = createSyncRepository(store);
      const refs = Array.from({ length: 1_100 }, (_, i) => `r${i}`); // more than one IN chunk
      await store.commit(refs.map((r, i) => commandItem({ cid: `a${i}`, referenceId: r, write: 'v1' })));
      // Interleave later commands of some objects, and a failed one, so that id order matters.
      await store.commit([
        commandItem({ cid: 'b7', referenceId: 'r7', read: 'v1', write: 'v2' }),
        commandItem({ cid: 'b3', referenceId: 'r3', read: 'v1', write: 'v2' }),
        commandItem({ cid: 'x7', referenceId: 'r7', read: 'v1', write: 'v2x', status: 'failure' }),
      ]);
      await store.commit([commandItem({ cid: 'c7', referenceId: 'r7', read: 'v2', write: 'v3' })]);
      await store.commit([
        commandItem({ cid: 'other', peer: 'someone-else', referenceId: 'r7', write: 'w1' }),
      ]);

      const wanted = [...refs, 'missing'];
      const batch = await sync.histories!(PEER, wanted);
      expect([...batch.keys()]).toEqual(wanted);
      expect(batch.get('missing')).toEqual([]);
      expect(batch.get('r7')!.map((c) => c.cid)).toEqual(['a7', 'b7', 'x7', 'c7']);
      for (const r of ['r0', 'r3', 'r7', 'r1099']) expect(batch.get(r)).toEqual(await store.history(PEER, r));
      await store.close();
    });
  });
}

describeHistories('sqlite');
describe.skipIf(!HAVE_PG)('with PostgreSQL (TEST_PG_URL)', () => describeHistories('postgresql'));
