/**
 * A node whose SQLite database is on a small volume that fills up (a real 16 MiB tmpfs, a filler
 * file written to ENOSPC), next to a peer with room: payments are refused with their code and
 * never acknowledged, `/healthz` says `store: unwritable` (503) while `/livez` stays 200 (a
 * restart cannot make room), and once the filler is deleted the node recovers by itself: the WAL
 * is checkpointed and truncated, the condition ends (and is in the health history), and the
 * next payment completes. Waits on events and on observable state only.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { filter, firstValueFrom, type Observable, take, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { adminRequest } from '../../src/cli/admin-client.js';
import type { NodeEvent, VaspNode } from '../../src/node.js';
import { createVaspNode } from '../../src/node.js';
import { nodeConfig, startNode, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { mountSmallVolume, SMALL_VOLUME_UNAVAILABLE } from '../helpers/small-volume.js';

const nextEvent = <T extends NodeEvent['type']>(node: VaspNode, type: T, ms = 30_000) =>
  firstValueFrom(
    (node.events$ as Observable<NodeEvent>).pipe(
      filter((e): e is Extract<NodeEvent, { type: T }> => e.type === type),
      take(1),
      timeout(ms),
    ),
  );

async function get(node: VaspNode, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${node.port}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe.skipIf(SMALL_VOLUME_UNAVAILABLE !== undefined)(
  `a node on a volume that fills up (16 MiB tmpfs, SQLite${SMALL_VOLUME_UNAVAILABLE ? `; skipped: ${SMALL_VOLUME_UNAVAILABLE}` : ''})`,
  () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('refuses payments while full, says so on /healthz but not /livez, and recovers by itself once space returns', async () => {
      const volume = mountSmallVolume(16);
      cleanups.push(() => volume.dispose());
      const dir = tempDir();
      cleanups.push(() => dir.dispose());
      const a = testIdentity(0x51);
      const b = testIdentity(0x52);
      const database = join(volume.path, 'b.db');
      const nodeB = await createVaspNode(nodeConfig(b, `file:${database}`, [{ identity: a }]), {
        storeWritability: { probeIntervalMs: 200, unwritableProbeIntervalMs: 100 },
      });
      cleanups.push(() => nodeB.close());
      registerAdminRoutes(nodeB);
      const nodeA = await startNode(
        nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: b, url: nodeB.url }]),
      );
      cleanups.push(() => nodeA.close());
      const pay = (amount: number) =>
        adminRequest(`http://127.0.0.1:${nodeB.port}`, 'POST', '/admin/pay?wait=1', {
          to: a.address,
          amount,
          currency: 'TIK',
        });
      expect(await pay(1)).toMatchObject({ status: 200, body: { outcome: { status: 'success' } } });

      // The volume fills up. (The WAL is first checkpointed and truncated, by a connection of the
      // test, so that the next write must grow it: pages the WAL file already has would take a
      // few more payments first.)
      const db = new Database(database);
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      const unwritable = nextEvent(nodeB, 'store_unwritable');
      volume.fill();
      // A payment is refused with its code, never acknowledged.
      const refused = await pay(2);
      expect([409, 503]).toContain(refused.status);
      expect(refused.body).toMatchObject({ error: 'STORE_UNAVAILABLE' });
      expect(await unwritable).toMatchObject({ code: 'SQLITE_FULL' });
      const healthz = await get(nodeB, '/healthz');
      expect(healthz).toMatchObject({
        status: 503,
        body: { status: 'down', store: 'unwritable', storeCode: 'SQLITE_FULL' },
      });
      // However long it lasts: no room, so a restart would not help.
      expect(await get(nodeB, '/livez')).toMatchObject({ status: 200, body: { status: 'ok' } });
      const status = await adminRequest(`http://127.0.0.1:${nodeB.port}`, 'GET', '/admin/status');
      expect(status.body).toMatchObject({ store: { store: 'unwritable', code: 'SQLITE_FULL' } });
      const refusedRef = (refused.body as { referenceId?: string }).referenceId;
      if (refusedRef !== undefined) expect(await nodeB.store.head(a.address, refusedRef)).toBeUndefined();

      // Space returns: the node recovers with no one's help.
      const writable = nextEvent(nodeB, 'store_writable');
      volume.free();
      expect(await writable).toMatchObject({ code: 'SQLITE_FULL' });
      // The WAL was checkpointed into the database file and cut back (to 0 by the probe, and at
      // most twice the checkpoint interval after writes since).
      expect(statSync(`${database}-wal`).size).toBeLessThanOrEqual(2 * 1000 * 4096);
      expect(await pay(3)).toMatchObject({ status: 200, body: { outcome: { status: 'success' } } });
      expect((await get(nodeB, '/healthz')).body).toMatchObject({ store: 'ok' });
      expect(await get(nodeB, '/livez')).toMatchObject({ status: 200 });
      const history = await nodeB.health.history({ kinds: ['store_unwritable'] });
      expect(history).toEqual([
        expect.objectContaining({
          peer: b.address,
          kind: 'store_unwritable',
          detail: expect.objectContaining({ code: 'SQLITE_FULL' }),
        }),
      ]);
      // Both sides settle what was paid, and the store is consistent.
      await until([nodeA, nodeB], async () => (await nodeB.store.outbox(a.address)).length === 0, {
        timeoutMs: 30_000,
      });
      expect(await nodeB.store.checkIntegrity()).toEqual([]);
    });
  },
);
