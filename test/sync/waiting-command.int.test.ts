/**
 * A command the peer keeps answering `wait` reads a version the peer lacks. While it is in
 * flight the open-object digests are not compared (a difference is expected then), and a plain
 * resend never supplies the version: after the third `wait` the proposer resyncs that object,
 * which pushes what the peer lacks, and the command goes through.
 */
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeDeps, NodeEvent } from '../../src/node.js';
import { headOf, heldBusiness, type Pair, startPair, step, waitFor } from './helpers.js';

describe('a command answered `wait` again and again (real sockets; SQLite, or PostgreSQL with PARLEY_TEST_DB)', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  it('starts a resync of its object once the peer answered `wait` three times, then goes through', async () => {
    // No resync on connect and no divergence trigger: only the `wait` answers can repair.
    const quiet = (): NodeDeps =>
      ({
        business: heldBusiness().business,
        sync: { onConnect: false },
        health: { divergeAfterHeartbeats: 1_000_000 },
      }) as NodeDeps;
    pair = await startPair({ a: quiet(), b: quiet() });
    const { a, b } = pair;
    // B's backup, taken before the payment.
    await pair.stop(b);
    const restore = await pair.snapshot(b);
    await pair.start(b, quiet());
    await waitFor([a.node, b.node], async () => b.node.channel(a.node.address).connection !== undefined);

    const { referenceId: ref, outcome$ } = a.node.pay({ to: b.node.address, amount: 9, currency: 'TIK' });
    expect(await firstValueFrom(outcome$)).toMatchObject({ status: 'success' });
    expect(await step(b.node, a.node.address, ref)).toMatchObject({ status: 'success' });
    const v2 = await headOf(a.node, b.node.address, ref);

    // B comes back from its backup (same store epoch, so no lost state is seen): it lacks the payment.
    await pair.stop(b);
    await restore();
    const server = await pair.start(b, quiet());
    await waitFor([a.node, server], async () => server.channel(a.node.address).connection !== undefined);
    expect(await headOf(server, a.node.address, ref)).toBeUndefined();

    const seen: NodeEvent[] = [];
    a.node.events$.subscribe((e) => seen.push(e));
    // A's next version reads v2, which B does not hold.
    const next = await step(a.node, server.address, ref);
    expect(next).toMatchObject({ status: 'success' });

    const waits = seen.filter((e) => e.type === 'command_waiting');
    expect(waits.length).toBeGreaterThanOrEqual(3);
    expect(waits.slice(0, 3)).toEqual(
      [1, 2, 3].map((n) => expect.objectContaining({ cid: next.cid, referenceId: ref, waits: n })),
    );
    const runs = await a.node.resyncRuns(server.address, 10);
    expect(runs.find((r) => r.reason === 'command_waiting')).toMatchObject({
      outcome: 'repaired',
      objectsSent: 1,
      objectsReceived: 0,
    });
    // B verified and stored A's history up to v2, then accepted v3 on top of it.
    expect((await server.store.versions(a.node.address, ref)).map((v) => v.version)).toEqual(
      (await a.node.store.versions(server.address, ref)).map((v) => v.version),
    );
    expect((await server.store.versions(a.node.address, ref)).at(1)?.version).toBe(v2);
    expect(await server.store.checkIntegrity()).toEqual([]);
  });
});
