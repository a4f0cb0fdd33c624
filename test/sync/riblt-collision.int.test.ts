/**
 * Two objects whose reference ids share the 32-bit hash of a coded-symbol key (`refHash`), one
 * held by each side only: the leader decodes one key of each side with the same `hi`, which
 * looks like one object at two heads. The peer's object must still reach the leader (and the
 * leader's the peer), within the next run at the latest, and the runs after that are no-ops.
 *
 * Reference ids are chosen by their creator, so a counterparty can make such pairs on purpose.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAddress, generatePrivateKey } from '../../src/protocol/index.js';
import { refHash } from '../../src/protocol/riblt.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import { commitItemsFor, openTwoStores, ribltPair } from './in-memory.js';
import { buildPayment, collidingSuffixes, type Party } from './signed-histories.js';

const party = (): Party => ({
  address: encodeAddress({ hrp: 'lbr', onchain: randomBytes(16) }),
  key: generatePrivateKey(),
});

const open = async (store: SyncStore, peer: string): Promise<string[]> =>
  (await store.openObjects(peer, null, 100)).map((h) => `${h.referenceId}@${h.headVersion}`).sort();

describe('riblt: two reference ids with one key hash', () => {
  let stores: Awaited<ReturnType<typeof openTwoStores>>;
  beforeAll(async () => {
    stores = await openTwoStores();
  });
  afterAll(async () => {
    await stores?.dispose();
  });

  /** Fresh parties on the two stores (runs share the stores, not a channel), and two suffixes of A's ids with one hash. */
  function twoParties() {
    const A = party();
    const B = party();
    const [onA, onB] = collidingSuffixes(A.address);
    return { A, B, syncA: createSyncRepository(stores.a), syncB: createSyncRepository(stores.b), onA, onB };
  }

  it('each side gets the other side’s object, and the next run is a no-op', async () => {
    const { A, B, syncA, syncB, onA, onB } = twoParties();
    const x = await buildPayment(A, B, 1, onA);
    const y = await buildPayment(A, B, 1, onB);
    const refX = x[0]!.payment.reference_id;
    const refY = y[0]!.payment.reference_id;
    expect(refHash(refX)).toBe(refHash(refY));
    await syncA.commit(commitItemsFor(x, A, B));
    await syncB.commit(commitItemsFor(y, B, A));

    const { sx: sa, sy: sb } = ribltPair({ me: A, peer: B, store: syncA }, { me: B, peer: A, store: syncB });

    try {
      const both = (await open(syncA, B.address)).concat(await open(syncB, A.address)).sort();
      const runs: string[] = [];
      for (let i = 0; i < 3; i++) {
        const result = await sa.run(`collision ${i}`);
        expect(result.rejected).toEqual([]);
        runs.push(result.outcome);
        if (result.outcome === 'in_sync') break;
      }
      expect(await open(syncA, B.address)).toEqual(both);
      expect(await open(syncB, A.address)).toEqual(both);
      // The first run pushes the leader's object (the peer answered it holds none of it), the
      // second finds the peer's by its key alone, both by coded symbols; the third has nothing to do.
      expect(runs).toEqual(['repaired', 'repaired', 'in_sync']);
      const records = (await syncA.runs(B.address, 3)).reverse();
      expect(records.map((r) => r.detail['method'])).toEqual(['riblt', 'riblt', undefined]);
      expect(records.map((r) => [r.objectsSent, r.objectsReceived])).toEqual([
        [1, 0],
        [0, 1],
        [0, 0],
      ]);
    } finally {
      await sa.close();
      await sb.close();
    }
  });

  it('resolves two keys of the follower with one hash in the same run: its object ahead here and the other', async () => {
    const { A, B, syncA, syncB, onA, onB } = twoParties();
    // X: A holds its create, B one command more; Y (same hash): B only.
    const x = await buildPayment(A, B, 2, onA);
    const y = await buildPayment(A, B, 1, onB);
    await syncA.commit(commitItemsFor(x.slice(0, 1), A, B));
    await syncB.commit(commitItemsFor(x, B, A));
    await syncB.commit(commitItemsFor(y, B, A));
    const { sx: sa, sy: sb } = ribltPair({ me: A, peer: B, store: syncA }, { me: B, peer: A, store: syncB });
    try {
      const wanted = await open(syncB, A.address);
      expect(wanted).toHaveLength(2);
      const first = await sa.run('two keys, one hash');
      expect(first).toMatchObject({ outcome: 'repaired', objectsSent: 0, objectsReceived: 2, rejected: [] });
      const [record] = await syncA.runs(B.address, 1);
      expect(record?.detail['method']).toBe('riblt');
      expect(await open(syncA, B.address)).toEqual(wanted);
      expect((await sa.run('again')).outcome).toBe('in_sync');
    } finally {
      await sa.close();
      await sb.close();
    }
  });
});
