/**
 * A back-office event delivery that keeps failing is a health condition, never a silent stuck
 * state: a real node, a real HTTP receiver on 127.0.0.1 that refuses and then recovers.
 * `events_undeliverable` is an event (persisted), a metric exported from 0, `/healthz`
 * degraded, `GET /admin/status` and `parley status`, and the dashboard's node conditions; the
 * next delivered event clears it.
 */
import { readFileSync } from 'node:fs';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type AdminStatus, registerAdminRoutes } from '../../src/admin/routes.js';
import { formatStatus } from '../../src/cli/commands/status.js';
import type { HealthEvent } from '../../src/health/status.js';
import type { VaspNode } from '../../src/node.js';
import { writeSecret } from '../business/backoffice-process.js';
import { connectDashboard } from '../dashboard/client.js';
import { createNodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, startNode, tempDir, testIdentity } from '../helpers/nodes.js';
import { startReceiver } from './receiver.js';

const get = async (node: VaspNode, path: string): Promise<{ status: number; text: string }> => {
  const res = await fetch(`http://127.0.0.1:${node.port}${path}`);
  return { status: res.status, text: await res.text() };
};
const gauge = async (node: VaspNode): Promise<string | undefined> =>
  /^parley_events_undeliverable\{[^}]*\} (\d+)$/m.exec((await get(node, '/metrics')).text)?.[1];

describe('events_undeliverable (a real node, a real receiver that fails and recovers)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('raises the condition after the configured failures in a row and clears it on the next delivery', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const secretFile = writeSecret(dir.path);
    const secret = Buffer.from(readFileSync(secretFile, 'utf8').trim());
    let failing = true;
    const rx = await startReceiver(secret, () => (failing ? 503 : 200));
    cleanups.push(() => rx.close());
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0x75);
    const b = testIdentity(0x76);
    const nodeB = await startNode(nodeConfig(b, dbB.url, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    const nodeA = await startNode({
      ...nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]),
      events: { url: rx.url, secretFile, retryBaseMs: 10, retryMaxMs: 20 },
      health: { eventsUndeliverableAfterFailures: 3 },
    });
    cleanups.push(() => nodeA.close());
    registerAdminRoutes(nodeA, { isTrusted: () => true });
    const dash = connectDashboard(nodeA.port, ['websocket']);
    cleanups.push(() => dash.close());
    const seen = (kind: HealthEvent['kind']) =>
      firstValueFrom(nodeA.health$.pipe(filter((e) => e.kind === kind)));

    // Exported from 0, before anything failed.
    expect(await gauge(nodeA)).toBe('0');
    expect((await dash.snapshot).conditions).toEqual([]);

    const raised = seen('events_undeliverable');
    const { outcome$ } = nodeA.pay({ to: nodeB.address, amount: 5, currency: 'TIK' });
    expect((await firstValueFrom(outcome$)).status).toBe('success');
    const event = await raised;
    if (event.kind !== 'events_undeliverable') throw new Error('unreachable');
    expect(event.failures).toBe(3);
    expect(event.error).toContain('503');
    expect(rx.received.length).toBeGreaterThanOrEqual(3);

    // /healthz degraded, with the condition; /metrics 1; the admin status and `parley status`.
    const healthz = await get(nodeA, '/healthz');
    expect(healthz.status).toBe(200);
    const body = JSON.parse(healthz.text) as {
      status: string;
      eventsUndeliverable?: Array<{ eventId: string }>;
    };
    expect(body.status).toBe('degraded');
    expect(body.eventsUndeliverable?.[0]?.eventId).toBe(event.eventId);
    expect(await gauge(nodeA)).toBe('1');
    const status = JSON.parse((await get(nodeA, '/admin/status')).text) as AdminStatus;
    expect(status.eventsUndeliverable?.[0]?.eventId).toBe(event.eventId);
    expect(formatStatus(status)).toContain(`later events wait behind ${event.eventId}`);
    // The dashboard's node conditions, under the Prometheus alert's name.
    const delta = await dash.until((d) => (d.conditions ?? []).length > 0);
    expect(delta.conditions?.[0]).toMatchObject({
      kind: 'events_undeliverable',
      alert: 'ParleyEventsUndeliverable',
    });
    // Persisted.
    await nodeA.health.flush();
    const history = await nodeA.health.history({ kinds: ['events_undeliverable'] });
    expect(history.map((r) => r.kind)).toEqual(['events_undeliverable']);

    // The receiver recovers: the next delivered event clears everything.
    const cleared = seen('events_deliverable');
    failing = false;
    const back = await cleared;
    if (back.kind !== 'events_deliverable') throw new Error('unreachable');
    expect(back.eventId).toBe(event.eventId);
    expect(await gauge(nodeA)).toBe('0');
    expect(JSON.parse((await get(nodeA, '/healthz')).text).eventsUndeliverable).toBeUndefined();
    const after = JSON.parse((await get(nodeA, '/admin/status')).text) as AdminStatus;
    expect(after.eventsUndeliverable).toBeUndefined();
    expect(formatStatus(after)).not.toContain('events_undeliverable');
    await dash.until((d) => d.conditions !== undefined && d.conditions.length === 0);
    expect(dash.violations).toEqual([]);
  });
});
