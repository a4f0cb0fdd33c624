import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNodeConfig, parseNodeConfig } from '../../src/config.js';
import { isParleyError } from '../../src/errors.js';
import { createVaspNode } from '../../src/node.js';
import { DEFAULT_RESTORE_OBJECTS_PER_S } from '../../src/sync/restore.js';
import { nodeConfig, tempDir, testIdentity } from '../helpers/nodes.js';

describe('node configuration: health, sync and dashboard settings', () => {
  const dirs: Array<{ dispose(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });

  it('takes the health knobs, the sync knobs and the dashboard switch from the file, with defaults when absent', () => {
    const me = testIdentity(1);
    const base = nodeConfig(me, 'file:x.db', []);
    expect(parseNodeConfig(base)).toMatchObject({
      health: {},
      sync: { runHistoryRetentionMs: 0, restoreObjectsPerS: DEFAULT_RESTORE_OBJECTS_PER_S },
      dashboard: { allowRemote: false },
    });
    const config = parseNodeConfig({
      ...base,
      health: { heartbeatIntervalMs: 500, downPhi: 12, closeOnDown: false, historyRetentionMs: 86_400_000 },
      sync: { runHistoryRetentionMs: 604_800_000 },
      dashboard: { allowRemote: true },
    });
    expect(config.sync.runHistoryRetentionMs).toBe(604_800_000);
    expect(config.health).toEqual({
      heartbeatIntervalMs: 500,
      downPhi: 12,
      closeOnDown: false,
      historyRetentionMs: 86_400_000,
    });
    expect(config.dashboard.allowRemote).toBe(true);
  });

  it('takes the replica settings from the file, the id also from PARLEY_REPLICA_ID, and refuses contradicting timings', () => {
    const base = nodeConfig(testIdentity(1), 'file:x.db', []);
    expect(parseNodeConfig(base).replica).toBeUndefined();
    expect(parseNodeConfig({ ...base, replica: {} }).replica).toEqual({
      leaseTtlMs: 3_000,
      renewMs: 500,
      rebalanceIntervalMs: 30_000,
    });
    const dir = tempDir();
    dirs.push(dir);
    const file = join(dir.path, 'parley.json');
    writeFileSync(file, JSON.stringify({ ...base, replica: { leaseTtlMs: 4_000, renewMs: 1_000 } }));
    expect(loadNodeConfig(file, {}).replica).toEqual({
      leaseTtlMs: 4_000,
      renewMs: 1_000,
      rebalanceIntervalMs: 30_000,
    });
    expect(loadNodeConfig(file, { PARLEY_REPLICA_ID: 'eu-1' }).replica).toEqual({
      id: 'eu-1',
      leaseTtlMs: 4_000,
      renewMs: 1_000,
      rebalanceIntervalMs: 30_000,
    });
    writeFileSync(file, JSON.stringify(base));
    expect(loadNodeConfig(file, { PARLEY_REPLICA_ID: 'eu-2' }).replica).toEqual({
      id: 'eu-2',
      leaseTtlMs: 3_000,
      renewMs: 500,
      rebalanceIntervalMs: 30_000,
    });
    for (const replica of [
      { leaseTtlMs: 1_000, renewMs: 600 },
      { leaseTtlMs: 1_000, renewMs: 400 },
      { id: '' },
      { leaseTtlMs: 50 },
      { owner: 'x' },
    ]) {
      expect(() => parseNodeConfig({ ...base, replica })).toThrow(/replica/);
    }
  });

  it('refuses unknown or out-of-range knobs with CONFIG_INVALID naming each one', () => {
    const base = nodeConfig(testIdentity(1), 'file:x.db', []);
    let err: unknown;
    try {
      parseNodeConfig({
        ...base,
        health: { heartbeatMs: 5, downPhi: -1, historyRetentionMs: -1 },
        sync: { runHistoryRetentionMs: -1, window: 2 },
        dashboard: { remote: true },
      });
    } catch (e) {
      err = e;
    }
    expect(isParleyError(err, 'CONFIG_INVALID')).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain('health');
    expect(message).toContain('heartbeatMs');
    expect(message).toContain('health.downPhi');
    expect(message).toContain('health.historyRetentionMs');
    expect(message).toContain('sync.runHistoryRetentionMs');
    expect(message).toContain('window');
    expect(message).toContain('remote');
  });

  it('refuses knobs that contradict each other before it opens or creates anything', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = join(dir.path, 'node.db');
    const config = {
      ...nodeConfig(testIdentity(1), `file:${file}`, []),
      health: { suspectPhi: 9, downPhi: 8 },
    };
    const err = await createVaspNode(config).catch((e: unknown) => e);
    expect(isParleyError(err, 'CONFIG_INVALID')).toBe(true);
    expect(existsSync(file)).toBe(false);
  });

  it('leaves nothing running when it cannot start: a node whose port is taken closes its store', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const first = await createVaspNode(nodeConfig(testIdentity(1), `file:${join(dir.path, 'a.db')}`, []));
    try {
      const file = join(dir.path, 'b.db');
      const me = testIdentity(2);
      const peer = testIdentity(3);
      const err = await createVaspNode(
        nodeConfig(me, `file:${file}`, [{ identity: peer, url: 'ws://127.0.0.1:9/parley/v1' }], first.port),
      ).catch((e: unknown) => e);
      expect(isParleyError(err, 'TRANSPORT_LISTEN_FAILED')).toBe(true);
      expect(existsSync(file)).toBe(true);
      // SQLite removes the write-ahead log when the last connection to the database closes.
      expect(existsSync(`${file}-wal`)).toBe(false);
    } finally {
      await first.close();
    }
  });
});
