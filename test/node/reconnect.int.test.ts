/**
 * How a node redials its peer (real nodes in this process, real sockets, real databases):
 * - a link that drops right after it carried heartbeats both ways is redialled from the first
 *   backoff delay every time, however short the connection lived;
 * - when the peer it dials restarts (closes with 1001, is away, listens again), it redials with
 *   the short restart delay the whole time, so the channel is back a moment after the peer
 *   listens, on both sides.
 *
 * Every wait is for an event, with a generous budget: these test behaviour, not speed (the
 * `detection` benchmark measures the reconnect time).
 */
import { filter, firstValueFrom, type Observable, take, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthEvent } from '../../src/health/status.js';
import { createVaspNode, type NodeEvent, type VaspNode } from '../../src/node.js';
import { createNodeDatabase, freePort } from '../helpers/node-process.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { createRelay } from '../helpers/relay.js';

const BUDGET_MS = 60_000;

function next<T>(source$: Observable<T>, match: (value: T) => boolean, what: string): Promise<T> {
  return firstValueFrom(
    source$.pipe(
      filter(match),
      take(1),
      timeout({ first: BUDGET_MS, with: () => Promise.reject(new Error(`timed out waiting for ${what}`)) }),
    ),
  );
}

type Redial = Extract<NodeEvent, { type: 'redial' }>;

describe('redialing a peer', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function database(): Promise<string> {
    const db = await createNodeDatabase();
    cleanups.push(db.dispose);
    return db.url;
  }

  async function start(config: Parameters<typeof createVaspNode>[0]): Promise<VaspNode> {
    const node = await createVaspNode(config);
    cleanups.push(() => node.close());
    return node;
  }

  it('redials from the first backoff delay after each drop of a link that carried heartbeats both ways', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = [testIdentity(0xc1), testIdentity(0xc2)];
    const nodeA = await start(nodeConfig(a, await database(), [{ identity: b }]));
    const relay = await createRelay(nodeA.url);
    cleanups.push(() => relay.close());
    const nodeB = await start(nodeConfig(b, await database(), [{ identity: a, url: relay.url }]));
    const redials: Redial[] = [];
    nodeB.events$.subscribe((e) => {
      if (e.type === 'redial') redials.push(e);
    });
    for (let drop = 0; drop < 3; drop++) {
      await next(nodeB.health.twoWay$, (c) => c.peer === a.address, 'heartbeats both ways');
      const redial = next(nodeB.events$, (e) => e.type === 'redial', 'a redial');
      relay.cut(); // a TCP reset: no close frame, no restart
      relay.resume();
      await redial;
    }
    // Each connection was dropped a moment after it proved itself (well within the 10 s after
    // which the lifetime alone resets the backoff), and each redial is the first delay.
    expect(redials.map((r) => ({ attempt: r.attempt, kind: r.kind }))).toEqual([
      { attempt: 0, kind: 'backoff' },
      { attempt: 0, kind: 'backoff' },
      { attempt: 0, kind: 'backoff' },
    ]);
  });

  it('redials a restarting peer (1001) with the short restart delay, and the channel is back on both sides', {
    timeout: 180_000,
  }, async () => {
    const [a, b] = [testIdentity(0xc3), testIdentity(0xc4)];
    // A has no URL for B: after its restart it can only wait for B to dial it.
    const configA = nodeConfig(a, await database(), [{ identity: b }], await freePort());
    const nodeA = await start(configA);
    const nodeB = await start(nodeConfig(b, await database(), [{ identity: a, url: nodeA.url }]));
    await next(nodeB.health.twoWay$, (c) => c.peer === a.address, 'the first connection proven');

    const seen: NodeEvent[] = [];
    nodeB.events$.subscribe((e) => {
      if (['redial', 'dial_failed', 'connected', 'disconnected'].includes(e.type)) seen.push(e);
    });
    // A stays away for six refused dials: long enough for a growing backoff to show.
    let refused = 0;
    const away = next(nodeB.events$, (e) => e.type === 'dial_failed' && ++refused >= 6, 'six refused dials');
    await nodeA.close();
    await away;

    const backOnB = next(nodeB.events$, (e) => e.type === 'connected', 'B connected again');
    const restarted = await start(configA);
    const transitionsA: string[] = [];
    restarted.health$.subscribe((e: HealthEvent) => {
      if (e.kind === 'transition') transitionsA.push(`${e.to}:${e.cause}`);
    });
    const backOnA = next(restarted.events$, (e) => e.type === 'connected', 'A connected after its restart');
    await Promise.all([backOnB, backOnA]);

    expect(seen.find((e) => e.type === 'disconnected')).toMatchObject({ closeCode: 1001 });
    const redials = seen.filter((e): e is Redial => e.type === 'redial');
    expect(redials.length).toBeGreaterThanOrEqual(6);
    for (const r of redials) {
      expect(r).toMatchObject({ kind: 'restart', attempt: 0 });
      expect(r.delayMs).toBeGreaterThanOrEqual(50);
      expect(r.delayMs).toBeLessThan(250);
    }
    // The channel is back on one connection, seen from both sides, and healthy from it.
    expect(seen.at(-1)).toMatchObject({ type: 'connected' });
    expect(restarted.channel(b.address).connection?.id).toBe(nodeB.channel(a.address).connection?.id);
    expect(transitionsA).toContain('healthy:connected');
  });
});
