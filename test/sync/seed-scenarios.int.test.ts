import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeDeps, VaspNode } from '../../src/node.js';
import { isProtocolServer } from '../../src/protocol/index.js';
import { headOf, headsEqual, heldBusiness, type Pair, startPair, step, waitFor } from './helpers.js';

/** Same signed log of an object on both sides (command errors may be logged in another order). */
async function sameHistory(x: VaspNode, y: VaspNode, ref: string): Promise<void> {
  const entries = async (n: VaspNode, peer: string) =>
    (await n.store.history(peer, ref))
      .map((r) => [r.cid, r.requestJws, r.responseJws, r.status])
      .sort((p, q) => (p[0]! < q[0]! ? -1 : 1));
  expect(await entries(y, x.address)).toEqual(await entries(x, y.address));
}

const closedOnBoth = (x: VaspNode, y: VaspNode, ref: string) => async (): Promise<boolean> => {
  const [hx, hy] = await Promise.all([x.store.head(y.address, ref), y.store.head(x.address, ref)]);
  return hx?.open === false && hy?.open === false && hx.headVersion === hy.headVersion;
};

describe('seed scenarios over real sockets and SQLite files (B is the protocol server, A the client)', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  // Scenarios 1 and 2 restore a database from a snapshot (a file copy, or a template database).
  it('seed scenario 1: the server reads an old version, the client answers used_dependencies and pushes its later versions; the server catches up and its business decides again', async () => {
    // No resync on connect and no divergence trigger: the used_dependencies answer is what repairs.
    const quiet = (business: NodeDeps['business']): NodeDeps =>
      ({
        business,
        sync: { onConnect: false },
        health: { divergeAfterHeartbeats: 1_000_000 },
      }) as NodeDeps;
    const heldA = heldBusiness();
    pair = await startPair({ a: quiet(heldA.business), b: quiet(heldBusiness().business) });
    const { a, b } = pair;
    expect(isProtocolServer(b.node.address, a.node.address)).toBe(true);
    const { referenceId: ref, outcome$ } = a.node.pay({ to: b.node.address, amount: 7, currency: 'TIK' });
    await firstValueFrom(outcome$);
    await waitFor([a.node, b.node], async () => (await headOf(b.node, a.node.address, ref)) !== undefined);

    // The server's database goes back to version 1 while the client goes on to version 3.
    await pair.stop(b);
    const restore = await pair.snapshot(b);
    await pair.start(b, quiet(heldBusiness().business));
    await step(b.node, a.node.address, ref); // v2 (server)
    await step(a.node, b.node.address, ref); // v3 (client)
    const v3 = await headOf(a.node, b.node.address, ref);
    await pair.stop(b);
    await restore();
    const heldB = heldBusiness();
    const server = await pair.start(b, quiet(heldB.business));
    await waitFor([a.node, server], async () => server.channel(a.node.address).connection !== undefined);

    // The server proposes from version 1: the client holds it consumed.
    const stale = await step(server, a.node.address, ref);
    expect(stale).toMatchObject({ status: 'failure', code: 'used_dependencies' });
    // The client resynced that object: the server now holds the client's head, verified.
    await waitFor([a.node, server], async () => (await headOf(server, a.node.address, ref)) === v3);
    const usedDependenciesRun = async () =>
      (await a.node.resyncRuns(server.address, 10)).find(
        (r) => r.reason === 'used_dependencies' && r.outcome,
      );
    await waitFor([a.node, server], async () => (await usedDependenciesRun()) !== undefined);
    expect(await usedDependenciesRun()).toMatchObject({
      outcome: 'repaired',
      objectsSent: 1,
      objectsReceived: 0,
    });
    expect((await usedDependenciesRun())?.detail['role']).toBe('leader');
    expect(await server.store.checkIntegrity()).toEqual([]);

    // The server's business decides again, on version 3: its next version goes through.
    heldB.release();
    await waitFor(
      [a.node, server],
      async () => (await server.store.head(a.node.address, ref))?.versionCount === 4,
    );
    heldA.release();
    await waitFor([a.node, server], closedOnBoth(a.node, server, ref));
    await sameHistory(a.node, server, ref);
  });

  it('seed scenario 2: a client behind the server fetches the versions it lacks (2–4) on reconnect and applies them', async () => {
    pair = await startPair({
      a: { business: heldBusiness().business },
      b: { business: heldBusiness().business },
    });
    const { a, b } = pair;
    const { referenceId: ref, outcome$ } = a.node.pay({ to: b.node.address, amount: 8, currency: 'TIK' });
    await firstValueFrom(outcome$);
    const v1 = await headOf(a.node, b.node.address, ref);

    // The client's database goes back to version 1 while the server goes on to version 4.
    await pair.stop(a);
    const restore = await pair.snapshot(a);
    await pair.start(a, { business: heldBusiness().business });
    await step(b.node, a.node.address, ref); // v2 (server)
    await step(a.node, b.node.address, ref); // v3 (client)
    await step(b.node, a.node.address, ref); // v4 (server)
    const v4 = await headOf(b.node, a.node.address, ref);
    await pair.stop(a);
    await restore();
    const client = await pair.start(a);
    expect(await headOf(client, b.node.address, ref)).toBe(v1);

    await waitFor([client, b.node], async () => (await headOf(client, b.node.address, ref)) === v4);
    await sameHistory(client, b.node, ref);
    expect(await client.store.checkIntegrity()).toEqual([]);
    await waitFor(
      [client, b.node],
      async () => (await client.resyncRuns(b.node.address, 1))[0]?.outcome != null,
    );
    const fetched = (await client.resyncRuns(b.node.address, 10)).find((r) => r.objectsReceived === 1);
    expect(fetched).toMatchObject({ reason: 'connect', outcome: 'repaired', objectsSent: 0 });
    // The client's business takes its turn on version 4: the payment completes.
    await waitFor([client, b.node], closedOnBoth(client, b.node, ref));
  });

  it('seed scenario 3: rebuilds every open object on a node that lost its database, from the signed history its counterparty pushes', async () => {
    const held = heldBusiness();
    pair = await startPair({ a: { business: held.business } });
    const { a, b } = pair;
    const n = 12;
    const refs: string[] = [];
    for (let i = 0; i < n; i++) {
      const { referenceId, outcome$ } = a.node.pay({ to: b.node.address, amount: 10 + i, currency: 'TIK' });
      refs.push(referenceId);
      await firstValueFrom(outcome$);
    }
    // B answers each create (v2); A's next step waits for the held business: all stay open.
    await waitFor([a.node, b.node], async () => {
      for (const ref of refs)
        if ((await a.node.store.head(b.node.address, ref))?.versionCount !== 2) return false;
      return headsEqual(a.node, b.node);
    });
    const epochBefore = b.node.epoch;

    await pair.wipe(b);
    const restarted = await pair.start(b);
    expect(restarted.epoch).not.toBe(epochBefore);
    await waitFor(
      [a.node, restarted],
      async () => (await restarted.store.countOpenObjects(a.node.address)) === n,
    );
    await waitFor([a.node, restarted], () => headsEqual(a.node, restarted));
    for (const ref of refs) {
      const mine = await a.node.store.history(restarted.address, ref);
      const theirs = await restarted.store.history(a.node.address, ref);
      expect(theirs.map((r) => [r.cid, r.requestJws, r.responseJws])).toEqual(
        mine.map((r) => [r.cid, r.requestJws, r.responseJws]),
      );
    }
    expect(await restarted.store.checkIntegrity()).toEqual([]);
    // The run is persisted on both sides: A led it (it dialed) and pushed, B followed and received.
    // (A later run, one that finds both sides in sync, may end after it: pick the repairing one.)
    const repairing = async () =>
      (await restarted.resyncRuns(a.node.address, 10)).filter(
        (r) => r.outcome != null && r.objectsReceived > 0,
      );
    await waitFor([a.node, restarted], async () => (await repairing()).length > 0);
    const [led] = (await a.node.resyncRuns(restarted.address, 10)).filter((r) => r.objectsSent > 0);
    expect(led).toMatchObject({ outcome: 'repaired', objectsSent: n, objectsReceived: 0 });
    expect(led!.detail['role']).toBe('leader');
    const [followed] = await repairing();
    expect(followed).toMatchObject({ outcome: 'repaired', objectsReceived: n });
    expect(followed!.bytesReceived).toBeGreaterThan(0);

    held.release();
    await waitFor(
      [a.node, restarted],
      async () =>
        (await a.node.store.countOpenObjects(restarted.address)) === 0 &&
        (await restarted.store.countOpenObjects(a.node.address)) === 0 &&
        a.node.channel(restarted.address).inflight === 0,
    );
    for (const ref of refs) {
      expect((await restarted.store.head(a.node.address, ref))?.headVersion).toBe(
        (await a.node.store.head(restarted.address, ref))?.headVersion,
      );
    }
  });
});
