/**
 * A stale owner: replica a1 of VASP A serves the channel to B (real nodes, real sockets, the
 * node test database: PostgreSQL with PARLEY_TEST_DB=postgresql), and its lease is taken behind
 * its back, long before its next renewal would tell it. Its next write is refused by the store's
 * fence; from that write on it answers `POST /admin/pay` as a standby does (503, Retry-After,
 * STORE_LEASE_LOST, nothing that names a payment) and stops serving the channel: its connection
 * to B closed with 4421 and nothing dialed again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { NodeEvent, VaspNode } from '../../src/node.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { createNodeDatabase, freePort } from '../helpers/node-process.js';
import { nodeConfig, startNode, testIdentity, until } from '../helpers/nodes.js';

/** a1 would learn of the takeover at its next renewal only, 20 s after it took the lease. */
const SLOW_RENEWAL = { leaseTtlMs: 60_000, renewMs: 20_000 };

describe('a replica whose lease was taken while it still serves the channel', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const record = (node: VaspNode): NodeEvent[] => {
    const seen: NodeEvent[] = [];
    node.events$.subscribe((e) => seen.push(e));
    return seen;
  };

  async function pay(node: VaspNode, to: string) {
    const res = await fetch(`http://127.0.0.1:${node.port}/admin/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to, amount: 5, currency: 'TIK' }),
    });
    const body = (await res.json()) as Record<string, string>;
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
  }

  it('answers a payment as a standby does and stops serving the channel at its first fenced write', async () => {
    const [dbA, dbB] = [await createNodeDatabase(), await createNodeDatabase()];
    cleanups.push(dbA.dispose, dbB.dispose);
    const a = testIdentity(0x61);
    const b = testIdentity(0x62);
    // B dials A where nothing listens: every connection of the channel is one a1 dials.
    const nodeB = await startNode(
      nodeConfig(b, dbB.url, [{ identity: a, url: `ws://127.0.0.1:${await freePort()}` }]),
    );
    cleanups.push(() => nodeB.close());
    const replica = async (id: string) => {
      const node = await startNode({
        ...nodeConfig(a, dbA.url, [{ identity: b, url: nodeB.url }]),
        replica: { id, ...SLOW_RENEWAL },
      });
      cleanups.push(() => node.close());
      registerAdminRoutes(node);
      return node;
    };
    const a1 = await replica('a1');
    await until([a1, nodeB], async () => nodeB.channel(a.address).connection !== undefined, {
      timeoutMs: 20_000,
    });
    const served = await pay(a1, b.address);
    expect(served.status).toBe(202); // the owner serves it
    const a1Events = record(a1);
    const bEvents = record(nodeB);

    // Another replica took the lease (as after a1 froze past it); a1 renews in ~20 s only.
    await dbA.query(
      `UPDATE channel_lease SET owner = 'a9', token = 'taken', expires_at = ${Date.now() + 120_000} RETURNING peer`,
    );
    const stale = await pay(a1, b.address);
    expect(stale.status).toBe(503);
    expect(stale.retryAfter).toBe('1');
    expect(stale.body).toEqual({
      error: 'STORE_LEASE_LOST',
      message: expect.stringMatching(/another replica/),
    });
    expect(stale.body['message']).not.toMatch(/rows/);

    // Given up at once, not at the renewal: no longer served, the connection closed with 4421.
    await until([a1, nodeB], async () => (await a1.status())[0]?.lease === 'standby', { timeoutMs: 10_000 });
    expect(a1Events.filter((e) => e.type === 'lease_lost')).toEqual([
      { type: 'lease_lost', peer: b.address, owner: 'a1', reason: 'taken_over' },
    ]);
    await until([nodeB], async () => nodeB.channel(a.address).connection === undefined, {
      timeoutMs: 10_000,
    });
    expect(bEvents.filter((e) => e.type === 'disconnected')).toMatchObject([
      { closeCode: CloseCode.NOT_OWNER },
    ]);
    expect(a1.channel(b.address).connection).toBeUndefined();

    // A standby started now answers the same, and a1 answers it from now on too.
    const a2 = await replica('a2');
    const standby = await pay(a2, b.address);
    const again = await pay(a1, b.address);
    for (const answer of [standby, again]) {
      expect(answer).toMatchObject({ status: 503, retryAfter: '1', body: { error: 'STORE_LEASE_LOST' } });
      expect(Object.keys(answer.body).sort()).toEqual(['error', 'message']);
    }
    // Nothing of the refused payments was stored; a1 dialed nothing more (B saw no new connection).
    for (const row of await a1.store.outbox(b.address))
      expect(row.referenceId).toBe(served.body['referenceId']);
    expect(bEvents.filter((e) => e.type === 'connected')).toEqual([]);
    expect(a1Events.filter((e) => e.type === 'redial' || e.type === 'dial_failed')).toEqual([]);
  });
});
