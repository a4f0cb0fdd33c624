/**
 * Health of real nodes over real WebSocket channels on 127.0.0.1 (SQLite files): heartbeats,
 * the open-objects digest, half-open detection through a relay, state loss and zombie fencing,
 * `/healthz` and `/metrics` over HTTP.
 *
 * No fixed sleeps: every wait is for an event, bounded by a generous budget (a budget is
 * acceptance of behaviour, not a speed measurement).
 */
import { join } from 'node:path';
import { filter, firstValueFrom, merge, type Observable, of, take, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusinessContext } from '../../src/business/index.js';
import type { HealthEvent } from '../../src/health/status.js';
import { createVaspNode, type NodeDeps, type VaspNode } from '../../src/node.js';
import { createOpenObjectsDigest } from '../../src/protocol/heartbeat-frames.js';
import { nodeConfig, type TestIdentity, tempDir, testIdentity } from '../helpers/nodes.js';
import { startRelay } from './relay.js';

const BUDGET_MS = 30_000;

/** Resolves with the first value of `source$` matching `match` (subscribe before acting). */
function next<T>(source$: Observable<T>, match: (value: T) => boolean, what: string): Promise<T> {
  return firstValueFrom(
    source$.pipe(
      filter(match),
      take(1),
      timeout({ first: BUDGET_MS, with: () => Promise.reject(new Error(`timed out waiting for ${what}`)) }),
    ),
  );
}

/**
 * Resolves once `check()` holds, checked now and after each `change$` value, or rejects after
 * the budget with `describe()`.
 */
function until(change$: Observable<unknown>, check: () => boolean, describe: () => string): Promise<unknown> {
  return firstValueFrom(
    merge(of(null), change$).pipe(
      filter(check),
      take(1),
      timeout({ first: BUDGET_MS, with: () => Promise.reject(new Error(describe())) }),
    ),
  );
}

const isState = (peer: string, to: string) => (e: HealthEvent) =>
  e.kind === 'transition' && e.peer === peer && e.to === to;

/** A business that never answers: the peer's payments stay open (so open objects exist). */
function inertBusiness(): BusinessContext<undefined> {
  return {
    paymentPreProcessing: async () => undefined,
    paymentInitialProcessing: async () => undefined,
    checkAccountExistence: async () => undefined,
    validateRecipientSignature: () => undefined,
    getRecipientSignature: async () => '',
    nextKycToProvide: async () => new Set(),
    nextKycLevelToRequest: async () => 'none',
    getExtendedKyc: async () => ({ payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' }),
    getAdditionalKyc: async () => ({ payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' }),
    readyForSettlement: async () => false,
  };
}

describe('node health over real sockets', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const dir = () => {
    const d = tempDir();
    cleanups.push(d.dispose);
    return d.path;
  };

  async function start(
    self: TestIdentity,
    db: string,
    peers: Array<{ identity: TestIdentity; url?: string }>,
    deps: NodeDeps = {},
  ): Promise<VaspNode> {
    const node = await createVaspNode(nodeConfig(self, `file:${db}`, peers), deps);
    cleanups.push(() => node.close());
    return node;
  }

  it('answers /livez for the node alone: 200 while its counterparty is down, 503 once its own store cannot answer', async () => {
    const a = testIdentity(0x8a);
    const b = testIdentity(0x8b);
    // B never runs: A's channel to it stays down.
    const nodeA = await start(a, join(dir(), 'a.db'), [{ identity: b, url: 'ws://127.0.0.1:9' }]);
    const live = await fetch(`http://127.0.0.1:${nodeA.port}/livez`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok', node: a.address, epoch: nodeA.epoch, store: 'ok' });
    expect((await fetch(`http://127.0.0.1:${nodeA.port}/livez`, { method: 'POST' })).status).toBe(405);

    await nodeA.store.close();
    const dead = await fetch(`http://127.0.0.1:${nodeA.port}/livez`);
    expect(dead.status).toBe(503);
    expect(await dead.json()).toMatchObject({ status: 'down', store: 'STORE_CLOSED' });
  });

  it('keeps both channels healthy, announces the same open-objects digest, and serves /healthz and /metrics', async () => {
    const path = dir();
    const a = testIdentity(0x51);
    const b = testIdentity(0x52);
    const nodeA = await start(a, join(path, 'a.db'), [{ identity: b }]);
    // B dials through a relay: its traffic to A (heartbeats among it) is what the test waits on.
    const relay = await startRelay(nodeA.port);
    cleanups.push(() => relay.close());
    const healthyA = next(nodeA.health$, isState(b.address, 'healthy'), 'A: B healthy');
    const nodeB = await start(b, join(path, 'b.db'), [{ identity: a, url: relay.url() }], {
      business: inertBusiness(),
    });
    await healthyA;

    // Three payments that B never answers: three objects stay open on both sides.
    for (let i = 0; i < 3; i++) {
      await firstValueFrom(nodeA.pay({ to: b.address, amount: 10 + i, currency: 'TIK' }).outcome$);
    }
    const local = () => nodeA.health.channel(b.address)!.snapshot();
    // A heartbeat from B announces the three objects (heartbeats are not events: the snapshot is
    // checked again each time B's traffic reaches A; heartbeats keep coming).
    await until(
      relay.toTarget$,
      () => local().remote?.count === 3,
      () => `B never announced 3 open objects: ${JSON.stringify(local())}`,
    );
    const snap = local();
    expect(snap.local.count).toBe(3);
    expect(snap.remote).toEqual(snap.local);
    // The incremental digest equals one computed from the store's open-object index.
    const fresh = createOpenObjectsDigest();
    for (const head of await nodeA.store.openObjects(b.address, null, 100))
      fresh.add(head.referenceId, head.headVersion);
    expect(snap.local).toEqual(fresh.summary());
    expect(snap.diverged).toBe(false);

    const healthz = await fetch(`http://127.0.0.1:${nodeA.port}/healthz`);
    expect(healthz.status).toBe(200);
    const body = (await healthz.json()) as { status: string; channels: Array<Record<string, unknown>> };
    expect(body.status).toBe('ok');
    expect(body.channels).toEqual([
      expect.objectContaining({ peer: b.address, state: 'healthy', connected: true, peerEpoch: nodeB.epoch }),
    ]);

    const metrics = await fetch(`http://127.0.0.1:${nodeA.port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    const peer = `peer="${b.address}"`;
    expect(text).toMatch(
      new RegExp(`parley_channel_health_state\\{[^}]*${peer}[^}]*state="healthy"[^}]*\\} 1`),
    );
    expect(text).toMatch(new RegExp(`parley_channel_open_objects\\{[^}]*${peer}[^}]*side="local"[^}]*\\} 3`));
    expect(text).toMatch(
      new RegExp(
        `parley_channel_commits_total\\{[^}]*${peer}[^}]*direction="outbound"[^}]*status="success"[^}]*\\} 3`,
      ),
    );
    expect(text).toMatch(/parley_heartbeat_rtt_seconds\{/);
    expect(text).toMatch(/parley_channel_phi\{/);
    expect(text).toMatch(/parley_channel_inflight_commands\{/);
    expect(text).toMatch(/parley_channel_inflight_commands_by_state\{[^}]*state="unapplied"[^}]*\} 0/);
    expect(text).toMatch(/parley_channel_oldest_unanswered_seconds\{[^}]*\} 0/);
    expect(text).toMatch(/parley_channel_retransmits_total\{/);
    expect(text).toContain(`node="${a.address}"`);
  });

  it('detects a half-open connection (a relay that silently stops forwarding): down on both sides, /healthz 503, then a new connection is healthy', async () => {
    const path = dir();
    const a = testIdentity(0x53);
    const b = testIdentity(0x54);
    const nodeA = await start(a, join(path, 'a.db'), [{ identity: b }]);
    const relay = await startRelay(nodeA.port);
    cleanups.push(() => relay.close());
    const healthyA = next(nodeA.health$, isState(b.address, 'healthy'), 'A: B healthy');
    const nodeB = await start(b, join(path, 'b.db'), [{ identity: a, url: relay.url() }]);
    await healthyA;

    const downA = next(nodeA.health$, isState(b.address, 'down'), 'A: B down');
    const downB = next(nodeB.health$, isState(a.address, 'down'), 'B: A down');
    relay.blackhole();
    await Promise.all([downA, downB]);

    const healthz = await fetch(`http://127.0.0.1:${nodeA.port}/healthz`);
    expect(healthz.status).toBe(503);
    expect(((await healthz.json()) as { status: string }).status).toBe('down');

    // Both ends gave up the dead connection; B dials again through the relay (new sockets pass).
    await next(nodeA.health$, isState(b.address, 'healthy'), 'A: B healthy again');
    expect((await fetch(`http://127.0.0.1:${nodeA.port}/healthz`)).status).toBe(200);
    const history = await nodeA.health.history({ peer: b.address, kinds: ['transition'] });
    expect(history.map((r) => r.toState).reverse()).toEqual(['healthy', 'suspect', 'down', 'healthy']);
  });

  it('raises peer_state_lost at the first hello of a wiped peer, before any command, and refuses its old database (4412)', async () => {
    const path = dir();
    const a = testIdentity(0x55);
    const b = testIdentity(0x56);
    const nodeA = await start(a, join(path, 'a.db'), [{ identity: b }]);
    const seen: string[] = [];
    merge(nodeA.health$, nodeA.events$).subscribe((e) => {
      if ('kind' in e && e.kind !== 'transition') seen.push(e.kind);
      else if ('type' in e && (e.type === 'connected' || e.type === 'command_received')) seen.push(e.type);
    });

    // B, first life: a payment to A (so A has a shared object with it).
    const firstHello = next(nodeA.health$, (e) => e.kind === 'epoch_seen', 'A: epoch_seen');
    const b1 = await createVaspNode(
      nodeConfig(b, `file:${join(path, 'b1.db')}`, [{ identity: a, url: nodeA.url }]),
    );
    await firstHello;
    await firstValueFrom(b1.pay({ to: a.address, amount: 5, currency: 'TIK' }).outcome$);
    const epoch1 = b1.epoch;
    await b1.close();

    // B, wiped: a new database, so a new epoch.
    const lost = next(nodeA.health$, (e) => e.kind === 'peer_state_lost', 'A: peer_state_lost');
    const b2 = await createVaspNode(
      nodeConfig(b, `file:${join(path, 'b2.db')}`, [{ identity: a, url: nodeA.url }]),
    );
    // (b2 is closed below only after its resync ends: closing a node in the middle of a run
    // is the resync's own test matter, not this one.)
    const b2Synced = next(b2.resync$, (e) => e.type === 'resync_finished', 'B2: resync finished');
    const event = await lost;
    expect(event).toMatchObject({ peer: b.address, previousEpoch: epoch1, epoch: b2.epoch, source: 'hello' });
    // Raised before A's channel took the new connection (so before any command on it).
    const afterFirstLife = seen.slice(seen.indexOf('command_received') + 1);
    expect(afterFirstLife.slice(0, 2)).toEqual(['peer_state_lost', 'connected']);
    const channelB = nodeA.health.channel(b.address)!;
    // (Its state changes only with a transition event; the heartbeat count is the channel's.)
    await until(
      nodeA.health$,
      () => channelB.state === 'healthy' && channelB.snapshot().heartbeatsReceived > 0,
      () => `A: B never healthy: ${JSON.stringify(channelB.snapshot())}`,
    );
    await b2Synced;
    await b2.close();

    // B's old database comes back (a zombie): refused with 4412, again and again.
    const refused = next(nodeA.health$, (e) => e.kind === 'zombie_refused', 'A: zombie_refused');
    const zombie = await createVaspNode(
      nodeConfig(b, `file:${join(path, 'b1.db')}`, [{ identity: a, url: nodeA.url }]),
    );
    cleanups.push(() => zombie.close());
    const closedWith = next(
      zombie.events$,
      (e) => e.type === 'disconnected' && e.peer === a.address,
      'zombie: disconnected',
    );
    expect(await refused).toMatchObject({ epoch: epoch1, currentEpoch: b2.epoch, source: 'hello' });
    expect(await closedWith).toMatchObject({ closeCode: 4412 });

    await nodeA.health.flush();
    const kinds = (await nodeA.health.history({ peer: b.address })).map((r) => r.kind).reverse();
    expect(kinds.filter((k) => k !== 'transition').slice(0, 3)).toEqual([
      'epoch_seen',
      'peer_state_lost',
      'zombie_refused',
    ]);
    expect((await nodeA.store.getPeer(b.address))?.epoch).toBe(b2.epoch);
  });
});
