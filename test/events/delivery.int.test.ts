/**
 * Events for the back office, end to end: two real nodes, a real HTTP receiver on 127.0.0.1
 * that fails and recovers; nothing lost, nothing reordered per payment, duplicates only with
 * the same event id. And the same events as Server-Sent Events from `GET /admin/events`.
 */
import { readFileSync } from 'node:fs';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { NodeConfigInput } from '../../src/config.js';
import type { EventBody } from '../../src/events/index.js';
import type { NodeEvent, VaspNode } from '../../src/node.js';
import { writeSecret } from '../business/backoffice-process.js';
import { createNodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, startNode, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { type Received, type Receiver, startReceiver } from './receiver.js';

describe('events for the back office (two real nodes, a real receiver)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function receiver(secret: Buffer, status: (n: number) => number): Promise<Receiver> {
    const rx = await startReceiver(secret, status);
    cleanups.push(() => rx.close());
    return rx;
  }

  it('delivers every payment event at least once, in order per payment, through failures', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const secretFile = writeSecret(dir.path);
    const secret = Buffer.from(readFileSync(secretFile, 'utf8').trim());
    // Down for the first 4 requests, then every third request fails (after the receiver read it:
    // the node sends that event again, with the same id).
    const rx = await receiver(secret, (n) => (n <= 4 || n % 3 === 0 ? 503 : 200));
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0x71);
    const b = testIdentity(0x72);
    const events: NodeConfigInput['events'] = { url: rx.url, secretFile, retryBaseMs: 10, retryMaxMs: 50 };
    const nodeB = await startNode(nodeConfig(b, dbB.url, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    const nodeA = await startNode({ ...nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]), events });
    cleanups.push(() => nodeA.close());
    registerAdminRoutes(nodeA, { isTrusted: () => true });
    const failures: NodeEvent[] = [];
    nodeA.events$.subscribe((e) => {
      if (e.type === 'event_delivery_failed') failures.push(e);
    });

    const refs: string[] = [];
    for (let i = 0; i < 6; i++) {
      const from = i % 2 === 0 ? nodeA : nodeB;
      const to = from === nodeA ? nodeB : nodeA;
      const { referenceId, outcome$ } = from.pay({ to: to.address, amount: 10 + i, currency: 'TIK' });
      refs.push(referenceId);
      expect((await firstValueFrom(outcome$)).status).toBe('success');
    }
    const closedOnA = async (): Promise<boolean> => {
      for (const ref of refs) if ((await nodeA.store.head(nodeB.address, ref))?.open !== false) return false;
      return true;
    };
    await until([nodeA, nodeB], closedOnA, { timeoutMs: 60_000 });

    // Every command A committed for these payments is an event the receiver acknowledged.
    const logs = new Map<string, string[]>();
    for (const ref of refs)
      logs.set(
        ref,
        (await nodeA.store.history(nodeB.address, ref)).map((r) => r.cid),
      );
    const expected = [...logs.values()].reduce((n, cids) => n + cids.length, 0);
    const ours = (e: EventBody): boolean => refs.includes(e.payment?.reference_id ?? '');
    const acknowledged = (): Received[] => rx.received.filter((r) => r.status === 200 && ours(r.body));
    await rx.changed.until(
      () => new Set(acknowledged().map((r) => r.body.id)).size >= expected,
      `${expected} acknowledged events (received ${JSON.stringify(rx.received.map((r) => [r.status, r.body.type, r.body.sequence]))})`,
    );

    // Duplicates only with the same id: one body per id.
    const byId = new Map<string, string>();
    for (const r of rx.received) {
      const text = JSON.stringify(r.body);
      expect(byId.get(r.body.id) ?? text).toBe(text);
      byId.set(r.body.id, text);
    }
    expect(rx.received.some((r) => r.status !== 200)).toBe(true);
    expect(rx.received.length).toBeGreaterThan(byId.size); // some were sent again
    // Each failed attempt is a node event (logged at warn).
    expect(failures.length).toBe(rx.received.filter((r) => r.status !== 200).length);
    expect(failures[0]).toMatchObject({ attempts: 1, error: 'the receiver answered HTTP 503' });

    // Per payment: the first delivery of each event is in commit order, nothing missing.
    for (const ref of refs) {
      const seen: EventBody[] = [];
      for (const r of rx.received) {
        if (r.body.payment?.reference_id !== ref || seen.some((e) => e.id === r.body.id)) continue;
        seen.push(r.body);
      }
      expect(seen.map((e) => e.payment?.cid)).toEqual(logs.get(ref));
      expect(seen.map((e) => e.sequence)).toEqual([...seen.map((e) => e.sequence)].sort((x, y) => x - y));
      expect(seen[0]!.type).toBe('payment_created');
      expect(seen.at(-1)!.type).toBe('payment_final');
      expect(seen.at(-1)!.payment).toMatchObject({
        my_status: 'ready_for_settlement',
        their_status: 'ready_for_settlement',
      });
    }

    // The same events as Server-Sent Events, from the start.
    const res = await fetch(`http://127.0.0.1:${nodeA.port}/admin/events?after=0`);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const streamed = (): EventBody[] =>
      [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as EventBody).filter(ours);
    while (streamed().length < expected) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    const acked = [...new Map(acknowledged().map((r) => [r.body.id, r.body])).values()];
    expect(streamed().map((e) => e.id)).toEqual(
      acked.sort((x, y) => x.sequence - y.sequence).map((e) => e.id),
    );
  });

  it('answers 404 EVENTS_DISABLED when the node records no events', async () => {
    const db = await createNodeDatabase();
    cleanups.push(db.dispose);
    const node = await startNode(nodeConfig(testIdentity(0x73), db.url, []));
    cleanups.push(() => node.close());
    registerAdminRoutes(node as VaspNode, { isTrusted: () => true });
    const res = await fetch(`http://127.0.0.1:${node.port}/admin/events`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'EVENTS_DISABLED' });
  });
});
