/**
 * The webhook business end to end: two real nodes on 127.0.0.1 whose decisions come from the
 * example back office (examples/backoffice/backoffice.py) running as a real Python process.
 */
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeConfigInput } from '../../src/config.js';
import type { HealthEvent } from '../../src/health/index.js';
import type { VaspNode } from '../../src/node.js';
import type { PaymentObject } from '../../src/protocol/index.js';
import { createNodeDatabase, freePort } from '../helpers/node-process.js';
import { nodeConfig, startNode, type TestIdentity, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { nextMatch } from '../helpers/wait.js';
import { startBackoffice, writeSecret } from './backoffice-process.js';

describe('the webhook business with the example back office (Python) between two real nodes', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function webhook(url: string, secretFile: string): NodeConfigInput['business'] {
    return { kind: 'webhook', url, secretFile, retryBaseMs: 20, retryMaxMs: 200, timeoutMs: 5000 };
  }

  async function pair(
    a: TestIdentity,
    b: TestIdentity,
    business: { a?: NodeConfigInput['business']; b?: NodeConfigInput['business'] },
    events?: NodeConfigInput['events'],
  ): Promise<[VaspNode, VaspNode]> {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const nodeB = await startNode({ ...nodeConfig(b, dbB.url, [{ identity: a }]), business: business.b });
    cleanups.push(() => nodeB.close());
    const nodeA = await startNode({
      ...nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]),
      business: business.a,
      events,
    });
    cleanups.push(() => nodeA.close());
    return [nodeA, nodeB];
  }

  async function head(node: VaspNode, peer: string, ref: string): Promise<PaymentObject | undefined> {
    const last = (await node.store.versions(peer, ref)).at(-1);
    return last ? (JSON.parse(last.payment) as PaymentObject) : undefined;
  }

  function settled(nodeA: VaspNode, nodeB: VaspNode, ref: string): () => Promise<boolean> {
    return async () => {
      const pa = await head(nodeA, nodeB.address, ref);
      const pb = await head(nodeB, nodeA.address, ref);
      return (
        pa?.sender.status.status === 'ready_for_settlement' &&
        pa.receiver.status.status === 'ready_for_settlement' &&
        JSON.stringify(pa) === JSON.stringify(pb)
      );
    };
  }

  it('drives a payment to ready_for_settlement on both sides, every decision asked of the back office', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const secretFile = writeSecret(dir.path);
    const office = await startBackoffice({ secretFile });
    cleanups.push(() => office.stop());
    const [nodeA, nodeB] = await pair(
      testIdentity(0x61),
      testIdentity(0x62),
      { a: webhook(office.url, secretFile), b: webhook(office.url, secretFile) },
      // A's events go to the same back office.
      { url: `${office.url}events`, secretFile, retryBaseMs: 20 },
    );

    const { referenceId, outcome$ } = nodeA.pay({ to: nodeB.address, amount: 250, currency: 'TIK' });
    expect((await firstValueFrom(outcome$)).status).toBe('success');
    await until([nodeA, nodeB], settled(nodeA, nodeB, referenceId), { timeoutMs: 60_000 });

    // The same five commands as two automatic businesses exchange (fixture flows a and b).
    expect(await nodeA.store.history(nodeB.address, referenceId)).toHaveLength(5);
    const final = (await head(nodeA, nodeB.address, referenceId))!;
    expect(final.recipient_signature).toBe(`${nodeB.address}.${referenceId}.SIGNED`);
    expect(final.sender.additional_kyc_data?.['given_name']).toBe('John');
    // Both nodes asked: the receiver twice, the sender twice, and the sender checked the signature.
    const asked = office.lines.filter((l) => 'answered' in l).map((l) => l['answered']);
    expect(asked.filter((t) => t === 'decide')).toHaveLength(4);
    expect(asked.filter((t) => t === 'check_recipient_signature').length).toBeGreaterThanOrEqual(1);
    // The back office received A's signed events for the payment, the last one final.
    type Event = { type: string; payment?: { reference_id: string } } | undefined;
    await nextMatch(
      office.lines$,
      (l) => {
        const e = l['event'] as Event;
        return e?.type === 'payment_final' && e.payment?.reference_id === referenceId;
      },
      'the payment_final event at the back office',
    );
    const types = office.lines
      .map((l) => l['event'] as Event)
      .filter((e) => e?.payment?.reference_id === referenceId)
      .map((e) => e!.type);
    expect(types).toEqual([
      'payment_created',
      'payment_updated',
      'payment_updated',
      'payment_updated',
      'payment_final',
    ]);
  });

  it('aborts with the LIP-1 code the back office gives', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const secretFile = writeSecret(dir.path);
    const office = await startBackoffice({ secretFile, maxAmount: 1000 });
    cleanups.push(() => office.stop());
    // A decides automatically; B's back office refuses amounts above 1000.
    const [nodeA, nodeB] = await pair(testIdentity(0x63), testIdentity(0x64), {
      b: webhook(office.url, secretFile),
    });
    const { referenceId, outcome$ } = nodeA.pay({ to: nodeB.address, amount: 5000, currency: 'TIK' });
    expect((await firstValueFrom(outcome$)).status).toBe('success');
    await until([nodeA, nodeB], async () => {
      const pa = await head(nodeA, nodeB.address, referenceId);
      return pa?.receiver.status.status === 'abort' && pa.sender.status.status === 'abort';
    });
    const pa = (await head(nodeA, nodeB.address, referenceId))!;
    expect(pa.receiver.status).toEqual({
      status: 'abort',
      abort_code: 'payment_insufficient_funds',
      abort_message: 'above the limit of 1000',
    });
  });

  it('lets the payment wait while the back office does not answer (backoffice_unreachable), and goes on once it does', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const secretFile = writeSecret(dir.path);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const [nodeA, nodeB] = await pair(testIdentity(0x65), testIdentity(0x66), {
      b: webhook(url, secretFile),
    });
    const raised = nextMatch(
      nodeB.health$,
      (e: HealthEvent) => e.kind === 'backoffice_unreachable',
      'backoffice_unreachable',
    );
    const { referenceId, outcome$ } = nodeA.pay({ to: nodeB.address, amount: 10, currency: 'TIK' });
    expect((await firstValueFrom(outcome$)).status).toBe('success');
    const event = await raised;
    expect(event).toMatchObject({ kind: 'backoffice_unreachable', peer: nodeA.address });

    // Nothing was decided for the back office: the receiver's side is still where the create left it.
    expect((await head(nodeB, nodeA.address, referenceId))?.receiver.status.status).toBe('none');
    const http = `http://127.0.0.1:${nodeB.port}`;
    const healthz = (await (await fetch(`${http}/healthz`)).json()) as Record<string, unknown>;
    expect(healthz['status']).toBe('degraded');
    expect(healthz['backoffice']).toMatchObject([{ peer: nodeA.address }]);
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`parley_channel_backoffice_unreachable\\{peer="${nodeA.address}"[^}]*\\} 1`),
    );
    const history = await nodeB.health.history({ kinds: ['backoffice_unreachable'] });
    expect(history.length).toBeGreaterThanOrEqual(1);

    const cleared = nextMatch(
      nodeB.health$,
      (e: HealthEvent) => e.kind === 'backoffice_reachable',
      'reachable',
    );
    const office = await startBackoffice({ secretFile, port });
    cleanups.push(() => office.stop());
    await cleared;
    await until([nodeA, nodeB], settled(nodeA, nodeB, referenceId), { timeoutMs: 60_000 });
    const after = (await (await fetch(`${http}/healthz`)).json()) as Record<string, unknown>;
    expect(after['backoffice']).toBeUndefined();
  });
});
