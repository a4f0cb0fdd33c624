/**
 * Events with two replicas of VASP A on one database: only the replica that serves the channel
 * delivers its events; when it stops, the replica that takes the channel over goes on from the
 * oldest undelivered event, so per-payment order survives the takeover and nothing is lost.
 */
import { readFileSync } from 'node:fs';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeConfigInput } from '../../src/config.js';
import type { VaspNode } from '../../src/node.js';
import { writeSecret } from '../business/backoffice-process.js';
import { createNodeDatabase, freePort } from '../helpers/node-process.js';
import { nodeConfig, startNode, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { firstDeliveries, startReceiver } from './receiver.js';

const LEASE = { leaseTtlMs: 3_000, renewMs: 200 };

describe('events with several replicas of one VASP', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('are delivered by the channel owner only, and in order across a takeover', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const secretFile = writeSecret(dir.path);
    const secret = Buffer.from(readFileSync(secretFile, 'utf8').trim());
    const rx1 = await startReceiver(secret);
    const rx2 = await startReceiver(secret);
    cleanups.push(
      () => rx1.close(),
      () => rx2.close(),
    );
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0x75);
    const b = testIdentity(0x76);
    const standbyPort = await freePort();
    const nodeB = await startNode(
      nodeConfig(b, dbB.url, [{ identity: a, url: `ws://127.0.0.1:${standbyPort}` }]),
    );
    cleanups.push(() => nodeB.close());
    const replica = async (id: string, url: string, port = 0): Promise<VaspNode> => {
      const config: NodeConfigInput = {
        ...nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }], port),
        replica: { id, ...LEASE },
        events: { url, secretFile, retryBaseMs: 10, retryMaxMs: 50 },
      };
      const node = await startNode(config);
      cleanups.push(() => node.close());
      return node;
    };
    const owns = async (node: VaspNode): Promise<boolean> => (await node.status())[0]?.lease === 'owner';
    const a1 = await replica('a1', rx1.url);
    await until([a1], () => owns(a1), { timeoutMs: 20_000 });
    const a2 = await replica('a2', rx2.url, standbyPort);

    const pay = async (n: number): Promise<string[]> => {
      const refs: string[] = [];
      for (let i = 0; i < n; i++) {
        const { referenceId, outcome$ } = nodeB.pay({ to: a.address, amount: 5 + i, currency: 'TIK' });
        refs.push(referenceId);
        expect((await firstValueFrom(outcome$)).status).toBe('success');
      }
      return refs;
    };
    const final = (node: VaspNode, refs: string[]) => async (): Promise<boolean> => {
      for (const ref of refs) if ((await node.store.head(b.address, ref))?.open !== false) return false;
      return true;
    };
    const before = await pay(3);
    await until([a1, nodeB], final(a1, before), { timeoutMs: 60_000 });
    const ours = (refs: string[]) => (e: { payment?: { reference_id: string } }) =>
      refs.includes(e.payment?.reference_id ?? '');
    await rx1.changed.until(
      () => firstDeliveries(rx1.received).filter(ours(before)).length === 15,
      'the owner delivered the first payments',
    );
    // The standby delivered nothing of the channel.
    expect(rx2.received.filter((r) => r.body.peer === b.address)).toEqual([]);

    // The owner stops; the standby takes the channel over and delivers what follows.
    await a1.close();
    await until([a2], () => owns(a2), { timeoutMs: 30_000 });
    const after = await pay(2);
    await until([a2, nodeB], final(a2, after), { timeoutMs: 60_000 });
    await rx2.changed.until(
      () => firstDeliveries(rx2.received).filter(ours(after)).length === 10,
      'the new owner delivered the later payments',
    );

    // Together: every payment event once or more, first deliveries in sequence order, no gap.
    const all = firstDeliveries([...rx1.received, ...rx2.received]).filter(ours([...before, ...after]));
    expect(all).toHaveLength(25);
    for (const ref of [...before, ...after]) {
      const seq = all.filter((e) => e.payment?.reference_id === ref).map((e) => e.sequence);
      expect(seq).toEqual([...seq].sort((x, y) => x - y));
      const log = (await a2.store.history(b.address, ref)).map((r) => r.cid);
      expect(all.filter((e) => e.payment?.reference_id === ref).map((e) => e.payment?.cid)).toEqual(log);
    }
  });
});
