/**
 * `parley resync --all <peer>` (`POST /admin/restore`, PROTOCOL.md §7.6): a node whose database
 * was put back from an old backup keeps its epoch, so its peer sees no state loss and the closed
 * payments made since the backup stay missing. The operator's restore, led by that node, fetches
 * them from the peer, verified, as restored objects (no payment events), finding them from the
 * coded symbols of the two closed sets (both hellos name `restore-riblt`), and `parley status`
 * shows it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import { cli } from '../cli/helpers.js';
import { tempDir, until } from '../helpers/nodes.js';
import { headOf, type Pair, startPair } from './helpers.js';

const BEFORE = 6;
const SINCE = 12;

describe('closed objects reconciled on demand after a restore from an old backup', () => {
  let pair: Pair | undefined;
  const dir = tempDir();
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  it('fetches every closed payment made since the backup, once started by `parley resync --all`', async () => {
    pair = await startPair();
    const { a, b } = pair;
    const pay = async (count: number): Promise<string[]> => {
      const refs: string[] = [];
      const outcomes = [];
      for (let i = 0; i < count; i++) {
        const p = a.node.pay({ to: b.node.address, amount: 1 + i, currency: 'TIK' });
        refs.push(p.referenceId);
        outcomes.push(firstValueFrom(p.outcome$));
      }
      await Promise.all(outcomes);
      await until([a.node, b.node], async () => (await a.node.store.countOpenObjects(b.node.address)) === 0, {
        timeoutMs: 60_000,
      });
      return refs;
    };
    const old = await pay(BEFORE);
    await pair.stop(a);
    const restoreBackup = await pair.snapshot(a);
    await pair.start(a);
    const since = await pay(SINCE);

    // A's database goes back to the backup: the payments since are gone there, its epoch is not.
    await pair.stop(a);
    await restoreBackup();
    const node = await pair.start(a);
    for (const ref of since) expect(await headOf(node, b.node.address, ref)).toBeUndefined();

    const token = randomBytes(16).toString('hex');
    registerAdminRoutes(node, { token });
    const argv = (...args: string[]) => [
      ...args,
      '--config',
      join(dir.path, 'none.json'),
      '--url',
      `http://127.0.0.1:${node.port}`,
    ];
    const env = { PARLEY_ADMIN_TOKEN: token };
    const started = await cli(argv('resync', '--all', b.node.address), { env });
    expect(started).toMatchObject({ code: 0 });
    expect(started.out).toContain('restore of the closed objects');
    // Without --all, or with a stranger: refused, nothing started.
    expect((await cli(argv('resync', b.node.address), { env })).code).toBe(2);
    const stranger = await cli(argv('resync', '--all', 'lbr1nobody'), { env });
    expect(stranger.code).not.toBe(0);

    await until([node, b.node], async () => node.sync(b.node.address).restoreStatus()?.state === 'finished', {
      timeoutMs: 60_000,
    });
    expect(node.sync(b.node.address).restoreStatus()).toMatchObject({
      role: 'leader',
      reason: 'on_demand',
      moved: SINCE,
      compared: BEFORE + SINCE,
    });
    // Both hellos name `restore-riblt`: the differences came from the closed sets' coded symbols.
    const runs = await createSyncRepository(node.store).runs(b.node.address, 20);
    const restoreRuns = runs.filter((r) => r.detail['method'] === 'restore' && r.detail['role'] === 'leader');
    expect(restoreRuns.length).toBeGreaterThan(0);
    expect(restoreRuns.at(-1)!.detail['reconcile']).toMatchObject({ method: 'riblt' });
    for (const ref of [...old, ...since]) {
      expect(await headOf(node, b.node.address, ref)).toBe(await headOf(b.node, node.address, ref));
    }
    const status = await cli(argv('status'), { env });
    expect(status.out).toContain('restore finished: this node restores');
    expect(status.out).toContain(`${SINCE} moved of ${BEFORE + SINCE} compared`);
  }, 180_000);
});
