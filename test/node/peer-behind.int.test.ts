/**
 * A LIP-1 HTTP peer that lost its state answers `wait` for ever to a command of mine that reads
 * a version it lost, and LIP-1 HTTP has no resync. Two Parley nodes over `transport: "lip1-http"`
 * on 127.0.0.1 (SQLite files, or PostgreSQL with PARLEY_TEST_DB=postgresql): after a payment
 * step, the peer restarts on an empty database. The stuck command makes the peer `peer_behind`
 * everywhere (event, history, metric, /healthz, `parley status`); `parley command abandon` ends
 * it durably, the condition clears, and after a restart the command is not sent again.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { filter, firstValueFrom, type Observable, ReplaySubject, timeout } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import type { BusinessContext } from '../../src/business/business-context.js';
import { createAutoBusiness, createPaymentObject, nextPaymentVersion } from '../../src/business/index.js';
import type { CommandOutcome } from '../../src/channel/channel.js';
import { healthEventLevel } from '../../src/cli/log.js';
import { isParleyError } from '../../src/errors.js';
import type { HealthEvent } from '../../src/health/index.js';
import { createVaspNode, type NodeEvent, type VaspNode } from '../../src/node.js';
import type { PaymentObject } from '../../src/protocol/index.js';
import { cli } from '../cli/helpers.js';
import { connectDashboard } from '../dashboard/client.js';
import { createNodeDatabase, freePort, type NodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, type TestIdentity, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { heldBusiness, step } from '../sync/helpers.js';

/** Bound of each wait on an event (the test fails rather than hang). */
const EVENT_TIMEOUT_MS = 30_000;

function httpPeer(identity: TestIdentity, port: number): Record<string, unknown> {
  return {
    address: identity.address,
    publicKey: identity.publicKeyHex,
    transport: 'lip1-http',
    url: `http://127.0.0.1:${port}`,
  };
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

describe('a LIP-1 HTTP peer that lost its state (real HTTP on 127.0.0.1)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function database(): Promise<NodeDatabase> {
    const db = await createNodeDatabase();
    cleanups.push(db.dispose);
    return db;
  }

  async function start(
    self: TestIdentity,
    db: string,
    port: number,
    peer: TestIdentity,
    peerPort: number,
    business: BusinessContext = heldBusiness().business,
  ) {
    const config = { ...nodeConfig(self, db, [], port), peers: [httpPeer(peer, peerPort)] };
    const node = await createVaspNode(config as never, { business });
    // `close` is idempotent: a node closed by the test is closed once.
    cleanups.push(() => node.close());
    return { node, close: () => node.close() };
  }

  /** Every health event of `node` from now on, replayed to late subscribers. */
  function record(node: VaspNode): Observable<HealthEvent> {
    const seen = new ReplaySubject<HealthEvent>();
    const sub = node.health$.subscribe(seen);
    cleanups.push(() => sub.unsubscribe());
    return seen;
  }

  function next<K extends HealthEvent['kind']>(
    events: Observable<HealthEvent>,
    kind: K,
  ): Promise<Extract<HealthEvent, { kind: K }>> {
    return firstValueFrom(
      events.pipe(
        filter((e): e is Extract<HealthEvent, { kind: K }> => e.kind === kind),
        timeout(EVENT_TIMEOUT_MS),
      ),
    );
  }

  it('reports peer_behind everywhere, and `parley command abandon` ends the command durably', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = [testIdentity(0x51), testIdentity(0x52)];
    const [portA, portB] = [await freePort(), await freePort()];
    const [dbA, dbB, dbB2] = [await database(), await database(), await database()];
    const nodeB = await start(b, dbB.url, portB, a, portA);
    let nodeA = await start(a, dbA.url, portA, b, portB);

    // A payment, and B's next step on it: both sides hold two versions.
    const { referenceId: ref, outcome$ } = nodeA.node.pay({ to: b.address, amount: 7, currency: 'TIK' });
    const create = await firstValueFrom(outcome$);
    expect(create).toMatchObject({ status: 'success' });
    expect(await step(nodeB.node, a.address, ref)).toMatchObject({ status: 'success' });

    // B restarts on an empty database: it lost both versions, and LIP-1 HTTP cannot resync.
    await nodeB.close();
    const wiped = await start(b, dbB2.url, portB, a, portA);
    expect(await wiped.node.store.head(a.address, ref)).toBeUndefined();

    const events = record(nodeA.node);
    // A's next version reads B's version, which B lost: B answers `wait` every time.
    const versions = await nodeA.node.store.versions(b.address, ref);
    const head = versions.at(-1)!;
    const payment = await nextPaymentVersion({
      payment: JSON.parse(head.payment) as PaymentObject,
      me: a.address,
      business: createAutoBusiness(),
    });
    const stuck$ = nodeA.node.channel(b.address).send({ payment: payment!, readVersion: head.version });
    const stuckOutcome: Promise<CommandOutcome> = firstValueFrom(stuck$);
    stuckOutcome.catch(() => undefined);

    // 1. Detected: the third `wait` makes B `peer_behind`.
    const behind = await next(events, 'peer_behind');
    const cid = behind.cids[0]!;
    expect(behind).toMatchObject({ peer: b.address, commands: 1, cause: 'waits', waits: 3 });
    expect((await nodeA.node.store.outbox(b.address)).map((o) => o.cid)).toEqual([cid]);
    // A warn line in the node's log.
    expect(healthEventLevel(behind)).toBe('warn');
    // Persisted in the health history.
    await nodeA.node.health.flush();
    const [row] = await nodeA.node.health.history({ peer: b.address, kinds: ['peer_behind'] });
    expect(row).toMatchObject({ kind: 'peer_behind', detail: { cids: [cid], commands: 1 } });
    // The metric, /healthz degraded (no heartbeat channel here: only the condition says it).
    const base = `http://127.0.0.1:${nodeA.node.port}`;
    const gauge = (value: number) =>
      new RegExp(`parley_channel_peer_behind\\{[^}]*peer="${b.address}"[^}]*\\} ${value}`);
    expect((await get(`${base}/metrics`)).text).toMatch(gauge(1));
    const healthz = await get(`${base}/healthz`);
    expect(healthz.status).toBe(200);
    expect(JSON.parse(healthz.text)).toMatchObject({
      status: 'degraded',
      peerBehind: [{ peer: b.address, commands: 1, cids: [cid] }],
    });
    // The dashboard.
    const dashboard = connectDashboard(nodeA.node.port, ['websocket']);
    cleanups.push(() => dashboard.close());
    const shown = (await dashboard.snapshot).channels.find((c) => c.peer === b.address);
    expect(shown?.peerBehind).toEqual({ commands: 1, sinceMs: behind.atMs });
    // No heartbeats over LIP-1 HTTP: the condition shows without a health state of its own.
    expect(shown?.health).toBeUndefined();
    expect((await dashboard.snapshot).log.find((e) => e.kind === 'peer_behind')?.message).toContain(cid);
    // `parley status`.
    const dir = tempDir();
    cleanups.push(() => dir.dispose());
    const token = randomBytes(16).toString('hex');
    registerAdminRoutes(nodeA.node, { token });
    const argv = (...args: string[]) => [...args, '--config', join(dir.path, 'none.json'), '--url', base];
    const env = { PARLEY_ADMIN_TOKEN: token };
    const status = await cli(argv('status'), { env });
    expect(status.code).toBe(0);
    expect(status.out).toContain('peer_behind 1');
    expect(status.out).toContain(cid);

    // 2. The way out: abandoned, durably, before the CLI exits 0.
    const cleared = next(events, 'peer_behind_cleared');
    const abandoned = await cli(argv('command', 'abandon', cid), { env });
    expect(abandoned).toMatchObject({ code: 0 });
    expect(await nodeA.node.store.outbox(b.address)).toEqual([]);
    const [record1] = await nodeA.node.health.history({ kinds: ['command_abandoned'] });
    expect(record1).toMatchObject({
      peer: b.address,
      detail: { cid, referenceId: ref, code: 'COMMAND_ABANDONED' },
    });
    // The caller waiting on the outcome gets the coded error.
    const err = await stuckOutcome.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isParleyError(err, 'COMMAND_ABANDONED')).toBe(true);
    // The condition clears everywhere.
    expect(await cleared).toMatchObject({ peer: b.address, final: 0, abandoned: 1 });
    expect(nodeA.node.channel(b.address).inflight).toBe(0);
    expect((await get(`${base}/metrics`)).text).toMatch(gauge(0));
    expect(JSON.parse((await get(`${base}/healthz`)).text)).toMatchObject({ status: 'ok', peerBehind: [] });
    expect((await cli(argv('status'), { env })).out).not.toContain('peer_behind');
    await dashboard.until((d) => d.channels.some((c) => c.peer === b.address && c.peerBehind === undefined));
    expect(dashboard.violations).toEqual([]);

    // Refusals, coded: again (409), a final command (409), an unknown cid (404).
    const again = await cli(argv('command', 'abandon', cid), { env });
    expect(again.code).toBe(1);
    expect(again.err).toContain('COMMAND_ALREADY_FINAL');
    const final = await fetch(`${base}/admin/commands/${create.cid}/abandon`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect([final.status, ((await final.json()) as { error: string }).error]).toEqual([
      409,
      'COMMAND_ALREADY_FINAL',
    ]);
    const unknown = await fetch(`${base}/admin/commands/${'ab'.repeat(16)}/abandon`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect([unknown.status, ((await unknown.json()) as { error: string }).error]).toEqual([
      404,
      'COMMAND_UNKNOWN',
    ]);
    const noToken = await fetch(`${base}/admin/commands/${cid}/abandon`, { method: 'POST' });
    expect(noToken.status).toBe(401);

    // 3. After a restart the abandoned command is not sent again, and stays abandoned.
    await nodeA.close();
    nodeA = await start(a, dbA.url, portA, b, portB);
    expect(nodeA.node.channel(b.address).inflight).toBe(0);
    expect(await nodeA.node.store.outbox(b.address)).toEqual([]);
    await expect(nodeA.node.abandonCommand(cid)).rejects.toMatchObject({ code: 'COMMAND_ALREADY_FINAL' });
    await expect(nodeA.node.health.history({ kinds: ['command_abandoned'] })).resolves.toHaveLength(1);
    expect(await nodeA.node.store.checkIntegrity()).toEqual([]);
  });

  it('the business layer does not propose an abandoned step again: not at once, not after a restart', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = [testIdentity(0x53), testIdentity(0x54)];
    const [portA, portB] = [await freePort(), await freePort()];
    const [dbA, dbB, dbB2] = [await database(), await database(), await database()];
    const nodeB = await start(b, dbB.url, portB, a, portA, createAutoBusiness());
    // A's business reacts to a payment only once the test lets it.
    const gated = gatedBusiness();
    let nodeA = await start(a, dbA.url, portA, b, portB, gated.business);

    // Two payments (in this order of reference id); B's business answers each at once.
    const refs: string[] = [];
    for (const suffix of ['behind-1', 'behind-2']) {
      const payment = createPaymentObject({
        me: a.address,
        meSubaddressHex: '0000000000000001',
        to: b.address,
        toSubaddressHex: '0000000000000001',
        amount: 5,
        currency: 'TIK',
        referenceSuffix: suffix,
      });
      refs.push(payment.reference_id);
      expect(await firstValueFrom(nodeA.node.channel(b.address).send({ payment }))).toMatchObject({
        status: 'success',
      });
    }
    const [stuckRef, otherRef] = refs as [string, string];
    const answeredByB = async (ref: string) => {
      const head = await nodeA.node.store.head(b.address, ref);
      const writer = head && (await nodeA.node.store.findCommand(b.address, head.headVersion));
      return writer?.direction === 'inbound';
    };
    await until([nodeA.node, nodeB.node], async () => (await answeredByB(stuckRef)) && answeredByB(otherRef));

    // B loses its state; then A's business answers the first payment, which B can no longer take.
    await nodeB.close();
    await start(b, dbB2.url, portB, a, portA, createAutoBusiness());
    const events = record(nodeA.node);
    const nodeEvents: NodeEvent[] = [];
    const sub = nodeA.node.events$.subscribe((e) => nodeEvents.push(e));
    cleanups.push(() => sub.unsubscribe());
    gated.release(stuckRef);
    const { cids } = await next(events, 'peer_behind');
    const [stuck] = await nodeA.node.store.outbox(b.address);
    expect(stuck).toMatchObject({ cid: cids[0], referenceId: stuckRef });

    const before = nodeEvents.length;
    await nodeA.node.abandonCommand(stuck!.cid);
    // The driver took COMMAND_ABANDONED as final: no retry scheduled, nothing queued again.
    const after = nodeEvents.slice(before);
    expect(after.filter((e) => e.type === 'business_error' || e.type === 'command_queued')).toEqual([]);
    expect(after).toContainEqual(
      expect.objectContaining({ type: 'command_dropped', cid: stuck!.cid, code: 'COMMAND_ABANDONED' }),
    );
    expect(await nodeA.node.store.outbox(b.address)).toEqual([]);

    // After a restart the business recovers the payments the peer answered last, in order of
    // reference id: the abandoned step is not proposed again; the other payment's is.
    await nodeA.close();
    const asked: string[] = [];
    const auto = createAutoBusiness();
    const recorder: BusinessContext = {
      ...auto,
      async paymentPreProcessing(payment, info) {
        asked.push(payment.reference_id);
        return auto.paymentPreProcessing(payment, info);
      },
    };
    nodeA = await start(a, dbA.url, portA, b, portB, recorder);
    await until([nodeA.node], async () => asked.includes(otherRef));
    expect(asked).not.toContain(stuckRef);
    expect((await nodeA.node.store.outbox(b.address)).map((o) => o.referenceId)).not.toContain(stuckRef);
  });
});

/** The automatic business, whose reaction to a payment waits until `release(referenceId)`. */
function gatedBusiness(): { business: BusinessContext; release(referenceId: string): void } {
  const auto = createAutoBusiness();
  const gates = new Map<string, { open: Promise<void>; release: () => void }>();
  const gate = (ref: string) => {
    let g = gates.get(ref);
    if (!g) {
      let release!: () => void;
      const open = new Promise<void>((resolve) => {
        release = resolve;
      });
      g = { open, release };
      gates.set(ref, g);
    }
    return g;
  };
  return {
    business: {
      ...auto,
      async paymentPreProcessing(payment, info) {
        await gate(payment.reference_id).open;
        return auto.paymentPreProcessing(payment, info);
      },
    },
    release: (ref) => gate(ref).release(),
  };
}
