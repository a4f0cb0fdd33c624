/**
 * A peer whose store cannot write (its SQLite database on a real tmpfs filled to ENOSPC) answers
 * every resync run `SyncError STORE_UNAVAILABLE`. Runs requested against it (the `command_waiting`
 * trigger fires on every third and tenth `wait`) must not storm it: after each run its store
 * failed, the next waits twice as long (on an injected clock here), requests meanwhile merge into
 * that one run, and a run it answers again resets the wait.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createVaspNode, type NodeEvent } from '../../src/node.js';
import { nodeConfig, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { mountSmallVolume, SMALL_VOLUME_UNAVAILABLE } from '../helpers/small-volume.js';

describe.skipIf(SMALL_VOLUME_UNAVAILABLE !== undefined)(
  `resync against a peer whose store fails (tmpfs, SQLite${SMALL_VOLUME_UNAVAILABLE ? `; skipped: ${SMALL_VOLUME_UNAVAILABLE}` : ''})`,
  () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('backs off exponentially, merges requests meanwhile, and resets once the peer answers', async () => {
      const volume = mountSmallVolume(16);
      cleanups.push(() => volume.dispose());
      const dir = tempDir();
      cleanups.push(() => dir.dispose());
      const a = testIdentity(0x61);
      const b = testIdentity(0x62);
      const databaseB = join(volume.path, 'b.db');
      const nodeB = await createVaspNode(nodeConfig(b, `file:${databaseB}`, [{ identity: a }]), {
        sync: { onConnect: false },
      });
      cleanups.push(() => nodeB.close());
      const clock = new VirtualTimeScheduler();
      const nodeA = await createVaspNode(
        nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: b, url: nodeB.url }]),
        { sync: { onConnect: false, storeFailureBackoff: { scheduler: clock, firstMs: 1000 } } },
      );
      cleanups.push(() => nodeA.close());
      await until([nodeA, nodeB], async () => nodeA.channel(b.address).connection !== undefined);
      expect(await nodeA.requestResync(b.address, 'test')).toMatchObject({ outcome: 'in_sync' });

      // B's volume fills up (its WAL truncated first, so that its next write must grow it).
      const db = new Database(databaseB);
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      volume.fill();
      let begins = 0;
      nodeB.events$.subscribe((e) => {
        if (e.type === 'sync_frame_failed' && e.frameType === 'SyncBegin') begins++;
      });

      await expect(nodeA.requestResync(b.address, 'command_waiting')).rejects.toMatchObject({
        code: 'SYNC_ABORTED',
      });
      expect(begins).toBe(1);

      // The next run waits 1 s, and what is asked meanwhile joins the run after it.
      const backoffs: NodeEvent[] = [];
      nodeA.events$.subscribe((e) => {
        if (e.type === 'resync_backoff') backoffs.push(e);
      });
      const backoffCount = (n: number) =>
        until([nodeA], async () => backoffs.length >= n, { timeoutMs: 30_000 });
      const second = nodeA.requestResync(b.address, 'command_waiting');
      await backoffCount(1);
      expect(backoffs[0]).toMatchObject({ delayMs: 1000, failures: 1, reason: 'command_waiting' });
      const merged = Array.from({ length: 20 }, () =>
        nodeA.requestResync(b.address, 'command_waiting').catch((err: unknown) => err),
      );
      expect(begins).toBe(1);
      clock.flush();
      await expect(second).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
      expect(begins).toBe(2);

      // Then 2 s, for the one run the twenty requests became.
      await backoffCount(2);
      expect(backoffs[1]).toMatchObject({ delayMs: 2000, failures: 2 });
      expect(begins).toBe(2);

      // Space returns at B; the run goes through, and the next one waits for nothing.
      volume.free();
      clock.flush();
      const results = await Promise.all(merged);
      expect(new Set(results.map((r) => (r as { runId?: string }).runId)).size).toBe(1);
      expect(results[0]).toMatchObject({ outcome: 'in_sync' });
      expect(begins).toBe(2);
      expect(await nodeA.requestResync(b.address, 'test')).toMatchObject({ outcome: 'in_sync' });
      expect(backoffs).toHaveLength(2);
    });
  },
);
