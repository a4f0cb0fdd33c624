import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { VaspNode } from '../../src/node.js';
import { headsEqual, heldBusiness, type Pair, startPair, waitFor } from './helpers.js';

/** How many payments are open when a database is wiped. */
const N = Number(process.env['PARLEY_WIPE_PAYMENTS'] ?? 1000);

async function openCount(node: VaspNode, peer: string): Promise<number> {
  return node.store.countOpenObjects(peer);
}

describe(`wipe a database while ${N} payments are open and flowing (real sockets, SQLite files)`, () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  for (const wiped of ['B (the receiver, protocol server)', 'A (the sender, protocol client)'] as const) {
    it(`rebuilds all ${N} on ${wiped} after a restart, heads equal, then the payments complete`, async () => {
      // A's business holds every payment open (its next step waits) until released.
      const held = heldBusiness();
      pair = await startPair({ a: { business: held.business } });
      const { a, b } = pair;
      const creates: Array<Promise<unknown>> = [];
      for (let i = 0; i < N; i++) {
        creates.push(
          firstValueFrom(a.node.pay({ to: b.node.address, amount: 1 + i, currency: 'TIK' }).outcome$),
        );
      }
      await Promise.all(creates);
      // All created on both sides; the receiver's answers (v2) are still flowing.
      expect(await openCount(a.node, b.node.address)).toBe(N);

      const side = wiped.startsWith('B') ? b : a;
      const survivor = side === b ? a : b;
      await pair.wipe(side);
      const releaseAgain = heldBusiness();
      const restarted = await pair.start(side, side === a ? { business: releaseAgain.business } : {});
      const survivorNode = survivor.node;

      await waitFor(
        [restarted, survivorNode],
        async () => (await openCount(restarted, survivorNode.address)) >= N,
        120_000,
      );
      await waitFor([restarted, survivorNode], () => headsEqual(restarted, survivorNode), 120_000);
      expect(await restarted.store.checkIntegrity()).toEqual([]);
      // The runs that rebuilt it are persisted with what they moved.
      const rebuilt = async () =>
        (await restarted.resyncRuns(survivorNode.address, 20)).reduce((n, r) => n + r.objectsReceived, 0);
      await waitFor([restarted, survivorNode], async () => (await rebuilt()) >= N);

      held.release();
      releaseAgain.release();
      await waitFor(
        [restarted, survivorNode],
        async () =>
          (await openCount(restarted, survivorNode.address)) === 0 &&
          (await openCount(survivorNode, restarted.address)) === 0 &&
          restarted.channel(survivorNode.address).inflight === 0 &&
          survivorNode.channel(restarted.address).inflight === 0,
        180_000,
      );
      expect(await headsEqual(restarted, survivorNode)).toBe(true);
      expect(await restarted.store.checkIntegrity()).toEqual([]);
      expect(await survivorNode.store.checkIntegrity()).toEqual([]);
    });
  }
});
