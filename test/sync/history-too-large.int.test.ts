/**
 * One object's history larger than a frame (PROTOCOL.md §7.5): the sender never sends a frame
 * the peer's transport would close the connection for (1009, again at every reconnect); it sends
 * a `too_large` entry in its place. The receiver stores nothing of it and reports
 * `SYNC_HISTORY_TOO_LARGE` (`history_rejected`); the run ends `partial` with the object on
 * record; every other object is rebuilt; the connection stays up. The network read of that
 * history fails with the same code. Two real nodes, ws on 127.0.0.1, SQLite files.
 */
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeDeps } from '../../src/node.js';
import type { ResyncEvent } from '../../src/sync/resync.js';
import { headOf, heldBusiness, type Pair, startPair, step, waitFor } from './helpers.js';

/** Rough JSON size of an object's history in a frame, as the sender counts it. */
async function historyBytes(pair: Pair, ref: string): Promise<number> {
  const log = await pair.a.node.store.history(pair.b.node.address, ref);
  return log.reduce((n, r) => n + r.requestJws.length + r.responseJws.length + r.peer.length + 64, 256);
}

describe('a history larger than a frame (real sockets, SQLite files)', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  it('is sent as too_large: the receiver stores nothing of it and reports SYNC_HISTORY_TOO_LARGE, the rest is rebuilt, the run ends partial, the connection stays up', async () => {
    const quiet = { health: { divergeAfterHeartbeats: 1_000_000 } };
    pair = await startPair({ a: { business: heldBusiness().business, ...quiet }, b: quiet as NodeDeps });
    const { a, b } = pair;
    // A short history (the create and B's answer) and a longer one (two more commands).
    const short = a.node.pay({ to: b.node.address, amount: 1, currency: 'TIK' });
    const long = a.node.pay({ to: b.node.address, amount: 2, currency: 'TIK' });
    await Promise.all([firstValueFrom(short.outcome$), firstValueFrom(long.outcome$)]);
    const count = async (ref: string) => (await a.node.store.head(b.node.address, ref))?.versionCount ?? 0;
    await waitFor([a.node, b.node], async () => (await count(short.referenceId)) >= 2);
    await waitFor([a.node, b.node], async () => (await count(long.referenceId)) >= 2);
    expect(await step(a.node, b.node.address, long.referenceId)).toMatchObject({ status: 'success' });

    // B loses everything; A's store is still while B is down: size the frame limit between the two.
    await pair.wipe(b);
    const small = await historyBytes(pair, short.referenceId);
    const large = await historyBytes(pair, long.referenceId);
    expect(large).toBeGreaterThan(small);
    const maxFrameBytes = Math.floor((((small + large) / 2) * 4) / 3) + 1024;
    await pair.stop(a);
    const leader = await pair.start(a, {
      business: heldBusiness().business,
      ...quiet,
      sync: { maxFrameBytes },
    });
    const disconnects: number[] = [];
    leader.events$.subscribe((e) => {
      if (e.type === 'disconnected') disconnects.push(e.closeCode);
    });

    const before = (await leader.resyncRuns(undefined, 1))[0]?.id ?? 0;
    const restarted = await pair.start(b, quiet as NodeDeps);
    const rejected: ResyncEvent[] = [];
    restarted.resync$.subscribe((e) => {
      if (e.type === 'history_rejected') rejected.push(e);
    });
    // A dials B again and leads the run on connect.
    const ran = async () =>
      (await leader.resyncRuns(restarted.address, 5)).find(
        (r) => r.id > before && r.reason === 'connect' && r.outcome !== null,
      );
    await waitFor([leader, restarted], async () => (await ran()) !== undefined);
    const run = (await ran())!;
    expect(run.outcome).toBe('partial');
    expect(run.detail['rejected']).toEqual([
      { referenceId: long.referenceId, code: 'SYNC_HISTORY_TOO_LARGE' },
    ]);
    expect(run.objectsSent).toBe(1);

    // B holds the short one at A's head, nothing of the long one, and was told why.
    expect(await headOf(restarted, leader.address, short.referenceId)).toBe(
      await headOf(leader, restarted.address, short.referenceId),
    );
    expect(await restarted.store.head(leader.address, long.referenceId)).toBeUndefined();
    expect(await restarted.store.history(leader.address, long.referenceId)).toEqual([]);
    await waitFor([leader, restarted], async () => rejected.length > 0);
    expect(rejected).toEqual([
      expect.objectContaining({ referenceId: long.referenceId, code: 'SYNC_HISTORY_TOO_LARGE' }),
    ]);
    // B's record of the same run (other runs, a restore's, may have begun since).
    const followed = async () =>
      (await restarted.resyncRuns(leader.address, 20)).find(
        (r) => r.detail['runId'] === run.detail['runId'] && r.outcome != null,
      );
    await waitFor([leader, restarted], async () => (await followed()) !== undefined);
    expect((await followed())?.detail['rejected']).toEqual([
      { referenceId: long.referenceId, code: 'SYNC_HISTORY_TOO_LARGE' },
    ]);

    // The network read of that history fails with the same code; the short one reads fine.
    await expect(restarted.sync(leader.address).getHistory(long.referenceId)).rejects.toMatchObject({
      code: 'SYNC_HISTORY_TOO_LARGE',
    });
    const read = await restarted.sync(leader.address).getHistory(short.referenceId);
    expect(read.head).toBe(await headOf(leader, restarted.address, short.referenceId));
    // No frame above the limit ever left: the connection was never closed for it.
    expect(disconnects).toEqual([]);
    expect(leader.channel(restarted.address).connection).toBeDefined();
  });
});
