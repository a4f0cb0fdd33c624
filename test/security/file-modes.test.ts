/**
 * File permissions (docs/security.md): the folders Parley creates for a SQLite database are
 * 0700 and its files (the database, `-wal`, `-shm`, the init lock) 0600, on a real node's
 * SQLite file; `parley init` creates its folder 0700.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { cli } from '../cli/helpers.js';
import { nodeConfig, startNode, tempDir, testIdentity } from '../helpers/nodes.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);

describe('database file permissions', () => {
  it('a node creates its database folders 0700 and the database, -wal, -shm and lock files 0600', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const db = join(dir.path, 'data', 'parley', 'n.db');
    const node = await startNode(nodeConfig(testIdentity(0x31), `file:${db}`, []));
    cleanups.push(() => node.close());
    await node.status();
    expect(mode(join(dir.path, 'data'))).toBe('700');
    expect(mode(join(dir.path, 'data', 'parley'))).toBe('700');
    for (const file of [db, `${db}-wal`, `${db}-shm`, `${db}.init-lock`]) {
      expect(existsSync(file), file).toBe(true);
      expect(mode(file), file).toBe('600');
    }
  });

  it('openStore alone does the same (check, studio and tools open the file too)', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const db = join(dir.path, 'fresh', 'store.db');
    const store = await openStore({ url: `file:${db}` });
    cleanups.push(() => store.close());
    await store.upsertPeer({ address: 'peer', publicKeyHex: '00'.repeat(32) });
    expect(mode(join(dir.path, 'fresh'))).toBe('700');
    for (const file of [db, `${db}-wal`, `${db}-shm`]) expect(mode(file), file).toBe('600');
  });

  it('parley init creates its folder 0700 and the config 0600', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const target = join(dir.path, 'node-a');
    const { code } = await cli(['init', '--random-address', '--dir', target], { cwd: dir.path });
    expect(code).toBe(0);
    expect(mode(target)).toBe('700');
    expect(mode(join(target, 'parley.config.json'))).toBe('600');
  });
});
