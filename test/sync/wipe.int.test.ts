import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { VaspNode } from '../../src/node.js';
import { headsEqual, heldBusiness, type Pair, startPair, waitFor } from './helpers.js';

/** How many payments are open when a database is wiped. */
const N = Number(process.env['PARLEY_WIPE_PAYMENTS'] ?? 1000);

async function openCount(node: VaspNode, peer: string): Promise<number> {
  return node.store.countOpenObjects(peer);
}

/**
 * Every history the follower of a finished run sent is counted on the leader under an apply
 * outcome (or as unsettled), and no run says `repaired` with differences left unsettled: a
 * leader that dropped answers (they were handled out of order) used to end `repaired` with
 * 213 of 1000 applied, and its node stayed short for good.
 */
async function everySentHistoryCounted(x: VaspNode, y: VaspNode): Promise<void> {
  const xr = await x.resyncRuns(y.address, 50);
  const yr = await y.resyncRuns(x.address, 50);
  for (const [leaders, followers] of [
    [xr, yr],
    [yr, xr],
  ] as const) {
    for (const lead of leaders) {
      if (lead.detail['role'] !== 'leader') continue;
      if (lead.outcome === null || lead.outcome === 'aborted' || lead.outcome === 'failed') continue;
      const results = (lead.detail['results'] ?? {}) as Record<string, number>;
      const unsettled = Number(lead.detail['unsettled'] ?? 0);
      const counted = Object.values(results).reduce((n, k) => n + k, 0) + unsettled;
      const follow = followers.find((f) => f.detail['runId'] === lead.detail['runId']);
      const what = JSON.stringify({ lead: [lead.outcome, lead.detail], follow: follow?.objectsSent });
      if (follow && follow.outcome !== null) expect(counted, what).toBeGreaterThanOrEqual(follow.objectsSent);
      if (lead.outcome === 'repaired') expect(unsettled, what).toBe(0);
    }
  }
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
        async () => {
          if ((await openCount(restarted, survivorNode.address)) >= N) return true;
          // Fails at once (instead of at the timeout) when a finished run lost histories.
          await everySentHistoryCounted(restarted, survivorNode);
          return false;
        },
        120_000,
      );
      await waitFor([restarted, survivorNode], () => headsEqual(restarted, survivorNode), 120_000);
      expect(await restarted.store.checkIntegrity()).toEqual([]);
      // The runs that rebuilt it are persisted with what they moved.
      const rebuilt = async () =>
        (await restarted.resyncRuns(survivorNode.address, 20)).reduce((n, r) => n + r.objectsReceived, 0);
      await waitFor([restarted, survivorNode], async () => (await rebuilt()) >= N);
      await everySentHistoryCounted(restarted, survivorNode);

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
      await everySentHistoryCounted(restarted, survivorNode);
      expect(await restarted.store.checkIntegrity()).toEqual([]);
      expect(await survivorNode.store.checkIntegrity()).toEqual([]);
    });
  }
});
