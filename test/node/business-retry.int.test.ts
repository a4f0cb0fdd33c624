/**
 * A reaction of the business layer that could not be sent for a reason that may pass (the store
 * refused to queue it) runs again after a backoff, as long as the peer's version is still the
 * head. Without that, both sides would wait for each other, with equal open-object digests (so
 * no resync either), until a restart.
 */
import { firstValueFrom, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { createVaspNode, type NodeEvent, type VaspNode } from '../../src/node.js';
import type { OutboxRecord } from '../../src/store/types.js';
import { createNodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, startNode, testIdentity, until } from '../helpers/nodes.js';

describe('business reactions that could not be sent (real sockets; SQLite, or PostgreSQL with PARLEY_TEST_DB)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('run again after a backoff while the store refuses them, and the payment completes', async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0x81);
    const b = testIdentity(0x82);
    const nodeB = await startNode(nodeConfig(b, dbB.url, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    // A's retry timers run on virtual time: flushed below as soon as one is set.
    const scheduler = new VirtualTimeScheduler();
    const nodeA: VaspNode = await createVaspNode(nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]), {
      driver: { scheduler },
    });
    cleanups.push(() => nodeA.close());

    // A fault in front of A's database: its next two commands after the create are refused.
    let refusals = 2;
    const enqueue = nodeA.store.enqueue.bind(nodeA.store);
    nodeA.store.enqueue = (record: OutboxRecord) =>
      record.readVersion !== null && refusals-- > 0
        ? Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'database unreachable'))
        : enqueue(record);
    const errors: NodeEvent[] = [];
    const reacted: Array<Extract<NodeEvent, { type: 'reacted' }>> = [];
    nodeA.events$.subscribe((e) => {
      if (e.type === 'reacted') reacted.push(e);
      if (e.type !== 'business_error') return;
      errors.push(e);
      queueMicrotask(() => scheduler.flush());
    });

    const { referenceId, outcome$ } = nodeA.pay({ to: nodeB.address, amount: 250, currency: 'TIK' });
    expect(await firstValueFrom(outcome$)).toMatchObject({ status: 'success' });
    const settled = async (): Promise<boolean> => {
      const ha = await nodeA.store.head(nodeB.address, referenceId);
      const hb = await nodeB.store.head(nodeA.address, referenceId);
      return !!ha && !!hb && !ha.open && !hb.open && ha.headVersion === hb.headVersion;
    };
    await until([nodeA, nodeB], settled, {
      timeoutMs: 30_000,
      describe: async () => `A errors ${JSON.stringify(errors)}`,
    });

    expect(refusals).toBeLessThan(0);
    expect(errors).toEqual([
      expect.objectContaining({ referenceId, message: 'database unreachable', retryInMs: 1000 }),
      expect.objectContaining({ referenceId, message: 'database unreachable', retryInMs: 2000 }),
    ]);
    const versions = await nodeA.store.versions(nodeB.address, referenceId);
    const last = JSON.parse(versions.at(-1)!.payment);
    expect(last.sender.status.status).toBe('ready_for_settlement');
    expect(last.receiver.status.status).toBe('ready_for_settlement');
    const history = await nodeA.store.history(nodeB.address, referenceId);
    expect(history).toHaveLength(5);
    // `reacted` says my reaction is durable: never for the two the store refused.
    const mine = history.filter((r) => r.direction === 'outbound' && r.readVersion !== null);
    expect(reacted.map((e) => e.sent).sort()).toEqual(mine.map((r) => r.cid).sort());
    expect(await nodeA.store.outbox(nodeB.address)).toEqual([]);
    expect(await nodeA.store.checkIntegrity()).toEqual([]);
  });
});
