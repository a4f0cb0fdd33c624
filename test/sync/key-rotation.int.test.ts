/**
 * A key rotation does not strand what was signed before it: a node that rotated its compliance
 * key and then lost its database gets its open objects back from its counterparty, whose pushed
 * histories carry its old signatures, once the old key is listed as retired
 * (`retiredPublicKeys`). Without it, those histories are rejected and nothing is stored.
 */
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeConfigInput } from '../../src/config.js';
import { createVaspNode, type NodeEvent, type VaspNode } from '../../src/node.js';
import { createNodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, testIdentity, until } from '../helpers/nodes.js';
import { heldBusiness } from './helpers.js';

describe('a key rotation (real sockets; SQLite, or PostgreSQL with PARLEY_TEST_DB)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('keeps the histories signed with the old key verifiable: a wiped node is rebuilt once its old key is retired, not before', async () => {
    const database = async (): Promise<string> => {
      const db = await createNodeDatabase();
      cleanups.push(db.dispose);
      return db.url;
    };
    const dbB = await database();
    const before = testIdentity(0xc1);
    // The same VASP after the rotation: same address, a new key.
    const fresh = testIdentity(0xc1);
    const after = { ...before, seedHex: fresh.seedHex, publicKeyHex: fresh.publicKeyHex };
    const b = testIdentity(0xc2);

    const start = async (config: NodeConfigInput): Promise<VaspNode> => {
      // Payments stay open (B's business never settles), so a resync carries them.
      const node = await createVaspNode(config, { business: heldBusiness().business });
      cleanups.push(() => node.close());
      return node;
    };
    let nodeB = await start(nodeConfig(b, dbB, [{ identity: before }]));
    let nodeA = await start(nodeConfig(before, await database(), [{ identity: b, url: nodeB.url }]));
    const { referenceId: ref, outcome$ } = nodeA.pay({ to: b.address, amount: 42, currency: 'TIK' });
    expect(await firstValueFrom(outcome$)).toMatchObject({ status: 'success' });
    const headOnB = async () => (await nodeB.store.head(before.address, ref))?.headVersion;
    await until([nodeA, nodeB], async () => (await headOnB()) !== undefined);
    await nodeA.close();
    await nodeB.close();

    // A rotates its key and loses its database; B learns A's new key.
    const bConfig = nodeConfig(b, dbB, [{ identity: after }]);
    bConfig.peers![0]!.retiredPublicKeys = [before.publicKeyHex];
    nodeB = await start(bConfig);
    const head = await headOnB();
    expect(head).toBeDefined();

    // Without its old key listed, A refuses its own old signatures: nothing is stored.
    const withoutRetired = nodeConfig(after, await database(), [{ identity: b, url: nodeB.url }]);
    nodeA = await start(withoutRetired);
    const seenA: NodeEvent[] = [];
    nodeA.events$.subscribe((e) => seenA.push(e));
    await until([nodeA, nodeB], async () => seenA.some((e) => e.type === 'history_rejected'));
    expect(seenA.find((e) => e.type === 'history_rejected')).toMatchObject({
      referenceId: ref,
      code: 'SYNC_BAD_SIGNATURE',
    });
    expect(await nodeA.store.head(b.address, ref)).toBeUndefined();
    await nodeA.close();

    // With it: the object is rebuilt, every signature verified (A's old ones with the retired key).
    const withRetired = nodeConfig(after, await database(), [{ identity: b, url: nodeB.url }]);
    withRetired.retiredPublicKeys = [before.publicKeyHex];
    nodeA = await start(withRetired);
    await until([nodeA, nodeB], async () => (await nodeA.store.head(b.address, ref))?.headVersion === head, {
      timeoutMs: 30_000,
    });
    const logA = await nodeA.store.history(b.address, ref);
    const logB = await nodeB.store.history(after.address, ref);
    expect(logA.map((r) => [r.cid, r.requestJws, r.responseJws])).toEqual(
      logB.map((r) => [r.cid, r.requestJws, r.responseJws]),
    );
    expect(await nodeA.store.checkIntegrity()).toEqual([]);
    // A new command (signed with the new key) still goes through on top of the rebuilt history.
    const next = await firstValueFrom(nodeA.pay({ to: b.address, amount: 43, currency: 'TIK' }).outcome$);
    expect(next).toMatchObject({ status: 'success' });
  });
});
