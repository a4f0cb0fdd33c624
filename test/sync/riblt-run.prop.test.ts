/**
 * Property: the same random signed histories and random loss as `reconcile.prop.test.ts`, but
 * both sides speak the `riblt` method (their hellos name it) and announce the summary of an
 * open-objects digest: one resync makes both sides converge, the run found its differences by
 * coded symbols (or fell back to `list`, said in its record), and a second resync is a no-op.
 *
 * Two real stores; the two `ChannelSync`s talk over an in-memory link. Each run uses fresh party
 * addresses, so runs share the stores without sharing a channel.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAddress, generatePrivateKey, isProtocolServer } from '../../src/protocol/index.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { ParleyStore } from '../../src/store/types.js';
import type { SyncStore } from '../../src/sync/ports.js';
import { createStoreFixture, type StoreFixture } from '../helpers/store.js';
import { usePg } from './helpers.js';
import { commitItemsFor, ribltPair } from './in-memory.js';
import { buildPayment, type Party, signStep } from './signed-histories.js';

function randomParty(): Party {
  const onchain = randomBytes(16);
  return { address: encodeAddress({ hrp: 'lbr', onchain }), key: generatePrivateKey() };
}

/** The store with the optional batched read of whole histories, over its per-object read. */
function withBatchedHistories(store: SyncStore): SyncStore {
  return {
    ...store,
    async histories(peer, referenceIds) {
      const out = new Map<string, Awaited<ReturnType<SyncStore['history']>>>();
      for (const ref of referenceIds) out.set(ref, await store.history(peer, ref));
      return out;
    },
  };
}

async function chainOf(store: SyncStore, peer: string, ref: string): Promise<string[]> {
  return (await store.versions(peer, ref)).map((v) => v.version);
}

async function openSet(store: SyncStore, peer: string): Promise<string[]> {
  return (await store.openObjects(peer, null, 10_000)).map((h) => `${h.referenceId}@${h.headVersion}`);
}

const PaymentPlan = fc.record({
  steps: fc.integer({ min: 1, max: 5 }),
  senderIsA: fc.boolean(),
  keepA: fc.integer({ min: 0, max: 6 }),
  keepB: fc.integer({ min: 0, max: 6 }),
  fork: fc.boolean(),
});

describe('resync by coded symbols converges from any loss', () => {
  let fa: StoreFixture;
  let fb: StoreFixture;
  let storeA: ParleyStore;
  let storeB: ParleyStore;
  beforeAll(async () => {
    const engine = usePg ? 'postgresql' : 'sqlite';
    [fa, fb] = await Promise.all([createStoreFixture(engine), createStoreFixture(engine)]);
    [storeA, storeB] = await Promise.all([fa.open(), fb.open()]);
  });
  afterAll(async () => {
    await fa?.dispose();
    await fb?.dispose();
  });

  it('random histories and random loss: both converge, a second run is a no-op', async () => {
    const methods: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.array(PaymentPlan, { minLength: 1, maxLength: 7 }),
        fc.boolean(),
        async (plans, aLeads) => {
          const A = randomParty();
          const B = randomParty();
          const server = isProtocolServer(A.address, B.address) ? 'A' : 'B';
          // A reads whole histories in batches (the optional `histories` port), B per object.
          const syncA = withBatchedHistories(createSyncRepository(storeA));
          const syncB = createSyncRepository(storeB);
          const forked = new Set<string>();
          for (const plan of plans) {
            const steps = await buildPayment(plan.senderIsA ? A : B, plan.senderIsA ? B : A, plan.steps);
            const keptA = Math.min(plan.keepA, steps.length);
            const keptB = Math.min(plan.keepB, steps.length);
            let stepsA = steps.slice(0, keptA);
            let stepsB = steps.slice(0, keptB);
            // A fork: the side that was cut short extends the same version differently.
            if (plan.fork && Math.min(keptA, keptB) >= 1 && keptA !== keptB) {
              const shortIsA = keptA < keptB;
              const cut = shortIsA ? keptA : keptB;
              const original = steps[cut]!;
              const other = original.proposer.address === A.address ? B : A;
              const sibling = signStep(original.proposer, other, original.payment, steps[cut - 1]!.cid);
              if (shortIsA) stepsA = [...stepsA, sibling];
              else stepsB = [...stepsB, sibling];
              forked.add(steps[0]!.payment.reference_id);
            }
            if (stepsA.length > 0) await syncA.commit(commitItemsFor(stepsA, A, B));
            if (stepsB.length > 0) await syncB.commit(commitItemsFor(stepsB, B, A));
          }
          const refs = [
            ...new Set(
              plans.length ? (await syncA.openObjects(B.address, null, 1000)).map((h) => h.referenceId) : [],
            ),
          ];
          const before = new Map<string, { a: string[]; b: string[] }>();
          for (const ref of [
            ...refs,
            ...(await syncB.openObjects(A.address, null, 1000)).map((h) => h.referenceId),
          ]) {
            before.set(ref, {
              a: await chainOf(syncA, B.address, ref),
              b: await chainOf(syncB, A.address, ref),
            });
          }

          const { sx, sy } = ribltPair({ me: A, peer: B, store: syncA }, { me: B, peer: A, store: syncB });
          const leader = aLeads ? sx : sy;
          const first = await leader.run('property');
          expect(first.rejected).toEqual([]);
          const [record] = await (aLeads ? syncA.runs(B.address, 1) : syncB.runs(A.address, 1));
          if (first.differences > 0) expect(['riblt', 'riblt→list']).toContain(record?.detail['method']);
          methods.push(String(record?.detail['method']));

          expect(await openSet(syncA, B.address)).toEqual(await openSet(syncB, A.address));
          for (const [ref, was] of before) {
            const nowA = await chainOf(syncA, B.address, ref);
            const nowB = await chainOf(syncB, A.address, ref);
            const check = (old: string[], now: string[], side: 'A' | 'B'): void => {
              if (old.length === 0) return;
              if (forked.has(ref) && side !== server) return; // the client's fork branch may be replaced
              expect(now.slice(0, old.length)).toEqual(old);
            };
            check(was.a, nowA, 'A');
            check(was.b, nowB, 'B');
          }
          expect(await storeA.checkIntegrity()).toEqual([]);
          expect(await storeB.checkIntegrity()).toEqual([]);

          const second = await leader.run('property again');
          expect(second).toMatchObject({
            outcome: 'in_sync',
            objectsSent: 0,
            objectsReceived: 0,
            differences: 0,
          });
          await sx.close();
          await sy.close();
        },
      ),
      { numRuns: 25 },
    );
    // The coded symbols decoded (not only fell back) in most runs.
    expect(methods.filter((m) => m === 'riblt').length).toBeGreaterThan(methods.length / 2);
  });
});
