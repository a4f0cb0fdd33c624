/**
 * Regression: the parts of one multi-frame `SyncHistory` answer are verified concurrently, and
 * a small final part can be verified before the large parts ahead of it (the node's verify
 * pool checks small frames on the calling thread and large ones on worker threads). The leader
 * used to put the answer together from the parts handled so far as soon as the `last` one was
 * handled: the earlier parts then found no waiter and were dropped, unapplied and uncounted,
 * and the run still ended `repaired` (a wiped node stuck with a fraction of its objects).
 *
 * Two real stores, two `ChannelSync`s over an in-memory ordered link; the leader's verifier
 * checks every signature for real and hands the non-final parts of a history answer back
 * only after the final one (on that signal, not after a time), which makes the overtaking
 * deterministic.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inThreadVerifier, type JwsVerifier } from '../../src/protocol/verify-pool.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import type { ChannelSync, SyncLink } from '../../src/sync/resync.js';
import { memoryLink, memorySync, peekFrame, seedOpenPayments, withTwoStores } from './in-memory.js';
import { type Party, party } from './signed-histories.js';

/** Objects the follower holds and the (empty) leader fetches. */
const N = 40;

/**
 * Real verification; a non-final part of a `SyncHistory` answer is handed back only after the
 * final part of the same answer was (and everything that followed from it in that turn), as
 * large frames sent to a worker thread come back after a small one checked in-thread. `held`
 * counts the parts held back.
 */
function finalPartFirst(): JwsVerifier & { readonly held: number } {
  const finals = new Map<string, { seen: Promise<void>; release(): void }>();
  const finalOf = (requestId: string) => {
    let entry = finals.get(requestId);
    if (!entry) {
      let release: () => void = () => undefined;
      const seen = new Promise<void>((resolve) => {
        release = resolve;
      });
      entry = { seen, release };
      finals.set(requestId, entry);
    }
    return entry;
  };
  let held = 0;
  return {
    get held() {
      return held;
    },
    async verifyMany(items) {
      const out = await inThreadVerifier.verifyMany(items);
      for (const item of items) {
        const frame = peekFrame(typeof item.jws === 'string' ? item.jws : '') as ReturnType<
          typeof peekFrame
        > & {
          request_id?: string | null;
        };
        if (frame._ObjectType !== 'SyncHistory') continue;
        const final = finalOf(String(frame.request_id));
        if (frame.last === false) {
          held++;
          await final.seen;
        } else {
          // Released one turn later: the final part's own handling goes first.
          setImmediate(final.release);
        }
      }
      return out;
    },
  };
}

describe('a multi-frame history answer whose final part is verified first', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('the leader applies every object of the answer, counts each under an outcome, and ends repaired', async () => {
    const A = party(0xa1);
    const B = party(0xb2);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncB, B, A, N);

    // All N in one fetch; frames of ~16 KB: the follower's answer spans several of them.
    const make = (me: Party, peer: Party, store: SyncStore, verifier: JwsVerifier): ChannelSync =>
      memorySync(
        me,
        peer,
        store,
        { batchObjects: N, maxFrameBytes: 16_000, responseTimeoutMs: 10_000 },
        verifier,
      );
    const verifier = finalPartFirst();
    const sa = make(A, B, syncA, verifier);
    const sb = make(B, A, syncB, inThreadVerifier);
    const historyParts: boolean[] = [];
    const la: SyncLink = memoryLink((f) => sb.handleFrame(f, lb));
    const lb: SyncLink = memoryLink((f) => {
      const frame = peekFrame(f);
      if (frame._ObjectType === 'SyncHistory') historyParts.push(frame.last === true);
      sa.handleFrame(f, la);
    });
    sa.attach(la);
    sb.attach(lb);
    try {
      const result = await sa.run('rebuild');
      // The scenario holds: the answer came in several frames.
      expect(historyParts.length).toBeGreaterThan(1);
      expect(verifier.held).toBeGreaterThan(0);

      expect(result.differences).toBe(N);
      expect(result.objectsReceived).toBe(N);
      expect(result.outcome).toBe('repaired');
      expect((await syncA.openObjects(B.address, null, 10_000)).length).toBe(
        (await syncB.openObjects(A.address, null, 10_000)).length,
      );
      const [record] = await syncA.runs(B.address, 1);
      expect(record?.outcome).toBe('repaired');
      expect(record?.detail['results']).toEqual({ applied: N });
      expect(record?.detail['unsettled']).toBeUndefined();
      expect(await stores.a.checkIntegrity()).toEqual([]);
    } finally {
      await sa.close();
      await sb.close();
    }
  });
});
