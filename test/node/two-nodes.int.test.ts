import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeEvent, VaspNode } from '../../src/node.js';
import { openStore } from '../../src/store/index.js';
import { createNodeDatabase, freePort } from '../helpers/node-process.js';
import { nodeConfig, startNode, testIdentity, until } from '../helpers/nodes.js';

describe('two VASP nodes over real WebSocket channels on 127.0.0.1 (SQLite files, or PostgreSQL with PARLEY_TEST_DB)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function pair(): Promise<[VaspNode, VaspNode]> {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0x41);
    const b = testIdentity(0x42);
    // B listens first; A knows B's URL and dials it.
    const nodeB = await startNode(nodeConfig(b, dbB.url, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    const nodeA = await startNode(nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]));
    cleanups.push(() => nodeA.close());
    return [nodeA, nodeB];
  }

  it('settles payments in both directions, interleaved; both signed logs are identical', async () => {
    const [nodeA, nodeB] = await pair();
    const n = 40;
    const refs: string[] = [];
    const outcomes: Array<Promise<unknown>> = [];
    for (let i = 0; i < n; i++) {
      const from = i % 2 === 0 ? nodeA : nodeB;
      const to = from === nodeA ? nodeB : nodeA;
      const { referenceId, outcome$ } = from.pay({ to: to.address, amount: 100 + i, currency: 'TIK' });
      refs.push(referenceId);
      outcomes.push(firstValueFrom(outcome$));
    }
    const created = await Promise.all(outcomes);
    expect(created.every((o) => (o as { status: string }).status === 'success')).toBe(true);

    const bothFinal = async (): Promise<boolean> => {
      for (const ref of refs) {
        const ha = await nodeA.store.head(nodeB.address, ref);
        const hb = await nodeB.store.head(nodeA.address, ref);
        if (!ha || !hb || ha.open || hb.open || ha.headVersion !== hb.headVersion) return false;
      }
      return nodeA.channel(nodeB.address).inflight === 0 && nodeB.channel(nodeA.address).inflight === 0;
    };
    await until([nodeA, nodeB], bothFinal, { timeoutMs: 60_000 });

    for (const ref of refs) {
      const logA = await nodeA.store.history(nodeB.address, ref);
      const logB = await nodeB.store.history(nodeA.address, ref);
      expect(logA.length).toBe(5);
      expect(logA.map((r) => [r.cid, r.requestJws, r.responseJws, r.status])).toEqual(
        logB.map((r) => [r.cid, r.requestJws, r.responseJws, r.status]),
      );
      const versions = await nodeA.store.versions(nodeB.address, ref);
      const last = JSON.parse(versions.at(-1)!.payment);
      expect(last.sender.status.status).toBe('ready_for_settlement');
      expect(last.receiver.status.status).toBe('ready_for_settlement');
    }
    expect(await nodeA.store.checkIntegrity()).toEqual([]);
    expect(await nodeB.store.checkIntegrity()).toEqual([]);
  });

  it('ends every waiting caller with CHANNEL_CLOSED when the node closes; the commands stay in the outbox', async () => {
    const db = await createNodeDatabase();
    cleanups.push(db.dispose);
    const a = testIdentity(0x43);
    const b = testIdentity(0x44);
    // B is down: nothing gets a final response.
    const nodeA = await startNode(
      nodeConfig(a, db.url, [{ identity: b, url: `ws://127.0.0.1:${await freePort()}` }]),
    );
    const queued: string[] = [];
    nodeA.events$.subscribe((e) => {
      if (e.type === 'command_queued') queued.push(e.referenceId);
    });
    const started = [1, 2, 3].map((amount) => nodeA.pay({ to: b.address, amount, currency: 'TIK' }));
    const settled = started.map(({ outcome$ }) =>
      firstValueFrom(outcome$).then(
        () => 'completed',
        (err: unknown) => (err as { code?: string }).code,
      ),
    );
    await until([nodeA], async () => queued.length === 3, { timeoutMs: 20_000 });
    await nodeA.close();
    expect(await Promise.all(settled)).toEqual(['CHANNEL_CLOSED', 'CHANNEL_CLOSED', 'CHANNEL_CLOSED']);

    const store = await openStore({ url: db.url });
    cleanups.push(() => store.close());
    expect((await store.outbox(b.address)).map((o) => o.referenceId).sort()).toEqual(
      started.map((p) => p.referenceId).sort(),
    );
  });

  it('reports why a channel does not come up: the refused hello on one side, the failed dial on the other', async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0x45);
    const b = testIdentity(0x46);
    // B holds a stale key for A (A rotated it, say): A's signed hello does not verify there.
    const stale = { ...a, publicKeyHex: testIdentity(0x45).publicKeyHex };
    const nodeB = await startNode(nodeConfig(b, dbB.url, [{ identity: stale }]));
    cleanups.push(() => nodeB.close());
    const seenB: NodeEvent[] = [];
    nodeB.events$.subscribe((e) => seenB.push(e));
    const nodeA = await startNode(nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]));
    cleanups.push(() => nodeA.close());
    const seenA: NodeEvent[] = [];
    nodeA.events$.subscribe((e) => seenA.push(e));
    const failed = async (): Promise<boolean> =>
      seenA.some((e) => e.type === 'dial_failed') && seenB.some((e) => e.type === 'handshake_refused');
    await until([nodeA, nodeB], failed, { timeoutMs: 20_000 });
    expect(seenB.find((e) => e.type === 'handshake_refused')).toMatchObject({
      code: 'AUTH_BAD_SIGNATURE',
      remoteAddress: '127.0.0.1',
    });
    expect(seenA.find((e) => e.type === 'dial_failed')).toMatchObject({
      peer: nodeB.address,
      code: 'AUTH_BAD_SIGNATURE',
    });
    expect((await nodeA.status())[0]?.state).not.toBe('connected');
    // A keeps dialing (with backoff); B reports one refusal per address and 10 s, not each.
    await until([nodeA, nodeB], async () => seenA.filter((e) => e.type === 'dial_failed').length >= 3);
    expect(seenB.filter((e) => e.type === 'handshake_refused')).toHaveLength(1);
  });
});
