/**
 * A SQLite store on a small volume (a real tmpfs): its WAL stays bounded, so steady writes do not
 * fill a volume larger than the data; and when the volume did fill up, the write probe gives the
 * WAL's space back (checkpoint + truncate) once room returns, without allocating a page itself.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import { openStore } from '../../src/store/index.js';
import type { ParleyStore } from '../../src/store/types.js';
import { mountSmallVolume, SMALL_VOLUME_UNAVAILABLE } from '../helpers/small-volume.js';
import { commandItem } from '../helpers/store.js';

const walSize = (database: string): number =>
  existsSync(`${database}-wal`) ? statSync(`${database}-wal`).size : 0;

/** Commits a chain of versions of one object, one transaction each, from `from` on. */
async function extend(store: ParleyStore, from: number, count: number): Promise<number> {
  for (let i = from; i < from + count; i++) {
    await store.commit([
      commandItem({ cid: `c${i}`, referenceId: 'r1', read: i === 0 ? null : `c${i - 1}`, write: `c${i}` }),
    ]);
  }
  return from + count;
}

describe.skipIf(SMALL_VOLUME_UNAVAILABLE !== undefined)(
  `a SQLite store on a small volume (tmpfs${SMALL_VOLUME_UNAVAILABLE ? `; skipped: ${SMALL_VOLUME_UNAVAILABLE}` : ''})`,
  () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('keeps its WAL within twice the checkpoint interval under steady writes', async () => {
      const volume = mountSmallVolume(16);
      cleanups.push(() => volume.dispose());
      const database = join(volume.path, 'node.db');
      const store = await openStore({ url: `file:${database}` });
      cleanups.push(() => store.close());
      let largest = 0;
      let next = 0;
      // About 25 MB of WAL frames in all, far more than the volume holds.
      for (let round = 0; round < 30; round++) {
        next = await extend(store, next, 100);
        largest = Math.max(largest, walSize(database));
      }
      expect(largest).toBeGreaterThan(0);
      expect(largest).toBeLessThanOrEqual(2 * 1000 * 4096);
      expect(await store.checkIntegrity()).toEqual([]);
    });

    it('after a write failed on a full volume, its probe checkpoints and truncates the WAL once room returns', async () => {
      const volume = mountSmallVolume(16);
      cleanups.push(() => volume.dispose());
      const database = join(volume.path, 'node.db');
      const store = await openStore({ url: `file:${database}`, walCheckpointPages: 500 });
      cleanups.push(() => store.close());
      let next = await extend(store, 0, 50);
      expect(await store.probeWritable?.()).toEqual({ writable: true, spaceFree: true });

      volume.fill();
      let failed: unknown;
      for (let i = 0; i < 20_000 && failed === undefined; i++) {
        try {
          next = await extend(store, next, 1);
        } catch (err) {
          failed = err;
        }
      }
      expect(isParleyError(failed, 'STORE_UNAVAILABLE')).toBe(true);
      expect(await store.probeWritable?.()).toMatchObject({ writable: false, spaceFree: false });
      const walWhenFull = walSize(database);
      expect(walWhenFull).toBeGreaterThan(0);

      volume.free();
      expect(await store.probeWritable?.()).toEqual({ writable: true, spaceFree: true });
      expect(walSize(database)).toBe(0);
      await extend(store, next, 10);
      expect(await store.checkIntegrity()).toEqual([]);
    });
  },
);
