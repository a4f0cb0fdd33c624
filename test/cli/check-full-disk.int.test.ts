/**
 * `parley check` on a node whose volume is full (a real tmpfs, filled to ENOSPC): the store's
 * initialisation lock must be had without writing anything, so the check runs and passes.
 * (A database closed cleanly before its volume filled, its WAL index removed with it, cannot be
 * opened on a volume without 32 KiB free for that index: SQLite's limit, docs/storage.md.)
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAddress } from '../../src/protocol/index.js';
import { openStore } from '../../src/store/index.js';
import { mountSmallVolume, SMALL_VOLUME_UNAVAILABLE, type SmallVolume } from '../helpers/small-volume.js';
import { commandItem } from '../helpers/store.js';
import { cli, tempDir } from './helpers.js';

describe.skipIf(SMALL_VOLUME_UNAVAILABLE !== undefined)(
  `parley check on a full disk (tmpfs${SMALL_VOLUME_UNAVAILABLE ? `; skipped: ${SMALL_VOLUME_UNAVAILABLE}` : ''})`,
  () => {
    const cleanups: Array<() => void> = [];
    afterEach(() => {
      for (const c of cleanups.splice(0).reverse()) c();
    });

    it('takes the init lock without writing, and passes on a consistent database', async () => {
      const volume: SmallVolume = mountSmallVolume(4);
      cleanups.push(() => volume.dispose());
      const dir = tempDir();
      cleanups.push(() => dir.dispose());
      const path = join(volume.path, 'node.db');
      const address = encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(0x41) });
      const init = await cli(['init', '--address', address, '--database', `file:${path}`], { cwd: dir.path });
      expect(init.code, init.err).toBe(0);
      // The node's store fills the volume, and stays open (the node runs on, or hangs).
      const store = await openStore({ url: `file:${path}` });
      cleanups.push(() => void store.close());
      await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'c1' })]);
      expect(volume.fill()).toBeGreaterThan(0);
      await expect(
        store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'c1', write: 'c2' })]),
      ).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });

      const check = await cli(['check', '--config', join(dir.path, 'parley.config.json')]);
      expect(check, check.err).toMatchObject({
        code: 0,
        out: 'ok: the derived state matches the signed log\n',
      });
      await store.close();
    });
  },
);
