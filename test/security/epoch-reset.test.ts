/**
 * Peer epoch reset (docs/security.md): whoever holds a peer's key can complete one hello with a
 * made-up store epoch, after which the real peer is refused with 4412 at every redial
 * (PROTOCOL.md §8.4). `parley peer reset-epoch` reinstates the real epoch, through the running
 * node's admin route or on the stopped node's database, audited as `epoch_reset`; the
 * `zombie_refused` records are rate-limited and bounded. Real nodes, real ws on 127.0.0.1, real
 * SQLite files.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { filter, firstValueFrom, type Observable, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { NodeConfigInput } from '../../src/config.js';
import { createHealthMonitor, ZOMBIE_RECORDS_KEPT } from '../../src/health/health-monitor.js';
import { createNodeMetrics } from '../../src/health/metrics.js';
import type { HealthEvent } from '../../src/health/status.js';
import type { VaspNode } from '../../src/node.js';
import { createHealthRepository } from '../../src/store/health-repository.js';
import { openStore } from '../../src/store/index.js';
import { cli } from '../cli/helpers.js';
import { memoryPair, virtualTime } from '../health/fakes.js';
import { nodeConfig, startNode, type TestIdentity, tempDir, testIdentity } from '../helpers/nodes.js';

const ADMIN_TOKEN = 'admin-token-for-the-reset-0123';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function healthEvent(node: VaspNode, kind: HealthEvent['kind'], epoch?: string): Promise<HealthEvent> {
  const events$: Observable<HealthEvent> = node.health$;
  return firstValueFrom(
    events$.pipe(
      filter((e) => e.kind === kind && (epoch === undefined || (e as { epoch?: string }).epoch === epoch)),
      timeout(20_000),
    ),
  );
}

async function started(config: NodeConfigInput): Promise<VaspNode> {
  const node = await startNode(config);
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await node.close();
  });
  const close = node.close.bind(node);
  (node as { close: () => Promise<void> }).close = async () => {
    closed = true;
    await close();
  };
  return node;
}

/**
 * B accepts A; A connects with its real epoch, then a holder of A's key connects with a new
 * one, then the real A redials and is refused (4412). Returns the parts.
 */
async function fencedOut() {
  const dir = tempDir();
  cleanups.push(dir.dispose);
  const a = testIdentity(0x81);
  const b = testIdentity(0x82);
  const bConfig = nodeConfig(b, `file:${join(dir.path, 'b.db')}`, [{ identity: a }], 0);
  const configFile = join(dir.path, 'b.config.json');
  const nodeB = await started(bConfig);
  writeFileSync(configFile, JSON.stringify(bConfig), { mode: 0o600 });
  const aConfig = (db: string, peer: TestIdentity, url: string) =>
    nodeConfig(a, `file:${join(dir.path, db)}`, [{ identity: peer, url }]);

  const seen = healthEvent(nodeB, 'epoch_seen');
  let nodeA = await started(aConfig('a.db', b, nodeB.url));
  const realEpoch = nodeA.epoch;
  await seen;
  await nodeA.close();

  const lost = healthEvent(nodeB, 'peer_state_lost');
  const hostile = await started(aConfig('hostile.db', b, nodeB.url));
  const hostileEpoch = hostile.epoch;
  await lost;
  await hostile.close();

  const refused = healthEvent(nodeB, 'zombie_refused', realEpoch);
  nodeA = await started(aConfig('a.db', b, nodeB.url));
  await refused;
  await nodeA.close();
  return { dir, a, b, nodeB, bConfig, configFile, aConfig, realEpoch, hostileEpoch };
}

async function healthRows(node: VaspNode, kind: string) {
  return node.health.history({ kinds: [kind], limit: 1000 });
}

describe('parley peer reset-epoch', () => {
  it('through the running node: the real epoch is accepted again, the made-up one refused, audited', async () => {
    const { nodeB, b, configFile, aConfig, realEpoch, hostileEpoch, a } = await fencedOut();
    registerAdminRoutes(nodeB, { token: ADMIN_TOKEN });
    const args = ['peer', 'reset-epoch', '--config', configFile, '--address', a.address, '--json'];
    const url = `http://127.0.0.1:${nodeB.port}`;
    const env = { PARLEY_ADMIN_TOKEN: ADMIN_TOKEN };

    const bad = await cli([...args, '--epoch', 'never-seen-epoch', '--url', url], { env });
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('HEALTH_EPOCH_UNKNOWN');
    expect(await healthRows(nodeB, 'epoch_reset')).toEqual([]);

    const { code, out } = await cli([...args, '--epoch', realEpoch, '--url', url], { env });
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({
      changed: true,
      epoch: realEpoch,
      previousEpoch: hostileEpoch,
      via: 'admin',
    });
    expect(await healthRows(nodeB, 'epoch_reset')).toEqual([
      expect.objectContaining({ detail: { epoch: realEpoch, previousEpoch: hostileEpoch, via: 'admin' } }),
    ]);

    // The real A connects again with its epoch; the made-up epoch is refused from now on.
    const connected = firstValueFrom(
      nodeB.events$.pipe(
        filter((e) => e.type === 'connected'),
        timeout(20_000),
      ),
    );
    const nodeA = await started(aConfig('a.db', b, nodeB.url));
    await connected;
    expect((await nodeB.status())[0]?.peerEpoch).toBe(realEpoch);
    await nodeA.close();
    const refusedHostile = healthEvent(nodeB, 'zombie_refused', hostileEpoch);
    await started(aConfig('hostile.db', b, nodeB.url));
    await refusedHostile;

    const again = await cli([...args, '--epoch', realEpoch, '--url', url], { env });
    expect(JSON.parse(again.out)).toMatchObject({ changed: false });
  });

  it('on the stopped node database: the restarted node accepts the real epoch', async () => {
    const { nodeB, b, bConfig, configFile, aConfig, realEpoch, hostileEpoch, a } = await fencedOut();
    await nodeB.close();
    const args = ['peer', 'reset-epoch', '--config', configFile, '--address', a.address];
    const bad = await cli([...args, '--epoch', 'never-seen-epoch']);
    expect(bad.code).toBe(2);
    const { code } = await cli([...args, '--epoch', realEpoch]);
    expect(code).toBe(0);

    const restarted = await started(bConfig);
    expect(await healthRows(restarted, 'epoch_reset')).toEqual([
      expect.objectContaining({ detail: { epoch: realEpoch, previousEpoch: hostileEpoch, via: 'offline' } }),
    ]);
    const connected = firstValueFrom(
      restarted.events$.pipe(
        filter((e) => e.type === 'connected'),
        timeout(20_000),
      ),
    );
    await started(aConfig('a.db', b, restarted.url));
    await connected;
    expect((await restarted.status())[0]?.peerEpoch).toBe(realEpoch);
  });
});

describe('zombie_refused records', () => {
  it('are written at most once a minute per peer and epoch (with the count held back), and the newest kept', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const store = await openStore({ url: `file:${join(dir.path, 'h.db')}` });
    cleanups.push(() => store.close());
    const history = createHealthRepository(store);
    const [me, peer] = ['addr-me', 'addr-peer'];
    await store.upsertPeer({ address: peer, publicKeyHex: '00'.repeat(32) });
    const time = virtualTime();
    const monitor = createHealthMonitor(
      {},
      { me, epoch: 'mine', store: history, peers: store, scheduler: time.scheduler },
    );
    cleanups.push(() => monitor.close());
    const metrics = createNodeMetrics({ node: me, monitor, channels: [] });
    const refusals = async (): Promise<number> => {
      const line = (await metrics.metrics())
        .split('\n')
        .find((l) => l.startsWith('parley_health_events_total') && l.includes('kind="zombie_refused"'));
      return Number(line?.split(' ').at(-1) ?? 0);
    };
    const channel = {
      peer,
      inflight: 0,
      connection: undefined,
      events$: new (await import('rxjs')).Subject(),
    };
    await monitor.addChannel(channel as never, { openSummary: () => ({ count: 0, digest: '' }) });
    const hello = (epoch: string) => memoryPair(time, { addresses: [me, peer], epochs: [me, epoch] }).a;
    monitor.admit(hello('old'));
    monitor.admit(hello('new'));

    for (let i = 0; i < 50; i++) expect(monitor.admit(hello('old'))).toBe(false);
    await monitor.flush();
    expect(await history.history({ kinds: ['zombie_refused'] })).toHaveLength(1);
    time.advance(60_000);
    expect(monitor.admit(hello('old'))).toBe(false);
    await monitor.flush();
    const [latest] = await history.history({ kinds: ['zombie_refused'] });
    expect(latest?.detail).toMatchObject({ epoch: 'old', suppressed: 49 });
    // The metric counts every refusal, the held-back ones when the next record comes.
    expect(await refusals()).toBe(51);

    for (let i = 0; i < ZOMBIE_RECORDS_KEPT + 20; i++) {
      time.advance(60_000);
      monitor.admit(hello('old'));
    }
    await monitor.flush();
    expect(await history.history({ kinds: ['zombie_refused'], limit: 1000 })).toHaveLength(
      ZOMBIE_RECORDS_KEPT,
    );
    // The epoch records are untouched: the superseded epoch stays known.
    expect(await history.epochs(peer)).toEqual(['old', 'new']);
  });
});
